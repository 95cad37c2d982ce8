// The toolstack's vif directories (backend/toolstack.hpp) go when their vif goes, and so does the frontend domain's
// directory under dom0's backend/vif once its last vif is gone, as libxl's device removal cleans up empty parents
// (libxl__xs_path_cleanup): a host that has run many guests keeps no node per guest that is no more.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "backend/backend.hpp"
#include "backend/toolstack.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"

namespace pvnet::test {
namespace {

const std::string kVifRoot = "/local/domain/0/backend/vif";

bool has_child(Store& s, const std::string& dir, const std::string& name) {
  auto d = s.directory(dir);
  return d && std::find(d->begin(), d->end(), name) != d->end();
}

TEST(Toolstack, TheDomainsBackendDirectoryGoesWithItsLastVif) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = hv->attach(kDom0).value();
  Store& s = dom0->store();
  const VifPaths a0 = toolstack_create_vif(s, kDom0, DomId{5}, 0, "00:16:3e:00:00:05").value();
  const VifPaths a1 = toolstack_create_vif(s, kDom0, DomId{5}, 1, "00:16:3e:00:01:05").value();
  const VifPaths b0 = toolstack_create_vif(s, kDom0, DomId{6}, 0, "00:16:3e:00:00:06").value();

  ASSERT_TRUE(toolstack_destroy_vif(s, a0).ok());
  EXPECT_FALSE(s.read_opt(a0.backend));
  EXPECT_TRUE(has_child(s, kVifRoot, "5")) << "domain 5 still has vif 1";
  ASSERT_TRUE(toolstack_destroy_vif(s, a1).ok());
  EXPECT_FALSE(has_child(s, kVifRoot, "5")) << "an empty " << kVifRoot << "/5 is left";
  EXPECT_TRUE(s.read_opt(b0.backend + "/state")) << "another domain's vif is untouched";
  ASSERT_TRUE(toolstack_destroy_vif(s, b0).ok());
  EXPECT_FALSE(has_child(s, kVifRoot, "6"));
}

TEST(Toolstack, ManyGuestsComeAndGoAndLeaveNoNodeBehind) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = hv->attach(kDom0).value();
  auto be = Backend::create(*dom0).value();
  for (uint16_t d = 1; d <= 300; ++d) {
    auto guest = hv->create_domain(DomId{d}, 16 * kPageSize, 64).value();
    VifId v = be->add_vif(DomId{d}, 0).value();
    be->poll_until_idle();
    ASSERT_TRUE(be->remove_vif(v).ok());
    ASSERT_TRUE(hv->destroy_domain(DomId{d}).ok());
  }
  be->poll_until_idle();
  auto left = dom0->store().directory(kVifRoot);
  EXPECT_TRUE(!left || left->empty()) << left->size() << " nodes left under " << kVifRoot << ", first "
                                      << left->front();
}

}  // namespace
}  // namespace pvnet::test
