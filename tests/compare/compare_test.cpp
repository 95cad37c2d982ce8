// replay --compare: every payload policy on one trace, each output checked frame by frame, the figures reported
// per policy and per frame-size bin, and the charts drawn by gnuplot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/common/test_traces.hpp"
#include "tools/trace/pcap_io.hpp"
#include "tools/replay/compare.hpp"
#include "tools/replay/report_charts.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

using pvnet::test_data::source_dir;

fs::path scratch_dir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("pvnet-compare-test-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

class RemoveScratch : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_dir(), ec);
  }
};
const auto* const kRemoveScratch = ::testing::AddGlobalTestEnvironment(new RemoveScratch);

// A small trace with frames in most size bins: ARP and pings (<=64, 65-127), DNS (128-255), VLAN, IPv4
// fragments and TCP at 1514 bytes, 9014-byte jumbo TCP, and GSO super-frames.
const fs::path& mixed_trace() {
  static fs::path path = [] {
    fs::path p = scratch_dir() / "mixed.pcap";
    auto w = PcapWriter::create(p.string());
    EXPECT_TRUE(w.ok());
    for (auto [name, limit] : std::vector<std::pair<const char*, size_t>>{{"tcp-jumbo-9000.pcap", 40},
                                                                          {"tcp-gso-superframes.pcap", 30},
                                                                          {"vlan-qinq.pcap", 100},
                                                                          {"ipv4-frag-ping.pcap", 24},
                                                                          {"udp-dns-ping.pcap", 30}}) {
      auto frames = PcapReader::read_all((source_dir() / "traces" / name).string());
      EXPECT_TRUE(frames.ok()) << name;
      if (!frames) continue;
      for (size_t i = 0; i < frames->size() && i < limit; ++i) EXPECT_TRUE(w->write((*frames)[i]).ok());
    }
    EXPECT_TRUE(w->close().ok());
    return p;
  }();
  return path;
}

CompareOptions options(SinkKind sink, std::vector<std::string> policies, uint32_t runs = 2) {
  CompareOptions o;
  o.in = mixed_trace().string();
  o.sink = sink;
  o.policies = std::move(policies);
  o.runs = runs;
  return o;
}

// Rewrites a pcap file through `edit`, which may change or remove frames.
void rewrite(const std::string& path, const std::function<void(std::vector<PcapFrame>&)>& edit) {
  auto frames = PcapReader::read_all(path);
  ASSERT_TRUE(frames.ok()) << frames.error().reason;
  edit(*frames);
  auto w = PcapWriter::create(path);
  ASSERT_TRUE(w.ok());
  for (auto& f : *frames) ASSERT_TRUE(w->write(f).ok());
  ASSERT_TRUE(w->close().ok());
}

void expect_row_consistent(const PolicyRow& r, uint32_t runs, bool verified_output) {
  EXPECT_GT(r.packets_in, 0u) << r.policy;
  EXPECT_EQ(r.packets_in, r.packets_out + r.dropped) << r.policy;
  if (verified_output) {
    EXPECT_EQ(r.frames_verified, r.packets_out) << r.policy;
  }
  ASSERT_EQ(r.ns_per_packet_runs.size(), runs) << r.policy;
  // The reported figure is one of the runs, the median one.
  EXPECT_NE(std::find(r.ns_per_packet_runs.begin(), r.ns_per_packet_runs.end(), r.ns_per_packet),
            r.ns_per_packet_runs.end());
  size_t below = 0, above = 0;
  for (double v : r.ns_per_packet_runs) {
    below += v < r.ns_per_packet;
    above += v > r.ns_per_packet;
  }
  EXPECT_LE(below, (runs - 1) / 2) << r.policy;
  EXPECT_LE(above, runs / 2) << r.policy;
  EXPECT_GT(r.ns_per_packet, 0.0);
  EXPECT_LE(r.ns_min(), r.ns_per_packet);
  EXPECT_GE(r.ns_max(), r.ns_per_packet);
  EXPECT_EQ(r.dom0_bytes_copied(), r.memcpy_bytes + r.grant_copy_bytes);
}

