// xenbus negotiation and header-slot registration, against the scripted backend.
#include "tests/frontend/netfront_fixture.hpp"

namespace pvnet::test {
namespace {

TEST_F(NetfrontTest, WaitsForInitWaitThenWritesKeysAndGoesConnected) {
  nf = std::make_unique<Netfront>(*guest, *pool, be->fe_dir(), small_config());
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kInitialising);
  EXPECT_FALSE(be->fe_key("tx-ring-ref"));
  EXPECT_EQ(be->fe_state(), XenbusState::Initialising);

  be->offer(BackendFeatures{});
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kConnecting);
  EXPECT_EQ(be->fe_state(), XenbusState::Connected);
  for (const char* k : {"tx-ring-ref", "rx-ring-ref", "event-channel", "ctrl-ring-ref", "event-channel-ctrl"})
    EXPECT_TRUE(be->fe_key(k)) << k;
  EXPECT_FALSE(be->fe_key("event-channel-tx"));  // split not asked for in this config
  EXPECT_EQ(be->fe_key("request-rx-copy"), "1");
  EXPECT_EQ(be->fe_key("feature-rx-notify"), "1");
  EXPECT_EQ(be->fe_key("feature-sg"), "1");
  EXPECT_EQ(be->fe_key("feature-gso-tcpv4"), "1");
  EXPECT_EQ(be->fe_key("feature-gso-tcpv6"), "1");
  EXPECT_EQ(be->fe_key("request-header-slots"), "1");
  EXPECT_EQ(be->fe_key("header-slot-size"), "128");
  EXPECT_NE(be->fe_key("tx-ring-ref"), be->fe_key("rx-ring-ref"));

  // The backend can map what was named, and the RX buffers are already posted.
  be->connect();
  EXPECT_EQ(be->rx_available(), 32u);
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kRegistering);
  EXPECT_FALSE(nf->connected());
}

TEST_F(NetfrontTest, SplitEventChannelsWhenBothWantThem) {
  auto cfg = small_config();
  cfg.split_event_channels = true;
  start(cfg);
  EXPECT_TRUE(be->fe_key("event-channel-tx"));
  EXPECT_TRUE(be->fe_key("event-channel-rx"));
  EXPECT_FALSE(be->fe_key("event-channel"));
  EXPECT_NE(be->fe_key("event-channel-tx"), be->fe_key("event-channel-rx"));
}

TEST_F(NetfrontTest, SplitNotUsedWhenBackendLacksIt) {
  auto cfg = small_config();
  cfg.split_event_channels = true;
  BackendFeatures f;
  f.split = false;
  start(cfg, f);
  EXPECT_TRUE(be->fe_key("event-channel"));
  EXPECT_FALSE(be->fe_key("event-channel-tx"));
}

TEST_F(NetfrontTest, RegistersSlotPagesExactlyAsSpecified) {
  bring_up(small_config(), {}, /*mapping_size=*/2);
  ASSERT_EQ(be->ctrl_log.size(), 2u);
  const auto& get = be->ctrl_log[0];
  EXPECT_EQ(get.type, netif::ctrl_type::get_gref_mapping_size);
  EXPECT_EQ(get.data[0], 0u);
  const auto& add = be->ctrl_log[1];
  EXPECT_EQ(add.type, netif::ctrl_type::add_gref_mapping);
  EXPECT_EQ(add.data[0], 0u);
  EXPECT_EQ(add.data[2], 2u);  // min(config 4, backend 2)
  EXPECT_NE(add.id, get.id);
  auto table = be->read_table(add);
  ASSERT_EQ(table.size(), 2u);
  for (auto& e : table) {
    EXPECT_EQ(e.flags, netif::ctrlf_gref::readonly);
    // Granted read-only: the backend cannot map it writable.
    MapOp m;
    m.dom = kGuest;
    m.ref = e.ref;
    m.readonly = false;
    be->dom0().mapper().map(std::span(&m, 1));
    EXPECT_NE(m.status, GntSt::okay);
  }
  EXPECT_NE(table[0].ref, table[1].ref);
  EXPECT_EQ(be->kept_mappings(), 2u);
  EXPECT_TRUE(nf->connected());
  EXPECT_TRUE(nf->using_header_slots());
  EXPECT_EQ(nf->slot_pages(), 2u);
  EXPECT_EQ(nf->counters().slots_total, 2u * kPageSize / 128);
  EXPECT_EQ(nf->counters().ctrl_requests, 2u);
}

