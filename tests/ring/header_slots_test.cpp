#include "shared-ring/header_slots.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "shared-ring/netif.hpp"

namespace pvnet {
namespace {

TEST(HeaderSlotGeometry, AcceptsOnlyPowerOfTwoSizesInRange) {
  for (uint32_t size : {0u, 1u, 32u, 63u, 96u, 100u, 129u, 3000u, 4096u, 8192u})
    EXPECT_FALSE(HeaderSlotGeometry::make(size, 1).ok()) << size;
  for (uint32_t size : {64u, 128u, 256u, 512u, 1024u, 2048u}) {
    auto g = HeaderSlotGeometry::make(size, 3);
    ASSERT_TRUE(g.ok()) << size;
    EXPECT_EQ(g->slot_size(), size);
    EXPECT_EQ(g->slots_per_page() * size, kPageSize);
    EXPECT_EQ(g->nr_slots(), 3 * kPageSize / size);
  }
  EXPECT_FALSE(HeaderSlotGeometry::make(netif::kHeaderSlotSizeDefault, 0).ok());
  EXPECT_TRUE(HeaderSlotGeometry::make(netif::kHeaderSlotSizeDefault, 1).ok());
}

TEST(HeaderSlotGeometry, IndexAndLocationRoundTrip) {
  for (uint32_t size : {64u, 128u, 2048u}) {
    const HeaderSlotGeometry g = *HeaderSlotGeometry::make(size, 4);
    std::set<std::pair<uint32_t, uint32_t>> seen;
    for (uint32_t i = 0; i < g.nr_slots(); ++i) {
      const SlotLocation loc = g.locate(SlotIndex{i});
      EXPECT_LT(loc.page_index, 4u);
      EXPECT_EQ(loc.offset % size, 0u);
      EXPECT_LE(loc.offset + size, kPageSize);
      EXPECT_TRUE(seen.insert({loc.page_index, loc.offset}).second) << "two slots at one place";
      auto back = g.index_of(loc.page_index, loc.offset);
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(back->value, i);
      EXPECT_TRUE(g.validate(loc.offset, size).ok());
    }
    EXPECT_FALSE(g.index_of(4, 0).ok());         // page out of range
    EXPECT_FALSE(g.index_of(0, size / 2).ok());  // not aligned
    EXPECT_FALSE(g.index_of(0, kPageSize).ok());
  }
}

TEST(HeaderSlotGeometry, ValidateRejectsWhatABackendMustNotCopy) {
  const HeaderSlotGeometry g = *HeaderSlotGeometry::make(128, 1);
  EXPECT_TRUE(g.validate(0, 1).ok());
  EXPECT_TRUE(g.validate(0, 128).ok());
  EXPECT_TRUE(g.validate(4096 - 128, 128).ok());
  EXPECT_FALSE(g.validate(0, 0).ok());
  EXPECT_FALSE(g.validate(0, 129).ok());           // spills into the next packet's slot
  EXPECT_FALSE(g.validate(64, 64).ok());           // not slot aligned
  EXPECT_FALSE(g.validate(4096, 1).ok());          // outside the page
  EXPECT_FALSE(g.validate(65535, 65535).ok());
  EXPECT_FALSE(g.validate(4096 - 128, 129).ok());  // would run off the page
  auto e = g.validate(0, 200);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().reason.find("200"), std::string::npos) << e.error().reason;
}

TEST(SlotAllocator, AllocatesEverySlotOnceThenRunsOut) {
  SlotAllocator a(64);
  std::set<uint32_t> got;
  for (int i = 0; i < 64; ++i) {
    auto s = a.alloc();
    ASSERT_TRUE(s.has_value());
    EXPECT_LT(s->value, 64u);
    EXPECT_TRUE(got.insert(s->value).second);
    EXPECT_TRUE(a.is_in_use(*s));
  }
  EXPECT_FALSE(a.alloc().has_value());
  EXPECT_EQ(a.in_use(), 64u);
  EXPECT_EQ(a.high_water(), 64u);
  ASSERT_TRUE(a.free(SlotIndex{17}).ok());
  EXPECT_FALSE(a.is_in_use(SlotIndex{17}));
  auto s = a.alloc();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->value, 17u);
}

TEST(SlotAllocator, RefusesDoubleFreeAndOutOfRange) {
  SlotAllocator a(8);
  const SlotIndex s = *a.alloc();
  ASSERT_TRUE(a.free(s).ok());
  auto again = a.free(s);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().reason.find("double free"), std::string::npos);
  EXPECT_FALSE(a.free(SlotIndex{8}).ok());
  EXPECT_FALSE(a.free(SlotIndex{UINT32_MAX}).ok());
  EXPECT_FALSE(a.free(SlotIndex{3}).ok());  // never allocated
  // The refused frees did not corrupt the free list: still exactly 8 distinct slots to hand out.
  std::set<uint32_t> got;
  while (auto n = a.alloc()) got.insert(n->value);
  EXPECT_EQ(got.size(), 8u);
  EXPECT_EQ(a.in_use(), 8u);
}

TEST(SlotAllocator, RandomUseMatchesAModel) {
  SlotAllocator a(256);
  std::set<uint32_t> model;
  std::mt19937 g(42);
  uint32_t high = 0;
  for (int step = 0; step < 100000; ++step) {
    if (g() % 2 == 0) {
      auto s = a.alloc();
      if (model.size() == 256) {
        EXPECT_FALSE(s.has_value());
      } else {
        ASSERT_TRUE(s.has_value());
        ASSERT_TRUE(model.insert(s->value).second) << "slot " << s->value << " handed out twice";
      }
    } else if (!model.empty()) {
      auto it = model.begin();
      std::advance(it, g() % model.size());
      ASSERT_TRUE(a.free(SlotIndex{*it}).ok());
      model.erase(it);
    }
    high = std::max<uint32_t>(high, static_cast<uint32_t>(model.size()));
    ASSERT_EQ(a.in_use(), model.size());
  }
  EXPECT_EQ(a.high_water(), high);
}

}  // namespace
}  // namespace pvnet
