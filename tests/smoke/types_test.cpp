#include <gtest/gtest.h>

#include "grant-sim/platform/counters.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

TEST(Types, StrongIdsCompareByValue) {
  EXPECT_EQ(GrantRef{7}, GrantRef{7});
  EXPECT_LT(DomId{1}, DomId{2});
}

TEST(Types, ResultCarriesValueOrReason) {
  Result<int> good = 3;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = make_error(22, "bad thing");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, "bad thing");
}

TEST(Types, CountersSubtract) {
  GrantCounters a, b;
  a.pages_mapped = 5;
  b.pages_mapped = 2;
  EXPECT_EQ((a - b).pages_mapped, 3u);
}

}  // namespace pvnet
