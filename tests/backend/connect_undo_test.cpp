// A connect refused after the rings were mapped and some ports bound gives everything back (RingMappings,
// BoundPorts in backend/connect_guards.hpp): no mapping left, every port the backend bound free again.
#include <gtest/gtest.h>

#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

TEST(BackendConnectUndo, ARefusalAtTheLastPortUnmapsTheRingsAndUnbindsTheOtherPorts) {
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{3});
  const VifId id = h.be->add_vif(fe.dom(), 0, VifOptions{}).value();
  h.be->poll_until_idle();
  const GrantCounters before = h.grants();
  fe.connect(FrontOptions{});  // split event channels and a control ring
  // The lie, written raw: a control port the frontend never allocated. TX and RX bind, then this one fails.
  Store& st = fe.store();
  ASSERT_TRUE(st.write(netif::key_path(fe.dir(), netif::key::event_channel_ctrl), "4000"));
  h.be->poll_until_idle();

  EXPECT_EQ(h.be->state(id), XenbusState::Closed);
  EXPECT_FALSE(h.be->connected(id));
  const std::string error_key = netif::key_path(h.be->paths(id).backend, netif::key::error);
  EXPECT_EQ(h.dom0->store().read_opt(error_key), "binding the event channels of " + fe.dir() + " failed");
  const GrantCounters g = h.grants() - before;
  EXPECT_EQ(g.pages_mapped, 3u) << "tx, rx and control rings were mapped";
  EXPECT_EQ(g.pages_unmapped, g.pages_mapped) << "a ring mapping outlived the refusal";

  // The ports the backend bound before the failure are the frontend's to offer again: dom0 can bind them anew.
  for (const char* key : {netif::key::event_channel_tx, netif::key::event_channel_rx}) {
    const auto remote = st.read_int(netif::key_path(fe.dir(), key));
    ASSERT_TRUE(remote) << key;
    auto again = h.dom0->evtchn().bind_interdomain(fe.dom(), Port{static_cast<uint32_t>(*remote)});
    EXPECT_TRUE(again.ok()) << key << " still bound by the refused connect: " << again.error().reason;
    if (again) (void)h.dom0->evtchn().unbind(*again);
  }
}

}  // namespace
}  // namespace pvnet::test
