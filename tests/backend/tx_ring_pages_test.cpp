// Multi-page TX ring (docs/protocol.md 9) between the real Netfront and the real Backend: negotiated to the order
// both sides allow, 56 frames of 64 KiB in flight where one page holds 14, one page when the backend does not
// offer it, and a frontend that lies about the order or leaves out a ref is refused without a mapping left.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_mapper.hpp"
#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

constexpr DomId kGuestDom{1};
// A 65535-byte TCP frame with its 54 header bytes in a slot: 16 payload pieces (the first page from offset 54),
// the slot's request and the GSO extra.
constexpr uint32_t kSlotsPerGsoFrame = 18;

MapOp map_op(DomId dom, GrantRef ref) {
  MapOp op;
  op.dom = dom;
  op.ref = ref;
  op.readonly = false;
  return op;
}

std::vector<std::byte> tcp_frame(size_t len) {
  // Ethernet + IPv4 + TCP, lengths consistent with `len`.
  std::vector<std::byte> f(len);
  auto put8 = [&](size_t at, uint8_t v) { f[at] = std::byte(v); };
  auto put16 = [&](size_t at, uint16_t v) {
    put8(at, static_cast<uint8_t>(v >> 8));
    put8(at + 1, static_cast<uint8_t>(v));
  };
  for (size_t i = 0; i < 6; ++i) put8(i, 0x02), put8(6 + i, 0x04);
  put16(12, 0x0800);
  put8(14, 0x45);
  put16(16, static_cast<uint16_t>(len - 14));
  put8(22, 64);
  put8(23, 6);
  put8(26, 198), put8(27, 18), put8(28, 0), put8(29, 1);
  put8(30, 198), put8(31, 18), put8(32, 0), put8(33, 2);
  put8(46, 0x50);
  for (size_t i = 54; i < len; ++i) put8(i, static_cast<uint8_t>(i * 7));
  return f;
}

class TxRingPages : public ::testing::Test {
 protected:
  void SetUp() override {
    hv = SimHypervisor::create().value();
    dom0 = hv->attach(kDom0).value();
    be = Backend::create(*dom0).value();
    guest = hv->create_domain(kGuestDom, 8192 * kPageSize, 4096).value();
    pool = std::make_unique<MemoryPagePool>(guest->memory());
  }

  void bring_up(VifOptions vo, NetfrontConfig nc = {}) {
    vo.mtu = 1500;
    vif = be->add_vif(kGuestDom, 0, vo).value();
    ASSERT_TRUE(be->set_sink(vif, std::make_shared<NullSink>()));
    nf = std::make_unique<Netfront>(*guest, *pool, be->paths(vif).frontend, nc);
    nf->on_tx_complete([this](const TxDone& d) { done.push_back(d); });
    for (int i = 0; i < 2000 && !(nf->connected() && be->connected(vif)); ++i) {
      be->poll();
      nf->poll();
    }
    ASSERT_TRUE(nf->connected() && be->connected(vif)) << nf->error();
  }

  // Puts 64 KiB GSO frames on the ring until it is full; returns how many went.
  uint32_t fill_with_gso_frames(uint32_t max) {
    const auto frame = tcp_frame(65535);
    TxOptions o;
    o.gso_type = netif::gso_type::tcpv4;
    o.gso_size = 1448;
    o.csum_blank = true;
    uint32_t n = 0;
    for (; n < max; ++n) {
      auto p = place_frame(*pool, frame);
      EXPECT_TRUE(p.ok());
      o.cookie = n;
      o.defer_push = true;
      if (nf->transmit(p->pieces(), o) != TxStatus::kQueued) break;
      placed.push_back(std::move(p).value());
    }
    nf->flush();
    return n;
  }

  void drain() {
    for (int i = 0; i < 2000 && done.size() < placed.size(); ++i) {
      be->poll();
      nf->poll();
    }
  }

  std::string fe_key(const std::string& k) { return guest->store().read_opt(be->paths(vif).frontend + "/" + k).value_or(""); }

  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0, guest;
  std::unique_ptr<Backend> be;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Netfront> nf;
  VifId vif{};
  std::vector<PlacedFrame> placed;
  std::vector<TxDone> done;
};

TEST_F(TxRingPages, NegotiatedToTheLargestOrderBothAllowAndHoldsFourTimesTheFrames) {
  bring_up(VifOptions{});
  EXPECT_EQ(dom0->store().read_opt(be->paths(vif).backend + "/" + netif::key::max_tx_ring_page_order).value_or(""),
            std::to_string(netif::kTxRingPageOrderMax));
  EXPECT_EQ(nf->tx_ring_size(), netif::kTxRingSizeMax);
  EXPECT_EQ(fe_key(netif::key::tx_ring_page_order), "2");
  EXPECT_EQ(fe_key("tx-ring-ref"), "") << "one or the other, as blkif's ring-ref";
  for (int i = 0; i < 4; ++i) EXPECT_NE(fe_key("tx-ring-ref" + std::to_string(i)), "");

  // 1024 entries hold 56 such frames, a one-page ring 14.
  const uint32_t n = netif::kTxRingSizeMax / kSlotsPerGsoFrame;
  ASSERT_EQ(n, 56u);
  EXPECT_EQ(fill_with_gso_frames(100), n);
  drain();
  ASSERT_EQ(done.size(), n);
  for (const auto& d : done) EXPECT_EQ(d.status, netif::rsp::okay);
  EXPECT_EQ(be->counters(vif).packets_out, n);
  EXPECT_EQ(be->counters(vif).tx_gso_packets, n);
  // dom0 mapped the four ring pages, RX, ctrl and the header-slot pages; no payload page.
  const GrantCounters g = dom0->mapper().counters();
  EXPECT_EQ(g.pages_mapped, 4u + 2u + be->kept_mappings(vif));
}

