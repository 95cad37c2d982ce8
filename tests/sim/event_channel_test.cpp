#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "grant-sim/sim/sim_event_channel.hpp"

namespace pvnet {
namespace {

bool readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

struct EvtchnFixture : ::testing::Test {
  std::shared_ptr<EvtchnTable> table{EvtchnTable::create().value()};
  std::unique_ptr<SimEventChannel> open(DomId d) {
    return SimEventChannel::create(make_local_evtchn_control(table, d)).value();
  }
};

TEST_F(EvtchnFixture, NotifyWakesThePeersFdBothWays) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  Port fe_port = *fe->alloc_unbound(kDom0);
  Port be_port = *be->bind_interdomain(DomId{1}, fe_port);
  EXPECT_FALSE(readable(be->fd()));
  EXPECT_FALSE(readable(fe->fd()));

  ASSERT_TRUE(fe->notify(fe_port));
  EXPECT_TRUE(readable(be->fd()));
  EXPECT_FALSE(readable(fe->fd()));  // a notify raises the OTHER end only
  EXPECT_EQ(be->pending(), std::vector<Port>{be_port});
  EXPECT_TRUE(be->pending().empty());  // drained

  ASSERT_TRUE(be->notify(be_port));
  EXPECT_EQ(fe->wait(1000), std::vector<Port>{fe_port});
  EXPECT_EQ(fe->notifications_sent(), 1u);
  EXPECT_EQ(be->notifications_sent(), 1u);
}

TEST_F(EvtchnFixture, AFiredPortStaysMaskedUntilUnmaskAndThenDeliversWhatCameMeanwhile) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  Port fp = *fe->alloc_unbound(kDom0);
  Port bp = *be->bind_interdomain(DomId{1}, fp);
  ASSERT_TRUE(fe->notify(fp));
  EXPECT_EQ(be->pending(), std::vector<Port>{bp});
  ASSERT_TRUE(fe->notify(fp));
  ASSERT_TRUE(fe->notify(fp));
  EXPECT_FALSE(readable(be->fd()));  // masked
  EXPECT_TRUE(be->pending().empty());
  be->unmask(bp);
  EXPECT_TRUE(readable(be->fd()));
  EXPECT_EQ(be->pending(), std::vector<Port>{bp});  // several sends, one event
  be->unmask(bp);
  EXPECT_FALSE(readable(be->fd()));
}

TEST_F(EvtchnFixture, ManyPortsOneFd) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  std::vector<Port> fps, bps;
  for (int i = 0; i < 5; ++i) {
    fps.push_back(*fe->alloc_unbound(kDom0));
    bps.push_back(*be->bind_interdomain(DomId{1}, fps.back()));
  }
  ASSERT_TRUE(fe->notify(fps[1]));
  ASSERT_TRUE(fe->notify(fps[3]));
  auto p = be->pending();
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, (std::vector<Port>{bps[1], bps[3]}));
}

TEST_F(EvtchnFixture, BindingRules) {
  auto d1 = open(DomId{1});
  auto d2 = open(DomId{2});
  auto be = open(kDom0);
  Port for_dom0 = *d1->alloc_unbound(kDom0);
  // Only the domain the port was allocated for may bind it.
  auto wrong = d2->bind_interdomain(DomId{1}, for_dom0);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, EINVAL);
  EXPECT_NE(wrong.error().reason.find("unbound for dom0"), std::string::npos) << wrong.error().reason;
  // A port that does not exist.
  EXPECT_FALSE(be->bind_interdomain(DomId{1}, Port{999}));
  // Bound once, not twice.
  ASSERT_TRUE(be->bind_interdomain(DomId{1}, for_dom0));
  auto twice = be->bind_interdomain(DomId{1}, for_dom0);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().reason.find("already bound"), std::string::npos);
  // Not yet bound: notify fails (Xen would drop it silently).
  Port lonely = *d1->alloc_unbound(kDom0);
  auto n = d1->notify(lonely);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ENOTCONN);
  EXPECT_FALSE(d1->notify(Port{12345}));
  EXPECT_EQ(d1->notifications_sent(), 0u);
}

TEST_F(EvtchnFixture, UnbindMakesThePeersNotifyFailAndTheRemoteRebindable) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  Port fp = *fe->alloc_unbound(kDom0);
  Port bp = *be->bind_interdomain(DomId{1}, fp);
  ASSERT_TRUE(be->notify(bp));  // caches the peer's eventfd
  ASSERT_TRUE(fe->unbind(fp));
  auto n = be->notify(bp);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ENOTCONN);
  EXPECT_FALSE(be->notify(bp));  // and keeps failing
  EXPECT_FALSE(fe->notify(fp));  // the unbound port is gone from its own handle
  // Xen: the surviving end is now unbound for the domain that closed; it may bind again.
  Port fp2 = *fe->bind_interdomain(kDom0, bp);
  ASSERT_TRUE(be->notify(bp));
  EXPECT_EQ(fe->wait(1000), std::vector<Port>{fp2});
}

TEST_F(EvtchnFixture, ClosingAHandleOrADomainClosesItsPorts) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  Port bp = *be->bind_interdomain(DomId{1}, *fe->alloc_unbound(kDom0));
  EXPECT_EQ(table->nr_ports(DomId{1}), 1u);
  fe.reset();
  EXPECT_EQ(table->nr_ports(DomId{1}), 0u);
  EXPECT_EQ(be->notify(bp).error().code, ENOTCONN);

  auto fe2 = open(DomId{2});
  Port bp2 = *be->bind_interdomain(DomId{2}, *fe2->alloc_unbound(kDom0));
  ASSERT_TRUE(be->notify(bp2));
  table->close_domain(DomId{2});
  EXPECT_EQ(be->notify(bp2).error().code, ENOTCONN);
}

TEST_F(EvtchnFixture, ChannelSlotsAreRecycled) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  for (uint32_t i = 0; i < kMaxEvtchnChannels + 100; ++i) {
    Port fp = *fe->alloc_unbound(kDom0);
    Port bp = *be->bind_interdomain(DomId{1}, fp);
    ASSERT_TRUE(fe->unbind(fp));
    ASSERT_TRUE(be->unbind(bp));
  }
  EXPECT_EQ(table->nr_ports(kDom0), 0u);
}

TEST_F(EvtchnFixture, NotifyIsCheap) {
  auto fe = open(DomId{1});
  auto be = open(kDom0);
  Port fp = *fe->alloc_unbound(kDom0);
  Port bp = *be->bind_interdomain(DomId{1}, fp);
  constexpr int kN = 200000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(fe->notify(fp));
  auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kN;
  EXPECT_EQ(be->pending(), std::vector<Port>{bp});
  EXPECT_EQ(fe->notifications_sent(), uint64_t{kN});
  std::printf("notify: %.0f ns per send (eventfd write)\n", ns);
}

}  // namespace
}  // namespace pvnet
