#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tests/frontend/frames.hpp"

namespace pvnet::test {
namespace {

TEST(PagePool, HandsOutEachFrameOnceAndTakesThemBack) {
  auto hv = SimHypervisor::create().value();
  auto guest = hv->create_domain(DomId{3}, 16 * kPageSize, 16).value();
  MemoryPagePool pool(guest->memory(), Pfn{4}, 8);
  std::set<uint64_t> seen;
  for (int i = 0; i < 8; ++i) {
    auto p = pool.alloc_page();
    ASSERT_TRUE(p);
    EXPECT_GE(p->value, 4u);
    EXPECT_LT(p->value, 12u);
    EXPECT_TRUE(seen.insert(p->value).second);
  }
  EXPECT_FALSE(pool.alloc_page());
  EXPECT_EQ(pool.free_pages(), 0u);
  pool.free_page(Pfn{7});
  EXPECT_EQ(pool.alloc_page()->value, 7u);
}

TEST(PagePool, PlaceFrameCopiesAndCutsAtPagesAndPieceSize) {
  auto hv = SimHypervisor::create().value();
  auto guest = hv->create_domain(DomId{3}, 64 * kPageSize, 16).value();
  MemoryPagePool pool(guest->memory());
  auto bytes = make_frame(10000);
  {
    auto pf = place_frame(pool, bytes, 100, 3000).value();
    EXPECT_EQ(pf.size(), 10000u);
    EXPECT_EQ(pf.pages().size(), 3u);
    size_t at = 0;
    for (const auto& piece : pf.pieces()) {
      EXPECT_LE(piece.offset + piece.len, kPageSize);
      EXPECT_LE(piece.len, 3000u);
      EXPECT_EQ(std::memcmp(pool.page(piece.pfn).data() + piece.offset, bytes.data() + at, piece.len), 0);
      at += piece.len;
    }
    EXPECT_EQ(at, bytes.size());
    EXPECT_EQ(pool.free_pages(), 61u);
  }
  EXPECT_EQ(pool.free_pages(), 64u);
  MemoryPagePool tiny(guest->memory(), Pfn{0}, 1);
  EXPECT_FALSE(place_frame(tiny, bytes).ok());
  EXPECT_EQ(tiny.free_pages(), 1u);
}

}  // namespace
}  // namespace pvnet::test
