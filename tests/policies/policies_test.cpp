// Every payload policy x every sink x every real trace, in one process (run_replay): the same frontend, backend
// and traffic deliver every frame byte for byte under each, and dom0's counters show the cost model each policy
// stands for (docs/performance.md "Policies"): what was copied, mapped, faulted, and that everything came back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "tools/trace/pcap_io.hpp"
#include "tests/common/test_traces.hpp"
#include "tools/replay/replay.hpp"
#include "tools/replay/trace_compare.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

using pvnet::test_data::source_dir;

std::vector<std::string> all_traces() {
  std::vector<std::string> traces;
  for (auto& p : pvnet::test_data::all_traces()) traces.push_back(p.string());
  return traces;
}

fs::path scratch(const std::string& name) { return pvnet::test_data::scratch("policies-test", name); }

uint64_t u(const nlohmann::json& j, const char* k) { return j.at(k).get<uint64_t>(); }

// What the trace itself says, independently of pvnet: bytes, and the bytes a 128-byte header copy takes.
struct TraceFacts {
  uint64_t frames = 0, bytes = 0, head128 = 0;
};
TraceFacts facts_of(const std::string& path) {
  TraceFacts t;
  auto frames = PcapReader::read_all(path);
  EXPECT_TRUE(frames.ok());
  if (!frames.ok()) return t;
  for (const auto& f : *frames) {
    ++t.frames;
    t.bytes += f.data.size();
    t.head128 += std::min<uint64_t>(f.data.size(), 128);
  }
  return t;
}

using Case = std::tuple<PayloadPolicyKind, SinkKind, std::string>;
class PolicyTrace : public ::testing::TestWithParam<Case> {};

