// The threats of docs/security.md, one test each: a scripted guest misbehaves on purpose while a healthy pair of
// guests forwards frames through the same backend. Each test checks: the backend stays up; the offending vif is
// disabled (protocol violation, counted and logged once) or its packet dropped with an error answer (odd but
// legal, counted by reason); and the healthy pair's frames all arrive identical, measured in the same run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/hostile/hostile_world.hpp"

namespace pvnet::test {
namespace {

using Reqs = std::vector<netif::TxRequest>;
using Clock = std::chrono::steady_clock;

// ---- protocol violations: the vif is disabled, once, and nobody else notices ------------------------------------

const Violation kViolations[] = {
    {"req_prod_past_ring", violation::req_prod_past_ring(7)},
    {"offset_size_cross_page", violation::piece_crosses_page(1200, 3000)},  // 1158 bytes from 3000 run past the page
    {"more_pieces_than_netif_allows", violation::too_many_pieces(40, 64)},
    {"gso_extra_size_zero", violation::gso_size_zero(4000)},
    // more_data set on the last published piece: the rest never comes
    {"disappears_mid_packet_chain_cut", violation::chain_cut(6000, 2)},
};

class HostileViolation : public ::testing::TestWithParam<Violation> {};

TEST_P(HostileViolation, DisablesOnlyTheOffenderOnceAndThePairIsUnharmed) {
  Scene s;
  auto& [h, bad, vbad, pair] = s;

  pair.send();
  bad.send(make_frame(300));
  h.be->poll_until_idle();
  pair.expect_unharmed("before");
  ASSERT_EQ(bad.tx_responses().size(), 2u);

  testing::internal::CaptureStderr();
  pair.send();
  Reqs r = GetParam().make(bad);
  if (!r.empty()) bad.push_raw(r);
  h.be->poll_until_idle();
  // It keeps trying; the backend keeps ignoring it.
  for (int i = 0; i < 3; ++i) {
    bad.send(make_frame(200));
    pair.send();
    h.be->poll_until_idle();
  }
  const std::string log = testing::internal::GetCapturedStderr();

  EXPECT_TRUE(h.be->disabled(vbad));
  EXPECT_EQ(h.be->counters(vbad).tx_fatal_errors, 1u);
  EXPECT_EQ(count_of(log, "fatal error; disabling device"), 1u) << log;
  EXPECT_NE(log.find(h.be->name(vbad)), std::string::npos) << "the log line names the interface";
  EXPECT_EQ(h.be->total().tx_fatal_errors, 1u);
  pair.expect_unharmed("during and after");

  // Its closing releases everything it held.
  bad.set_state(XenbusState::Closing);
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->state(vbad), XenbusState::Closed);
  EXPECT_EQ(h.be->kept_mappings(vbad), 0u);
}

INSTANTIATE_TEST_SUITE_P(All, HostileViolation, ::testing::ValuesIn(kViolations),
                         [](const auto& p) { return std::string(p.param.name); });

// ---- odd but legal: dropped with an error answer, counted, the vif stays up ------------------------------------

TEST(Hostile, ReusedIdsAreDroppedWithAnErrorAndCounted) {
  PeerScene s;
  auto& [h, bad, sink, vbad, vsink, pair] = s;

  // First packet is held (the sink guest has no buffers yet), so its id stays in flight.
  auto first = bad.build(make_frame(500), true, 42);
  auto again = bad.build(make_frame(600), true, 42);
  again[0].id = first[0].id;
  bad.push_raw(first);
  pair.send();
  h.be->poll_until_idle();
  bad.push_raw(again);
  h.be->poll_until_idle();
  auto rsps = bad.tx_responses();
  ASSERT_EQ(rsps.size(), 2u) << "the reused packet's two requests are answered at once";
  EXPECT_EQ(rsps[0].status, netif::rsp::error);
  EXPECT_EQ(h.be->counters(vbad).dropped[DropReason::dup_id], 1u);
  EXPECT_FALSE(h.be->disabled(vbad));

  // The first one is still delivered once the receiver posts buffers; then the id is free again.
  sink.post_rx(4);
  h.be->poll_until_idle();
  auto got = sink.rx_frames();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].data == make_frame(500));
  auto reuse = bad.build(make_frame(700), true, 42);
  reuse[0].id = first[0].id;
  bad.push_raw(reuse);
  h.be->poll_until_idle();
  EXPECT_EQ(sink.rx_frames().size(), 1u);
  EXPECT_EQ(h.be->counters(vbad).dropped[DropReason::dup_id], 1u);
  pair.expect_unharmed("ids");
}

