// TX: what netfront puts on the ring, and what completion gives back.
#include <poll.h>

#include "tests/frontend/netfront_fixture.hpp"

namespace pvnet::test {
namespace {

TEST_F(NetfrontTest, SmallFrameTravelsWholeInItsSlotWithoutAGrant) {
  bring_up();
  auto bytes = make_frame(60);
  auto pf = place(bytes);
  const uint32_t grants = ungranted();
  ASSERT_EQ(nf->transmit(pf.pieces(), {.cookie = 7}), TxStatus::kQueued);
  EXPECT_EQ(ungranted(), grants);  // no payload grant at all
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 1u);
  const auto& p = pkts[0];
  ASSERT_EQ(p.reqs.size(), 1u);
  EXPECT_TRUE(p.slot());
  EXPECT_EQ(p.reqs[0].size, 60);
  EXPECT_EQ(p.reqs[0].offset % 128, 0);
  EXPECT_FALSE(p.reqs[0].flags & netif::txf::more_data);
  EXPECT_EQ(p.bytes, bytes);
  EXPECT_EQ(nf->counters().tx_whole_in_slot, 1u);
  EXPECT_EQ(nf->counters().tx_grants, 0u);
  EXPECT_EQ(nf->counters().frontend_copy_bytes, 60u);
  EXPECT_EQ(nf->counters().slots_in_use, 1u);

  be->respond_tx(p, netif::rsp::okay);
  pump();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].cookie, 7u);
  EXPECT_EQ(done[0].status, netif::rsp::okay);
  EXPECT_EQ(done[0].bytes, 60u);
  EXPECT_EQ(nf->counters().slots_in_use, 0u);
}

TEST_F(NetfrontTest, FullSizeFrameIsSlotPlusPayloadGrants) {
  bring_up();
  for (uint32_t offset : {0u, 3000u}) {  // page aligned, and crossing a page boundary
    auto bytes = make_frame(1514, false, false, static_cast<uint8_t>(offset));
    auto pf = place(bytes, offset);
    ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
    auto pkts = be->take_tx();
    ASSERT_EQ(pkts.size(), 1u);
    const auto& p = pkts[0];
    EXPECT_TRUE(p.slot());
    EXPECT_EQ(p.reqs[0].size, 1514);
    EXPECT_EQ(p.first_len, 54u);  // Ethernet + IPv4 + TCP: the headers, in the slot
    EXPECT_TRUE(p.reqs[0].flags & netif::txf::more_data);
    if (offset == 0) {
      ASSERT_EQ(p.reqs.size(), 2u);
      EXPECT_EQ(p.reqs[1].size, 1460);
      EXPECT_EQ(p.reqs[1].offset, 54);
    } else {
      ASSERT_EQ(p.reqs.size(), 3u);  // 3054..4095 and 0..(1514-1096)
      EXPECT_EQ(p.reqs[1].offset, 3054);
      EXPECT_EQ(p.reqs[1].size, kPageSize - 3054);
      EXPECT_EQ(p.reqs[2].offset, 0);
      EXPECT_EQ(p.reqs[2].size, 1514 - (kPageSize - 3000));
    }
    EXPECT_FALSE(p.reqs.back().flags & netif::txf::more_data);
    EXPECT_EQ(p.bytes, bytes);
    be->respond_tx(p, netif::rsp::okay);
    pump();
  }
  EXPECT_EQ(nf->counters().tx_grants, 3u);
  EXPECT_EQ(nf->counters().tx_slot_packets, 2u);
  EXPECT_EQ(nf->counters().frontend_copy_bytes, 108u);
  EXPECT_EQ(done.size(), 2u);
  EXPECT_EQ(ungranted(), connected_grants);
}

TEST_F(NetfrontTest, Ipv6HeadersAreFoundToo) {
  bring_up();
  auto bytes = make_frame(1000, /*ipv6=*/true);
  auto pf = place(bytes);
  ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].first_len, 74u);  // 14 + 40 + 20
  EXPECT_EQ(pkts[0].bytes, bytes);
}

TEST_F(NetfrontTest, GsoSuperFrameCarriesTheExtraAndFitsInNrSlotsMin) {
  bring_up();
  auto bytes = make_frame(65535);
  auto pf = place(bytes);
  ASSERT_EQ(nf->transmit(pf.pieces(), {.gso_type = netif::gso_type::tcpv4, .gso_size = 1448}), TxStatus::kQueued);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 1u);
  const auto& p = pkts[0];
  EXPECT_TRUE(p.slot());
  EXPECT_TRUE(p.reqs[0].flags & netif::txf::extra_info);
  EXPECT_TRUE(p.reqs[0].flags & netif::txf::csum_blank);
  ASSERT_TRUE(p.extra);
  EXPECT_EQ(p.extra->type, netif::extra_type::gso);
  EXPECT_EQ(p.extra->u.gso.size, 1448);
  EXPECT_EQ(p.extra->u.gso.type, netif::gso_type::tcpv4);
  EXPECT_LE(p.reqs.size(), netif::kNrSlotsMin);
  EXPECT_EQ(p.reqs.size(), 17u);  // slot + 16 page pieces
  EXPECT_EQ(p.reqs[0].size, 65535);
  EXPECT_EQ(p.bytes, bytes);
  EXPECT_EQ(nf->counters().tx_linearised, 0u);
  EXPECT_EQ(nf->counters().tx_gso_packets, 1u);
  be->respond_tx(p, netif::rsp::okay);
  pump();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, netif::rsp::okay);
  EXPECT_EQ(ungranted(), connected_grants);
}

