// Every frame forwarded to another guest is counted once: delivered (packets_out) or dropped with a reason, on its
// source, the vif whose TX request is answered with the frame's fate (docs/fuzzing.md, "counters"). A frame dom0
// queued for a destination that then loses it (gone, disabled, stalled, a copy that fails, a frame it cannot
// take) is not counted again on the destination: across the backend packets_in == packets_out + dropped_total.
#include <chrono>

#include "tests/hostile/hostile_world.hpp"

namespace pvnet::test {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t dropped(const BackendCounters& c, DropReason reason) { return c.dropped[reason]; }

// Guest 1 forwards to guest 4, which takes its time posting RX buffers; the healthy pair runs beside them.
struct ForwardScene {
  explicit ForwardScene(VifOptions dst_vo = {}, FrontOptions dst_fo = {})
      : src(*h.hv, DomId{1}), dst(*h.hv, DomId{4}), vsrc(h.attach(src, src_options())),
        vdst(h.attach(dst, dst_vo, dst_fo)), pair(h, DomId{2}, DomId{3}) {
    EXPECT_TRUE(h.be->set_sink(vsrc, std::make_shared<VifSink>(*h.be, vdst)).ok());
  }
  static VifOptions src_options() {
    VifOptions vo;
    vo.mtu = 9000;  // frames longer than a page, for a destination without feature-sg
    return vo;
  }
  // Sends `n` frames of `len` bytes, all queued for dst (it has posted no buffers).
  void send_queued(size_t n, size_t len = 1000) {
    for (size_t i = 0; i < n; ++i) src.send(make_frame(len, 17, static_cast<uint8_t>(i)));
    pair.send();
    h.be->poll_until_idle();
    EXPECT_TRUE(src.tx_responses().empty()) << "held until dst takes them";
  }
  // Each of the `n` frames was answered `status` (each of its requests) and counted once, as `reason`, on the
  // source only.
  void expect_counted_once(DropReason why, uint64_t n, int16_t status, size_t requests_per_frame = 2) {
    const std::string reason(to_string(why));
    h.be->poll_until_idle();
    auto rsps = src.tx_responses();
    EXPECT_FALSE(rsps.empty());
    size_t answered = 0;
    for (const auto& r : rsps) {
      if (r.status == netif::rsp::null) continue;  // an extra slot
      EXPECT_EQ(r.status, status) << reason;
      ++answered;
    }
    EXPECT_EQ(answered, requests_per_frame * n) << reason << ": every request of every frame answered";
    const BackendCounters t = h.be->total(), s = h.be->counters(vsrc), d = h.be->counters(vdst);
    EXPECT_EQ(dropped(s, why), n) << reason;
    EXPECT_EQ(dropped(d, why), 0u) << reason << " counted on the destination too";
    EXPECT_EQ(s.packets_in, s.packets_out + s.dropped_total()) << reason;
    EXPECT_EQ(t.packets_in, t.packets_out + t.dropped_total())
        << reason << ": in " << t.packets_in << " out " << t.packets_out << " dropped " << t.dropped_total();
    pair.send();
    h.be->poll_until_idle();
    pair.expect_unharmed(reason.c_str());
  }

  Host h;
  ScriptedFrontend src, dst;
  VifId vsrc, vdst;
  HealthyPair pair;
};

TEST(Accounting, QueueOfAStalledReceiverIsCountedOnceOnItsSource) {
  VifOptions vo;
  vo.rx_stall_timeout_ms = 100;
  ForwardScene s(vo);
  s.send_queued(5);
  const auto t0 = Clock::now();
  while (!s.h.be->rx_stalled(s.vdst) && Clock::now() - t0 < std::chrono::seconds(3)) wait_and_poll(*s.h.be, 500);
  ASSERT_TRUE(s.h.be->rx_stalled(s.vdst));
  s.expect_counted_once(DropReason::rx_stalled, 5, netif::rsp::dropped);
}

TEST(Accounting, QueueOfAReceiverThatGoesIsCountedOnceOnItsSource) {
  ForwardScene s;
  s.send_queued(4);
  s.dst.set_state(XenbusState::Closing);
  s.h.be->poll_until_idle();
  ASSERT_FALSE(s.h.be->connected(s.vdst));
  s.expect_counted_once(DropReason::dest_gone, 4, netif::rsp::dropped);
}

TEST(Accounting, QueueOfADisabledReceiverIsCountedOnceOnItsSource) {
  ForwardScene s;
  s.send_queued(3);
  s.dst.push_raw(violation::too_many_pieces(40, 64)(s.dst));
  s.h.be->poll_until_idle();
  ASSERT_TRUE(s.h.be->disabled(s.vdst));
  s.expect_counted_once(DropReason::dest_disabled, 3, netif::rsp::dropped);
}

TEST(Accounting, FailedRxCopyIsCountedOnceOnItsSource) {
  ForwardScene s;
  auto r = s.src.build(make_frame(1500), true, 42);  // the payload stays a grant until the RX copy
  s.src.push_raw(r);
  s.h.be->poll_until_idle();
  ASSERT_TRUE(s.src.platform().grant_table().end_access(r[1].gref).ok());
  s.dst.post_rx(2);
  s.h.be->poll_until_idle();
  EXPECT_EQ(s.h.be->counters(s.vdst).rx_copy_errors, 1u) << "the destination's own side of it";
  s.expect_counted_once(DropReason::rx_copy_error, 1, netif::rsp::error);
}

TEST(Accounting, FrameTheReceiverCannotTakeIsCountedOnceOnItsSource) {
  FrontOptions fo;
  fo.sg = false;  // single-buffer frames only
  ForwardScene s({}, fo);
  for (uint8_t i = 0; i < 2; ++i) s.src.send(make_frame(6000, 17, i));
  s.h.be->poll_until_idle();
  s.expect_counted_once(DropReason::rx_no_sg, 2, netif::rsp::error, 3);  // header slot + two payload pages
}

}  // namespace
}  // namespace pvnet::test
