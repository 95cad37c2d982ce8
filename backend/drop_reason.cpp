#include "backend/drop_reason.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace pvnet {

std::string_view to_string(DropReason r) {
  switch (r) {
    case DropReason::dup_id: return "dup_id";
    case DropReason::too_many_slots: return "too_many_slots";
    case DropReason::first_size_smaller_than_rest: return "first_size_smaller_than_rest";
    case DropReason::runt: return "runt";
    case DropReason::bad_header_grant: return "bad_header_grant";
    case DropReason::bad_payload_grant: return "bad_payload_grant";
    case DropReason::over_mtu: return "over_mtu";
    case DropReason::payload_unavailable: return "payload_unavailable";
    case DropReason::pcap_write_error: return "pcap_write_error";
    case DropReason::tap_gso_not_tcp: return "tap_gso_not_tcp";
    case DropReason::tap_queue_full: return "tap_queue_full";
    case DropReason::tap_write_error: return "tap_write_error";
    case DropReason::dest_not_connected: return "dest_not_connected";
    case DropReason::dest_rx_stalled: return "dest_rx_stalled";
    case DropReason::dest_rx_full: return "dest_rx_full";
    case DropReason::src_gone: return "src_gone";
    case DropReason::dest_gone: return "dest_gone";
    case DropReason::dest_disabled: return "dest_disabled";
    case DropReason::rx_stalled: return "rx_stalled";
    case DropReason::rx_queue_full: return "rx_queue_full";
    case DropReason::rx_bad_length: return "rx_bad_length";
    case DropReason::rx_no_sg: return "rx_no_sg";
    case DropReason::rx_no_gso: return "rx_no_gso";
    case DropReason::rx_too_many_slots: return "rx_too_many_slots";
    case DropReason::rx_copy_error: return "rx_copy_error";
  }
  return "unknown";  // not a DropReason (a cast): never a counter key
}

std::optional<DropReason> drop_reason_from(std::string_view key) {
  for (size_t i = 0; i < kDropReasons; ++i)
    if (to_string(static_cast<DropReason>(i)) == key) return static_cast<DropReason>(i);
  return std::nullopt;
}

uint64_t DropCounts::total() const {
  uint64_t t = 0;
  for (uint64_t v : n_) t += v;
  return t;
}

DropCounts& DropCounts::operator+=(const DropCounts& o) {
  for (size_t i = 0; i < kDropReasons; ++i) n_[i] += o.n_[i];
  return *this;
}

DropCounts& DropCounts::operator-=(const DropCounts& o) {
  for (size_t i = 0; i < kDropReasons; ++i) n_[i] -= std::min(n_[i], o.n_[i]);
  return *this;
}

std::map<std::string, uint64_t> DropCounts::by_key() const {
  std::map<std::string, uint64_t> m;
  for (size_t i = 0; i < kDropReasons; ++i)
    if (n_[i] != 0) m[std::string(to_string(static_cast<DropReason>(i)))] = n_[i];
  return m;
}

void to_json(nlohmann::json& j, const DropCounts& d) { j = d.by_key(); }

std::ostream& operator<<(std::ostream& os, const DropCounts& d) {
  const char* sep = "";
  for (size_t i = 0; i < kDropReasons; ++i) {
    const auto r = static_cast<DropReason>(i);
    if (d[r] == 0) continue;
    os << sep << to_string(r) << ':' << d[r];
    sep = ",";
  }
  return os;
}

}  // namespace pvnet
