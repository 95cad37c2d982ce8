// RX extents (docs/protocol.md 7) between the real Netfront and the real Backend: negotiation, frames landing in
// sub-page owner buffers after the headroom, a bad extent disabling only its vif, and plain netif when the backend
// does not offer the feature.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"

namespace pvnet::test {
namespace {

constexpr uint16_t kHeadroom = 12;
constexpr uint64_t kPoolPages = 512;  // netfront's own pages; owner buffers live above them

std::vector<std::byte> pattern(size_t len, uint8_t seed) {
  std::vector<std::byte> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = std::byte(static_cast<uint8_t>(i * 13 + seed));
  return v;
}

struct Guest {
  std::unique_ptr<Platform> platform;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Netfront> nf;
  std::vector<ReceivedBuffers> frames;
  std::vector<ReceivedFrame> plain;
  std::vector<uint64_t> unused;
  VifId vif{};
};

class RxExtentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hv = SimHypervisor::create().value();
    dom0 = hv->attach(kDom0).value();
    be = Backend::create(*dom0).value();
  }

  // add_vif, optionally hide the feature (a backend without it), then netfront up to Connected.
  void attach(Guest& g, DomId dom, bool extents, bool backend_offers = true) {
    g.platform = hv->create_domain(dom, 1024 * kPageSize, 2048).value();
    g.pool = std::make_unique<MemoryPagePool>(g.platform->memory(), Pfn{0}, kPoolPages);
    g.vif = be->add_vif(dom, 0).value();
    if (!backend_offers) {
      ASSERT_TRUE(dom0->store().write(be->paths(g.vif).backend + "/" + netif::key::feature_rx_extents, "0"));
    }
    NetfrontConfig c;
    c.rx_buffers = 32;
    c.rx_extents = extents;
    c.rx_headroom = kHeadroom;
    c.rx_owner_buffers = true;
    g.nf = std::make_unique<Netfront>(*g.platform, *g.pool, be->paths(g.vif).frontend, c);
    g.nf->on_rx_buffers([&g](ReceivedBuffers&& f) { g.frames.push_back(std::move(f)); });
    g.nf->on_rx([&g](ReceivedFrame&& f) { g.plain.push_back(std::move(f)); });
    g.nf->on_rx_buffer_unused([&g](uint64_t cookie) { g.unused.push_back(cookie); });
    ASSERT_TRUE(pump([&] { return g.nf->connected() && be->connected(g.vif); }));
  }
  template <class F>
  bool pump(F done) {
    for (int i = 0; i < 2000; ++i) {
      if (done()) return true;
      be->poll();
      for (Guest* g : guests)
        if (g->nf) g->nf->poll();
    }
    return done();
  }
  void queue(Guest& g, const std::vector<std::byte>& bytes) {
    RxFrame f;
    f.local = bytes;
    f.len = static_cast<uint32_t>(bytes.size());
    ASSERT_EQ(be->queue_rx(g.vif, std::move(f)), QueueRx::ok);
  }
  // Owner buffers: pieces of pages above the pool, several per page, at odd offsets.
  struct Piece {
    Pfn pfn;
    uint16_t off, len;
  };
  std::vector<Piece> post(Guest& g, const std::vector<Piece>& pieces) {
    for (size_t i = 0; i < pieces.size(); ++i)
      EXPECT_TRUE(g.nf->post_rx_buffer(RxOwnerBuffer{pieces[i].pfn, pieces[i].off, pieces[i].len, 100 + i}));
    g.nf->push_rx_buffers();
    return pieces;
  }
  std::byte* at(Guest& g, Pfn pfn, uint16_t off) { return g.platform->memory().page(pfn).data() + off; }

  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0;
  std::unique_ptr<Backend> be;
  std::vector<Guest*> guests;
};