TEST(FrameSizeBins, BoundariesAndGsoByTheSendersRule) {
  const auto& bins = frame_size_bins();
  auto bin = [&](size_t len, uint32_t mtu = 9000) {
    std::vector<std::byte> f(len, std::byte{0});  // ethertype 0: not IP, so binned by length alone
    return std::string(bins[frame_size_bin(f, mtu)].name);
  };
  EXPECT_EQ(bin(42), "<=64");
  EXPECT_EQ(bin(64), "<=64");
  EXPECT_EQ(bin(65), "65-127");
  EXPECT_EQ(bin(127), "65-127");
  EXPECT_EQ(bin(128), "128-255");
  EXPECT_EQ(bin(511), "256-511");
  EXPECT_EQ(bin(1023), "512-1023");
  EXPECT_EQ(bin(1518), "1024-1518");
  EXPECT_EQ(bin(1519), "jumbo");
  EXPECT_EQ(bin(9018), "jumbo");
  EXPECT_EQ(bin(9019), "gso");
  // A real 1514-byte TCP frame: by length under a 9000 MTU; a GSO super-frame for a stack with a 1000 MTU.
  auto frames = PcapReader::read_all((source_dir() / "traces" / "tcp-1500-small.pcap").string());
  ASSERT_TRUE(frames.ok());
  auto big = std::find_if(frames->begin(), frames->end(), [](auto& f) { return f.data.size() == 1514; });
  ASSERT_NE(big, frames->end());
  EXPECT_STREQ(bins[frame_size_bin(big->data, 9000)].name, "1024-1518");
  EXPECT_STREQ(bins[frame_size_bin(big->data, 1000)].name, "gso");
}

