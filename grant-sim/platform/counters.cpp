#include "grant-sim/platform/counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

GrantCounters& GrantCounters::operator+=(const GrantCounters& o) {
  PVNET_GRANT_COUNTERS(PVNET_COUNTER_ADD)
  return *this;
}

GrantCounters operator-(GrantCounters a, const GrantCounters& b) {
  PVNET_GRANT_COUNTERS(PVNET_COUNTER_SUB)
  return a;
}

void to_json(nlohmann::json& j, const GrantCounters& c) {
  j = nlohmann::json::object();
  PVNET_GRANT_COUNTERS(PVNET_COUNTER_JSON)
}

std::ostream& operator<<(std::ostream& os, const GrantCounters& c) {
  const char* sep = "";
  PVNET_GRANT_COUNTERS(PVNET_COUNTER_PRINT)
  return os;
}

}  // namespace pvnet
