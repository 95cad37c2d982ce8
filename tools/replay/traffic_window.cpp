#include "tools/replay/traffic_window.hpp"

namespace pvnet::tools {

BackendCounters traffic_window(const BackendCounters& start, const BackendCounters& end) {
  BackendCounters w = end;
  w.grant = end.grant - start.grant;
  w.backend_memcpy_bytes -= start.backend_memcpy_bytes;
  w.header_bytes -= start.header_bytes;
  w.slots_used -= start.slots_used;
  w.dropped -= start.dropped;
  return w;
}

nlohmann::json traffic_window_json(const BackendCounters& start, const BackendCounters& end,
                                   const BackendCounters& final) {
  const BackendCounters w = traffic_window(start, end);
  nlohmann::json j;
  j["backend_memcpy_bytes"] = w.backend_memcpy_bytes;
  j["header_bytes"] = w.header_bytes;
  j["grant_copy_bytes"] = w.grant.grant_copy_bytes;
  j["dom0_bytes_copied"] = w.backend_memcpy_bytes + w.grant.grant_copy_bytes;
  j["pages_mapped"] = w.grant.pages_mapped;
  j["pages_unmapped"] = w.grant.pages_unmapped;
  j["tlb_shootdowns"] = w.grant.tlb_shootdowns;
  j["faults"] = w.grant.faults;
  j["hypercalls"] = w.grant.hypercalls;
  j["slots_used"] = w.slots_used;
  j["backend"] = w;
  j["connection"] = {{"pages_mapped_at_connect", start.grant.pages_mapped},
                     {"hypercalls_at_connect", start.grant.hypercalls},
                     {"grant_copy_bytes_at_connect", start.grant.grant_copy_bytes},
                     {"pages_mapped_total", final.grant.pages_mapped},
                     {"pages_unmapped_total", final.grant.pages_unmapped},
                     {"mappings_left_after_teardown", final.grant.pages_mapped - final.grant.pages_unmapped}};
  return j;
}

}  // namespace pvnet::tools