TEST(Compare, EveryDefaultPolicyRunsAndNoneIsSkipped) {
  EXPECT_EQ(default_compare_policies(), (std::vector<std::string>{"slots", "copy", "map", "hdrcopy", "auto"}));
  CompareOptions o = options(SinkKind::pcap, default_compare_policies());
  auto r = run_compare(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  ASSERT_EQ(r->rows.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(r->rows[i].policy, o.policies[i]);
}

TEST(Compare, UnknownPolicyFailsNamingIt) {
  auto r = run_compare(options(SinkKind::vif, {"slots", "nosuch"}, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("nosuch"), std::string::npos) << r.error().reason;
}

class CompareSinks : public ::testing::TestWithParam<SinkKind> {};

TEST_P(CompareSinks, EveryPolicyVerifiedPerTraceAndPerBin) {
  const uint32_t runs = 3;
  CompareOptions o = options(GetParam(), default_compare_policies(), runs);
  auto r = run_compare(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  ASSERT_EQ(r->rows.size(), o.policies.size());
  const bool has_output = GetParam() != SinkKind::null;
  for (auto& row : r->rows) {
    expect_row_consistent(row, runs, has_output);
    // Every policy delivers the same frames.
    EXPECT_EQ(row.packets_out, r->rows[0].packets_out);
    EXPECT_EQ(row.bytes_out, r->rows[0].bytes_out);
  }

  // The bins partition the trace: each frame in exactly one, each bin replayed alone under every policy.
  auto frames = PcapReader::read_all(o.in);
  ASSERT_TRUE(frames.ok());
  uint64_t frames_in_bins = 0, bytes_in_bins = 0;
  std::set<std::string> names;
  ASSERT_GE(r->bins.size(), 5u);  // the mixed trace spans at least five bins
  for (auto& b : r->bins) {
    EXPECT_TRUE(names.insert(b.name).second) << b.name;
    EXPECT_GT(b.frames, 0u);
    frames_in_bins += b.frames;
    bytes_in_bins += b.bytes;
    ASSERT_EQ(b.rows.size(), o.policies.size());
    for (auto& row : b.rows) {
      expect_row_consistent(row, runs, has_output);
      EXPECT_EQ(row.packets_in, b.frames) << b.name << " " << row.policy;
      EXPECT_EQ(row.bytes_in, b.bytes) << b.name << " " << row.policy;
    }
  }
  uint64_t bytes = 0;
  for (auto& f : *frames) bytes += f.data.size();
  EXPECT_EQ(frames_in_bins, frames->size());
  EXPECT_EQ(bytes_in_bins, bytes);
  EXPECT_EQ(r->rows[0].packets_in, frames->size());
  EXPECT_TRUE(names.count("gso"));
  EXPECT_TRUE(names.count("jumbo"));
}

INSTANTIATE_TEST_SUITE_P(Sinks, CompareSinks, ::testing::Values(SinkKind::vif, SinkKind::pcap, SinkKind::null),
                         [](const auto& p) { return std::string(to_string(p.param)); });

TEST(Compare, ChangedFrameFailsNamingPolicyAndFrame) {
  for (SinkKind sink : {SinkKind::vif, SinkKind::pcap}) {
    CompareOptions o = options(sink, default_compare_policies(), 1);
    o.by_size = false;
    const std::string victim = o.policies.back();
    o.after_replay = [&](const std::string& policy, const std::string& out) {
      if (policy != victim) return;
      rewrite(out, [](std::vector<PcapFrame>& f) { f.at(6).data.at(40) ^= std::byte{0x01}; });
    };
    auto r = run_compare(o);
    ASSERT_FALSE(r.ok()) << to_string(sink);
    EXPECT_NE(r.error().reason.find("policy " + victim), std::string::npos) << r.error().reason;
    EXPECT_NE(r.error().reason.find("frame 7"), std::string::npos) << r.error().reason;
  }
}

TEST(Compare, LostFrameFailsNamingPolicyAndFrame) {
  CompareOptions o = options(SinkKind::vif, default_compare_policies(), 1);
  o.by_size = false;
  const std::string victim = o.policies.front();
  o.after_replay = [&](const std::string& policy, const std::string& out) {
    if (policy == victim) rewrite(out, [](std::vector<PcapFrame>& f) { f.erase(f.begin() + 11); });
  };
  auto r = run_compare(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("policy " + victim), std::string::npos) << r.error().reason;
  EXPECT_NE(r.error().reason.find("frame 12"), std::string::npos) << r.error().reason;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, sep);) out.push_back(part);
  return out;
}

bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  return f && std::string(sig, 8) == std::string("\x89PNG\r\n\x1a\n", 8);
}

TEST(Report, JsonCsvAndChartsHaveARowPerPolicy) {
  CompareOptions o = options(SinkKind::vif, default_compare_policies(), 2);
  auto r = run_compare(o);
  ASSERT_TRUE(r.ok()) << r.error().reason;
  fs::path dir = scratch_dir() / "report";
  ASSERT_TRUE(write_report_files(*r, dir.string()).ok());

  const std::vector<std::string> required = {
      "policy", "packets_in", "packets_out", "gbit_per_s", "mpps", "ns_per_packet", "dom0_bytes_copied",
      "backend_memcpy_bytes", "grant_copy_bytes", "pct_bytes_copied", "pages_mapped", "pages_unmapped",
      "tlb_shootdowns", "faults", "hypercalls"};
  std::ifstream jf(dir / "report.json");
  auto j = nlohmann::json::parse(jf);
  ASSERT_EQ(j["policies"].size(), o.policies.size());
  for (size_t i = 0; i < o.policies.size(); ++i) {
    const auto& p = j["policies"][i];
    EXPECT_EQ(p["policy"], o.policies[i]);
    for (auto& k : required) EXPECT_TRUE(p.contains(k)) << k;
    EXPECT_EQ(p["ns_per_packet_runs"].size(), 2u);
    EXPECT_TRUE(p.contains("ns_per_packet_spread_pct"));
    EXPECT_EQ(p["dom0_bytes_copied"].get<uint64_t>(),
              p["backend_memcpy_bytes"].get<uint64_t>() + p["grant_copy_bytes"].get<uint64_t>());
  }
  EXPECT_FALSE(j["method"].get<std::string>().empty());
  EXPECT_EQ(j["bins"].size(), r->bins.size());

  std::ifstream cf(dir / "report.csv");
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(cf, line);) rows.push_back(split(line, ','));
  ASSERT_EQ(rows.size(), o.policies.size() + 1);
  for (auto& k : required)
    EXPECT_NE(std::find(rows[0].begin(), rows[0].end(), k), rows[0].end()) << "csv column " << k;
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].size(), rows[0].size());
    EXPECT_EQ(rows[i][0], o.policies[i - 1]);
    EXPECT_EQ(std::stoull(rows[i][1]), r->rows[i - 1].packets_in);
  }
  std::ifstream bf(dir / "report_bins.csv");
  size_t bin_lines = 0;
  for (std::string line; std::getline(bf, line);) bin_lines++;
  EXPECT_EQ(bin_lines, 1 + r->bins.size() * o.policies.size());

  auto charts = write_charts(*r, dir.string());
  ASSERT_TRUE(charts.ok()) << charts.error().reason;
  ASSERT_EQ(charts->size(), 4u);
  for (auto& c : *charts) {
    EXPECT_GT(fs::file_size(c), 1000u) << c;
    EXPECT_TRUE(is_png(c)) << c;
  }
}

TEST(Report, MissingGnuplotSaysToRunSetup) {
  auto g = check_gnuplot("/nonexistent/gnuplot");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().reason.find("tools/setup.sh"), std::string::npos) << g.error().reason;
  CompareReport empty;
  auto c = write_charts(empty, (scratch_dir() / "nocharts").string(), "/nonexistent/gnuplot");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().reason.find("tools/setup.sh"), std::string::npos);
}

}  // namespace
}  // namespace pvnet::tools
