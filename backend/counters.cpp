#include "backend/counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

uint64_t BackendCounters::dropped_total() const {
  return dropped.total();
}

BackendCounters& BackendCounters::operator+=(const BackendCounters& o) {
  PVNET_BACKEND_COUNTERS(PVNET_COUNTER_ADD)
  dropped += o.dropped;
  grant += o.grant;
  return *this;
}

void to_json(nlohmann::json& j, const BackendCounters& c) {
  j = nlohmann::json::object();
  PVNET_BACKEND_COUNTERS(PVNET_COUNTER_JSON)
  j["dropped"] = c.dropped;
  j["dropped_total"] = c.dropped_total();
  j["grant"] = c.grant;
}

std::ostream& operator<<(std::ostream& os, const BackendCounters& c) {
  const char* sep = "";
  PVNET_BACKEND_COUNTERS(PVNET_COUNTER_PRINT)
  os << " dropped={" << c.dropped << "} grant{" << c.grant << '}';
  return os;
}

}  // namespace pvnet
