// Read permissions in the simulated xenstore, as xenstored has them: owner + per-domain "r"/"b" entries, no
// access for any other domain (dom0 excepted), enforced on read, directory and watch events. And the toolstack
// giving each end of a vif read access to the other's directory (libxl: backend dir n<B> r<F>), without which
// Linux's netfront cannot even probe (docs/xen.md, "The Xen lab").
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "backend/backend.hpp"
#include "backend/toolstack.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {
namespace {

bool has_event(const std::vector<WatchEvent>& ev, const std::string& path) {
  return std::any_of(ev.begin(), ev.end(), [&](const WatchEvent& e) { return e.path == path; });
}

struct Perms : ::testing::Test {
  std::shared_ptr<StoreTree> tree = std::make_shared<StoreTree>();
  std::unique_ptr<Store> dom0 = make_local_store(tree, kDom0).value();
  std::unique_ptr<Store> connect(DomId d) {
    tree->introduce_domain(d);
    return make_local_store(tree, d).value();
  }
};

TEST_F(Perms, AnotherDomainCannotReadListOrSeeChangesOfAnUnpermittedNode) {
  auto d5 = connect(DomId{5});
  ASSERT_TRUE(dom0->write("/local/domain/0/backend/vif/5/0/state", "1"));
  const std::string be = "/local/domain/0/backend/vif/5/0";
  EXPECT_EQ(dom0->get_permissions(be).value(), (NodePerms{kDom0, {}, {}}));  // inherited from dom0's home: n0
  auto r = d5->read(be + "/state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EACCES);
  auto dir = d5->directory(be);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, EACCES);
  EXPECT_EQ(d5->read("/nope").error().code, ENOENT);

  // The registration's own event comes (xenstored does not check it); changes it may not read do not.
  ASSERT_TRUE(d5->watch(be, "be"));
  EXPECT_TRUE(has_event(d5->read_watches(), be));
  ASSERT_TRUE(dom0->write(be + "/state", "2"));
  ASSERT_TRUE(dom0->remove(be + "/state"));
  EXPECT_TRUE(d5->read_watches().empty());
  // dom0 reads everything, the owner its own.
  EXPECT_TRUE(dom0->read("/local/domain/5"));
  ASSERT_TRUE(d5->write("device/vif/0/state", "1"));
  EXPECT_EQ(d5->read("device/vif/0/state").value(), "1");
}

TEST_F(Perms, ReadersReadButDoNotWriteWritersDoBothOthersNothing) {
  auto d5 = connect(DomId{5});
  auto d6 = connect(DomId{6});
  auto d7 = connect(DomId{7});
  const std::string be = "/local/domain/0/backend/vif/5/0";
  ASSERT_TRUE(dom0->write(be + "/state", "1"));
  ASSERT_TRUE(d5->watch(be + "/state", "s"));
  (void)d5->read_watches();
  ASSERT_TRUE(dom0->set_permissions(be, NodePerms{kDom0, {DomId{6}}, {DomId{5}}}));
  ASSERT_TRUE(dom0->set_permissions(be + "/state", NodePerms{kDom0, {DomId{6}}, {DomId{5}}}));
  EXPECT_TRUE(has_event(d5->read_watches(), be + "/state"));  // the permission change, now readable
  EXPECT_EQ(d5->read(be + "/state").value(), "1");
  EXPECT_EQ(d5->directory(be).value(), std::vector<std::string>{"state"});
  EXPECT_EQ(d5->write(be + "/state", "4").error().code, EACCES);
  EXPECT_EQ(d6->read(be + "/state").value(), "1");
  ASSERT_TRUE(d6->write(be + "/state", "2"));
  EXPECT_TRUE(has_event(d5->read_watches(), be + "/state"));
  EXPECT_EQ(d7->read(be + "/state").error().code, EACCES);
  EXPECT_EQ(d7->write(be + "/state", "3").error().code, EACCES);
  // A reader may not hand itself more.
  EXPECT_EQ(d5->set_permissions(be, NodePerms{DomId{5}, {}, {}}).error().code, EACCES);
  // A node created below inherits the readers.
  ASSERT_TRUE(dom0->write(be + "/feature-rx-copy", "1"));
  EXPECT_EQ(d5->read(be + "/feature-rx-copy").value(), "1");
  EXPECT_EQ(d7->read(be + "/feature-rx-copy").error().code, EACCES);
}

TEST_F(Perms, ToolstackGivesEachEndReadAccessToTheOthersDirectoryOnly) {
  auto d5 = connect(DomId{5});
  auto d6 = connect(DomId{6});
  auto paths = toolstack_create_vif(*dom0, kDom0, DomId{5}, 0, "00:16:3e:00:00:05").value();
  EXPECT_EQ(dom0->get_permissions(paths.backend).value(), (NodePerms{kDom0, {}, {DomId{5}}}));       // n0 r5
  EXPECT_EQ(dom0->get_permissions(paths.frontend).value(), (NodePerms{DomId{5}, {}, {kDom0}}));      // n5 r0
  EXPECT_EQ(dom0->get_permissions(paths.backend + "/state").value(), (NodePerms{kDom0, {}, {DomId{5}}}));
  EXPECT_EQ(d5->read(paths.backend + "/state").value(), "1");
  EXPECT_EQ(d5->read(paths.frontend + "/backend").value(), paths.backend);
  EXPECT_EQ(d5->write(paths.backend + "/state", "4").error().code, EACCES);
  ASSERT_TRUE(d5->write(paths.frontend + "/state", "2"));
  // Another guest sees neither.
  EXPECT_EQ(d6->read(paths.backend + "/state").error().code, EACCES);
  EXPECT_EQ(d6->read(paths.frontend + "/state").error().code, EACCES);
}

// The real Backend and Netfront over the permission-checking store: the toolstack's permissions are enough.
struct NetfrontPerms : ::testing::Test {
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<Platform> dom0 = hv->attach(kDom0).value();
  std::unique_ptr<Backend> be = Backend::create(*dom0).value();
  std::unique_ptr<Platform> guest;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Netfront> nf;

