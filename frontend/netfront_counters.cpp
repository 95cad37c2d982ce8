#include "frontend/netfront_counters.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace pvnet {

namespace {
template <class F>
void for_each_field(const NetfrontCounters& c, F&& f) {
#define PVNET_FIELD(name) f(#name, c.name)
  PVNET_FIELD(tx_packets);
  PVNET_FIELD(tx_bytes);
  PVNET_FIELD(tx_requests);
  PVNET_FIELD(tx_slot_packets);
  PVNET_FIELD(tx_whole_in_slot);
  PVNET_FIELD(tx_plain_packets);
  PVNET_FIELD(tx_gso_packets);
  PVNET_FIELD(tx_grants);
  PVNET_FIELD(tx_linearised);
  PVNET_FIELD(tx_linearised_bytes);
  PVNET_FIELD(tx_busy);
  PVNET_FIELD(tx_invalid);
  PVNET_FIELD(tx_completed);
  PVNET_FIELD(tx_errors);
  PVNET_FIELD(tx_dropped);
  PVNET_FIELD(tx_lost_backend_gone);
  PVNET_FIELD(reconnects);
  PVNET_FIELD(recalls_sent);
  PVNET_FIELD(recalls_answered);
  PVNET_FIELD(recall_timeouts);
  PVNET_FIELD(rx_packets);
  PVNET_FIELD(rx_bytes);
  PVNET_FIELD(rx_gso_packets);
  PVNET_FIELD(rx_errors);
  PVNET_FIELD(rx_buffers_posted);
  PVNET_FIELD(rx_copy_bytes);
  PVNET_FIELD(frontend_copy_bytes);
  PVNET_FIELD(slots_in_use);
  PVNET_FIELD(slots_total);
  PVNET_FIELD(grants_in_use);
  PVNET_FIELD(grants_busy_retries);
  PVNET_FIELD(grants_kept);
  PVNET_FIELD(notifications_sent);
  PVNET_FIELD(ctrl_requests);
  PVNET_FIELD(bad_responses);
#undef PVNET_FIELD
}
}  // namespace

void to_json(nlohmann::json& j, const NetfrontCounters& c) {
  j = nlohmann::json::object();
  for_each_field(c, [&](const char* name, uint64_t v) { j[name] = v; });
}

std::ostream& operator<<(std::ostream& os, const NetfrontCounters& c) {
  bool first = true;
  for_each_field(c, [&](const char* name, uint64_t v) {
    os << (first ? "" : " ") << name << '=' << v;
    first = false;
  });
  return os;
}

}  // namespace pvnet
