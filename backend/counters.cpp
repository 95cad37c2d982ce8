#include "backend/counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

#define PVNET_BACKEND_COUNTERS(X)                                                                             \
  X(packets_in) X(bytes_in) X(packets_out) X(bytes_out) X(tx_requests) X(tx_responses)                      \
  X(tx_header_slot_packets) X(tx_plain_packets) X(tx_gso_packets) X(tx_frags) X(tx_backpressure_stalls)     \
  X(tx_fatal_errors) X(tx_credit_stalls) X(tx_inflight_stalls) X(header_bytes) X(backend_memcpy_bytes)      \
  X(slots_used) X(payload_pages_touched)                                                                    \
  X(rx_packets) X(rx_bytes) X(rx_requests) X(rx_responses) X(rx_gso_packets) X(rx_copy_ops)                 \
  X(rx_copy_errors) X(rx_queued) X(rx_queue_full) X(rx_queue_bytes) X(rx_stalls)                              \
  X(recall_requests) X(recalled_grefs) X(recall_refused) X(ctrl_requests) X(kept_pages)

uint64_t BackendCounters::dropped_total() const {
  return dropped.total();
}

BackendCounters& BackendCounters::operator+=(const BackendCounters& o) {
#define X(f) f += o.f;
  PVNET_BACKEND_COUNTERS(X)
#undef X
  dropped += o.dropped;
  grant += o.grant;
  return *this;
}

void to_json(nlohmann::json& j, const BackendCounters& c) {
  j = nlohmann::json::object();
#define X(f) j[#f] = c.f;
  PVNET_BACKEND_COUNTERS(X)
#undef X
  j["dropped"] = c.dropped;
  j["dropped_total"] = c.dropped_total();
  j["grant"] = c.grant;
}

std::ostream& operator<<(std::ostream& os, const BackendCounters& c) {
  const char* sep = "";
#define X(f) os << sep << #f << '=' << c.f; sep = " ";
  PVNET_BACKEND_COUNTERS(X)
#undef X
  os << " dropped={" << c.dropped << "} grant{" << c.grant << '}';
  return os;
}

}  // namespace pvnet