TEST_F(NetfrontTest, GsoRefusedWhenNotOffered) {
  BackendFeatures f;
  f.gso = false;
  bring_up(small_config(), f);
  auto pf = place(make_frame(9000));
  EXPECT_EQ(nf->transmit(pf.pieces(), {.gso_type = netif::gso_type::tcpv4, .gso_size = 1448}), TxStatus::kInvalid);
  EXPECT_EQ(nf->counters().tx_invalid, 1u);
  EXPECT_EQ(be->tx_unconsumed(), 0u);
}

class LineariseTest : public NetfrontTest {
 protected:
  void run(bool slots) {
    auto cfg = small_config();
    cfg.header_slots = slots;
    bring_up(cfg);
    auto bytes = make_frame(8000);
    auto pf = place(bytes, 0, 256);  // 32 small pieces
    ASSERT_EQ(pf.pieces().size(), 32u);
    ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
    auto pkts = be->take_tx();
    ASSERT_EQ(pkts.size(), 1u);
    EXPECT_LE(pkts[0].reqs.size(), netif::kNrSlotsMin);
    EXPECT_EQ(pkts[0].reqs.size(), slots ? 3u : 2u);  // (slot +) ceil(payload / 4096) fresh pages
    EXPECT_EQ(pkts[0].bytes, bytes);
    EXPECT_EQ(nf->counters().tx_linearised, 1u);
    EXPECT_EQ(nf->counters().tx_linearised_bytes, slots ? 8000u - 54 : 8000u);
    EXPECT_EQ(pool->free_pages(), connected_pages - pf.pages().size() - 2);  // two linearisation pages
    be->respond_tx(pkts[0], netif::rsp::okay);
    pump();
    EXPECT_EQ(done.size(), 1u);
    EXPECT_EQ(pool->free_pages(), connected_pages - pf.pages().size());  // and back
    EXPECT_EQ(ungranted(), connected_grants);
  }
};

TEST_F(LineariseTest, TooManyPiecesAreLinearisedWithSlots) { run(true); }
TEST_F(LineariseTest, TooManyPiecesAreLinearisedInPlainNetif) { run(false); }

TEST_F(NetfrontTest, PlainNetifFirstRequestIsTheFirstPagePiece) {
  auto cfg = small_config();
  cfg.header_slots = false;
  bring_up(cfg);
  auto bytes = make_frame(1514);
  auto pf = place(bytes, 3000);
  ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 1u);
  const auto& p = pkts[0];
  EXPECT_FALSE(p.slot());
  ASSERT_EQ(p.reqs.size(), 2u);
  EXPECT_EQ(p.reqs[0].size, 1514);
  EXPECT_EQ(p.reqs[0].offset, 3000);
  EXPECT_EQ(p.first_len, kPageSize - 3000);
  EXPECT_EQ(p.bytes, bytes);
  EXPECT_EQ(nf->counters().tx_plain_packets, 1u);
  EXPECT_EQ(nf->counters().tx_grants, 2u);
  EXPECT_EQ(nf->counters().frontend_copy_bytes, 0u);
}

TEST_F(NetfrontTest, BusyWhenTheRingIsFullAndNothingIsHalfPosted) {
  auto cfg = small_config();
  cfg.header_slots = false;
  bring_up(cfg);
  auto pf = place(make_frame(1514, false, false, 3), 3000);  // 2 requests per frame
  int queued = 0;
  TxStatus st;
  while ((st = nf->transmit(pf.pieces())) == TxStatus::kQueued) ++queued;
  EXPECT_EQ(st, TxStatus::kBusy);
  EXPECT_EQ(queued, 128);
  EXPECT_EQ(nf->counters().tx_busy, 1u);
  // A 3-request frame does not fit into the 0 left either; a partial post would show up as odd req_prod.
  EXPECT_EQ(be->tx_unconsumed(), 256u);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 128u);
  for (size_t i = 0; i < pkts.size(); ++i) be->respond_tx(pkts[i], netif::rsp::okay, i + 1 == pkts.size());
  pump();
  EXPECT_EQ(done.size(), 128u);
  EXPECT_EQ(nf->tx_free_requests(), 256u);
  EXPECT_EQ(ungranted(), connected_grants);
  EXPECT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
}

