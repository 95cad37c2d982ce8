// The backend on a host whose toolstack is libxl: the test plays libxl (it writes the vif's directories, takes the
// device offline and removes the directories, as libxl's device add/remove do) and the real Netfront plays the
// guest. The VifAdopter must adopt a new directory and go InitWait, carry traffic, go Closed when libxl takes the
// vif offline (releasing every mapping), never write into a directory libxl removed, adopt the same device again
// after a re-attach, and leave alone what is not its to serve.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "backend/vif_adopter.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"

namespace pvnet::test {
namespace {

constexpr DomId kGuestDom{1};
constexpr DomId kOtherDom{2};
using Kind = VifAdopter::Change::Kind;

class VifAdopterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hv = SimHypervisor::create().value();
    dom0 = hv->attach(kDom0).value();
    libxl = hv->attach(kDom0).value();  // the toolstack's own handle, as xl has
    adopter_store = hv->attach(kDom0).value();
    guest = hv->create_domain(kGuestDom, 4096 * kPageSize, 2048).value();
    other = hv->create_domain(kOtherDom, 256 * kPageSize, 256).value();
    pool = std::make_unique<MemoryPagePool>(guest->memory());
    be = Backend::create(*dom0).value();
    VifAdopter::Options o;
    o.frontends = std::set<uint16_t>{kGuestDom.value};
    adopter = std::make_unique<VifAdopter>(*be, adopter_store->store(), o);
    ASSERT_TRUE(adopter->start());
  }

  // What libxl__device_nic_add writes (both directories, their permissions, libxl's own extra keys).
  VifPaths libxl_attach(DomId dom, const char* mac = "00:16:3e:5a:00:01") {
    auto p = toolstack_create_vif(libxl->store(), kDom0, dom, 0, mac);
    EXPECT_TRUE(p.ok());
    Store& s = libxl->store();
    EXPECT_TRUE(s.write(p->backend + "/script", "/etc/xen/scripts/vif-pvnet"));
    EXPECT_TRUE(s.write(p->backend + "/type", "vif"));
    EXPECT_TRUE(s.write(p->backend + "/mtu", "1400"));
    return *p;
  }
  // libxl__initiate_device_remove: online 0 and Closing together.
  void libxl_detach(const VifPaths& p) {
    ASSERT_TRUE(libxl->store().write(p.backend + "/online", "0"));
    ASSERT_TRUE(libxl->store().switch_state(p.backend, XenbusState::Closing));
  }
  void libxl_destroy(const VifPaths& p) { ASSERT_TRUE(toolstack_destroy_vif(libxl->store(), p)); }

  std::vector<VifAdopter::Change> rescan() {
    (void)adopter_store->store().read_watches();
    return adopter->rescan();
  }
  void pump(int rounds = 200) {
    for (int i = 0; i < rounds; ++i) {
      be->poll();
      if (nf) nf->poll();
    }
  }
  XenbusState be_state(const VifPaths& p) { return libxl->store().read_state(p.backend); }

  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0, libxl, adopter_store, guest, other;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Backend> be;
  std::unique_ptr<VifAdopter> adopter;
  std::unique_ptr<Netfront> nf;
};

TEST_F(VifAdopterTest, NothingToAdoptBeforeLibxlWrites) {
  EXPECT_TRUE(rescan().empty());
  EXPECT_TRUE(be->vifs().empty());
}

TEST_F(VifAdopterTest, AttachTrafficDetachRemove) {
  const VifPaths p = libxl_attach(kGuestDom);
  auto changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::adopted);
  EXPECT_EQ(changes[0].detail, "vif1.0");
  const VifId vif = changes[0].vif;
  // InitWait (what libxl waits for), the features written, libxl's mac and mtu taken, not overwritten.
  EXPECT_EQ(be_state(p), XenbusState::InitWait);
  EXPECT_EQ(libxl->store().read_opt(p.backend + "/feature-rx-copy"), "1");
  EXPECT_EQ(libxl->store().read_opt(p.backend + "/mtu"), "1400");
  EXPECT_EQ(libxl->store().read_opt(p.backend + "/mac"), "00:16:3e:5a:00:01");
  EXPECT_EQ(adopter->served().size(), 1u);
  EXPECT_TRUE(rescan().empty()) << "adopted twice";

  auto sink = std::make_shared<NullSink>();
  ASSERT_TRUE(be->set_sink(vif, sink));
  nf = std::make_unique<Netfront>(*guest, *pool, p.frontend, NetfrontConfig{});
  for (int i = 0; i < 2000 && !(nf->connected() && be->connected(vif)); ++i) pump(1);
  ASSERT_TRUE(nf->connected() && be->connected(vif)) << nf->error();
  EXPECT_TRUE(nf->using_header_slots());
  std::vector<std::byte> frame(600, std::byte{0x5a});
  auto placed = place_frame(*pool, frame);
  ASSERT_TRUE(placed.ok());
  ASSERT_EQ(nf->transmit(placed->pieces()), TxStatus::kQueued);
  pump();
  EXPECT_EQ(sink->packets(), 1u);

  // xl network-detach: the adopter sees online 0 and the backend says Closed at once (libxl waits for it),
  // having released the rings and the kept slot pages.
  libxl_detach(p);
  changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::offline);
  EXPECT_EQ(be_state(p), XenbusState::Closed);
  EXPECT_FALSE(be->connected(vif));
  const GrantCounters g = be->total().grant;
  EXPECT_EQ(g.pages_mapped, g.pages_unmapped) << "a mapping outlived the offline vif";
  pump();
  EXPECT_EQ(nf->state(), NetfrontState::kClosed);
  // A frontend that starts over does not bring a detached device back.
  ASSERT_TRUE(guest->store().switch_state(p.frontend, XenbusState::Initialising));
  pump();
  EXPECT_EQ(be_state(p), XenbusState::Closed);

  // libxl removes both directories once it saw Closed: the vif goes, and nothing is written there again.
  libxl_destroy(p);
  changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::removed);
  EXPECT_TRUE(be->vifs().empty());
  pump();
  EXPECT_FALSE(libxl->store().read_opt(p.backend + "/state")) << "the backend re-created a removed directory";
  EXPECT_FALSE(libxl->store().read_opt(p.frontend + "/state"));
}

