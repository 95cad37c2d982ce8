// open_platform (tools/platform/open_platform.hpp): the spec picks the hypervisor, a socket nobody listens on
// is tried again for `retry` only, and a spec that names no hypervisor is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "tools/platform/open_platform.hpp"
#include "tools/process/temp_dir.hpp"

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

TEST(OpenPlatform, InProcessAttachesToTheGivenHypervisor) {
  auto hv = SimHypervisor::create().value();
  auto dom0 = open_platform(PlatformSpec::in_process(*hv, kDom0));
  ASSERT_TRUE(dom0.ok()) << dom0.error().reason;
  EXPECT_EQ((*dom0)->self(), kDom0);
  // A domain that is not there: the hypervisor's answer, unchanged.
  auto none = open_platform(PlatformSpec::in_process(*hv, DomId{7}));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ESRCH) << none.error().reason;
}

TEST(OpenPlatform, ASpecWithoutAHypervisorIsRefused) {
  PlatformSpec s;  // in_process, no hypervisor
  EXPECT_EQ(open_platform(s).error().code, EINVAL);
  PlatformSpec sock = PlatformSpec::sim_socket("", DomId{1}, SimClientOptions::create(64 * kPageSize, 32));
  EXPECT_EQ(open_platform(sock).error().code, EINVAL);
}

TEST(OpenPlatform, NoServerIsTriedAgainForRetryOnlyThenItsError) {
  auto dir = TempDir::create("pvnet-open-platform").value();
  const std::string path = dir.file("hv.sock");
  auto t0 = Clock::now();
  auto once = open_platform(PlatformSpec::sim_socket(path, DomId{1}, SimClientOptions::create(64 * kPageSize, 32)));
  ASSERT_FALSE(once.ok());
  EXPECT_TRUE(no_server_yet(once.error().code)) << once.error().reason;
  EXPECT_LT(Clock::now() - t0, Ms(150));  // no retry asked for: one attempt

  t0 = Clock::now();
  auto retried = open_platform(
      PlatformSpec::sim_socket(path, DomId{1}, SimClientOptions::create(64 * kPageSize, 32), Ms(300)));
  ASSERT_FALSE(retried.ok());
  EXPECT_TRUE(no_server_yet(retried.error().code)) << retried.error().reason;
  EXPECT_GE(Clock::now() - t0, Ms(300));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST(OpenPlatform, SocketCreatesAGuestAndAttachesDom0OnThePrivilegedSocketOnceTheServerIsUp) {
  auto dir = TempDir::create("pvnet-open-platform").value();
  const std::string path = dir.file("hv.sock");
  auto hv = SimHypervisor::create().value();
  std::unique_ptr<SimServer> server;
  // The server starts listening only after the guest began trying: the retry waits for it.
  std::thread late([&] {
    std::this_thread::sleep_for(Ms(200));
    server = SimServer::listen(path, *hv).value();
    ASSERT_TRUE(server->run_in_thread());
  });
  auto guest = open_platform(
      PlatformSpec::sim_socket(path, DomId{3}, SimClientOptions::create(64 * kPageSize, 32), Ms(10'000)));
  late.join();
  ASSERT_TRUE(guest.ok()) << guest.error().reason;
  EXPECT_EQ((*guest)->self(), DomId{3});
  EXPECT_TRUE(hv->has_domain(DomId{3}));

  auto dom0 = open_platform(PlatformSpec::sim_socket_privileged(path, kDom0));
  ASSERT_TRUE(dom0.ok()) << dom0.error().reason;
  EXPECT_EQ((*dom0)->self(), kDom0);
  // Attaching needs the privileged socket: on the guest socket it is refused.
  auto denied = open_platform(PlatformSpec::sim_socket(path, kDom0, SimClientOptions::attach()));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, EPERM) << denied.error().reason;
  guest->reset();
  dom0->reset();
  server->stop();
}

TEST(OpenPlatform, XenIsXensAnswer) {
  if (xen_device_present("gntdev")) GTEST_SKIP() << "on a Xen host";
  auto p = open_platform(PlatformSpec::xen(XenPlatformOptions{}));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().code, EINVAL) << p.error().reason;  // not refused as a spec: tried, and not on Xen
  EXPECT_FALSE(p.error().reason.empty());
}

}  // namespace
}  // namespace pvnet::tools