TEST(Hostile, NineteenPiecesAreDroppedNotFatal) {
  Scene s;
  auto& [h, bad, vbad, pair] = s;
  GrantRef g = bad.grant(bad.alloc_page(), true);
  Reqs r = piece_chain(g, 19, 100, 100);
  bad.push_raw(r);
  pair.send();
  h.be->poll_until_idle();
  auto rsps = bad.tx_responses();
  ASSERT_EQ(rsps.size(), 19u);
  for (const auto& x : rsps) EXPECT_EQ(x.status, netif::rsp::error);
  EXPECT_EQ(h.be->counters(vbad).dropped[DropReason::too_many_slots], 1u);
  EXPECT_FALSE(h.be->disabled(vbad));
  pair.expect_unharmed("19 pieces");
}

// A first size smaller than the rest of the chain (what buggy frontends send): dropped with an error, counted, the
// vif stays up, as Linux netback's drop_err in xenvif_count_requests (until #13 this disabled the vif).
TEST(Hostile, FirstSizeSmallerThanTheRestIsDroppedNotFatal) {
  Scene s;
  auto& [h, bad, vbad, pair] = s;
  auto r = bad.build(make_frame(1000), true, 42);
  ASSERT_GT(r.size(), 1u);
  r[0].size = 500;
  bad.push_raw(r);
  pair.send();
  h.be->poll_until_idle();
  auto rsps = bad.tx_responses();
  ASSERT_EQ(rsps.size(), r.size());
  for (const auto& x : rsps) EXPECT_EQ(x.status, netif::rsp::error);
  EXPECT_EQ(h.be->counters(vbad).dropped[DropReason::first_size_smaller_than_rest], 1u);
  EXPECT_FALSE(h.be->disabled(vbad));
  bad.send(make_frame(200), 42);  // the vif still carries traffic
  h.be->poll_until_idle();
  auto after = bad.tx_responses();
  ASSERT_FALSE(after.empty());
  for (const auto& x : after) EXPECT_EQ(x.status, netif::rsp::okay);
  pair.expect_unharmed("first size smaller than the rest");
}

// ---- double fetch: the guest rewrites what it posted --------------------------------------------------------------

// The header is copied out of the slot in the poll that takes the packet; a rewrite after that (the packet still
// queued for its receiver) changes nothing the backend parsed or forwards.
TEST(Hostile, SlotRewrittenAfterPostingDoesNotChangeTheForwardedHeader) {
  PeerScene s;
  auto& [h, bad, rcv, vbad, vrcv, pair] = s;

  const auto frame = make_frame(800);
  auto r = bad.build(frame, true, 42);
  bad.push_raw(r);
  pair.send();
  h.be->poll_until_idle();
  // Rewrite the slot (and the posted request) with garbage that would fail every check.
  std::memset(bad.slot_page(0).data() + r[0].offset, 0xff, 128);
  *bad.tx().get_request(bad.tx().req_prod_pvt() - 2) = tx_request(GrantRef{9999}, 4000, 65535, 0xff, 7);
  rcv.post_rx(2);
  h.be->poll_until_idle();
  auto got = rcv.rx_frames();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].data == frame) << "the forwarded header is the backend's private copy";
  EXPECT_FALSE(h.be->disabled(vbad));
  pair.expect_unharmed("rewrite");
}