TEST_F(VifAdopterTest, DestroyWhileConnectedWritesNothingBack) {
  // xl destroy: libxl removes the directories of a running device without a detach first.
  const VifPaths p = libxl_attach(kGuestDom);
  auto changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  const VifId vif = changes[0].vif;
  nf = std::make_unique<Netfront>(*guest, *pool, p.frontend, NetfrontConfig{});
  for (int i = 0; i < 2000 && !(nf->connected() && be->connected(vif)); ++i) pump(1);
  ASSERT_TRUE(be->connected(vif));
  libxl_destroy(p);
  pump();  // the backend sees its frontend's directory go first
  EXPECT_FALSE(be->connected(vif));
  EXPECT_FALSE(libxl->store().read_opt(p.backend + "/state")) << "the backend re-created a removed directory";
  changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::removed);
  const GrantCounters g = be->total().grant;
  EXPECT_EQ(g.pages_mapped, g.pages_unmapped);
  EXPECT_FALSE(libxl->store().read_opt(p.backend + "/state"));
  nf.reset();
}

TEST_F(VifAdopterTest, ReattachAfterDetachIsANewDevice) {
  VifPaths p = libxl_attach(kGuestDom);
  ASSERT_EQ(rescan().size(), 1u);
  libxl_detach(p);
  // Removed and written again before the adopter looked: the directory says Initialising again.
  libxl_destroy(p);
  p = libxl_attach(kGuestDom, "00:16:3e:5a:00:02");
  auto changes = rescan();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, Kind::removed);
  EXPECT_EQ(changes[1].kind, Kind::adopted);
  EXPECT_EQ(adopter->served().size(), 1u);
  EXPECT_EQ(be_state(p), XenbusState::InitWait);
  nf = std::make_unique<Netfront>(*guest, *pool, p.frontend, NetfrontConfig{});
  for (int i = 0; i < 2000 && !nf->connected(); ++i) pump(1);
  EXPECT_TRUE(nf->connected()) << nf->error();
}

TEST_F(VifAdopterTest, LeavesOtherBackendsAndOtherDomainsAlone) {
  // Domain 2 is not in --frontends; a directory already past Initialising is another backend's.
  const VifPaths p2 = libxl_attach(kOtherDom);
  const VifPaths p1 = libxl_attach(kGuestDom);
  ASSERT_TRUE(libxl->store().switch_state(p1.backend, XenbusState::Connected));
  EXPECT_TRUE(rescan().empty());
  EXPECT_EQ(be_state(p2), XenbusState::Initialising);
  EXPECT_EQ(be_state(p1), XenbusState::Connected);
  // Taken online again by its owner's toolstack later: Initialising and online 1 make it ours.
  ASSERT_TRUE(libxl->store().switch_state(p1.backend, XenbusState::Initialising));
  auto changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::adopted);
}

TEST_F(VifAdopterTest, ABadDirectoryIsRefusedOnceWithItsReason) {
  const VifPaths p = libxl_attach(kGuestDom);
  ASSERT_TRUE(libxl->store().write(p.backend + "/frontend-id", "7"));  // names another domain
  auto changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::refused);
  EXPECT_NE(changes[0].detail.find("frontend-id"), std::string::npos) << changes[0].detail;
  EXPECT_EQ(be_state(p), XenbusState::Initialising);  // libxl times out and says why; we wrote nothing
  EXPECT_TRUE(rescan().empty()) << "refused again";
  ASSERT_TRUE(libxl->store().write(p.backend + "/frontend", "/local/domain/2/device/vif/0"));
  ASSERT_TRUE(libxl->store().write(p.backend + "/frontend-id", "1"));
  EXPECT_TRUE(rescan().empty()) << "still the same refused directory";
  // libxl removes it and writes a correct one: adopted.
  libxl_destroy(p);
  EXPECT_TRUE(rescan().empty());
  libxl_attach(kGuestDom);
  changes = rescan();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::adopted);
}

}  // namespace
}  // namespace pvnet::test
