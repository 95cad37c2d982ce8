// A dom0 backend process killed with SIGKILL while it holds a guest's grants (an eager map, a lazily faulted page,
// a writable map) and a connected event channel: the hypervisor process releases every pin it held (from the
// client's pin ledger), closes its ports, switches the backend state node it wrote to Closed, and keeps dom0
// and the guest alive. Xen counterpart: a driver domain that dies has its maps torn down with it (the grants
// become free for the guest); the guest sees its backend Closed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"

namespace pvnet {
namespace {

int wait_child(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(DeadBackend, SigkilledDom0ClientHasItsPinsReleasedAndItsBackendStateClosed) {
  const std::string path = "/tmp/pvnet-deadbe-" + std::to_string(::getpid()) + ".sock";
  // Declared before the server: its destructor drops the last clients and reports them here.
  std::vector<SimServer::ClientGone> gone;
  std::mutex mu;
  auto hv = SimHypervisor::create().value();
  auto server = SimServer::listen(path, *hv).value();
  server->on_client_gone([&](const SimServer::ClientGone& g) {
    std::lock_guard lk(mu);
    gone.push_back(g);
  });

  // The guest lives in this process (in-process Platform of the same hypervisor).
  const DomId guest{7};
  auto g = hv->create_domain(guest, 16 * kPageSize, 32).value();
  std::memcpy(g->memory().page(Pfn{1}).data(), "mapped", 7);
  std::memcpy(g->memory().page(Pfn{2}).data(), "faulted", 8);
  const GrantRef ro = g->grant_table().grant_access(kDom0, Pfn{1}, true).value();
  const GrantRef lazy = g->grant_table().grant_access(kDom0, Pfn{2}, true).value();
  const GrantRef rw = g->grant_table().grant_access(kDom0, Pfn{3}, false).value();
  const GrantRef idle = g->grant_table().grant_access(kDom0, Pfn{4}, false).value();
  const Port gport = g->evtchn().alloc_unbound(kDom0).value();
  const std::string be = "/local/domain/0/backend/vif/7/0";

  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto d0 = SimClient::connect(privileged_socket_path(path), kDom0, SimClientOptions::attach());
    if (!d0) ::_exit(10);
    Platform& p = **d0;
    if (!p.store().switch_state(be, XenbusState::Connected)) ::_exit(11);
    MapOp ops[2];
    ops[0].dom = guest;
    ops[0].ref = ro;
    ops[1].dom = guest;
    ops[1].ref = rw;
    ops[1].readonly = false;
    p.mapper().map(ops);
    if (ops[0].status != GntSt::okay || ops[1].status != GntSt::okay) ::_exit(12);
    if (std::memcmp(ops[0].addr, "mapped", 7) != 0) ::_exit(13);
    auto win = p.mapper().make_lazy_window(4);
    if (!win) ::_exit(14);
    const std::byte* a = win->assign(0, guest, lazy, true);
    if (std::memcmp(a, "faulted", 8) != 0 || !win->mapped(0)) ::_exit(15);
    if (!p.evtchn().bind_interdomain(guest, gport)) ::_exit(16);
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) ::_exit(17);
    for (;;) ::pause();  // killed holding everything
  }
  // The server thread starts only now: fork() copies only the calling thread, and a server thread holding a lock
  // at that moment (the allocator's, under ASan) would leave it held in the child. The child's connect waits in
  // the listen backlog meanwhile.
  ASSERT_TRUE(server->run_in_thread());
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);

  // While the backend lives, the guest cannot take its grants back (GTF_reading/GTF_writing).
  EXPECT_TRUE(g->grant_table().in_use(ro));
  EXPECT_TRUE(g->grant_table().in_use(lazy));
  EXPECT_TRUE(g->grant_table().in_use(rw));
  EXPECT_FALSE(g->grant_table().end_access(ro));
  EXPECT_EQ(server->pins_held_by(kDom0), 3u);
  EXPECT_TRUE(g->evtchn().notify(gport));

  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    {
      std::lock_guard lk(mu);
      if (!gone.empty()) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the server never noticed the dead client";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  {
    std::lock_guard lk(mu);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].dom, kDom0);
    EXPECT_FALSE(gone[0].owned_domain);
    EXPECT_EQ(gone[0].pins_released, 3u);
    EXPECT_EQ(gone[0].states_closed, 1u);
  }
  EXPECT_EQ(server->pins_held_by(kDom0), 0u);
  for (GrantRef r : {ro, lazy, rw, idle}) {
    EXPECT_FALSE(g->grant_table().in_use(r)) << r.value;
    EXPECT_TRUE(g->grant_table().end_access(r)) << r.value;
  }
  auto toolstack = hv->attach(kDom0).value();  // dom0's backend directory is dom0's to read
  EXPECT_EQ(toolstack->store().read_state(be), XenbusState::Closed);
  EXPECT_TRUE(hv->has_domain(kDom0));
  EXPECT_TRUE(hv->has_domain(guest));
  auto n = g->evtchn().notify(gport);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ENOTCONN);

  // A new dom0 backend can attach and map the guest's grants again.
  const GrantRef again = g->grant_table().grant_access(kDom0, Pfn{5}, true).value();
  auto d0 = SimClient::connect(privileged_socket_path(path), kDom0, SimClientOptions::attach()).value();
  MapOp op;
  op.dom = guest;
  op.ref = again;
  d0->mapper().map({&op, 1});
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_TRUE(g->grant_table().in_use(again));
  UnmapOp un;
  un.handle = op.handle;
  d0->mapper().unmap({&un, 1});
  EXPECT_FALSE(g->grant_table().in_use(again));
  EXPECT_EQ(server->pins_held_by(kDom0), 0u);
}

}  // namespace
}  // namespace pvnet