TEST_F(TxRingPages, OnePageWhenTheBackendDoesNotOfferIt) {
  VifOptions vo;
  vo.max_tx_ring_page_order = 0;
  bring_up(vo);
  EXPECT_EQ(nf->tx_ring_size(), netif::kTxRingSize);
  EXPECT_NE(fe_key("tx-ring-ref"), "");
  EXPECT_EQ(fe_key(netif::key::tx_ring_page_order), "");
  EXPECT_EQ(fill_with_gso_frames(100), netif::kTxRingSize / kSlotsPerGsoFrame);
  drain();
  EXPECT_EQ(done.size(), netif::kTxRingSize / kSlotsPerGsoFrame);
}

TEST_F(TxRingPages, TheFrontendMayAskForLess) {
  NetfrontConfig nc;
  nc.tx_ring_page_order = 1;
  bring_up(VifOptions{}, nc);
  EXPECT_EQ(nf->tx_ring_size(), 512u);
  EXPECT_EQ(fill_with_gso_frames(100), 512u / kSlotsPerGsoFrame);
  drain();
  EXPECT_EQ(done.size(), 512u / kSlotsPerGsoFrame);
}

TEST(TxRingPagesHostile, AnOrderAboveTheOfferOrAMissingRefIsRefusedWithNothingMapped) {
  for (int variant = 0; variant < 2; ++variant) {
    Host h;
    ScriptedFrontend fe(*h.hv, DomId{1});
    VifId id = h.be->add_vif(fe.dom(), 0).value();
    h.be->poll_until_idle();
    FrontOptions fo;
    fo.header_slots = false;
    fo.tx_ring_order = 2;
    if (variant == 0) fo.tx_ring_order_key = 3;  // more than offered
    else fo.tx_ring_refs = 3;                     // tx-ring-ref3 missing
    testing::internal::CaptureStderr();
    fe.connect(fo);
    h.be->poll_until_idle();
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find(variant == 0 ? "tx-ring-page-order" : "tx-ring-ref3"), std::string::npos) << log;
    EXPECT_NE(h.be->state(id), XenbusState::Connected) << variant;
    EXPECT_FALSE(h.be->connected(id)) << variant;
    const GrantCounters g = h.grants();
    EXPECT_EQ(g.pages_mapped, g.pages_unmapped) << "variant " << variant << ": no mapping left behind";
  }
}

TEST(TxRingPagesMapper, ContiguousMapIsOneRunAndAllOrNothing) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = hv->attach(kDom0).value();
  auto g = hv->create_domain(DomId{1}, 64 * kPageSize, 64).value();
  ASSERT_TRUE(dom0->mapper().can_map_contiguous());
  std::vector<GrantRef> refs;
  for (uint64_t i = 0; i < 4; ++i) {
    refs.push_back(g->grant_table().grant_access(kDom0, Pfn{10 + i}, false).value());
    g->memory().page(Pfn{10 + i})[0] = std::byte(0xA0 + i);
  }
  std::vector<MapOp> ops;
  for (GrantRef r : refs) ops.push_back(map_op(DomId{1}, r));
  dom0->mapper().map_contiguous(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSERT_EQ(ops[i].status, GntSt::okay);
    EXPECT_EQ(ops[i].addr, ops[0].addr + i * kPageSize);
    EXPECT_EQ(ops[i].addr[0], std::byte(0xA0 + i)) << "page " << i << " is the guest's frame";
  }
  std::vector<UnmapOp> un;
  for (const auto& op : ops) un.push_back(UnmapOp{op.handle});
  dom0->mapper().unmap(un);
  for (GrantRef r : refs) EXPECT_FALSE(g->grant_table().in_use(r));

  // One bad ref in the middle: none of the batch stays mapped or pinned.
  std::vector<MapOp> bad;
  for (size_t i = 0; i < refs.size(); ++i) bad.push_back(map_op(DomId{1}, i == 2 ? GrantRef{60} : refs[i]));
  dom0->mapper().map_contiguous(bad);
  EXPECT_NE(bad[2].status, GntSt::okay);
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_NE(bad[i].status, GntSt::okay) << i;
    EXPECT_EQ(bad[i].addr, nullptr);
  }
  for (GrantRef r : refs) EXPECT_FALSE(g->grant_table().in_use(r));
  for (GrantRef r : refs) EXPECT_TRUE(g->grant_table().end_access(r).ok());
}

TEST(TxRingPagesPool, ContiguousAllocationFindsARunAndFreesPageByPage) {
  auto hv = SimHypervisor::create().value();
  auto g = hv->create_domain(DomId{1}, 16 * kPageSize, 16).value();
  MemoryPagePool pool(g->memory());
  // Take every other of the first 8 frames: the first run of 4 starts at 8.
  std::vector<Pfn> taken;
  for (int i = 0; i < 8; ++i) taken.push_back(*pool.alloc_page());
  for (int i = 0; i < 8; i += 2) pool.free_page(taken[i]);
  auto run = pool.alloc_contiguous(4);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->value, 8u);
  EXPECT_EQ(pool.free_pages(), 16u - 8u + 4u - 4u);
  EXPECT_FALSE(pool.alloc_contiguous(5)) << "frames 12..15 are the only run left";
  for (uint64_t i = 0; i < 4; ++i) pool.free_page(Pfn{run->value + i});
  EXPECT_EQ(pool.free_pages(), 12u);
  EXPECT_TRUE(pool.alloc_contiguous(8));
}

}  // namespace
}  // namespace pvnet::test