// A thread flips the posted requests and the slot contents as fast as it can while the backend works: every
// check runs on the backend's private copies, so it never reads out of bounds (ASan) and never stops; the vif
// either keeps going or is disabled once, and the pair is unharmed.
TEST(Hostile, ConcurrentRewritesOfRingAndSlotsWhileTheBackendPolls) {
  Scene s;
  auto& [h, bad, vbad, pair] = s;
  auto r = bad.build(make_frame(1400), true, 42);
  auto ring_page = bad.tx().get_request(0);
  std::atomic<bool> stop{false};
  std::byte* slot = bad.slot_page(0).data();
  std::thread flipper([&] {
    uint32_t k = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ++k;
      for (uint32_t i = 0; i < 8; ++i) {
        auto* q = reinterpret_cast<volatile uint16_t*>(ring_page + i);
        q[2] = static_cast<uint16_t>(k & 1 ? 4000 : 64);    // offset
        q[3] = static_cast<uint16_t>(k & 2 ? 0xffff : 60);  // flags
        q[5] = static_cast<uint16_t>(k * 13);               // size
      }
      reinterpret_cast<volatile uint8_t*>(slot)[12] = static_cast<uint8_t>(k);
    }
  });
  testing::internal::CaptureStderr();
  // Bounded by rounds too: each round grants fresh pages, and a scripted domain has 2048 grant entries.
  const auto until = Clock::now() + std::chrono::milliseconds(300);
  for (int round = 0; round < 150 && Clock::now() < until; ++round) {
    bad.push_raw(r);
    pair.send(2);
    h.be->poll_until_idle();
    pair.collect();
    (void)bad.tx_responses();
  }
  stop = true;
  flipper.join();
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_LE(h.be->counters(vbad).tx_fatal_errors, 1u);
  EXPECT_LE(count_of(log, "fatal error"), 1u);
  pair.expect_unharmed("concurrent rewrites");
  EXPECT_GT(pair.frames(), 20u);
}

// ---- grants taken away ---------------------------------------------------------------------------------------------

// A kept header-slot page cannot be ended under the backend (the hypervisor holds the pin: GNTST_eagain), and a
// payload grant ended while its packet waits for the receiver makes that one packet fail (counted), nothing else.
TEST(Hostile, RevokingGrantsTheBackendUses) {
  PeerScene s;
  auto& [h, bad, rcv, vbad, vrcv, pair] = s;

  auto ended = bad.platform().grant_table().end_access(bad.slot_page_ref(0));
  ASSERT_FALSE(ended.ok()) << "a kept mapping pins the grant";
  EXPECT_EQ(ended.error().code, GNTST_eagain);

  auto r = bad.build(make_frame(1500), true, 42);  // payload in one piece, gref -> gref at RX time
  bad.push_raw(r);
  pair.send();
  h.be->poll_until_idle();
  ASSERT_EQ(h.be->counters(vrcv).rx_queued, 1u);
  ASSERT_TRUE(bad.platform().grant_table().end_access(r[1].gref).ok()) << "not mapped, only queued for a copy";
  rcv.post_rx(2);
  pair.send();
  h.be->poll_until_idle();
  auto rsps = bad.tx_responses();
  ASSERT_EQ(rsps.size(), 2u);
  EXPECT_EQ(rsps[0].status, netif::rsp::error);
  EXPECT_EQ(h.be->counters(vbad).dropped[DropReason::rx_copy_error], 1u);
  EXPECT_GE(h.be->counters(vrcv).rx_copy_errors, 1u);
  EXPECT_FALSE(h.be->disabled(vbad));
  EXPECT_FALSE(h.be->disabled(vrcv));
  pair.expect_unharmed("revoke");
}

// ---- a guest that stops consuming RX -----------------------------------------------------------------------------

