// End to end in one process: every real trace through guest A -> dom0 -> sink, checked frame by frame, with the
// header-slot design's promises checked on dom0's counters. (The same across processes: tests/e2e_processes.)
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tools/trace/pcap_io.hpp"
#include "tests/common/test_traces.hpp"
#include "tools/replay/replay.hpp"
#include "tools/replay/trace_compare.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

using pvnet::test_data::all_traces;
using pvnet::test_data::source_dir;
fs::path scratch(const std::string& name) { return pvnet::test_data::scratch("replay-test", name); }

uint64_t u(const nlohmann::json& j, const char* k) { return j.at(k).get<uint64_t>(); }

void expect_no_leaks(const nlohmann::json& j) {
  const auto& l = j.at("leaks");
  EXPECT_TRUE(l.at("closed").get<bool>());
  for (auto& [k, v] : l.items()) {
    if (k != "closed") {
      EXPECT_EQ(v.get<uint64_t>(), 0u) << k;
    }
  }
}

class EveryTrace : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryTrace, VifSinkDeliversEveryFrameWithNothingMappedInDom0) {
  ReplayOptions o;
  o.in = GetParam();
  o.out = scratch("vif.pcap").string();
  o.sink = SinkKind::vif;
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  nlohmann::json j = r->to_json();
  EXPECT_GT(r->packets_in, 0u);
  EXPECT_EQ(r->packets_in, r->packets_out) << j["dropped"].dump();
  EXPECT_EQ(r->dropped_total(), 0u);
  EXPECT_TRUE(j["header_slots"].get<bool>());
  // The design's promise for forwarding: payload never mapped, never faulted, dom0's CPU copies only headers.
  EXPECT_EQ(u(j, "pages_mapped"), 0u);
  EXPECT_EQ(u(j, "faults"), 0u);
  EXPECT_GT(u(j, "header_bytes"), 0u);
  EXPECT_LE(u(j, "backend_memcpy_bytes"), u(j, "header_bytes"));
  EXPECT_EQ(u(j, "slots_used"), r->packets_in);
  auto c = compare_traces(o.in, o.out, 1, 0);
  ASSERT_TRUE(c.ok()) << c.error().reason;
  EXPECT_EQ(c->matched, r->packets_in);
  expect_no_leaks(j);
}

TEST_P(EveryTrace, PcapSinkFaultsOnlyTheTouchedPayloadPagesAndUnmapsThemAll) {
  ReplayOptions o;
  o.in = GetParam();
  o.out = scratch("pcap.pcap").string();
  o.sink = SinkKind::pcap;
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  nlohmann::json j = r->to_json();
  EXPECT_EQ(r->packets_in, r->packets_out);
  uint64_t touched = j["backend"]["payload_pages_touched"].get<uint64_t>();
  EXPECT_EQ(u(j, "faults"), touched);
  EXPECT_EQ(u(j, "pages_mapped"), touched);  // every map of the traffic was a lazy fault
  EXPECT_EQ(u(j, "pages_unmapped"), u(j, "pages_mapped"));
  EXPECT_EQ(j["connection"]["mappings_left_after_teardown"].get<uint64_t>(), 0u);
  auto c = compare_traces(o.in, o.out, 1, 0);
  ASSERT_TRUE(c.ok()) << c.error().reason;
  expect_no_leaks(j);
}

TEST_P(EveryTrace, PlainNetifFallbackDeliversTheSameFrames) {
  ReplayOptions o;
  o.in = GetParam();
  o.out = scratch("plain.pcap").string();
  o.header_slots = false;
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  nlohmann::json j = r->to_json();
  EXPECT_FALSE(j["header_slots"].get<bool>());
  EXPECT_EQ(u(j, "slots_used"), 0u);
  EXPECT_EQ(r->packets_in, r->packets_out);
  auto c = compare_traces(o.in, o.out, 1, 0);
  ASSERT_TRUE(c.ok()) << c.error().reason;
}

std::vector<std::string> trace_names() {
  std::vector<std::string> v;
  for (auto& p : all_traces()) v.push_back(p.string());
  return v;
}

INSTANTIATE_TEST_SUITE_P(Traces, EveryTrace, ::testing::ValuesIn(trace_names()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return pvnet::test_data::trace_test_name(param_info.param);
                         });

