#include <gtest/gtest.h>

#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

TEST(BackendNegotiation, ToolstackFeaturesConnectAndSlotRegistration) {
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{3});
  VifId id = h.be->add_vif(fe.dom(), 0, VifOptions{}).value();
  const std::string be = h.be->paths(id).backend;
  EXPECT_EQ(be, "/local/domain/0/backend/vif/3/0");
  EXPECT_EQ(h.be->name(id), "vif3.0");
  Store& s = h.dom0->store();
  EXPECT_EQ(s.read_opt(be + "/feature-header-slots"), "1");
  EXPECT_EQ(s.read_opt(be + "/feature-ctrl-ring"), "1");
  EXPECT_EQ(s.read_opt(be + "/feature-rx-copy"), "1");
  EXPECT_EQ(s.read_opt(be + "/mtu"), "1500");
  EXPECT_EQ(s.read_opt(fe.dir() + "/backend"), be);
  EXPECT_EQ(s.read_state(be), XenbusState::InitWait);
  EXPECT_EQ(s.read_state(fe.dir()), XenbusState::Initialising);

  const GrantCounters before = h.grants();
  fe.connect(FrontOptions{.slot_size = 256});  // fails (ASSERT) if the frontend cannot write its own directory
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->state(id), XenbusState::Connected);
  EXPECT_TRUE(h.be->connected(id));
  EXPECT_TRUE(h.be->header_slots(id));
  EXPECT_EQ(h.be->header_slot_size(id), 256u);
  EXPECT_EQ((h.grants() - before).pages_mapped, 3u);  // tx, rx and control rings, kept
  EXPECT_EQ((h.grants() - before).hypercalls, 1u);    // in one batch

  uint32_t limit = 0;
  const GrantCounters before_reg = h.grants();
  EXPECT_EQ(fe.register_slots(*h.be, 4, &limit), netif::ctrl_status::success);
  EXPECT_EQ(limit, BackendOptions{}.max_kept_pages_per_domain);
  EXPECT_EQ(h.be->kept_mappings(id), 4u);
  const GrantCounters reg = h.grants() - before_reg;
  EXPECT_EQ(reg.pages_mapped, 4u);
  EXPECT_EQ(reg.map_ops, 4u);

  // DEL of one kept page and one unknown: one removed, statuses written back into the table.
  auto* table = reinterpret_cast<netif::NetifGref*>(fe.table_page().data());
  table[0] = netif::NetifGref{fe.slot_page_ref(1), 0, 0xff};
  table[1] = netif::NetifGref{GrantRef{999}, 0, 0xff};
  auto del = fe.ctrl_call(*h.be, netif::ctrl_type::del_gref_mapping, 0, fe.table_ref().value, 2);
  EXPECT_EQ(del.status, netif::ctrl_status::success);
  EXPECT_EQ(del.data, 1u);
  EXPECT_EQ(table[0].status, netif::ctrl_status::success);
  EXPECT_EQ(table[1].status, netif::ctrl_status::invalid_parameter);
  EXPECT_EQ(h.be->kept_mappings(id), 3u);

  // Closing releases everything: rings and kept pages unmapped, backend Closed.
  fe.set_state(XenbusState::Closing);
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->state(id), XenbusState::Closed);
  EXPECT_FALSE(h.be->connected(id));
  EXPECT_EQ(h.be->kept_mappings(id), 0u);
  const GrantCounters all = h.grants();
  EXPECT_EQ(all.pages_mapped, all.pages_unmapped);
}

