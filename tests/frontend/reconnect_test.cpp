// Reconnect (NetfrontConfig::reconnect): the backend goes away and netfront starts over for the next one. What the
// old backend had already answered before it went is not thrown away with its rings.
#include "tests/frontend/netfront_fixture.hpp"

namespace pvnet::test {
namespace {

class NetfrontReconnectTest : public NetfrontTest {
 protected:
  static NetfrontConfig reconnecting() {
    NetfrontConfig c = small_config();
    c.reconnect = true;
    return c;
  }
};

// A forwarding backend pushes the destination's RX responses before it answers the source OK: a frame left unread
// on the destination's ring when the backend dies was already counted delivered by its sender. netfront must take
// it before releasing the ring, or it is lost with no count on either side (the restart test's delivered + lost <
// queued, under load).
TEST_F(NetfrontReconnectTest, FramesTheLostBackendAlreadyPushedAreDeliveredBeforeTheRingsGo) {
  bring_up(reconnecting());
  auto a = make_frame(600, false, false, 3);
  auto b = make_frame(3000, true, false, 4);
  be->send_rx(a, kPageSize);
  be->send_rx(b, 2048);
  // The backend dies before netfront looked at its ring: the hypervisor closes its state node.
  be->close();
  pump();
  EXPECT_EQ(nf->counters().reconnects, 1u);
  EXPECT_TRUE(nf->reconnecting());
  ASSERT_EQ(rx.size(), 2u) << "frames pushed before the backend went must not go with its ring";
  EXPECT_EQ(rx[0].data, a);
  EXPECT_EQ(rx[1].data, b);
  EXPECT_EQ(nf->counters().rx_packets, 2u);
  EXPECT_EQ(nf->counters().rx_errors, 0u);
}

// The same for TX: a request the backend answered OK before it went completes OK, it is not counted lost; one it
// never answered is (tx_lost_backend_gone) and completes DROPPED.
TEST_F(NetfrontReconnectTest, TxAnsweredBeforeTheBackendWentCompletesAsAnsweredTheRestAsLost) {
  bring_up(reconnecting());
  auto first = place(make_frame(60, false, false, 5));
  auto second = place(make_frame(60, false, false, 6));
  ASSERT_EQ(nf->transmit(first.pieces(), {.cookie = 1}), TxStatus::kQueued);
  ASSERT_EQ(nf->transmit(second.pieces(), {.cookie = 2}), TxStatus::kQueued);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 2u);
  be->respond_tx(pkts[0], netif::rsp::okay);
  be->close();
  pump();
  EXPECT_EQ(nf->counters().reconnects, 1u);
  EXPECT_EQ(nf->counters().tx_lost_backend_gone, 1u);
  ASSERT_EQ(done.size(), 2u);
  for (const auto& d : done) {
    if (d.cookie == 1) EXPECT_EQ(d.status, netif::rsp::okay);
    else EXPECT_EQ(d.status, netif::rsp::dropped) << "cookie " << d.cookie;
  }
}

}  // namespace
}  // namespace pvnet::test