TEST_F(NetfrontTest, PlainNetifWhenBackendLacksHeaderSlots) {
  BackendFeatures f;
  f.slots = false;
  start(small_config(), f);
  EXPECT_FALSE(be->fe_key("request-header-slots"));
  EXPECT_FALSE(be->fe_key("header-slot-size"));
  be->connect();
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kConnected);
  EXPECT_FALSE(nf->using_header_slots());
  EXPECT_TRUE(be->take_ctrl().empty());
}

TEST_F(NetfrontTest, NoHeaderSlotsWithoutAControlRing) {
  BackendFeatures f;
  f.ctrl = false;
  start(small_config(), f);
  EXPECT_FALSE(be->fe_key("request-header-slots"));  // asking without a ctrl ring is a protocol error
  EXPECT_FALSE(be->fe_key("ctrl-ring-ref"));
  be->connect();
  pump();
  EXPECT_TRUE(nf->connected());
  EXPECT_FALSE(nf->using_header_slots());
}

TEST_F(NetfrontTest, NoHeaderSlotsWhenConfiguredOff) {
  auto cfg = small_config();
  cfg.header_slots = false;
  start(cfg);
  EXPECT_FALSE(be->fe_key("request-header-slots"));
  EXPECT_TRUE(be->fe_key("ctrl-ring-ref"));  // the control ring is still set up when offered
}

TEST_F(NetfrontTest, FallsBackWhenGetMappingSizeIsNotSupported) {
  bring_up(small_config(), {}, /*mapping_size=*/0);  // serve_ctrl answers NOT_SUPPORTED for 0
  ASSERT_EQ(be->ctrl_log.size(), 1u);
  EXPECT_FALSE(nf->using_header_slots());
  EXPECT_EQ(nf->slot_pages(), 0u);
}

TEST_F(NetfrontTest, FallsBackAndReturnsSlotPagesWhenAddIsRefused) {
  start();
  be->connect();
  pump();
  const uint32_t grants_before = guest->grant_table().free_count();
  const uint64_t pages_before = pool->free_pages();
  be->serve_ctrl(4, netif::ctrl_status::invalid_parameter);  // GET
  pump();
  EXPECT_EQ(guest->grant_table().free_count(), grants_before - 5);  // 4 slot pages + the table, pending ADD
  be->serve_ctrl(4, netif::ctrl_status::invalid_parameter);  // ADD refused
  pump();
  ASSERT_EQ(be->ctrl_log.size(), 2u);
  EXPECT_TRUE(nf->connected());
  EXPECT_FALSE(nf->using_header_slots());
  EXPECT_EQ(guest->grant_table().free_count(), grants_before);
  EXPECT_EQ(pool->free_pages(), pages_before);
}

TEST_F(NetfrontTest, FallsBackWhenTheControlRingNeverAnswers) {
  start();
  be->connect();
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kRegistering);
  for (int i = 0; i < 100 && nf->state() == NetfrontState::kRegistering; ++i) {
    usleep(10'000);
    nf->poll();
  }
  EXPECT_TRUE(nf->connected());
  EXPECT_FALSE(nf->using_header_slots());
}

TEST_F(NetfrontTest, RefusesABackendWithoutRxCopy) {
  nf = std::make_unique<Netfront>(*guest, *pool, be->fe_dir(), small_config());
  ASSERT_TRUE(be->store().write(be->be_dir() + "/feature-sg", "1"));
  be->set_state(XenbusState::InitWait);
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kFailed);
  EXPECT_NE(nf->error().find("rx-copy"), std::string::npos);
}

}  // namespace
}  // namespace pvnet::test
