#include "grant-sim/platform/counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

#define PVNET_GRANT_COUNTERS(X) \
  X(hypercalls) X(map_ops) X(pages_mapped) X(pages_unmapped) X(tlb_shootdowns) X(faults) X(fault_errors) \
  X(copy_ops) X(grant_copy_bytes) X(failed_ops)

GrantCounters& GrantCounters::operator+=(const GrantCounters& o) {
#define X(f) f += o.f;
  PVNET_GRANT_COUNTERS(X)
#undef X
  return *this;
}

GrantCounters operator-(GrantCounters a, const GrantCounters& b) {
#define X(f) a.f -= b.f;
  PVNET_GRANT_COUNTERS(X)
#undef X
  return a;
}

void to_json(nlohmann::json& j, const GrantCounters& c) {
  j = nlohmann::json::object();
#define X(f) j[#f] = c.f;
  PVNET_GRANT_COUNTERS(X)
#undef X
}

std::ostream& operator<<(std::ostream& os, const GrantCounters& c) {
  const char* sep = "";
#define X(f) os << sep << #f << '=' << c.f; sep = " ";
  PVNET_GRANT_COUNTERS(X)
#undef X
  return os;
}

}  // namespace pvnet
