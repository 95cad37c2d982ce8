// A watcher that never drains loses events past kStoreMaxQueuedEvents: they are counted over every watcher ever
// (StoreTree::dropped_events, which `pvnet hypervisor` reports when it stops), also after the watcher is gone.
#include <gtest/gtest.h>

#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {
namespace {

TEST(StoreDroppedEvents, CountedOverEveryWatcherAndKeptAfterItGoes) {
  StoreTree tree;
  auto w = tree.add_watcher();
  ASSERT_TRUE(w);
  ASSERT_TRUE(tree.watch(*w, kDom0, "/x", "t"));
  tree.drain(*w);  // the watch's first event
  EXPECT_EQ(tree.dropped_events(), 0u);
  for (size_t i = 0; i < kStoreMaxQueuedEvents + 7; ++i)
    ASSERT_TRUE(tree.write(kDom0, "/x", std::to_string(i)));
  EXPECT_EQ(tree.dropped_events(), 7u);
  tree.remove_watcher(*w);
  EXPECT_EQ(tree.dropped_events(), 7u);
}

}  // namespace
}  // namespace pvnet
