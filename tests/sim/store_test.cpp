#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>

#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

struct StoreFixture : ::testing::Test {
  std::shared_ptr<StoreTree> tree = std::make_shared<StoreTree>();
  std::unique_ptr<Store> dom0 = make_local_store(tree, kDom0).value();
  std::unique_ptr<Store> connect(DomId d) { return make_local_store(tree, d).value(); }
};

TEST_F(StoreFixture, ReadWriteCreatesParentsAndDirectoryListsChildren) {
  ASSERT_TRUE(dom0->write("/a/b/c", "1"));
  EXPECT_EQ(*dom0->read("/a/b/c"), "1");
  EXPECT_EQ(*dom0->read("/a/b"), "");
  ASSERT_TRUE(dom0->write("/a/b/d", "2"));
  ASSERT_TRUE(dom0->write("/a/b-x", "3"));  // sorts between "/a/b" and "/a/b/" : must not be taken as a child
  auto dir = dom0->directory("/a/b");
  ASSERT_TRUE(dir);
  EXPECT_EQ(*dir, (std::vector<std::string>{"c", "d"}));
  auto missing = dom0->read("/a/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
}

TEST_F(StoreFixture, RemoveTakesTheSubtreeOnly) {
  ASSERT_TRUE(dom0->write("/a/b/c", "1"));
  ASSERT_TRUE(dom0->write("/a/b-x", "2"));
  ASSERT_TRUE(dom0->write("/a/b.y/z", "3"));
  ASSERT_TRUE(dom0->remove("/a/b"));
  EXPECT_FALSE(dom0->read("/a/b"));
  EXPECT_FALSE(dom0->read("/a/b/c"));
  EXPECT_EQ(*dom0->read("/a/b-x"), "2");
  EXPECT_EQ(*dom0->read("/a/b.y/z"), "3");
  EXPECT_EQ(*dom0->directory("/a"), (std::vector<std::string>{"b-x", "b.y"}));
  EXPECT_EQ(dom0->remove("/a/b").error().code, ENOENT);
}

TEST_F(StoreFixture, MalformedPathsAndOversizeValuesAreRejected) {
  EXPECT_EQ(dom0->write("/a//b", "x").error().code, EINVAL);
  EXPECT_EQ(dom0->write("/a/b/", "x").error().code, EINVAL);
  EXPECT_EQ(dom0->write("/a/b c", "x").error().code, EINVAL);
  EXPECT_EQ(dom0->write("", "x").error().code, EINVAL);
  EXPECT_EQ(dom0->write("/big", std::string(kStoreMaxValue + 1, 'v')).error().code, E2BIG);
  EXPECT_EQ(dom0->remove("/").error().code, EINVAL);
}

TEST_F(StoreFixture, RelativePathsAreUnderTheDomainsHome) {
  tree->introduce_domain(DomId{3});
  auto d3 = connect(DomId{3});
  ASSERT_TRUE(d3->write("device/vif/0/state", "1"));
  EXPECT_EQ(*dom0->read("/local/domain/3/device/vif/0/state"), "1");
  EXPECT_EQ(*d3->read("device/vif/0/state"), "1");
}

TEST_F(StoreFixture, WatchFiresAtRegistrationOnChildChangeNotOnSibling) {
  ASSERT_TRUE(dom0->write("/x/watched", ""));
  ASSERT_TRUE(dom0->watch("/x/watched", "tok"));
  EXPECT_TRUE(readable(dom0->watch_fd()));
  auto ev = dom0->read_watches();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].path, "/x/watched");
  EXPECT_EQ(ev[0].token, "tok");
  EXPECT_FALSE(readable(dom0->watch_fd()));

  ASSERT_TRUE(dom0->write("/x/watched-not", "sibling with a common prefix"));
  ASSERT_TRUE(dom0->write("/x/other", "sibling"));
  EXPECT_FALSE(readable(dom0->watch_fd()));
  EXPECT_TRUE(dom0->read_watches().empty());

  ASSERT_TRUE(dom0->write("/x/watched/child/grandchild", "v"));
  ev = dom0->wait_watches(1000);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].path, "/x/watched/child/grandchild");
}

TEST_F(StoreFixture, RemoveFiresWatchesAtAndBelowTheRemovedNode) {
  ASSERT_TRUE(dom0->write("/r/a/b", "1"));
  ASSERT_TRUE(dom0->watch("/r/a/b", "below"));
  ASSERT_TRUE(dom0->watch("/r", "above"));
  (void)dom0->read_watches();
  ASSERT_TRUE(dom0->remove("/r/a"));
  auto ev = dom0->read_watches();
  ASSERT_EQ(ev.size(), 2u);
  std::sort(ev.begin(), ev.end(), [](auto& a, auto& b) { return a.token < b.token; });
  EXPECT_EQ(ev[0].token, "above");
  EXPECT_EQ(ev[0].path, "/r/a");
  EXPECT_EQ(ev[1].token, "below");
  EXPECT_EQ(ev[1].path, "/r/a/b");
}

TEST_F(StoreFixture, UnwatchStopsEventsAndDuplicateWatchIsRefused) {
  ASSERT_TRUE(dom0->watch("/u", "t"));
  EXPECT_EQ(dom0->watch("/u", "t").error().code, EEXIST);
  ASSERT_TRUE(dom0->unwatch("/u", "t"));
  (void)dom0->read_watches();
  ASSERT_TRUE(dom0->write("/u/v", "1"));
  EXPECT_TRUE(dom0->read_watches().empty());
  EXPECT_EQ(dom0->unwatch("/u", "t").error().code, ENOENT);
}

