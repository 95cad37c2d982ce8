// The host-side pieces of `pvnet guest` that run without QEMU: the address rule, bounded commands, and the TAP
// sink's device landing in the namespace (not in ours).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "backend/tap_sink.hpp"
#include "tools/lab/guest_env.hpp"

namespace pvnet::tools {
namespace {

TEST(GuestEnv, OnlyBenchmarkingAndUniqueLocalAddresses) {
  EXPECT_TRUE(allowed_guest_address("198.18.0.1/24"));
  EXPECT_TRUE(allowed_guest_address("198.19.255.254/15"));
  EXPECT_TRUE(allowed_guest_address("fd00::fe/64"));
  EXPECT_TRUE(allowed_guest_address("fdab:1::2"));
  EXPECT_FALSE(allowed_guest_address("198.20.0.1/24"));
  EXPECT_FALSE(allowed_guest_address("198.17.255.255/24"));
  EXPECT_FALSE(allowed_guest_address("10.0.0.1/8"));
  EXPECT_FALSE(allowed_guest_address("fe80::1/64"));
  EXPECT_FALSE(allowed_guest_address("2001:db8::1/64"));
  EXPECT_FALSE(allowed_guest_address("198.18.0.1/x"));
  EXPECT_FALSE(allowed_guest_address("not-an-address"));
}

TEST(GuestEnv, RunBoundedCapturesOutputAndStatus) {
  auto r = run_bounded({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(10));
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_EQ(r->status, 3);
  EXPECT_NE(r->output.find("out\n"), std::string::npos);
  EXPECT_NE(r->output.find("err\n"), std::string::npos);
  auto c = run_checked({"sh", "-c", "exit 1"}, std::chrono::seconds(10));
  EXPECT_FALSE(c);
}

TEST(GuestEnv, RunBoundedKillsAtTheDeadline) {
  const auto t0 = std::chrono::steady_clock::now();
  // The grandchild (sleep) is in the same process group: it goes too.
  auto r = run_bounded({"sh", "-c", "sleep 30 & sleep 30"}, std::chrono::milliseconds(300));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(GuestEnv, MissingProgramIsNamed) {
  auto p = find_program("pvnet-no-such-program");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().reason.find("pvnet-no-such-program"), std::string::npos);
}

TEST(TapSink, DeviceLivesInTheNamespaceOnly) {
  const std::string ns = "pvnet-ut-" + std::to_string(::getpid());
  auto path = ensure_netns(ns);
  ASSERT_TRUE(path) << path.error().reason;
  {
    auto tap = TapSink::open(*path, "pvut0");
    ASSERT_TRUE(tap) << tap.error().reason;
    EXPECT_GE((*tap)->fd(), 0);
    auto in_ns = run_bounded({"ip", "-n", ns, "link", "show", "pvut0"}, std::chrono::seconds(10));
    ASSERT_TRUE(in_ns);
    EXPECT_EQ(in_ns->status, 0) << in_ns->output;
    auto here = run_bounded({"ip", "link", "show", "pvut0"}, std::chrono::seconds(10));
    ASSERT_TRUE(here);
    EXPECT_NE(here->status, 0) << "the TAP leaked into our namespace";
    EXPECT_TRUE(configure_netns_link(ns, "pvut0", {"198.18.0.254/24", "fd00::fe/64"}, 1500));
    EXPECT_FALSE(configure_netns_link(ns, "pvut0", {"10.1.1.1/24"}, 1500));
    auto addr = run_bounded({"ip", "-n", ns, "addr", "show", "pvut0"}, std::chrono::seconds(10));
    ASSERT_TRUE(addr);
    EXPECT_NE(addr->output.find("198.18.0.254/24"), std::string::npos);
    EXPECT_EQ(addr->output.find("10.1.1.1"), std::string::npos);
  }
  // The device goes with its fd.
  auto gone = run_bounded({"ip", "-n", ns, "link", "show", "pvut0"}, std::chrono::seconds(10));
  ASSERT_TRUE(gone);
  EXPECT_NE(gone->status, 0);
  (void)run_bounded({"ip", "netns", "del", ns}, std::chrono::seconds(10));
}

TEST(TapSink, RefusesBadNames) {
  EXPECT_FALSE(TapSink::open("", ""));
  EXPECT_FALSE(TapSink::open("", "a-name-much-too-long-for-ifnamsiz"));
  EXPECT_FALSE(TapSink::open("/run/netns/pvnet-does-not-exist", "pvut1"));
}

}  // namespace
}  // namespace pvnet::tools