TEST_F(RxExtentsTest, NegotiatedFrameLandsInOwnerBuffersAfterTheHeadroom) {
  Guest g;
  guests = {&g};
  attach(g, DomId{1}, true);
  ASSERT_TRUE(g.nf->using_rx_extents());
  ASSERT_TRUE(g.nf->rx_owner_mode());
  const std::string fe = be->paths(g.vif).frontend;
  EXPECT_EQ(g.platform->store().read_int(fe + "/" + netif::key::request_rx_extents).value_or(0), 1);
  EXPECT_EQ(g.platform->store().read_int(fe + "/" + netif::key::rx_extent_headroom).value_or(0), kHeadroom);
  const Pfn p{kPoolPages + 10}, q{kPoolPages + 11};
  auto pieces = post(g, {{p, 0x40, 1000}, {p, 0x500, 1000}, {q, 0x900, 1536}, {q, 0x10, 600}});
  const GrantCounters g0 = dom0->mapper().counters();
  const auto frame = pattern(2500, 7);
  queue(g, frame);
  ASSERT_TRUE(pump([&] { return g.frames.size() == 1; }));
  const ReceivedBuffers& r = g.frames[0];
  ASSERT_EQ(r.bufs.size(), 3u);  // 988 + 1000 + 512
  EXPECT_EQ(r.len, frame.size());
  EXPECT_EQ(r.bufs[0].cookie, 100u);
  EXPECT_EQ(r.bufs[0].offset, 0x40 + kHeadroom);
  EXPECT_EQ(r.bufs[0].len, 1000 - kHeadroom);
  EXPECT_EQ(r.bufs[1].offset, 0x500);
  EXPECT_EQ(r.bufs[1].len, 1000);
  EXPECT_EQ(r.bufs[2].offset, 0x900);
  EXPECT_EQ(r.bufs[2].len, 2500 - 988 - 1000);
  std::vector<std::byte> got;
  for (size_t i = 0; i < r.bufs.size(); ++i) {
    const std::byte* d = at(g, pieces[i].pfn, r.bufs[i].offset);
    got.insert(got.end(), d, d + r.bufs[i].len);
  }
  EXPECT_EQ(got, frame);
  // The headroom and the bytes around the extents are untouched (the pages were zero).
  EXPECT_EQ(*at(g, p, 0x40), std::byte{0});
  EXPECT_EQ(*at(g, p, 0x40 + kHeadroom - 1), std::byte{0});
  EXPECT_EQ(*at(g, p, 0x500 - 1), std::byte{0});
  EXPECT_EQ(g.nf->counters().rx_copy_bytes, 0u);  // netfront copied nothing
  const GrantCounters g1 = dom0->mapper().counters();
  EXPECT_EQ(g1.pages_mapped - g0.pages_mapped, 0u);
  EXPECT_EQ(g1.grant_copy_bytes - g0.grant_copy_bytes, frame.size());
  // The 4th buffer stays posted for the next frame, which starts in it after the headroom.
  const auto second = pattern(300, 9);
  queue(g, second);
  ASSERT_TRUE(pump([&] { return g.frames.size() == 2; }));
  ASSERT_EQ(g.frames[1].bufs.size(), 1u);
  EXPECT_EQ(g.frames[1].bufs[0].cookie, 103u);
  EXPECT_EQ(g.frames[1].bufs[0].offset, 0x10 + kHeadroom);
  EXPECT_EQ(std::memcmp(at(g, q, 0x10 + kHeadroom), second.data(), second.size()), 0);
  EXPECT_FALSE(be->disabled(g.vif));
}

TEST_F(RxExtentsTest, BadExtentDisablesOnlyThatVif) {
  Guest bad, good;
  guests = {&bad, &good};
  attach(bad, DomId{1}, true);
  attach(good, DomId{2}, true);
  const Pfn p{kPoolPages + 3};
  post(bad, {{p, 0x123, 0x456}});
  post(good, {{p, 0x100, 2000}});
  // The guest rewrites its extents table behind netfront's back: find entry 0x123/0x456 in its pool pages.
  netif::RxExtent* entry = nullptr;
  for (uint64_t pfn = 0; pfn < kPoolPages && !entry; ++pfn) {
    auto* t = reinterpret_cast<netif::RxExtent*>(bad.platform->memory().page(Pfn{pfn}).data());
    for (uint32_t i = 0; i < netif::kRxRingSize; ++i)
      if (t[i].offset == 0x123 && t[i].length == 0x456) entry = &t[i];
  }
  ASSERT_NE(entry, nullptr);
  entry->offset = 4000;  // 4000 + 0x456 runs past the page
  queue(bad, pattern(200, 1));
  queue(good, pattern(200, 2));
  ASSERT_TRUE(pump([&] { return good.frames.size() == 1 && be->disabled(bad.vif); }));
  EXPECT_TRUE(be->disabled(bad.vif));
  EXPECT_EQ(be->counters(bad.vif).tx_fatal_errors, 1u);
  EXPECT_TRUE(bad.frames.empty());
  EXPECT_FALSE(be->disabled(good.vif));
  EXPECT_EQ(std::memcmp(at(good, p, 0x100 + kHeadroom), pattern(200, 2).data(), 200), 0);
}

