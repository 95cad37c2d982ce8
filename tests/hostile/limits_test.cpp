// What one guest can make dom0 hold or do, bounded per guest: the credit scheduler (bytes and packets per second),
// in-flight packets, kept header-slot pages; and recall (docs/protocol.md "Recall"): a guest gets its pages back
// from a backend under load within one poll, and a guest that ends access without asking cannot hurt dom0.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "shared-ring/negotiation/keys.hpp"
#include "tests/hostile/hostile_world.hpp"

namespace pvnet::test {
namespace {

using Clock = std::chrono::steady_clock;

// Sends `n` frames of `len` bytes from `fe` and waits (on the backend's fds, as a netback thread) until all are
// answered, running the healthy pair meanwhile. Returns the seconds it took and how often poll(2) timed out.
struct Drained {
  double seconds = 0;
  int idle_timeouts = 0;
  size_t answered = 0, okay = 0;
};
Drained drain(Host& h, ScriptedFrontend& fe, size_t n, size_t len, HealthyPair& pair) {
  Drained d;
  const auto t0 = Clock::now();
  size_t sent = 0;
  int rounds = 0;
  while (d.answered < 2 * n && Clock::now() - t0 < std::chrono::seconds(10)) {
    while (sent < n && fe.tx().free_requests() >= 2) {
      fe.send(make_frame(len, 17, static_cast<uint8_t>(sent)));
      ++sent;
    }
    if (++rounds < 300) pair.send(1);  // a scripted domain has 2048 grant entries
    bool timed_out = false;
    wait_and_poll(*h.be, 500, &timed_out);
    d.idle_timeouts += timed_out;
    for (const auto& r : fe.tx_responses()) {
      ++d.answered;
      d.okay += r.status == netif::rsp::okay;
    }
    pair.collect();
  }
  d.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return d;
}

TEST(Limits, CreditSchedulerBoundsBytesPerSecondWithBackPressure) {
  VifOptions vo;
  vo.credit.bytes_per_sec = 1'000'000;
  vo.credit.burst_bytes = 64 * 1024;
  Scene s({}, vo);
  auto& [h, hog, vhog, pair] = s;
  const size_t n = 150, len = 1000;
  Drained d = drain(h, hog, n, len, pair);
  // (150 kB - 64 kB burst) at 1 MB/s: at least ~86 ms; every packet went, none was dropped.
  EXPECT_EQ(d.okay, 2 * n);
  EXPECT_GE(d.seconds, 0.9 * (n * len - 64 * 1024) / 1e6);
  EXPECT_LT(d.seconds, 2.0);
  EXPECT_GT(h.be->counters(vhog).tx_credit_stalls, 0u);
  EXPECT_EQ(h.be->counters(vhog).dropped_total(), 0u);
  EXPECT_EQ(d.idle_timeouts, 0) << "the timer fd must wake the backend when credit returns";
  pair.expect_unharmed("credit");
}

TEST(Limits, CreditSchedulerBoundsPacketsPerSecond) {
  VifOptions vo;
  vo.credit.ops_per_sec = 500;
  vo.credit.burst_ops = 16;
  Scene s({}, vo);
  auto& [h, hog, vhog, pair] = s;
  Drained d = drain(h, hog, 60, 100, pair);
  EXPECT_EQ(d.okay, 120u);
  EXPECT_GE(d.seconds, 0.9 * (60 - 16) / 500.0);
  EXPECT_GT(h.be->counters(vhog).tx_credit_stalls, 0u);
  EXPECT_EQ(d.idle_timeouts, 0);
  pair.expect_unharmed("credit ops");
}

TEST(Limits, InflightPacketsPerVifAreCappedByBackPressure) {
  BackendOptions bo;
  bo.max_inflight_per_vif = 8;
  PeerScene s(Forward::to_peer, bo);
  auto& [h, hog, rcv, vhog, vrcv, pair] = s;
  for (int i = 0; i < 32; ++i) hog.send(make_frame(300, 17, static_cast<uint8_t>(i)));
  pair.send();
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->counters(vrcv).rx_queued, 8u) << "dom0 holds at most 8 of its packets";
  EXPECT_EQ(h.be->counters(vhog).packets_in, 8u);
  EXPECT_GT(h.be->counters(vhog).tx_inflight_stalls, 0u);
  pair.expect_unharmed("inflight");
  // Nothing was dropped: once the receiver takes them, the rest follow in order.
  size_t got = 0;
  for (int round = 0; round < 8 && got < 32; ++round) {
    rcv.post_rx(8);
    h.be->poll_until_idle();
    for (auto& f : rcv.rx_frames()) {
      EXPECT_TRUE(f.data == make_frame(300, 17, static_cast<uint8_t>(got)));
      ++got;
    }
  }
  EXPECT_EQ(got, 32u);
  EXPECT_EQ(h.be->counters(vhog).dropped_total(), 0u);
}

TEST(Limits, KeptHeaderSlotPagesPerDomainAreCapped) {
  BackendOptions bo;
  bo.max_kept_pages_per_domain = 4;
  Host h(bo);
  ScriptedFrontend hog(*h.hv, DomId{1});
  HealthyPair pair(h, DomId{2}, DomId{3});
  VifId vhog = h.be->add_vif(hog.dom(), 0).value();
  h.be->poll_until_idle();
  hog.connect();
  h.be->poll_until_idle();
  uint32_t limit = 0;
  EXPECT_EQ(hog.register_slots(*h.be, 5, &limit), netif::ctrl_status::invalid_parameter);
  EXPECT_EQ(limit, 4u);
  EXPECT_EQ(h.be->kept_mappings(vhog), 0u) << "all or nothing";
  EXPECT_EQ(hog.register_slots(*h.be, 4), netif::ctrl_status::success);
  EXPECT_EQ(hog.register_slots(*h.be, 1), netif::ctrl_status::invalid_parameter);
  EXPECT_EQ(h.be->kept_mappings(vhog), 4u);
  pair.send();
  h.be->poll_until_idle();
  pair.expect_unharmed("kept pages");
}

// ---- recall ------------------------------------------------------------------------------------------------------

std::string recall_line(uint32_t seq, const std::vector<GrantRef>& refs) {
  std::ostringstream s;
  s << seq;
  for (GrantRef r : refs) s << ' ' << r.value;
  return s.str();
}

// Under load (a stream to a slow receiver, so packets of the guest wait in dom0 with payload in its pages, and
// its header slots are mapped), the guest recalls its slot pages and the payload pages of the waiting packets.
// The backend answers in the poll that sees the request; afterwards every recalled grant can be ended, and the
// waiting packets are still delivered byte for byte.
TEST(Recall, UnderLoadReleasesEverythingWithinOnePoll) {
  PeerScene s;
  auto& [h, guest, rcv, vg, vrcv, pair] = s;

  std::vector<std::vector<std::byte>> sent;
  std::vector<GrantRef> payload_refs;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(make_frame(1000 + 20 * i, 17, static_cast<uint8_t>(i)));
    auto r = guest.build(sent.back(), true, 42);
    for (size_t k = 1; k < r.size(); ++k) payload_refs.push_back(r[k].gref);
    guest.push_raw(r);
  }
  rcv.post_rx(5);  // takes a few; the rest wait in dom0
  pair.send();
  h.be->poll_until_idle();
  const size_t waiting = h.be->counters(vrcv).rx_queued;
  ASSERT_GT(waiting, 5u);
  const GrantRef slot0 = guest.slot_page_ref(0), slot1 = guest.slot_page_ref(1);
  ASSERT_FALSE(guest.platform().grant_table().end_access(slot0).ok()) << "mapped: pinned";