// What the TAP sink asks of the kernel for a guest follows what its frontend said it takes on RX.
TEST(BackendNegotiation, RxOffloadsFollowTheFrontendsFeatures) {
  struct Case {
    FrontOptions fe;
    RxOffloads want;
  };
  const Case cases[] = {
      {FrontOptions{}, RxOffloads{true, true, true}},
      {FrontOptions{.gso = false}, RxOffloads{true, false, false}},
      {FrontOptions{.sg = false}, RxOffloads{true, false, false}},  // a super-frame needs more than one buffer
      {FrontOptions{.no_csum_offload = true}, RxOffloads{}},         // GSO needs partial checksums
  };
  for (const Case& c : cases) {
    Host h;
    ScriptedFrontend fe(*h.hv, DomId{3});
    VifId id = h.be->add_vif(fe.dom(), 0, VifOptions{}).value();
    EXPECT_EQ(h.be->rx_offloads(id), RxOffloads{}) << "not connected yet";
    fe.connect(c.fe);
    h.be->poll_until_idle();
    ASSERT_TRUE(h.be->connected(id));
    EXPECT_EQ(h.be->rx_offloads(id), c.want) << "sg " << c.fe.sg << " gso " << c.fe.gso << " no-csum "
                                             << c.fe.no_csum_offload;
    fe.set_state(XenbusState::Closing);
    h.be->poll_until_idle();
    EXPECT_EQ(h.be->rx_offloads(id), RxOffloads{}) << "after the frontend left";
  }
}

TEST(BackendNegotiation, AddGrefMappingIsAllOrNothing) {
  Host h(BackendOptions{.max_kept_pages_per_domain = 8});
  ScriptedFrontend fe(*h.hv, DomId{3});
  VifId id = h.be->add_vif(fe.dom(), 0).value();
  h.be->poll_until_idle();
  fe.connect();
  h.be->poll_until_idle();
  ASSERT_TRUE(h.be->connected(id));
  // Over the per-domain limit: refused.
  EXPECT_EQ(fe.register_slots(*h.be, 9), netif::ctrl_status::invalid_parameter);
  EXPECT_EQ(h.be->kept_mappings(id), 0u);
  // One bad gref among good ones: nothing kept, nothing left mapped.
  EXPECT_EQ(fe.register_slots(*h.be, 3), netif::ctrl_status::success);
  auto* table = reinterpret_cast<netif::NetifGref*>(fe.table_page().data());
  const GrantCounters before = h.grants();
  Pfn a = fe.alloc_page(), b = fe.alloc_page();
  table[0] = netif::NetifGref{fe.grant(a, true), 1, 0};
  table[1] = netif::NetifGref{GrantRef{1999}, 1, 0};  // never granted
  table[2] = netif::NetifGref{fe.grant(b, true), 1, 0};
  auto add = fe.ctrl_call(*h.be, netif::ctrl_type::add_gref_mapping, 0, fe.table_ref().value, 3);
  EXPECT_EQ(add.status, netif::ctrl_status::invalid_parameter);
  EXPECT_EQ(h.be->kept_mappings(id), 3u);
  const GrantCounters d = h.grants() - before;
  EXPECT_EQ(d.pages_mapped, d.pages_unmapped);
}

TEST(BackendNegotiation, FrontendWithoutRxCopyIsRefusedAndDirectoryRemovalCloses) {
  Host h;
  ScriptedFrontend bad(*h.hv, DomId{4});
  VifId id = h.be->add_vif(bad.dom(), 0).value();
  h.be->poll_until_idle();
  bad.connect(FrontOptions{.rx_copy = false});
  h.be->poll_until_idle();
  EXPECT_FALSE(h.be->connected(id));
  EXPECT_EQ(h.be->state(id), XenbusState::Closed);
  EXPECT_TRUE(h.dom0->store().read_opt(h.be->paths(id).backend + "/error").has_value());

  ScriptedFrontend fe(*h.hv, DomId{5});
  VifId id2 = h.attach(fe);
  ASSERT_TRUE(h.be->connected(id2));
  ASSERT_TRUE(h.dom0->store().remove(fe.dir()).ok());
  h.be->poll_until_idle();
  EXPECT_FALSE(h.be->connected(id2));
  EXPECT_EQ(h.be->state(id2), XenbusState::Closed);
  const GrantCounters all = h.grants();
  EXPECT_EQ(all.pages_mapped, all.pages_unmapped);
}

}  // namespace
}  // namespace pvnet::test
