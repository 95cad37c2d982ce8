// Teardown: DEL_GREF_MAPPING while the backend listens, Closing, Closed, and every grant and page returned.
#include "tests/frontend/netfront_fixture.hpp"

namespace pvnet::test {
namespace {

TEST_F(NetfrontTest, CloseDeletesMappingsAndReturnsEveryGrantAndPage) {
  bring_up(small_config(), {}, 3);
  ASSERT_TRUE(nf->using_header_slots());
  // Some traffic in flight both ways.
  auto pf = place(make_frame(1514));
  ASSERT_EQ(nf->transmit(pf.pieces()), TxStatus::kQueued);
  auto pkts = be->take_tx();
  be->respond_tx(pkts[0], netif::rsp::okay);
  be->send_rx(make_frame(300), kPageSize);
  pump();

  nf->close();
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kClosing);
  EXPECT_EQ(be->fe_state(), XenbusState::Connected);  // still: DEL goes first
  auto del = be->take_ctrl();
  ASSERT_EQ(del.size(), 1u);
  EXPECT_EQ(del[0].type, netif::ctrl_type::del_gref_mapping);
  EXPECT_EQ(del[0].data[2], 3u);
  auto table = be->read_table(del[0]);
  ASSERT_EQ(table.size(), 3u);
  for (auto& e : table) EXPECT_EQ(e.flags, netif::ctrlf_gref::readonly);
  // Answer it as netback would: unmap the listed pages, then SUCCESS with the number removed.
  be->release_kept();
  be->ctrl_respond(del[0], netif::ctrl_status::success, 3);
  pump();
  EXPECT_EQ(be->fe_state(), XenbusState::Closing);
  EXPECT_EQ(nf->state(), NetfrontState::kClosing);  // waits for the backend's Closed
  be->close();
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kClosed);
  EXPECT_EQ(be->fe_state(), XenbusState::Closed);
  pf.release();
  EXPECT_EQ(guest->grant_table().free_count(), initial_grants);
  EXPECT_EQ(pool->free_pages(), initial_pages);
  EXPECT_EQ(nf->counters().grants_in_use, 0u);
  EXPECT_EQ(nf->counters().grants_kept, 0u);
  ASSERT_EQ(done.size(), 1u);
}

TEST_F(NetfrontTest, GrantsStillMappedAreKeptAndRetried) {
  bring_up(small_config(), {}, 2);
  auto pf = place(make_frame(3000));
  ASSERT_EQ(nf->transmit(pf.pieces(), {.cookie = 5}), TxStatus::kQueued);
  (void)be->take_tx();  // the backend never answers this packet
  // The backend goes away on its own, still holding its kept slot mappings.
  be->close(/*release_kept=*/false);
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kClosed);
  EXPECT_EQ(nf->counters().grants_kept, 2u);  // the two slot pages
  EXPECT_EQ(guest->grant_table().free_count(), initial_grants - 2);
  // The in-flight frame completed as DROPPED: its payload grant was not mapped.
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].cookie, 5u);
  EXPECT_EQ(done[0].status, netif::rsp::dropped);

  be->release_kept();
  pump();
  EXPECT_EQ(nf->counters().grants_kept, 0u);
  EXPECT_GE(nf->counters().grants_busy_retries, 2u);
  pf.release();
  EXPECT_EQ(guest->grant_table().free_count(), initial_grants);
  EXPECT_EQ(pool->free_pages(), initial_pages);
}

TEST_F(NetfrontTest, CloseWithAPlainBackend) {
  BackendFeatures f;
  f.slots = false;
  bring_up(small_config(), f);
  nf->close();
  pump();
  EXPECT_TRUE(be->take_ctrl().empty());  // nothing to DEL
  EXPECT_EQ(be->fe_state(), XenbusState::Closing);
  be->close();
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kClosed);
  EXPECT_EQ(guest->grant_table().free_count(), initial_grants);
  EXPECT_EQ(pool->free_pages(), initial_pages);
}

TEST_F(NetfrontTest, CloseTimesOutOnASilentBackend) {
  bring_up();
  nf->close();
  for (int i = 0; i < 100 && nf->state() != NetfrontState::kClosed; ++i) {
    usleep(10'000);
    nf->poll();
  }
  EXPECT_EQ(nf->state(), NetfrontState::kClosed);
  // The backend still maps the rings and slot pages: those grants are kept, not reused.
  EXPECT_GT(nf->counters().grants_kept, 0u);
  be->close();
  pump();
  EXPECT_EQ(nf->counters().grants_kept, 0u);
  EXPECT_EQ(guest->grant_table().free_count(), initial_grants);
  EXPECT_EQ(pool->free_pages(), initial_pages);
}

}  // namespace
}  // namespace pvnet::test