TEST_F(RxExtentsTest, ExtentInsideTheHeadroomIsAViolationToo) {
  Guest g;
  guests = {&g};
  attach(g, DomId{1}, true);
  post(g, {{Pfn{kPoolPages + 1}, 0x222, 0x333}});
  netif::RxExtent* entry = nullptr;
  for (uint64_t pfn = 0; pfn < kPoolPages && !entry; ++pfn) {
    auto* t = reinterpret_cast<netif::RxExtent*>(g.platform->memory().page(Pfn{pfn}).data());
    if (t[0].offset == 0x222 && t[0].length == 0x333) entry = &t[0];
  }
  ASSERT_NE(entry, nullptr);
  entry->length = kHeadroom;  // no room for a byte after the headroom
  queue(g, pattern(100, 3));
  ASSERT_TRUE(pump([&] { return be->disabled(g.vif); }));
  EXPECT_TRUE(g.frames.empty());
}

TEST_F(RxExtentsTest, WithoutTheBackendFeatureNetfrontSpeaksPlainNetif) {
  Guest g;
  guests = {&g};
  attach(g, DomId{1}, /*extents=*/true, /*backend_offers=*/false);
  EXPECT_FALSE(g.nf->using_rx_extents());
  EXPECT_FALSE(g.nf->rx_owner_mode());
  EXPECT_FALSE(g.nf->post_rx_buffer(RxOwnerBuffer{Pfn{kPoolPages + 1}, 0, 1000, 1}));
  EXPECT_FALSE(g.platform->store().read_opt(be->paths(g.vif).frontend + "/" + netif::key::request_rx_extents));
  const auto frame = pattern(6000, 4);
  queue(g, frame);
  ASSERT_TRUE(pump([&] { return g.plain.size() == 1; }));
  EXPECT_EQ(g.plain[0].data, frame);  // whole pages from offset 0, copied out by netfront
  EXPECT_TRUE(g.frames.empty());
}

TEST_F(RxExtentsTest, ExtentsWithNetfrontsOwnPagesAndGsoExtra) {
  // Not owner mode: netfront posts whole pages as extents {0, 4096}; data starts after the headroom.
  Guest g;
  guests = {&g};
  g.platform = hv->create_domain(DomId{1}, 1024 * kPageSize, 2048).value();
  g.pool = std::make_unique<MemoryPagePool>(g.platform->memory(), Pfn{0}, kPoolPages);
  g.vif = be->add_vif(DomId{1}, 0).value();
  NetfrontConfig c;
  c.rx_buffers = 32;
  c.rx_extents = true;
  c.rx_headroom = 64;
  g.nf = std::make_unique<Netfront>(*g.platform, *g.pool, be->paths(g.vif).frontend, c);
  g.nf->on_rx([&g](ReceivedFrame&& f) { g.plain.push_back(std::move(f)); });
  ASSERT_TRUE(pump([&] { return g.nf->connected() && be->connected(g.vif); }));
  ASSERT_TRUE(g.nf->using_rx_extents());
  RxFrame f;
  f.local = pattern(20000, 6);
  f.len = 20000;
  f.gso.type = netif::gso_type::tcpv4;
  f.gso.size = 1448;
  f.rx_flags = netif::rxf::csum_blank;
  ASSERT_EQ(be->queue_rx(g.vif, std::move(f)), QueueRx::ok);
  ASSERT_TRUE(pump([&] { return g.plain.size() == 1; }));
  EXPECT_EQ(g.plain[0].data, pattern(20000, 6));
  EXPECT_EQ(g.plain[0].gso_type, netif::gso_type::tcpv4);
  EXPECT_EQ(g.plain[0].gso_size, 1448);
  EXPECT_EQ(g.nf->counters().rx_errors, 0u);
  EXPECT_EQ(g.nf->counters().bad_responses, 0u);
  EXPECT_FALSE(be->disabled(g.vif));
}

}  // namespace
}  // namespace pvnet::test
