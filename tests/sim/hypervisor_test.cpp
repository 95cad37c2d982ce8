#include <gtest/gtest.h>

#include <cstring>

#include "grant-sim/sim/sim_hypervisor.hpp"

namespace pvnet {
namespace {

TEST(SimHypervisor, Dom0ExistsAndGuestsGetAStoreHomeTheyOwn) {
  auto hv = SimHypervisor::create().value();
  EXPECT_TRUE(hv->has_domain(kDom0));
  auto dom0 = hv->attach(kDom0).value();
  EXPECT_EQ(dom0->self(), kDom0);
  EXPECT_GT(dom0->memory().nr_pages(), 0u);
  auto guest = hv->create_domain(DomId{1}, 64 * kPageSize, 32).value();
  EXPECT_EQ(guest->memory().nr_pages(), 64u);
  EXPECT_EQ(guest->grant_table().capacity(), 32u);
  ASSERT_TRUE(guest->store().write("device/vif/0/state", "1"));
  EXPECT_EQ(*dom0->store().read("/local/domain/1/device/vif/0/state"), "1");
  EXPECT_EQ(hv->create_domain(DomId{1}, kPageSize, 8).error().code, EEXIST);
  EXPECT_EQ(hv->attach(DomId{9}).error().code, ESRCH);
  EXPECT_EQ(hv->create_domain(DomId{kFirstReservedDomId}, kPageSize, 8).error().code, EINVAL);
}

TEST(SimHypervisor, GrantMapAndCopyThroughPlatforms) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = hv->attach(kDom0).value();
  auto guest = hv->create_domain(DomId{1}, 16 * kPageSize, 16).value();
  auto page = guest->memory().page(Pfn{3});
  ASSERT_EQ(page.size(), kPageSize);
  std::memcpy(page.data(), "hello dom0", 10);
  GrantRef ref = *guest->grant_table().grant_access(kDom0, Pfn{3}, true);

  MapOp op;
  op.dom = DomId{1};
  op.ref = ref;
  dom0->mapper().map(std::span(&op, 1));
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_EQ(std::memcmp(op.addr, "hello dom0", 10), 0);
  EXPECT_TRUE(guest->grant_table().in_use(ref));
  UnmapOp un;
  un.handle = op.handle;
  dom0->mapper().unmap(std::span(&un, 1));
  EXPECT_EQ(un.status, GntSt::okay);

  std::byte buf[10];
  CopyOp c;
  c.src = CopySide::gref(DomId{1}, ref, 0);
  c.dst = CopySide::local(buf);
  c.len = 10;
  dom0->mapper().copy(std::span(&c, 1));
  ASSERT_EQ(c.status, GntSt::okay);
  EXPECT_EQ(std::memcmp(buf, "hello dom0", 10), 0);
}

TEST(SimHypervisor, DestroyRemovesStoreHomeClosesChannelsAndUnknownToMappers) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = hv->attach(kDom0).value();
  auto guest = hv->create_domain(DomId{2}, 4 * kPageSize, 16).value();
  GrantRef ref = *guest->grant_table().grant_access(kDom0, Pfn{0}, true);
  ASSERT_TRUE(guest->store().write("data/x", "1"));
  Port gp = *guest->evtchn().alloc_unbound(kDom0);
  Port bp = *dom0->evtchn().bind_interdomain(DomId{2}, gp);
  ASSERT_TRUE(dom0->evtchn().notify(bp));
  ASSERT_TRUE(dom0->store().watch("@releaseDomain", "rel"));
  (void)dom0->store().read_watches();

  ASSERT_TRUE(hv->destroy_domain(DomId{2}));
  EXPECT_FALSE(hv->has_domain(DomId{2}));
  EXPECT_EQ(dom0->store().read("/local/domain/2").error().code, ENOENT);
  auto ev = dom0->store().read_watches();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].token, "rel");
  EXPECT_EQ(dom0->evtchn().notify(bp).error().code, ENOTCONN);
  MapOp op;
  op.dom = DomId{2};
  op.ref = ref;
  dom0->mapper().map(std::span(&op, 1));
  EXPECT_EQ(op.status, GntSt::bad_domain);
  EXPECT_EQ(hv->destroy_domain(kDom0).error().code, EINVAL);
  EXPECT_EQ(hv->destroy_domain(DomId{2}).error().code, ESRCH);
}

TEST(SimHypervisor, PlatformsMayOutliveTheHypervisorObject) {
  auto hv = SimHypervisor::create().value();
  auto guest = hv->create_domain(DomId{1}, 4 * kPageSize, 16).value();
  hv.reset();
  EXPECT_TRUE(guest->store().write("x", "1"));
  EXPECT_TRUE(guest->grant_table().grant_access(kDom0, Pfn{0}, true));
}

}  // namespace
}  // namespace pvnet
