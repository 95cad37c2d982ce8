// Backend::poll()'s housekeeping (event ports, timer, store watches, RX stall clock) runs after an idle poll and
// every kHousekeepingEvery (64) polls while the data path stays busy: a guest that keeps its ring full must not
// hide another guest's xenbus changes from dom0.
#include <gtest/gtest.h>

#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

TEST(BackendPoll, AWatchIsSeenWithinAHousekeepingPeriodWhileAnotherVifKeepsEveryPollBusy) {
  Host h;
  ScriptedFrontend busy(*h.hv, DomId{1}), late(*h.hv, DomId{2});
  FrontOptions plain;
  plain.header_slots = false;
  h.attach(busy, {}, plain);
  const VifId vlate = h.be->add_vif(late.dom(), 0).value();
  h.be->poll_until_idle();
  ASSERT_EQ(h.be->state(vlate), XenbusState::InitWait);

  busy.send(make_frame(64));
  ASSERT_GT(h.be->poll(), 0u);  // busy from here on: every poll below has a packet to take
  late.connect(plain);          // its watch fires now, while the data path is busy
  int polls = 0;
  for (; polls < 200 && !h.be->connected(vlate); ++polls) {
    busy.send(make_frame(64));
    ASSERT_GT(h.be->poll(), 0u) << "poll " << polls << " had no work: housekeeping would run anyway";
    (void)busy.tx_responses();
  }
  EXPECT_TRUE(h.be->connected(vlate)) << "never looked at the store while busy";
  EXPECT_LE(polls, 64);
}

}  // namespace
}  // namespace pvnet::test
