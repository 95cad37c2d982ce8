// Recall by the real netfront (docs/protocol.md 8): a guest under load takes its header-slot pages back from the
// backend (Netfront::recall_header_slots), the ring pages are refused while connected, and a backend that never
// answers costs the guest a bounded wait and nothing else (the pinned pages stay out of the pool).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/vif_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

struct Guest {
  std::unique_ptr<Platform> platform;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Netfront> nf;
  std::vector<pvnet::ReceivedFrame> rx;
  std::vector<TxDone> done;
  std::deque<PlacedFrame> in_flight;
  VifId vif{};
};

class NetfrontRecall : public ::testing::Test {
 protected:
  void SetUp() override {
    hv = SimHypervisor::create().value();
    dom0 = hv->attach(kDom0).value();
    be = Backend::create(*dom0).value();
    attach(a, DomId{1});
    attach(b, DomId{2});
    ASSERT_TRUE(be->set_sink(a.vif, std::make_shared<VifSink>(*be, b.vif)));
  }
  void attach(Guest& g, DomId dom) {
    g.platform = hv->create_domain(dom, 2048 * kPageSize, 2048).value();
    g.pool = std::make_unique<MemoryPagePool>(g.platform->memory());
    g.vif = be->add_vif(dom, 0).value();
    NetfrontConfig c;
    c.rx_buffers = 64;
    c.slot_pages = 4;
    g.nf = std::make_unique<Netfront>(*g.platform, *g.pool, be->paths(g.vif).frontend, c);
    g.nf->on_rx([&g](pvnet::ReceivedFrame&& f) { g.rx.push_back(std::move(f)); });
    g.nf->on_tx_complete([&g](const TxDone& d) {
      g.done.push_back(d);
      g.in_flight.pop_front();  // completions come in order for one vif forwarded to a guest that keeps up
    });
    ASSERT_TRUE(pump([&] { return g.nf->connected() && be->connected(g.vif); }));
  }
  template <class F>
  bool pump(F until, bool poll_backend = true, int rounds = 4000) {
    for (int i = 0; i < rounds; ++i) {
      if (until()) return true;
      if (poll_backend) be->poll();
      a.nf ? (void)a.nf->poll() : void();
      b.nf ? (void)b.nf->poll() : void();
    }
    return until();
  }
  // Puts up to n frames on A's ring (fewer if it is full). Returns how many.
  size_t send(size_t n) {
    size_t k = 0;
    for (; k < n; ++k) {
      sent.push_back(make_frame(200 + (sent.size() * 37) % 1200, 17, static_cast<uint8_t>(sent.size())));
      auto p = place_frame(*a.pool, sent.back(), 0);
      if (!p) {
        sent.pop_back();
        break;
      }
      TxOptions o;
      o.cookie = sent.size();
      if (a.nf->transmit(p->pieces(), o) != TxStatus::kQueued) {
        sent.pop_back();
        break;
      }
      a.in_flight.push_back(std::move(p).value());
    }
    return k;
  }
  void expect_all_delivered_intact() {
    ASSERT_EQ(b.rx.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(b.rx[i].data, sent[i]) << "frame " << i;
    for (const auto& d : a.done) EXPECT_EQ(d.status, netif::rsp::okay);
  }

  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0;
  std::unique_ptr<Backend> be;
  Guest a, b;
  std::vector<std::vector<std::byte>> sent;
};

TEST_F(NetfrontRecall, HeaderSlotPagesTakenBackUnderLoadTrafficGoesOnAsPlainNetif) {
  ASSERT_TRUE(a.nf->using_header_slots());
  const std::vector<GrantRef> slot_refs = a.nf->slot_page_grefs();
  ASSERT_EQ(slot_refs.size(), 4u);
  ASSERT_GT(be->kept_mappings(a.vif), 0u);
  for (GrantRef r : slot_refs) EXPECT_TRUE(a.platform->grant_table().in_use(r)) << "kept mapped by dom0";

  // Load: the ring full of frames naming slots, not yet taken by the backend.
  ASSERT_GT(send(200), 100u);
  std::optional<RecallResult> result;
  ASSERT_TRUE(a.nf->recall_header_slots([&](const RecallResult& r) { result = r; }));
  EXPECT_TRUE(a.nf->recall_pending());
  EXPECT_FALSE(a.nf->recall_header_slots([](const RecallResult&) {}).ok()) << "one at a time";
  // More frames meanwhile: plain netif (no slot).
  const uint64_t slot_packets_before = a.nf->counters().tx_slot_packets;
  ASSERT_TRUE(pump([&] {
    send(8);
    return result.has_value();
  }));
  EXPECT_EQ(a.nf->counters().tx_slot_packets, slot_packets_before) << "no slot used after the recall began";
  EXPECT_GT(a.nf->counters().tx_plain_packets, 0u);
  ASSERT_TRUE(result->answered);
  EXPECT_FALSE(result->rejected);
  EXPECT_TRUE(result->refused.empty());
  EXPECT_TRUE(result->still_in_use.empty());
  EXPECT_EQ(result->ended, slot_refs);
  EXPECT_EQ(be->kept_mappings(a.vif), 0u);
  for (GrantRef r : slot_refs) EXPECT_FALSE(a.platform->grant_table().in_use(r));
  EXPECT_FALSE(a.nf->using_header_slots());
  EXPECT_EQ(a.nf->counters().recalls_answered, 1u);
  EXPECT_FALSE(be->disabled(a.vif)) << "no request named a slot the backend had let go";

  // The stream goes on and every frame, before and after, arrives byte for byte.
  send(50);
  ASSERT_TRUE(pump([&] { return a.in_flight.empty() && b.rx.size() == sent.size(); }));
  expect_all_delivered_intact();
}

TEST_F(NetfrontRecall, RingPagesAreRefusedWhileConnected) {
  // The TX ring: tx-ring-ref, or tx-ring-ref0.. of a multi-page ring (docs/protocol.md 9): every page is refused.
  Store& st = a.platform->store();
  const std::string dir = a.nf->frontend_dir();
  auto offered = netif::BackendFeatures::read(st, a.nf->backend_dir());
  ASSERT_TRUE(offered) << offered.error().reason;
  auto keys = netif::FrontendKeys::read(st, dir, *offered);
  ASSERT_TRUE(keys) << keys.error().reason;
  std::vector<GrantRef> ring;
  for (uint32_t ref : keys->tx_ring_refs) ring.push_back(GrantRef{ref});
  std::vector<GrantRef> want = a.nf->slot_page_grefs();
  want.insert(want.end(), ring.begin(), ring.end());
  std::optional<RecallResult> result;
  ASSERT_TRUE(a.nf->recall(want, [&](const RecallResult& r) { result = r; }));
  ASSERT_TRUE(pump([&] { return result.has_value(); }));
  ASSERT_TRUE(result->answered);
  EXPECT_EQ(result->refused, ring);
  EXPECT_EQ(result->still_in_use, ring);
}

TEST_F(NetfrontRecall, BackendThatNeverAnswersCostsABoundedWaitAndThePagesStayOut) {
  const std::vector<GrantRef> slot_refs = a.nf->slot_page_grefs();
  const uint64_t free_before = a.pool->free_pages();
  std::optional<RecallResult> result;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a.nf->recall_header_slots([&](const RecallResult& r) { result = r; }, /*timeout_ms=*/150));
  // dom0 is stuck: nobody polls the backend.
  ASSERT_TRUE(pump([&] { return result.has_value(); }, /*poll_backend=*/false, 1'000'000));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_FALSE(result->answered);
  EXPECT_EQ(result->still_in_use, slot_refs) << "dom0 still maps them: the hypervisor keeps them pinned";
  EXPECT_TRUE(result->ended.empty());
  EXPECT_EQ(a.nf->counters().recall_timeouts, 1u);
  // Their pages did not go back to the pool: never reused while dom0 may read them.
  EXPECT_EQ(a.pool->free_pages(), free_before + 1) << "only the gref table page (copied, never kept) came back";
  EXPECT_EQ(a.nf->counters().grants_kept, slot_refs.size()) << "the slot pages (the gref table was only copied)";
  // dom0 wakes up, answers the stale request, and a netfront poll then gets the pages back.
  ASSERT_TRUE(pump([&] { return a.nf->counters().grants_kept == 0; }));
  for (GrantRef r : slot_refs) EXPECT_FALSE(a.platform->grant_table().in_use(r));
  EXPECT_FALSE(be->disabled(a.vif));
  send(20);
  ASSERT_TRUE(pump([&] { return a.in_flight.empty() && b.rx.size() == sent.size(); }));
  expect_all_delivered_intact();
}

}  // namespace
}  // namespace pvnet::test
