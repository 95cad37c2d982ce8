// The drop reasons' counter keys are part of the JSON output: each one spelled as before, each a different key, and
// DropCounts serialised as the std::map of key -> count it replaced (only the reasons counted).
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <nlohmann/json.hpp>

#include "backend/counters.hpp"
#include "backend/drop_reason.hpp"

namespace pvnet::test {
namespace {

TEST(DropReason, KeysAreTheOnesTheJsonHad) {
  const std::set<std::string> want = {
      "dup_id", "too_many_slots", "first_size_smaller_than_rest", "runt", "bad_header_grant", "bad_payload_grant",
      "over_mtu", "payload_unavailable", "pcap_write_error", "tap_gso_not_tcp", "tap_queue_full", "tap_write_error",
      "dest_not_connected", "dest_rx_stalled", "dest_rx_full", "src_gone", "dest_gone", "dest_disabled",
      "rx_stalled", "rx_queue_full", "rx_bad_length", "rx_no_sg", "rx_no_gso", "rx_too_many_slots", "rx_copy_error"};
  std::set<std::string> got;
  for (size_t i = 0; i < kDropReasons; ++i) {
    const auto r = static_cast<DropReason>(i);
    const std::string key(to_string(r));
    EXPECT_TRUE(got.insert(key).second) << key << " twice";
    EXPECT_EQ(drop_reason_from(key), r) << key;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(drop_reason_from("no_such_reason"), std::nullopt);
}

TEST(DropCounts, JsonAndSums) {
  BackendCounters a, b;
  a.dropped[DropReason::over_mtu] += 2;
  b.dropped[DropReason::over_mtu] += 1;
  b.dropped[DropReason::rx_copy_error] += 5;
  a += b;
  EXPECT_EQ(a.dropped_total(), 8u);
  const nlohmann::json j = a;
  EXPECT_EQ(j["dropped"], nlohmann::json::parse(R"({"over_mtu": 3, "rx_copy_error": 5})"));
  EXPECT_EQ(j["dropped_total"], 8u);
  EXPECT_EQ(nlohmann::json(BackendCounters{})["dropped"], nlohmann::json::object()) << "nothing counted: {}";
  DropCounts w = a.dropped;
  w -= b.dropped;
  w -= b.dropped;  // saturates
  EXPECT_EQ(w[DropReason::over_mtu], 1u);
  EXPECT_EQ(w[DropReason::rx_copy_error], 0u);
  std::ostringstream os;
  os << a.dropped;
  EXPECT_EQ(os.str(), "over_mtu:3,rx_copy_error:5");
}

}  // namespace
}  // namespace pvnet::test
