// The daemons' control lines (tools/process/control_lines.hpp): what the writers spell is what the reader parses,
// and the reader refuses a known line that is malformed instead of taking it for another.
#include <gtest/gtest.h>

#include "tools/process/child_process.hpp"
#include "tools/process/control_lines.hpp"

namespace pvnet::tools {
namespace {

using Kind = ControlLine::Kind;
using Ms = std::chrono::milliseconds;

TEST(ControlLines, WhatTheWritersSayTheReaderParses) {
  auto ready = parse_control_line(ready_line("/tmp/x/hv.sock"));
  ASSERT_TRUE(ready.ok()) << ready.error().reason;
  EXPECT_EQ(ready->kind, Kind::ready);
  EXPECT_EQ(ready->where, "/tmp/x/hv.sock");

  auto c = parse_control_line(connected_line(true, 512u));
  ASSERT_TRUE(c.ok()) << c.error().reason;
  EXPECT_EQ(c->text, "connected slots=on tx-ring=512");
  EXPECT_EQ(c->kind, Kind::connected);
  EXPECT_TRUE(c->header_slots);
  ASSERT_TRUE(c->tx_ring.has_value());
  EXPECT_EQ(*c->tx_ring, 512u);

  // The vhost-user frontend says no ring size.
  auto v = parse_control_line(connected_line(false, std::nullopt));
  ASSERT_TRUE(v.ok()) << v.error().reason;
  EXPECT_EQ(v->text, "connected slots=off");
  EXPECT_FALSE(v->header_slots);
  EXPECT_FALSE(v->tx_ring.has_value());

  auto re = parse_control_line(reconnected_line(17));
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(re->kind, Kind::reconnected);
  EXPECT_EQ(re->lost, 17u);

  const std::pair<std::string_view, Kind> bare[] = {{kDoneLine, Kind::done},
                                                     {kStoppedLine, Kind::stopped},
                                                     {kSnapshotStartLine, Kind::snapshot_start},
                                                     {kSnapshotEndLine, Kind::snapshot_end},
                                                     {kGoLine, Kind::go},
                                                     {kCloseLine, Kind::close}};
  for (auto [line, kind] : bare) {
    auto p = parse_control_line(line);
    ASSERT_TRUE(p.ok()) << line;
    EXPECT_EQ(p->kind, kind) << line;
    EXPECT_EQ(to_string(kind), line);
  }
}

TEST(ControlLines, AMalformedKnownLineIsRefusedWithItsReason) {
  for (const char* line : {"ready", "ready ", "connected", "connected slots=maybe", "connected slots=on tx-ring=",
                           "connected slots=on tx-ring=0", "connected slots=on tx-ring=12x", "connected slots=on ring=1",
                           "reconnected", "reconnected lost=-1", "done now", "stopped early", "snapshot", "snapshot middle",
                           "go go", "close it"}) {
    auto p = parse_control_line(line);
    ASSERT_FALSE(p.ok()) << "'" << line << "' was taken as " << to_string(p->kind);
    EXPECT_EQ(p.error().code, EPROTO) << line;
    EXPECT_NE(p.error().reason.find(line), std::string::npos) << p.error().reason;
  }
}

TEST(ControlLines, InformationalLinesAreOther) {
  for (const char* line : {"added vif1.0", "removed vif2.0", "tap pvtap0 up", "client-gone id=1 dom=2", "",
                           "doneish", "readyness"}) {
    auto p = parse_control_line(line);
    ASSERT_TRUE(p.ok()) << line << ": " << p.error().reason;
    EXPECT_EQ(p->kind, Kind::other) << line;
    EXPECT_EQ(p->text, line);
  }
}

// ChildProcess::wait_for skips other lines and parses the one it waits for.
TEST(ControlLines, ChildProcessWaitsForAKindAndParsesIt) {
  auto c = ChildProcess::spawn("/bin/sh", {"sh", "-c", "echo added vif1.0; echo connected slots=off tx-ring=256; "
                                                       "echo done"},
                               "sh");
  ASSERT_TRUE(c.ok()) << c.error().reason;
  auto l = (*c)->wait_for(Kind::connected, Ms(10'000));
  ASSERT_TRUE(l.ok()) << l.error().reason;
  EXPECT_FALSE(l->header_slots);
  EXPECT_EQ(l->tx_ring.value_or(0), 256u);
  auto d = (*c)->wait_for(Kind::done, Ms(10'000));
  ASSERT_TRUE(d.ok()) << d.error().reason;
  auto st = (*c)->wait(Ms(10'000));
  ASSERT_TRUE(st.ok()) << st.error().reason;
  EXPECT_EQ(*st, 0);
}

TEST(ControlLines, ChildProcessRefusesAMalformedLineOfTheKindItWaitsFor) {
  auto c = ChildProcess::spawn("/bin/sh", {"sh", "-c", "echo connected slots=maybe; sleep 5"}, "sh");
  ASSERT_TRUE(c.ok()) << c.error().reason;
  auto l = (*c)->wait_for(Kind::connected, Ms(10'000));
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, EPROTO) << l.error().reason;
  EXPECT_NE(l.error().reason.find("slots=maybe"), std::string::npos) << l.error().reason;
}

TEST(ControlLines, ChildProcessThatExitsBeforeTheLineSaysHowItEnded) {
  auto c = ChildProcess::spawn("/bin/sh", {"sh", "-c", "echo ready; exit 3"}, "sh");
  ASSERT_TRUE(c.ok());
  auto l = (*c)->wait_for(Kind::ready, Ms(10'000));  // "ready" with no place: refused, not taken
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, EPROTO);
  auto d = (*c)->wait_for(Kind::done, Ms(10'000));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, EPIPE);
  EXPECT_NE(d.error().reason.find("exited with status 3"), std::string::npos) << d.error().reason;
}

}  // namespace
}  // namespace pvnet::tools