  void start(DomId dom, VifId vif) {
    guest = hv->create_domain(dom, 256 * kPageSize, 256).value();
    pool = std::make_unique<MemoryPagePool>(guest->memory(), Pfn{0}, 128);
    NetfrontConfig c;
    c.rx_buffers = 16;
    nf = std::make_unique<Netfront>(*guest, *pool, be->paths(vif).frontend, c);
  }
  bool pump(int rounds) {
    for (int i = 0; i < rounds && !nf->connected(); ++i) {
      be->poll();
      nf->poll();
    }
    return nf->connected();
  }
};

TEST_F(NetfrontPerms, ConnectsWithTheToolstacksPermissions) {
  const DomId d{4};
  auto other = hv->create_domain(DomId{9}, 16 * kPageSize, 16).value();  // a bystander
  VifId vif = be->add_vif(d, 0).value();
  start(d, vif);
  ASSERT_TRUE(pump(2000)) << "netfront state " << static_cast<int>(nf->state()) << " " << nf->error()
                          << ", backend " << to_string(dom0->store().read_state(be->paths(vif).backend));
  EXPECT_TRUE(be->connected(vif));
  EXPECT_EQ(guest->store().read_state(be->paths(vif).backend), XenbusState::Connected);
  EXPECT_EQ(other->store().read(be->paths(vif).backend + "/state").error().code, EACCES);
}

TEST_F(NetfrontPerms, DoesNotConnectWhenItCannotReadTheBackendDirectory) {
  const DomId d{4};
  VifId vif = be->add_vif(d, 0).value();
  const std::string bdir = be->paths(vif).backend;
  // What pvnet's toolstack did before: n0 only, on the directory and everything in it.
  const std::vector<std::string> nodes = dom0->store().directory(bdir).value();
  for (const std::string& n : nodes)
    ASSERT_TRUE(dom0->store().set_permissions(bdir + "/" + n, NodePerms{kDom0, {}, {}}));
  ASSERT_TRUE(dom0->store().set_permissions(bdir, NodePerms{kDom0, {}, {}}));
  start(d, vif);
  EXPECT_EQ(guest->store().read(bdir + "/state").error().code, EACCES);
  EXPECT_FALSE(pump(500));
  EXPECT_FALSE(be->connected(vif));
}

}  // namespace
}  // namespace pvnet