  std::vector<GrantRef> recall = {slot0, slot1};
  recall.insert(recall.end(), payload_refs.begin(), payload_refs.end());
  const GrantRef ring_ref{static_cast<uint32_t>(guest.store().read_int(guest.dir() + "/tx-ring-ref").value())};
  recall.push_back(ring_ref);
  ASSERT_TRUE(guest.store().write(guest.dir() + "/" + netif::key::recall, recall_line(1, recall)).ok());
  pair.send();
  h.be->poll();  // one poll sees the watch and answers
  const std::string be_dir = h.be->paths(vg).backend;
  EXPECT_EQ(guest.store().read_opt(be_dir + "/" + netif::key::recall_done).value_or(""), "1");
  EXPECT_EQ(guest.store().read_opt(be_dir + "/" + netif::key::recall_refused).value_or("?"),
            std::to_string(ring_ref.value))
      << "the ring is refused while connected";
  EXPECT_EQ(h.be->kept_mappings(vg), 0u);
  const auto c = h.be->counters(vg);
  EXPECT_EQ(c.recall_requests, 1u);
  EXPECT_EQ(c.recall_refused, 1u);
  EXPECT_GE(c.recalled_grefs, 2u + waiting - 1);

  // Everything recalled can be ended now; the pages may be reused (scribbled) by the guest.
  for (size_t i = 0; i + 1 < recall.size(); ++i) {
    auto ended = guest.platform().grant_table().end_access(recall[i]);
    EXPECT_TRUE(ended.ok()) << "gref " << recall[i].value << ": " << (ended.ok() ? "" : ended.error().reason);
  }
  for (uint64_t p = 0; p < 200; ++p) std::memset(guest.page(Pfn{p}).data(), 0xee, 16);  // reuse the pages
  size_t got = 0;
  for (int round = 0; round < 10 && got < sent.size(); ++round) {
    rcv.post_rx(6);
    pair.send(1);
    h.be->poll_until_idle();
    for (auto& f : rcv.rx_frames()) {
      ASSERT_LT(got, sent.size());
      EXPECT_FALSE(f.error) << got;
      EXPECT_TRUE(f.data == sent[got]) << "frame " << got << " changed after its pages were recalled";
      ++got;
    }
  }
  EXPECT_EQ(got, sent.size());
  pair.expect_unharmed("recall");

