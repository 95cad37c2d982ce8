// The senders' in-flight bookkeeping (tools/replay/source.hpp): a frame's pages stay out of the guest's pool
// while it is in flight and come back on its TxDone, once; cookies are never reused. Source itself runs under
// every TraceSender and TapFrontend test (tests/replay's leak checks: no page outstanding after teardown).
#include <gtest/gtest.h>

#include <vector>

#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tools/replay/source.hpp"

namespace pvnet::tools {
namespace {

TEST(InFlightFrames, PagesComeBackOnReleaseOnceAndCookiesCountUp) {
  auto hv = SimHypervisor::create().value();
  auto guest = hv->create_domain(DomId{1}, 16 * kPageSize, 32).value();
  MemoryPagePool pool(guest->memory());
  const uint64_t all = pool.free_pages();
  std::vector<std::byte> frame(kPageSize + 100, std::byte{0x5a});  // two pages

  InFlightFrames in_flight;
  const uint64_t a = in_flight.next_cookie(), b = in_flight.next_cookie();
  EXPECT_LT(a, b);
  EXPECT_NE(a, 0u);
  in_flight.hold(a, place_frame(pool, frame).value());
  in_flight.hold(b, place_frame(pool, frame).value());
  EXPECT_EQ(in_flight.size(), 2u);
  EXPECT_EQ(pool.free_pages(), all - 4);

  EXPECT_TRUE(in_flight.release(a));
  EXPECT_EQ(pool.free_pages(), all - 2);
  EXPECT_FALSE(in_flight.release(a));  // a second TxDone for it (or another sender's cookie): nothing to free
  EXPECT_FALSE(in_flight.release(12345));
  EXPECT_EQ(pool.free_pages(), all - 2);
  EXPECT_TRUE(in_flight.release(b));
  EXPECT_TRUE(in_flight.empty());
  EXPECT_EQ(pool.free_pages(), all);
  EXPECT_GT(in_flight.next_cookie(), b);
}

TEST(InFlightFrames, WhatIsStillInFlightGoesBackWhenTheSenderGoes) {
  auto hv = SimHypervisor::create().value();
  auto guest = hv->create_domain(DomId{1}, 16 * kPageSize, 32).value();
  MemoryPagePool pool(guest->memory());
  const uint64_t all = pool.free_pages();
  {
    InFlightFrames in_flight;
    std::vector<std::byte> frame(200, std::byte{1});
    in_flight.hold(in_flight.next_cookie(), place_frame(pool, frame).value());
    EXPECT_EQ(pool.free_pages(), all - 1);
  }
  EXPECT_EQ(pool.free_pages(), all);
}

}  // namespace
}  // namespace pvnet::tools