TEST_F(StoreFixture, WatchesOfADestroyedConnectionGo) {
  auto other = connect(kDom0);
  ASSERT_TRUE(other->watch("/w", "t"));
  other.reset();
  ASSERT_TRUE(dom0->write("/w", "1"));  // must not touch the freed watcher
  SUCCEED();
}

TEST_F(StoreFixture, PermissionsOwnerWritersAndDom0) {
  tree->introduce_domain(DomId{1});
  tree->introduce_domain(DomId{2});
  auto d1 = connect(DomId{1});
  auto d2 = connect(DomId{2});
  // A guest owns its home.
  ASSERT_TRUE(d1->write("/local/domain/1/device/vif/0/state", "1"));
  // And may not write another guest's or dom0's.
  auto denied = d2->write("/local/domain/1/device/vif/0/state", "5");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, EACCES);
  EXPECT_EQ(d1->write("/local/domain/0/backend/x", "1").error().code, EACCES);
  EXPECT_EQ(d2->remove("/local/domain/1").error().code, EACCES);
  EXPECT_EQ(*dom0->read("/local/domain/1/device/vif/0/state"), "1");
  // dom0 may do anything; a node it creates under a guest's home stays the guest's.
  ASSERT_TRUE(dom0->write("/local/domain/1/device/vif/0/backend", "/local/domain/0/backend/vif/1/0"));
  EXPECT_EQ(dom0->get_permissions("/local/domain/1/device/vif/0/backend")->owner, DomId{1});
  // The toolstack's backend dir: owned by dom0, writable by nobody else until dom0 grants it.
  ASSERT_TRUE(dom0->write("/local/domain/0/backend/vif/1/0/state", "1"));
  EXPECT_EQ(d1->write("/local/domain/0/backend/vif/1/0/state", "4").error().code, EACCES);
  ASSERT_TRUE(dom0->set_permissions("/local/domain/0/backend/vif/1/0/state", NodePerms{kDom0, {DomId{1}}}));
  EXPECT_TRUE(d1->write("/local/domain/0/backend/vif/1/0/state", "4"));
  EXPECT_EQ(d2->write("/local/domain/0/backend/vif/1/0/state", "4").error().code, EACCES);
  // Only dom0 or the owner may chmod.
  EXPECT_EQ(d2->set_permissions("/local/domain/1", NodePerms{DomId{2}, {}}).error().code, EACCES);
  // A node a guest creates is the guest's.
  EXPECT_EQ(dom0->get_permissions("/local/domain/1/device")->owner, DomId{1});
}

TEST_F(StoreFixture, XenbusStateHelpers) {
  const std::string dir = "/local/domain/0/backend/vif/1/0";
  EXPECT_EQ(dom0->read_state(dir), XenbusState::Unknown);
  ASSERT_TRUE(dom0->switch_state(dir, XenbusState::InitWait));
  EXPECT_EQ(*dom0->read(dir + "/state"), "2");
  EXPECT_EQ(dom0->read_state(dir), XenbusState::InitWait);
  ASSERT_TRUE(dom0->write(dir + "/state", "banana"));
  EXPECT_EQ(dom0->read_state(dir), XenbusState::Unknown);
  ASSERT_TRUE(dom0->write(dir + "/state", "42"));
  EXPECT_EQ(dom0->read_state(dir), XenbusState::Unknown);
  ASSERT_TRUE(dom0->write_int(dir + "/tx-ring-ref", 8));
  EXPECT_EQ(dom0->read_int(dir + "/tx-ring-ref"), 8);
  EXPECT_EQ(dom0->read_opt(dir + "/none"), std::nullopt);
  // A state switch is a write: a watch on the other end's dir sees it.
  ASSERT_TRUE(dom0->watch(dir, "be"));
  (void)dom0->read_watches();
  ASSERT_TRUE(dom0->switch_state(dir, XenbusState::Connected));
  auto ev = dom0->read_watches();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].path, dir + "/state");
  EXPECT_EQ(dom0->read_state(dir), XenbusState::Connected);
}

TEST_F(StoreFixture, IntroduceAndReleaseDomainFireSpecialWatches) {
  ASSERT_TRUE(dom0->watch("@releaseDomain", "rel"));
  ASSERT_TRUE(dom0->watch("@introduceDomain", "intro"));
  ASSERT_TRUE(dom0->watch("/local/domain/7", "home"));
  (void)dom0->read_watches();
  tree->introduce_domain(DomId{7});
  auto ev = dom0->read_watches();
  EXPECT_EQ(ev.size(), 2u);
  auto d7 = connect(DomId{7});
  ASSERT_TRUE(d7->write("data/x", "1"));
  (void)dom0->read_watches();
  tree->release_domain(DomId{7});
  ev = dom0->read_watches();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(std::any_of(ev.begin(), ev.end(), [](auto& e) { return e.token == "rel"; }));
  EXPECT_FALSE(dom0->read("/local/domain/7"));
}

TEST_F(StoreFixture, EventQueueIsBounded) {
  ASSERT_TRUE(dom0->watch("/flood", "t"));
  for (size_t i = 0; i < kStoreMaxQueuedEvents + 10; ++i) ASSERT_TRUE(dom0->write("/flood", "x"));
  EXPECT_EQ(dom0->read_watches().size(), kStoreMaxQueuedEvents);
}

}  // namespace
}  // namespace pvnet