  // The same request again is not redone; a new one with nothing held is confirmed at once.
  ASSERT_TRUE(guest.store().write(guest.dir() + "/" + netif::key::recall, recall_line(2, {GrantRef{4000}})).ok());
  h.be->poll();
  EXPECT_EQ(guest.store().read_opt(be_dir + "/" + netif::key::recall_done).value_or(""), "2");
  EXPECT_EQ(h.be->counters(vg).recall_requests, 2u);
}

// A guest that ends access without recalling: the hypervisor keeps the pin of what dom0 has mapped (Xen: the
// entry stays GTF_reading; end_access fails), so dom0 never touches a page it no longer may; what it only
// grant-copies later fails cleanly and is counted.
TEST(Recall, GuestThatEndsAccessAnywayCannotHurtDom0) {
  PeerScene s;
  auto& [h, guest, rcv, vg, vrcv, pair] = s;
  std::vector<netif::TxRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    auto r = guest.build(make_frame(1500, 17, static_cast<uint8_t>(i)), true, 42);
    reqs.insert(reqs.end(), r.begin(), r.end());
  }
  guest.push_raw(reqs);
  pair.send();
  h.be->poll_until_idle();
  size_t ended = 0, refused = 0;
  for (const auto& r : reqs) {
    if (guest.platform().grant_table().end_access(r.gref).ok()) ++ended;
    else ++refused;
  }
  EXPECT_GT(ended, 0u);    // payload pages only queued for a copy
  EXPECT_GT(refused, 0u);  // slot pages, mapped: the pin holds
  EXPECT_GT(h.be->kept_mappings(vg), 0u);
  rcv.post_rx(8);
  pair.send();
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->counters(vg).dropped[DropReason::rx_copy_error], 6u);
  EXPECT_FALSE(h.be->disabled(vg));
  pair.expect_unharmed("ended anyway");
  // Closing still gives everything back.
  guest.set_state(XenbusState::Closing);
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->kept_mappings(vg), 0u);
  EXPECT_TRUE(guest.platform().grant_table().end_access(guest.slot_page_ref(0)).ok());
}

}  // namespace
}  // namespace pvnet::test