// XSA-392: dom0's memory for a guest that never posts RX buffers is bounded by rx_queue_max_bytes at admission;
// a sender forwarding to it is held back only until rx_stall_timeout_ms, then the queue is dropped (answered,
// counted) and frames to it are dropped at once, until it posts buffers again.
TEST(Hostile, StopsConsumingRxQueueIsBoundedThenDrained) {
  VifOptions vo;
  vo.rx_queue_max_bytes = 64 * 1024;
  vo.rx_stall_timeout_ms = 150;
  PeerScene s(Forward::from_peer, {}, vo);
  auto& [h, deaf, sender, vdeaf, vsend, pair] = s;

  // dom0's own frames (a local source that ignores rx_has_room): refused once the bytes bound is reached.
  size_t refused = 0;
  for (int i = 0; i < 200; ++i) {
    RxFrame f;
    f.local = make_frame(1500);
    f.len = 1500;
    if (h.be->queue_rx(vdeaf, std::move(f)) != QueueRx::ok) ++refused;
  }
  EXPECT_GT(refused, 100u);
  EXPECT_LE(h.be->rx_queue_bytes(vdeaf), vo.rx_queue_max_bytes + 1514);
  EXPECT_EQ(h.be->counters(vdeaf).dropped[DropReason::rx_queue_full], refused);
  EXPECT_EQ(h.be->counters(vdeaf).rx_queue_full, refused);  // was declared and exported, never counted

  // A forwarding guest is held back (nothing dropped yet) while the pair keeps going.
  for (int i = 0; i < 10; ++i) sender.send(make_frame(1000, 17, static_cast<uint8_t>(i)));
  pair.send();
  h.be->poll_until_idle();
  EXPECT_GT(h.be->counters(vsend).tx_backpressure_stalls, 0u);
  EXPECT_TRUE(sender.tx_responses().empty());

  // The stall deadline comes from the backend's timer fd, not from another event.
  testing::internal::CaptureStderr();
  const auto t0 = Clock::now();
  while (!h.be->rx_stalled(vdeaf) && Clock::now() - t0 < std::chrono::seconds(3)) wait_and_poll(*h.be, 1000);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(h.be->rx_stalled(vdeaf));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(h.be->counters(vdeaf).rx_stalls, 1u);
  EXPECT_EQ(count_of(log, "rx stalled"), 1u) << log;
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->rx_queue_bytes(vdeaf), 0u);
  auto rsps = sender.tx_responses();
  EXPECT_EQ(rsps.size(), 20u) << "every held packet (slot + payload request) is answered, none lost silently";
  for (const auto& x : rsps) EXPECT_EQ(x.status, netif::rsp::dropped);
  const auto sc = h.be->counters(vsend);
  EXPECT_EQ(sc.dropped[DropReason::dest_rx_stalled], 10u);
  EXPECT_EQ(sc.dropped_total(), 10u);
  pair.send();
  h.be->poll_until_idle();
  pair.expect_unharmed("stalled receiver");

  // It posts buffers again: frames flow to it.
  deaf.post_rx(4);
  h.be->poll_until_idle();
  EXPECT_FALSE(h.be->rx_stalled(vdeaf));
  sender.send(make_frame(900, 17, 77));
  h.be->poll_until_idle();
  auto got = deaf.rx_frames();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].data == make_frame(900, 17, 77));
}

// ---- event floods ------------------------------------------------------------------------------------------------

TEST(Hostile, EventFloodCostsAtMostAPollAndHarmsNobody) {
  Scene s;
  auto& [h, bad, vbad, pair] = s;
  const Port ports[] = {port_of(bad, netif::key::event_channel_tx), port_of(bad, netif::key::event_channel_rx),
                        port_of(bad, netif::key::event_channel_ctrl)};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  EventChannel& evtchn = bad.platform().evtchn();  // a lambda may not capture a structured binding (clang 14)
  std::thread flood([&] {
    while (!stop.load(std::memory_order_relaxed))
      for (Port p : ports)
        if (evtchn.notify(p).ok()) ++sent;
  });
  size_t polls = 0, work = 0;
  const auto until = Clock::now() + std::chrono::milliseconds(300);
  for (int round = 0; round < 150 && Clock::now() < until; ++round) {
    pair.send(2);
    work += h.be->poll_until_idle();
    ++polls;
    pair.collect();
  }
  stop = true;
  flood.join();
  EXPECT_GT(sent.load(), 1000u);
  // Events only wake the backend: the work it reports is the pair's (requests, buffers, answers), not the flood.
  EXPECT_LT(work, polls * 40);
  EXPECT_FALSE(h.be->disabled(vbad));
  pair.expect_unharmed("event flood");
}

// ---- disappearing mid-packet -----------------------------------------------------------------------------------

TEST(Hostile, DomainDestroyedMidPacketReleasesEverything) {
  Host h;
  auto bad = std::make_unique<ScriptedFrontend>(*h.hv, DomId{1});
  VifId vbad = h.attach(*bad);
  HealthyPair pair(h, DomId{2}, DomId{3});
  pair.send();
  h.be->poll_until_idle();
  const GrantCounters before = h.grants();
  const uint64_t held_by_bad = 3 + h.be->kept_mappings(vbad);  // tx, rx, ctrl ring + kept slot pages
  auto r = bad->build(make_frame(5000), true, 42);
  r.resize(2);
  bad->push_raw(r);
  ASSERT_TRUE(h.hv->destroy_domain(DomId{1}).ok());
  pair.send();
  h.be->poll_until_idle();
  EXPECT_FALSE(h.be->connected(vbad));
  EXPECT_EQ(h.be->kept_mappings(vbad), 0u);
  const GrantCounters after = h.grants();
  EXPECT_EQ(after.pages_unmapped - before.pages_unmapped, held_by_bad + (after.pages_mapped - before.pages_mapped));
  pair.expect_unharmed("destroyed");
  EXPECT_TRUE(h.be->remove_vif(vbad).ok());
  bad.reset();
}

}  // namespace
}  // namespace pvnet::test
