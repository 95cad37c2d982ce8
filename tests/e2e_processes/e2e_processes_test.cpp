// `pvnet replay --processes`: every trace through dom0 and two guests each in its own process (pvnet backend,
// pvnet frontend x2), checked frame by frame against the input and on dom0's counters, as the in-process replay
// is (tests/replay). Bad traces fail with a clear message.
#include <pcap/pcap.h>

#include "tests/e2e_processes/e2e_util.hpp"
#include "tools/replay/trace_compare.hpp"

namespace pvnet::e2e {
namespace {

// Frames in a capture, counted with libpcap directly (not with the reader the sender uses).
uint64_t count_frames(const fs::path& p) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* h = pcap_open_offline(p.c_str(), err);
  if (!h) return 0;
  uint64_t n = 0;
  pcap_pkthdr* hdr;
  const u_char* data;
  while (pcap_next_ex(h, &hdr, &data) == 1) n++;
  pcap_close(h);
  return n;
}

void expect_no_leaks(const nlohmann::json& j) {
  ASSERT_TRUE(j.contains("leaks"));
  const auto& l = j.at("leaks");
  EXPECT_TRUE(l.at("closed").get<bool>());
  for (auto& [k, v] : l.items()) {
    if (k != "closed") {
      EXPECT_EQ(v.get<uint64_t>(), 0u) << k;
    }
  }
}

struct Case {
  std::string trace;
  std::string sink;
};

class EveryTrace : public ::testing::TestWithParam<Case> {};

TEST_P(EveryTrace, DeliversEveryFrameAndDom0PaysOnlyWhatTheSinkNeeds) {
  const Case& c = GetParam();
  const std::string tag = fs::path(c.trace).stem().string() + "-" + c.sink;
  const fs::path out = scratch(tag + ".pcap"), stats = scratch(tag + ".json");
  PvnetRun r = run_pvnet({"replay", "--processes", "--in", c.trace, "--sink", c.sink, "--out", out, "--json", stats});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "verified:")) << r.output;
  nlohmann::json j = read_json(stats);

  // Every frame accounted for, and the output is the input frame by frame (dropped ones absent).
  const uint64_t in = u(j, "packets_in"), out_n = u(j, "packets_out"), dropped = u(j, "dropped_total");
  EXPECT_EQ(in, count_frames(c.trace));
  EXPECT_EQ(in, out_n + dropped);
  EXPECT_EQ(out_n, count_frames(out));
  auto cmp = tools::compare_traces(c.trace, out, 1, dropped);
  ASSERT_TRUE(cmp.ok()) << cmp.error().reason;
  EXPECT_EQ(cmp->matched, out_n);

  // Header slots were negotiated across the processes and used by every packet.
  EXPECT_TRUE(j.at("header_slots").get<bool>());
  EXPECT_GT(u(j, "header_bytes"), 0u);
  EXPECT_EQ(u(j, "slots_used"), u(j.at("backend"), "tx_header_slot_packets"));
  EXPECT_EQ(u(j.at("backend"), "tx_plain_packets"), 0u);
  const auto& conn = j.at("connection");
  EXPECT_EQ(u(conn, "mappings_left_after_teardown"), 0u);
  EXPECT_GT(u(conn, "pages_mapped_at_connect"), 0u);  // rings and kept slot pages: connection cost, not traffic
  if (c.sink == "vif") {
    // Forwarded gref -> gref: nothing mapped, nothing faulted, dom0's CPU copied only headers.
    EXPECT_EQ(u(j, "pages_mapped"), 0u);
    EXPECT_EQ(u(j, "faults"), 0u);
    EXPECT_LE(u(j, "backend_memcpy_bytes"), u(j, "header_bytes"));
  } else {
    // dom0 writes the payload itself: one lazy map per payload page it touched, all given back.
    EXPECT_EQ(u(j, "faults"), u(j.at("backend"), "payload_pages_touched"));
    EXPECT_EQ(u(j, "pages_mapped"), u(j, "pages_unmapped"));
  }
  expect_no_leaks(j);
}

std::vector<Case> every_case() {
  std::vector<Case> cases;
  for (auto& t : all_traces())
    for (const char* s : {"vif", "pcap"}) cases.push_back({t.string(), s});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Processes, EveryTrace, ::testing::ValuesIn(every_case()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return pvnet::test_data::trace_test_name(i.param.trace) + "_" + i.param.sink;
                         });

TEST(Processes, TracesArePresent) { EXPECT_GE(all_traces().size(), 3u); }

TEST(Processes, SameStatisticsKeysAndDataPathCostsAsInOneProcess) {
  const std::string trace = (source_dir() / "traces" / "tcp-gso-superframes.pcap").string();
  const fs::path one = scratch("one.json"), three = scratch("three.json");
  PvnetRun a = run_pvnet({"replay", "--in", trace, "--sink", "vif", "--out", scratch("one.pcap"), "--json", one});
  ASSERT_EQ(a.status, 0) << a.output;
  PvnetRun b = run_pvnet({"replay", "--processes", "--in", trace, "--sink", "vif", "--out", scratch("three.pcap"),
                     "--json", three});
  ASSERT_EQ(b.status, 0) << b.output;
  nlohmann::json j1 = read_json(one), j3 = read_json(three);
  for (auto& [k, v] : j1.items()) EXPECT_TRUE(j3.contains(k)) << "--processes lacks " << k;
  // Batching differs across processes (hypercalls, TLB shootdowns); what the data path did per packet does not.
  for (const char* k : {"packets_in", "packets_out", "dropped_total", "header_bytes", "backend_memcpy_bytes",
                        "slots_used", "grant_copy_bytes", "pages_mapped", "faults", "header_slots", "dropped"})
    EXPECT_EQ(j1.at(k), j3.at(k)) << k;
}

TEST(Processes, NonEthernetTraceFailsWithAClearMessage) {
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
  PvnetRun r = run_pvnet({"replay", "--processes", "--in", p, "--sink", "vif", "--out", scratch("raw-out.pcap")});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "Ethernet")) << r.output;
  // The frontend daemon refuses it by itself too, before looking for a backend.
  PvnetRun f = run_pvnet({"frontend", "--socket", scratch("nobody.sock"), "--domid", "1", "--tx", p});
  EXPECT_EQ(f.status, 1) << f.output;
  EXPECT_TRUE(contains(f.output, "Ethernet")) << f.output;
}

TEST(Processes, TruncatedTraceFailsNamingTheFrameAndTheStep) {
  fs::path src = source_dir() / "traces" / "udp-dns-ping.pcap";
  fs::path p = scratch("truncated.pcap");
  fs::copy_file(src, p, fs::copy_options::overwrite_existing);
  fs::resize_file(p, fs::file_size(src) - 37);  // cut the last record short
  const uint64_t good = count_frames(p);
  ASSERT_GT(good, 0u);
  PvnetRun r = run_pvnet({"replay", "--processes", "--in", p, "--sink", "vif", "--out", scratch("trunc-out.pcap")});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "frame " + std::to_string(good + 1))) << r.output;  // the frontend: which frame
  EXPECT_TRUE(contains(r.output, "sending the trace")) << r.output;                   // the replay: which step
}

TEST(Processes, NoBackendIsAClearFailure) {
  PvnetRun f = run_pvnet({"frontend", "--socket", scratch("nobody.sock"), "--domid", "3", "--receive"});
  EXPECT_EQ(f.status, 1) << f.output;
  EXPECT_TRUE(contains(f.output, "no backend on")) << f.output;
}

}  // namespace
}  // namespace pvnet::e2e
