// The backend daemon's toolstack (tools/daemons/domain_rescan.hpp, backend_daemon.hpp): a vif for every guest
// domain that appears, with its MAC, removed when the domain goes; --frontends limits which; dom0 never gets one.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/backend.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tools/daemons/backend_daemon.hpp"
#include "tools/daemons/domain_rescan.hpp"

namespace pvnet::tools {
namespace {

struct Rescan : ::testing::Test {
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<Platform> dom0 = hv->attach(kDom0).value();
  std::unique_ptr<Backend> backend = Backend::create(*dom0, BackendOptions{}).value();
  std::map<uint16_t, VifId> vifs;
  std::vector<std::unique_ptr<Platform>> guests;

  void create(uint16_t dom) { guests.push_back(hv->create_domain(DomId{dom}, 64 * kPageSize, 32).value()); }
  RescanResult rescan(const ToolstackOptions& o = {}) { return rescan_domains(*backend, vifs, hv->domains(), o); }
};

TEST_F(Rescan, EveryGuestDomainGetsAVifWithItsMacAndDom0None) {
  create(1);
  create(0x123);
  ToolstackOptions o;
  o.vif.mtu = 1500;
  const RescanResult r = rescan(o);
  EXPECT_TRUE(r.removed.empty());
  EXPECT_EQ(r.added, (std::vector<std::string>{"vif1.0", "vif291.0"}));
  ASSERT_EQ(vifs.size(), 2u);
  EXPECT_FALSE(vifs.count(0));
  // The toolstack's directory says the MAC: Xen's OUI, then the domain id.
  auto mac = dom0->store().read("/local/domain/0/backend/vif/291/0/mac");
  ASSERT_TRUE(mac.ok()) << mac.error().reason;
  EXPECT_EQ(*mac, "00:16:3e:00:01:23");
  EXPECT_EQ(vif_mac(1), "00:16:3e:00:00:01");
  EXPECT_EQ(vif_mac(0x7fef), "00:16:3e:00:7f:ef");
  // Nothing changed: nothing to do.
  EXPECT_FALSE(rescan(o).changed());
}

TEST_F(Rescan, ADomainThatGoesLosesItsVifAndItsDirectories) {
  create(1);
  create(2);
  ASSERT_EQ(rescan().added.size(), 2u);
  ASSERT_TRUE(hv->destroy_domain(DomId{1}));
  const RescanResult r = rescan();
  EXPECT_EQ(r.removed, std::vector<std::string>{"vif1.0"});
  EXPECT_TRUE(r.added.empty());
  EXPECT_EQ(vifs.size(), 1u);
  EXPECT_TRUE(vifs.count(2));
  EXPECT_FALSE(dom0->store().read_opt("/local/domain/0/backend/vif/1/0"));
  EXPECT_EQ(backend->vifs().size(), 1u);
}

TEST_F(Rescan, OnlyTheListedFrontendsGetAVif) {
  create(1);
  create(2);
  create(3);
  ToolstackOptions o;
  o.frontends = std::set<uint16_t>{2, 9};
  const RescanResult r = rescan(o);
  EXPECT_EQ(r.added, std::vector<std::string>{"vif2.0"});
  EXPECT_EQ(vifs.size(), 1u);
}

TEST_F(Rescan, OnXenTheDomainsAreTheStoresNumericNames) {
  ASSERT_TRUE(dom0->store().write("/local/domain/0/name", "Domain-0"));
  ASSERT_TRUE(dom0->store().write("/local/domain/5/name", "guest"));
  ASSERT_TRUE(dom0->store().write("/local/domain/pool/name", "not a domain"));
  ASSERT_TRUE(dom0->store().write("/local/domain/32752/name", "reserved"));  // DOMID_FIRST_RESERVED
  std::vector<DomId> d = store_domains(dom0->store());
  std::vector<uint16_t> ids;
  for (DomId x : d) ids.push_back(x.value);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint16_t>{0, 5}));
}

TEST(BackendDaemonOptions, WhatTheCommandLineSaysIsCheckedAndFilledIn) {
  DaemonOptions o;
  o.socket = "/tmp/hv.sock";
  BackendDaemonArgs a;
  a.forward = {"1:2", "2:1"};
  a.frontends = "1,2";
  a.toolstack = "libxl";
  ASSERT_TRUE(resolve_backend_options(a, o).ok());
  EXPECT_TRUE(o.libxl);
  EXPECT_FALSE(o.xen);
  EXPECT_EQ(o.forward, (std::map<uint16_t, uint16_t>{{1, 2}, {2, 1}}));
  EXPECT_EQ(o.frontends, (std::set<uint16_t>{1, 2}));
  EXPECT_EQ(o.tap_addrs, (std::vector<std::string>{"198.18.0.254/24", "fd00::fe/64"}));

  DaemonOptions served;  // --socket given
  served.socket = "s";
  auto refused = [](BackendDaemonArgs args, DaemonOptions opt) {
    auto r = resolve_backend_options(args, opt);
    return r.ok() ? std::string("accepted") : r.error().reason;
  };
  DaemonOptions both = o;
  both.attach = "/tmp/other.sock";
  EXPECT_NE(refused(BackendDaemonArgs{}, both).find("give one of --socket"), std::string::npos);
  BackendDaemonArgs bad;
  bad.forward = {"1:0"};
  EXPECT_EQ(refused(bad, served), "--forward '1:0' is not A:B (two guest domain ids)");
  bad = {};
  bad.frontends = "1,,2";
  EXPECT_EQ(refused(bad, served), "--frontends: '' is not a guest domain id");
  bad = {};
  bad.hypervisor = "kvm";
  EXPECT_EQ(refused(bad, served), "--hypervisor must be sim or xen");
  bad = {};
  bad.policy = "zero";
  EXPECT_EQ(refused(bad, served), "unknown --policy 'zero' (slots, copy, map, hdrcopy)");
  DaemonOptions tap = served;
  tap.tap_netns = "ns";
  EXPECT_EQ(refused(BackendDaemonArgs{}, tap), "--tap-netns needs --tap-for DOMID");
}

}  // namespace
}  // namespace pvnet::tools