TEST(Replay, TracesArePresent) { EXPECT_GE(all_traces().size(), 3u); }

TEST(Replay, NonEthernetTraceIsRefusedWithAClearError) {
  fs::path p = scratch("raw.pcap");
  pcap_t* dead = pcap_open_dead(DLT_RAW, 65535);
  pcap_dumper_t* d = pcap_dump_open(dead, p.c_str());
  ASSERT_NE(d, nullptr);
  uint8_t pkt[20] = {0x45};
  pcap_pkthdr h{};
  h.caplen = h.len = sizeof pkt;
  pcap_dump(reinterpret_cast<u_char*>(d), &h, pkt);
  pcap_dump_close(d);
  pcap_close(dead);
  ReplayOptions o;
  o.in = p.string();
  auto r = run_replay(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("Ethernet"), std::string::npos) << r.error().reason;
}

TEST(Replay, TruncatedTraceIsAnErrorNamingTheFrame) {
  fs::path src = source_dir() / "traces" / "udp-dns-ping.pcap";
  fs::path p = scratch("truncated.pcap");
  fs::copy_file(src, p, fs::copy_options::overwrite_existing);
  fs::resize_file(p, fs::file_size(src) - 37);  // cut the last record short
  ReplayOptions o;
  o.in = p.string();
  o.out = scratch("truncated-out.pcap").string();
  auto r = run_replay(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("frame"), std::string::npos) << r.error().reason;
}

TEST(Replay, FramesNetifCannotCarryAreCountedDroppedNotLost) {
  // A frame over netif's 16-bit size and a non-TCP frame over the MTU, between two good ones.
  fs::path p = scratch("oversize.pcap");
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  pcap_dumper_t* d = pcap_dump_open(dead, p.c_str());
  ASSERT_NE(d, nullptr);
  auto udp = [](size_t len) {
    std::vector<uint8_t> f(len, 0xab);
    f[12] = 0x08, f[13] = 0x00;  // IPv4
    f[14] = 0x45, f[23] = 17;    // UDP
    uint16_t tot = static_cast<uint16_t>(std::min<size_t>(len - 14, 0xffff));
    f[16] = tot >> 8, f[17] = tot & 0xff;
    return f;
  };
  for (size_t len : {60ul, 70000ul, 3000ul, 1514ul}) {
    auto f = udp(len);
    pcap_pkthdr h{};
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
  ReplayOptions o;
  o.in = p.string();
  o.out = scratch("oversize-out.pcap").string();
  o.mtu = 1500;
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  EXPECT_EQ(r->packets_in, 4u);
  EXPECT_EQ(r->packets_out, 2u);
  EXPECT_EQ(r->dropped_total(), 2u);
  EXPECT_EQ(r->dropped.at("too_long_for_netif"), 1u);
  EXPECT_EQ(r->dropped.at("over_mtu"), 1u);
  auto c = compare_traces(o.in, o.out, 1, 2);
  ASSERT_TRUE(c.ok()) << c.error().reason;
}

TEST(Replay, AMillionPacketsLeaveEverySlotGrantMappingAndRingEntryBack) {
#if defined(__SANITIZE_ADDRESS__)
  const uint32_t repeat = 85;  // ~100k frames: the sanitizer build is ~10x slower; the normal build does 1M
#else
  const uint32_t repeat = 845;  // 845 x 1184 frames = 1,000,480
#endif
  ReplayOptions o;
  o.in = (source_dir() / "traces" / "tcp-1500-small.pcap").string();
  o.sink = SinkKind::vif;
  o.repeat = repeat;
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  nlohmann::json j = r->to_json();
  EXPECT_EQ(r->packets_in, 1184ull * repeat);
  EXPECT_EQ(r->packets_out, r->packets_in);
  EXPECT_EQ(u(j, "pages_mapped"), 0u);
  expect_no_leaks(j);
  // Every ring request was answered: frontend completions = frames sent.
  EXPECT_EQ(j["frontend_tx"]["tx_completed"].get<uint64_t>(), r->packets_in);
  EXPECT_EQ(j["backend"]["tx_requests"].get<uint64_t>(), j["backend"]["tx_responses"].get<uint64_t>());
}

}  // namespace
}  // namespace pvnet::tools