TEST_F(NetfrontTest, BusyWhenSlotsRunOutThenCompletionFreesEverything) {
  auto cfg = small_config();
  cfg.slot_pages = 1;
  cfg.slot_size = 1024;  // 4 slots
  bring_up(cfg);
  std::vector<PlacedFrame> frames;
  for (int i = 0; i < 5; ++i) frames.push_back(place(make_frame(1514, false, false, static_cast<uint8_t>(i))));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(nf->transmit(frames[i].pieces(), {.cookie = uint64_t(i)}), TxStatus::kQueued);
  const uint32_t grants_in_flight = ungranted();
  EXPECT_EQ(nf->transmit(frames[4].pieces()), TxStatus::kBusy);
  EXPECT_EQ(ungranted(), grants_in_flight);  // nothing granted for the refused frame
  EXPECT_EQ(be->tx_unconsumed(), 8u);
  EXPECT_EQ(nf->counters().slots_in_use, 4u);

  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 4u);
  const int16_t statuses[] = {netif::rsp::okay, netif::rsp::error, netif::rsp::dropped, netif::rsp::okay};
  for (int i = 0; i < 4; ++i) be->respond_tx(pkts[i], statuses[i]);
  pump();
  ASSERT_EQ(done.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(done[i].cookie, uint64_t(i));
    EXPECT_EQ(done[i].status, statuses[i]);
  }
  EXPECT_EQ(nf->counters().tx_errors, 1u);
  EXPECT_EQ(nf->counters().tx_dropped, 1u);
  EXPECT_EQ(nf->counters().tx_completed, 4u);
  EXPECT_EQ(nf->counters().slots_in_use, 0u);
  EXPECT_EQ(ungranted(), connected_grants);
  EXPECT_EQ(nf->transmit(frames[4].pieces()), TxStatus::kQueued);
}

TEST_F(NetfrontTest, ResponsesInAnyOrderCompleteTheRightFrames) {
  bring_up();
  std::vector<PlacedFrame> frames;
  for (int i = 0; i < 20; ++i) {
    frames.push_back(place(make_frame(100 + 300 * i, false, i % 2, static_cast<uint8_t>(i))));
    ASSERT_EQ(nf->transmit(frames.back().pieces(), {.cookie = uint64_t(i)}), TxStatus::kQueued);
  }
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 20u);
  for (int i = 19; i >= 0; --i) be->respond_tx(pkts[i], netif::rsp::okay);
  pump();
  ASSERT_EQ(done.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(done[i].cookie, uint64_t(19 - i));
    EXPECT_EQ(done[i].bytes, 100u + 300 * (19 - i));
  }
  EXPECT_EQ(ungranted(), connected_grants);
  EXPECT_EQ(nf->counters().grants_in_use, uint64_t(initial_grants - connected_grants));
}

TEST_F(NetfrontTest, DeferredPushNotifiesOncePerBatch) {
  bring_up();
  auto pf = place(make_frame(60));
  const uint64_t kicks = nf->counters().notifications_sent;
  for (int i = 0; i < 8; ++i) ASSERT_EQ(nf->transmit(pf.pieces(), {.defer_push = true}), TxStatus::kQueued);
  EXPECT_EQ(be->tx_unconsumed(), 0u);  // not yet published
  nf->flush();
  EXPECT_EQ(be->tx_unconsumed(), 8u);
  EXPECT_EQ(nf->counters().notifications_sent, kicks + 1);
}

TEST_F(NetfrontTest, RefusesFramesTheProtocolCannotCarry) {
  bring_up();
  EXPECT_EQ(nf->transmit({}), TxStatus::kInvalid);
  std::vector<TxPiece> big{{Pfn{100}, 0, 70000}};
  EXPECT_EQ(nf->transmit(big), TxStatus::kInvalid);
  std::vector<TxPiece> outside{{Pfn{1u << 30}, 0, 100}};
  EXPECT_EQ(nf->transmit(outside), TxStatus::kInvalid);
  EXPECT_EQ(be->tx_unconsumed(), 0u);
}

TEST_F(NetfrontTest, JumboFrameIsSlotPlusThreePages) {
  bring_up();
  auto bytes = make_frame(9014);
  auto pf = place(bytes);
  ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
  auto pkts = be->take_tx();
  ASSERT_EQ(pkts.size(), 1u);
  const auto& p = pkts[0];
  ASSERT_EQ(p.reqs.size(), 4u);
  EXPECT_FALSE(p.extra);
  EXPECT_EQ(p.first_len, 54u);
  EXPECT_EQ(p.reqs[1].size, kPageSize - 54);
  EXPECT_EQ(p.reqs[2].size, kPageSize);
  EXPECT_EQ(p.reqs[3].size, 9014 - 2 * kPageSize);
  EXPECT_EQ(p.bytes, bytes);
}

TEST_F(NetfrontTest, BackendKickMakesTheEventFdReadable) {
  bring_up();
  auto pf = place(make_frame(60));
  ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
  pump();  // idle: the final check asked the backend for a kick on its next response
  pollfd pfd{nf->event_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 0), 0);
  auto pkts = be->take_tx();
  be->respond_tx(pkts[0], netif::rsp::okay);
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
  pump();
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);  // drained
}

TEST_F(NetfrontTest, NotConnectedBeforeNegotiation) {
  start();
  auto pf = place(make_frame(60));
  EXPECT_EQ(nf->transmit(pf.pieces()), TxStatus::kNotConnected);
}

}  // namespace
}  // namespace pvnet::test
