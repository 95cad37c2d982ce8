// Processes that die: a guest killed with SIGKILL mid-stream makes the backend's toolstack remove its vif and
// release everything it held (the hypervisor destroys a dead client's domain: @releaseDomain); a backend that dies
// makes the frontend say so and fail.
#include <signal.h>

#include <thread>

#include "tests/e2e_processes/e2e_util.hpp"

namespace pvnet::e2e {
namespace {

using tools::ChildProcess;

const std::string kTrace = (source_dir() / "traces" / "tcp-1500-small.pcap").string();

TEST(ProcessesKill, GuestKilledMidStreamLeavesNothingMappedInDom0) {
  const fs::path sock = scratch("kill.sock"), be_json = scratch("kill-backend.json"), cap = scratch("kill.pcap");
  fs::remove(sock);
  // pcap sink: dom0 maps payload pages lazily, so the guest dies with some of them possibly mapped.
  auto be = start_pvnet({"backend", "--socket", sock, "--sink", "pcap", "--out", cap, "--frontends", "1", "--json",
                   be_json},
                  "backend", "ready");
  ASSERT_TRUE(be);
  auto a = start_pvnet({"frontend", "--socket", sock, "--domid", "1", "--tx", kTrace, "--repeat", "100000", "--wait-go"},
                 "frontend A", "connected");
  ASSERT_TRUE(a);
  ASSERT_TRUE(be->wait_for_line("added vif1.0", Ms(5'000)).ok());
  ASSERT_TRUE(a->send_line("go").ok());
  std::this_thread::sleep_for(Ms(300));
  ASSERT_TRUE(a->running()) << "the stream should still be going (" << a->status_text() << ")";
  ASSERT_TRUE(a->signal(SIGKILL).ok());
  auto st = a->wait(Ms(5'000));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, 128 + SIGKILL);

  auto removed = be->wait_for_line("removed vif1.0", Ms(10'000));
  ASSERT_TRUE(removed.ok()) << removed.error().reason;
  ASSERT_TRUE(be->signal(SIGTERM).ok());
  auto bst = be->wait(Ms(10'000));
  ASSERT_TRUE(bst.ok()) << bst.error().reason;
  EXPECT_EQ(*bst, 0);

  nlohmann::json j = read_json(be_json);
  EXPECT_EQ(u(j, "vifs_removed_domain_gone"), 1u);
  EXPECT_EQ(u(j, "vifs_at_stop"), 0u);
  const auto& conn = j.at("connection");
  // Traffic flowed (payload pages were mapped beyond the connection's own) and every mapping came back.
  EXPECT_GT(u(conn, "pages_mapped_total"), u(conn, "pages_mapped_at_connect"));
  EXPECT_GT(u(j.at("backend"), "packets_in"), 0u);
  EXPECT_EQ(u(conn, "mappings_left_after_teardown"), 0u);
  EXPECT_EQ(u(conn, "pages_mapped_total"), u(conn, "pages_unmapped_total"));
  EXPECT_EQ(u(j, "dom0_kept_pages"), 0u);
  EXPECT_EQ(u(j, "dom0_rx_queued"), 0u);
}

TEST(ProcessesKill, ForwardingGuestKilledReleasesTheDestinationsQueueToo) {
  // vif -> vif: guest A dies while dom0 may hold its frames queued for B; B stays and is stopped cleanly.
  const fs::path sock = scratch("kill2.sock"), be_json = scratch("kill2-backend.json"), b_json = scratch("b.json");
  fs::remove(sock);
  auto be = start_pvnet({"backend", "--socket", sock, "--forward", "1:2", "--frontends", "1,2", "--json", be_json},
                  "backend", "ready");
  ASSERT_TRUE(be);
  auto b = start_pvnet({"frontend", "--socket", sock, "--domid", "2", "--receive", "--json", b_json}, "frontend B",
                 "connected");
  ASSERT_TRUE(b);
  auto a = start_pvnet({"frontend", "--socket", sock, "--domid", "1", "--tx", kTrace, "--repeat", "100000", "--wait-go"},
                 "frontend A", "connected");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->send_line("go").ok());
  std::this_thread::sleep_for(Ms(300));
  ASSERT_TRUE(a->running());
  ASSERT_TRUE(a->signal(SIGKILL).ok());
  ASSERT_TRUE(a->wait(Ms(5'000)).ok());
  ASSERT_TRUE(be->wait_for_line("removed vif1.0", Ms(10'000)).ok());
  ASSERT_TRUE(b->signal(SIGTERM).ok());
  auto bst = b->wait(Ms(10'000));
  ASSERT_TRUE(bst.ok());
  EXPECT_EQ(*bst, 0);
  // B's domain goes with its process: the backend must have seen that before it is stopped (under load the
  // SIGTERM could otherwise overtake @releaseDomain and the count below be 1).
  ASSERT_TRUE(be->wait_for_line("removed vif2.0", Ms(10'000)).ok());
  ASSERT_TRUE(be->signal(SIGTERM).ok());
  ASSERT_TRUE(be->wait(Ms(10'000)).ok());

  nlohmann::json j = read_json(be_json), jb = read_json(b_json);
  EXPECT_GT(u(jb, "packets_out"), 0u);  // B received part of the stream before A died
  EXPECT_EQ(u(j, "vifs_removed_domain_gone"), 2u);
  EXPECT_EQ(u(j.at("connection"), "mappings_left_after_teardown"), 0u);
  EXPECT_EQ(u(j, "dom0_kept_pages"), 0u);
  EXPECT_EQ(u(j, "dom0_rx_queued"), 0u);
  EXPECT_TRUE(jb.at("leaks").at("closed").get<bool>());
}

// SIGTERM while sending: the sender stops sending, waits briefly for what is in flight, writes its JSON and closes
// its vif (before, it ignored the signal and sent every --repeat round).
TEST(ProcessesKill, SenderStoppedMidStreamStopsSendingWritesItsJsonAndClosesItsVif) {
  const fs::path sock = scratch("stop.sock"), be_json = scratch("stop-backend.json"), a_json = scratch("stop-a.json");
  fs::remove(sock);
  fs::remove(a_json);
  auto be = start_pvnet({"backend", "--socket", sock, "--sink", "null", "--frontends", "1", "--json", be_json},
                        "backend", "ready");
  ASSERT_TRUE(be);
  auto a = start_pvnet({"frontend", "--socket", sock, "--domid", "1", "--tx", kTrace, "--repeat", "100000", "--json",
                        a_json},
                       "frontend A", "connected");
  ASSERT_TRUE(a);
  std::this_thread::sleep_for(Ms(300));
  ASSERT_TRUE(a->running()) << "the stream should still be going (" << a->status_text() << ")";
  ASSERT_TRUE(a->signal(SIGTERM).ok());
  auto said = a->wait_for_line("stopped", Ms(10'000));
  EXPECT_TRUE(said.ok()) << (said.ok() ? "" : said.error().reason);
  auto st = a->wait(Ms(10'000));
  ASSERT_TRUE(st.ok()) << "still sending 10 s after SIGTERM";
  EXPECT_EQ(*st, 0);

  nlohmann::json j = read_json(a_json);
  EXPECT_TRUE(j.value("stopped", false)) << j.dump().substr(0, 300);
  EXPECT_GT(u(j, "queued"), 0u);
  EXPECT_EQ(u(j, "queued"), u(j, "completed") + u(j, "in_flight_at_stop"));
  EXPECT_EQ(j.value("state_at_exit", ""), "Closed");
  for (auto& [k, v] : j.at("leaks").items()) {
    if (k == "closed")
      EXPECT_TRUE(v.get<bool>());
    else
      EXPECT_EQ(v.get<uint64_t>(), 0u) << k;
  }
  ASSERT_TRUE(be->wait_for_line("removed vif1.0", Ms(10'000)).ok());
  ASSERT_TRUE(be->signal(SIGTERM).ok());
  ASSERT_TRUE(be->wait(Ms(10'000)).ok());
  nlohmann::json b = read_json(be_json);
  // What the backend took off the ring is what the sender queued (none of it lost unanswered).
  EXPECT_EQ(u(b.at("backend"), "packets_in"), u(j, "completed"));
}

TEST(ProcessesKill, BackendKilledMidStreamTheFrontendSaysSo) {
  const fs::path sock = scratch("kill3.sock");
  fs::remove(sock);
  auto be = start_pvnet({"backend", "--socket", sock, "--sink", "null", "--frontends", "1"}, "backend", "ready");
  ASSERT_TRUE(be);
  std::vector<std::string> args = {"pvnet", "frontend", "--socket", sock, "--domid", "1", "--tx", kTrace,
                                   "--repeat", "100000", "--wait-go"};
  auto a = ChildProcess::spawn(PVNET_EXE, args, "frontend A", /*capture_stderr=*/true);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->wait_for_line("connected", Ms(20'000)).ok());
  ASSERT_TRUE((*a)->send_line("go").ok());
  std::this_thread::sleep_for(Ms(300));
  ASSERT_TRUE(be->signal(SIGKILL).ok());
  std::string said;
  while (auto line = (*a)->read_line(Ms(15'000))) said += *line + "\n";
  auto st = (*a)->wait(Ms(5'000));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, 1) << said;
  EXPECT_TRUE(contains(said, "backend gone")) << said;
}

}  // namespace
}  // namespace pvnet::e2e