TEST_P(PolicyTrace, DeliversEveryFrameAndCostsWhatThePolicyModels) {
  const auto& [policy, sink, trace] = GetParam();
  ReplayOptions o;
  o.in = trace;
  o.policy = policy;
  o.sink = sink;
  const std::string tag = std::string(to_string(policy)) + "-" + to_string(sink);
  if (sink != SinkKind::null) o.out = scratch(tag + ".pcap").string();
  auto r = run_replay(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  const nlohmann::json j = r->to_json();
  const TraceFacts t = facts_of(trace);
  const auto& be = j.at("backend");

  // Delivered, all of it, byte for byte.
  ASSERT_EQ(r->packets_in, t.frames);
  EXPECT_EQ(r->packets_out, r->packets_in) << j["dropped"].dump();
  EXPECT_EQ(r->dropped_total(), 0u) << j["dropped"].dump();
  if (sink != SinkKind::null) {
    auto c = compare_traces(o.in, o.out, 1, 0);
    ASSERT_TRUE(c.ok()) << c.error().reason;
    EXPECT_EQ(c->matched, t.frames);
  } else {
    EXPECT_EQ(u(be, "bytes_out"), t.bytes);
  }

  // Header slots only where the policy models a backend that has them.
  const bool slots = policy == PayloadPolicyKind::slots || policy == PayloadPolicyKind::automatic;
  EXPECT_EQ(j["header_slots"].get<bool>(), slots);
  EXPECT_EQ(u(j, "slots_used"), slots ? t.frames : 0u);

  const uint64_t copied = u(j, "grant_copy_bytes");
  const uint64_t rx_copy = sink == SinkKind::vif ? t.bytes : 0;  // the vif sink's copy into guest B
  const uint64_t mapped = u(j, "pages_mapped"), faults = u(j, "faults");
  const uint64_t header = u(j, "header_bytes"), memcpy_bytes = u(j, "backend_memcpy_bytes");
  const uint64_t frags = u(be, "tx_frags");
  const bool reads = sink == SinkKind::pcap;
  switch (policy) {
    case PayloadPolicyKind::copy:
      // QEMU's xen_nic: every byte grant-copied into dom0, nothing mapped; the pcap sink reads the copy.
      EXPECT_EQ(mapped, 0u);
      EXPECT_EQ(faults, 0u);
      EXPECT_EQ(copied, t.bytes + rx_copy);
      EXPECT_EQ(header, t.head128);
      EXPECT_EQ(memcpy_bytes, reads ? t.bytes - t.head128 : 0u);
      break;
    case PayloadPolicyKind::map:
      // Classic netback: every page mapped (the first too), the header memcpy'd out of the mapping.
      EXPECT_GE(mapped, t.frames);
      EXPECT_GE(mapped, frags);
      EXPECT_EQ(faults, 0u);
      EXPECT_EQ(copied, rx_copy);
      EXPECT_EQ(header, t.head128);
      EXPECT_EQ(memcpy_bytes, reads ? t.bytes : t.head128);
      break;
    case PayloadPolicyKind::hdrcopy:
      // xen-netback: min(128, len) grant-copied per packet, every other page mapped, whatever the sink.
      EXPECT_EQ(header, t.head128);
      EXPECT_EQ(copied, t.head128 + rx_copy);
      EXPECT_EQ(mapped, frags);
      EXPECT_EQ(faults, 0u);
      EXPECT_EQ(memcpy_bytes, reads ? t.bytes - t.head128 : 0u);
      break;
    case PayloadPolicyKind::slots:
      EXPECT_EQ(copied, rx_copy);  // headers come out of slots by memcpy
      if (reads) {
        EXPECT_EQ(faults, mapped);  // every map a lazy fault on a page the sink read
        EXPECT_GT(faults, 0u);
        EXPECT_EQ(memcpy_bytes, t.bytes);
      } else {
        EXPECT_EQ(mapped, 0u);
        EXPECT_EQ(faults, 0u);
        EXPECT_EQ(memcpy_bytes, header);
      }
      break;
    case PayloadPolicyKind::automatic:
      EXPECT_EQ(faults, 0u);
      EXPECT_EQ(mapped, 0u);
      if (reads) {
        // It measured that copying beats mapping and faulting here, so the payload came in by grant copy.
        EXPECT_EQ(copied, t.bytes - header);
        EXPECT_EQ(memcpy_bytes, t.bytes);
      } else {
        EXPECT_EQ(copied, rx_copy);  // forwarded gref -> gref (vif) or never looked at (null)
        EXPECT_EQ(memcpy_bytes, header);
      }
      break;
  }
  EXPECT_EQ(u(j, "pages_unmapped"), mapped);
  if (mapped) {
    EXPECT_GT(u(j, "tlb_shootdowns"), 0u);
  }

  // Nothing left behind.
  EXPECT_EQ(j["connection"]["mappings_left_after_teardown"].get<uint64_t>(), 0u);
  const auto& l = j.at("leaks");
  EXPECT_TRUE(l.at("closed").get<bool>());
  for (auto& [k, v] : l.items())
    if (k != "closed") {
      EXPECT_EQ(v.get<uint64_t>(), 0u) << k;
    }
}

// Batching: per poll at most one map, one unmap and one grant copy for TX (plus one RX copy), whatever the traffic.
TEST(PolicyBatching, OneMapOneUnmapOneCopyPerPoll) {
  const std::string trace = (source_dir() / "traces" / "tcp-1500-small.pcap").string();
  for (auto policy : {PayloadPolicyKind::copy, PayloadPolicyKind::map, PayloadPolicyKind::hdrcopy}) {
    ReplayOptions o;
    o.in = trace;
    o.policy = policy;
    o.sink = SinkKind::null;
    auto r = run_replay(o);
    ASSERT_TRUE(r.ok()) << r.error().reason;
    const nlohmann::json j = r->to_json();
    const uint64_t packets = r->packets_in;
    const auto& g = j["backend"]["grant"];
    // Batched means far fewer hypercalls than packets (the frontend pushes many packets per kick).
    EXPECT_LT(u(j, "hypercalls"), packets) << to_string(policy);
    if (u(j, "pages_mapped")) {
      EXPECT_LT(u(j, "tlb_shootdowns"), packets / 2) << to_string(policy);
      EXPECT_GT(u(j, "pages_mapped"), u(j, "tlb_shootdowns")) << to_string(policy);
    }
    (void)g;
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (auto p : kAllPayloadPolicies)
    for (auto s : {SinkKind::vif, SinkKind::pcap, SinkKind::null})
      for (const auto& t : all_traces()) v.emplace_back(p, s, t);
  return v;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const fs::path path(std::get<2>(info.param));
  std::string name = std::string(to_string(std::get<0>(info.param))) + "_" + to_string(std::get<1>(info.param)) +
                     "_" + pvnet::test_data::trace_test_name(path);
  for (auto& ch : name)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(All, PolicyTrace, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace pvnet::tools
