// RX: buffers posted, frames reassembled from any order of ids, GSO extras, errors, re-posting.
#include "tests/frontend/netfront_fixture.hpp"

namespace pvnet::test {
namespace {

TEST_F(NetfrontTest, SmallFrameIsDeliveredAndItsBufferReposted) {
  bring_up();
  ASSERT_EQ(be->rx_available(), 32u);
  auto bytes = make_frame(600);
  be->send_rx(bytes, kPageSize, {}, false, netif::rxf::data_validated);
  pump();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].data, bytes);
  EXPECT_TRUE(rx[0].data_validated);
  EXPECT_FALSE(rx[0].csum_blank);
  EXPECT_EQ(rx[0].gso_type, netif::gso_type::none);
  EXPECT_EQ(nf->rx_buffers_posted(), 32u);
  EXPECT_EQ(be->rx_available(), 32u);  // 31 left + the one re-posted
  EXPECT_EQ(nf->counters().rx_packets, 1u);
  EXPECT_EQ(nf->counters().rx_bytes, 600u);
  EXPECT_EQ(nf->counters().rx_buffers_posted, 33u);
  EXPECT_EQ(guest->grant_table().free_count(), connected_grants);
}

TEST_F(NetfrontTest, MultiBufferAndGsoFramesReassembleWithOutOfOrderIds) {
  bring_up();
  auto a = make_frame(6000, false, false, 11);
  auto b = make_frame(20000, true, false, 22);
  auto c = make_frame(3000, false, true, 33);
  netif::ExtraInfo gso{};
  gso.type = netif::extra_type::gso;
  gso.u.gso.size = 1440;
  gso.u.gso.type = netif::gso_type::tcpv6;
  be->send_rx(a, 2048, {}, /*shuffle=*/true);   // 3 buffers, ids answered in reverse
  be->send_rx(b, kPageSize, gso, /*shuffle=*/true, netif::rxf::csum_blank | netif::rxf::data_validated);
  be->send_rx(c, 1000);                          // 3 buffers, in order
  pump();
  ASSERT_EQ(rx.size(), 3u);
  EXPECT_EQ(rx[0].data, a);
  EXPECT_EQ(rx[1].data, b);
  EXPECT_EQ(rx[1].gso_type, netif::gso_type::tcpv6);
  EXPECT_EQ(rx[1].gso_size, 1440);
  EXPECT_TRUE(rx[1].csum_blank);
  EXPECT_EQ(rx[2].data, c);
  EXPECT_EQ(nf->counters().rx_gso_packets, 1u);
  EXPECT_EQ(nf->counters().rx_errors, 0u);
  EXPECT_EQ(nf->counters().bad_responses, 0u);
  // Every buffer (including the one the extra slot consumed) came back and was posted again.
  EXPECT_EQ(nf->rx_buffers_posted(), 32u);
  EXPECT_EQ(guest->grant_table().free_count(), connected_grants);
  EXPECT_EQ(pool->free_pages(), connected_pages);
}

TEST_F(NetfrontTest, ManyFramesKeepTheRingFed) {
  bring_up();
  size_t sent = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 4; ++i) {
      be->send_rx(make_frame(1514 + i * 1000, false, false, static_cast<uint8_t>(round + i)), 1024, {}, i % 2);
      ++sent;
    }
    pump();
  }
  EXPECT_EQ(rx.size(), sent);
  EXPECT_EQ(nf->counters().rx_packets, sent);
  EXPECT_EQ(nf->rx_buffers_posted(), 32u);
  EXPECT_EQ(guest->grant_table().free_count(), connected_grants);
}

TEST_F(NetfrontTest, ErrorResponsesDropTheFrameAndAreCounted) {
  bring_up();
  be->send_rx_error();
  auto ok = make_frame(200);
  be->send_rx(ok, kPageSize);
  pump();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].data, ok);
  EXPECT_EQ(nf->counters().rx_errors, 1u);
  EXPECT_EQ(nf->rx_buffers_posted(), 32u);
}

}  // namespace
}  // namespace pvnet::test
