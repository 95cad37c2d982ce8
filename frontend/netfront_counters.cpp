#include "frontend/netfront_counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

void to_json(nlohmann::json& j, const NetfrontCounters& c) {
  j = nlohmann::json::object();
  PVNET_NETFRONT_COUNTERS(PVNET_COUNTER_JSON)
}

std::ostream& operator<<(std::ostream& os, const NetfrontCounters& c) {
  const char* sep = "";
  PVNET_NETFRONT_COUNTERS(PVNET_COUNTER_PRINT)
  return os;
}

}  // namespace pvnet
