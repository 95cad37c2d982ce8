// Issue #20: a dom0 client killed inside a pin or unpin must not leave a guest's grant pinned. A dom0 process
// (a SimClient) runs pin_grant/unpin_grant on the hypervisor's shared active table itself; here it is ended
// (_exit) at every step of every such critical section in turn (sim::crash_hook, CrashPoint), in every path that
// reaches them: eager map (readonly, writable, first writer after readers, a bad frame), unmap, grant copy (each
// side), a lazy-window fault (in the signal handler) and a lazy release. After each death the hypervisor process
// (SimServer) has released the client: the entry's lock is free, no journal is armed, the pin counts are exactly
// the other pinner's, GTF_reading/GTF_writing show exactly those, the pins released are those of the operation
// done or not done (nothing else), and once the other pinner is gone the guest's end_access succeeds.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"

namespace pvnet {
namespace {

constexpr int kDied = 77;  // the child's exit status when the hook ended it

// The hook, in the child only. Mode "record": write each step to a pipe. Mode "crash": end at the k-th step.
int g_record_fd = -1;
unsigned g_crash_at = 0;
unsigned g_seen = 0;
void child_hook(sim::CrashPoint p) {
  if (g_record_fd >= 0) {
    const auto b = static_cast<uint8_t>(p);
    if (::write(g_record_fd, &b, 1) != 1) ::_exit(90);
  }
  if (++g_seen == g_crash_at) ::_exit(kDied);
}

// The grants the child works on: `a` and `b` writable pages, `bad` naming a frame the guest does not have.
struct Grants {
  GrantRef a, b, bad;
};

// What the child does: `before` runs unhooked (pins it already holds when it dies), `op` under the hook.
struct Scenario {
  const char* name;
  bool survivor;       // the parent, an unrecorded dom0 pinner, holds a readonly map of `a` meanwhile
  unsigned pins_before;  // pins the child holds when `op` starts
  unsigned pins_after;   // ... and when `op` is done
  unsigned pins_most;    // ... at most, at any step of `op` (a copy pins its gref sides for the whole batch)
  std::function<bool(Platform&, const Grants&, std::vector<MapOp>&, std::unique_ptr<LazyWindow>&)> before;
  std::function<bool(Platform&, const Grants&, std::vector<MapOp>&, std::unique_ptr<LazyWindow>&)> op;
};

bool map_one(Platform& p, GrantRef ref, bool readonly, std::vector<MapOp>& held) {
  MapOp m;
  m.dom = DomId{7};
  m.ref = ref;
  m.readonly = readonly;
  p.mapper().map({&m, 1});
  held.push_back(m);
  return m.status == GntSt::okay;
}
bool unmap_last(Platform& p, std::vector<MapOp>& held) {
  UnmapOp u;
  u.handle = held.back().handle;
  held.pop_back();
  p.mapper().unmap({&u, 1});
  return u.status == GntSt::okay;
}
bool copy(Platform& p, CopySide src, CopySide dst) {
  CopyOp c;
  c.src = src;
  c.dst = dst;
  c.len = 64;
  p.mapper().copy({&c, 1});
  return c.status == GntSt::okay;
}
std::byte g_buf[64];

std::vector<Scenario> scenarios() {
  using Held = std::vector<MapOp>;
  using Win = std::unique_ptr<LazyWindow>;
  const DomId g{7};
  auto nothing = [](Platform&, const Grants&, Held&, Win&) { return true; };
  return {
      {"map readonly, first pin", false, 0, 1, 1, nothing,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h); }},
      {"map readonly beside another pinner", true, 0, 1, 1, nothing,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h); }},
      {"map writable, first pin", false, 0, 1, 1, nothing,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, false, h); }},
      {"map writable: first writer after a reader", true, 0, 1, 1, nothing,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, false, h); }},
      {"second readonly map of its own", false, 1, 2, 2,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h); },
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h); }},
      {"map of a bad frame", false, 0, 0, 0, nothing,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return !map_one(p, gr.bad, true, h); }},
      {"unmap the last pin", false, 1, 0, 1,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h); },
       [](Platform& p, const Grants&, Held& h, Win&) { return unmap_last(p, h); }},
      {"unmap the last writer beside a reader", true, 1, 0, 1,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, false, h); },
       [](Platform& p, const Grants&, Held& h, Win&) { return unmap_last(p, h); }},
      {"unmap one of two of its own", false, 2, 1, 2,
       [](Platform& p, const Grants& gr, Held& h, Win&) { return map_one(p, gr.a, true, h) && map_one(p, gr.a, true, h); },
       [](Platform& p, const Grants&, Held& h, Win&) { return unmap_last(p, h); }},
      {"grant copy from the guest", true, 0, 0, 1, nothing,
       [g](Platform& p, const Grants& gr, Held&, Win&) { return copy(p, CopySide::gref(g, gr.a, 0), CopySide::local(g_buf)); }},
      {"grant copy into the guest", false, 0, 0, 1, nothing,
       [g](Platform& p, const Grants& gr, Held&, Win&) { return copy(p, CopySide::local(g_buf), CopySide::gref(g, gr.a, 0)); }},
      {"grant copy guest page to guest page", false, 0, 0, 2, nothing,
       [g](Platform& p, const Grants& gr, Held&, Win&) {
         return copy(p, CopySide::gref(g, gr.a, 0), CopySide::gref(g, gr.b, 64));
       }},
      {"lazy-window fault", true, 0, 1, 1,
       [](Platform& p, const Grants&, Held&, Win& w) { return (w = p.mapper().make_lazy_window(2)) != nullptr; },
       [g](Platform&, const Grants& gr, Held&, Win& w) {
         const auto* page = static_cast<const volatile std::byte*>(w->assign(0, g, gr.a, true));
         (void)page[0];  // the touch: fault, pin in the signal handler, map
         return w->mapped(0);
       }},
      {"lazy-window release", false, 1, 0, 1,
       [g](Platform& p, const Grants& gr, Held&, Win& w) {
         if (!(w = p.mapper().make_lazy_window(2))) return false;
         const auto* page = static_cast<const volatile std::byte*>(w->assign(0, g, gr.a, true));
         (void)page[0];
         return w->mapped(0);
       },
       [](Platform&, const Grants&, Held&, Win& w) {
         const size_t slot = 0;
         w->release({&slot, 1});
         return true;
       }},
  };
}

class CrashConsistency : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/pvnet-crash-" + std::to_string(::getpid()) + ".sock";
    hv_ = SimHypervisor::create().value();
    server_ = SimServer::listen(path_, *hv_).value();
    server_->on_client_gone([this](const SimServer::ClientGone& g) { gone_.push_back(g); });
    guest_ = hv_->create_domain(kGuest, 16 * kPageSize, 32).value();
    dom0_ = hv_->attach(kDom0).value();
    view_ = std::static_pointer_cast<sim::SimDomain>(hv_->domain_view(kGuest).value());
    grant();
  }
  void TearDown() override {
    server_.reset();
    ::unlink(path_.c_str());
  }

  void grant() {
    auto& gt = guest_->grant_table();
    grants_.a = gt.grant_access(kDom0, Pfn{1}, false).value();
    grants_.b = gt.grant_access(kDom0, Pfn{2}, false).value();
    grants_.bad = gt.grant_access(kDom0, Pfn{1000}, true).value();  // the guest has 16 pages
  }

  // Runs the scenario in a child dom0 client. crash_at 0: record its steps (returned); k: end it at the k-th.
  // The parent serves the hypervisor socket meanwhile (no thread: the child is forked from one thread).
  std::vector<uint8_t> run_child(const Scenario& s, unsigned crash_at, int* status) {
    int rec[2];
    EXPECT_EQ(::pipe(rec), 0);
    const size_t gone_before = gone_.size();
    const Grants gr = grants_;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(rec[0]);
      auto d0 = SimClient::connect(privileged_socket_path(path_), kDom0, SimClientOptions::attach());
      if (!d0) ::_exit(10);
      std::vector<MapOp> held;
      std::unique_ptr<LazyWindow> win;
      if (!s.before(**d0, gr, held, win)) ::_exit(11);
      g_record_fd = crash_at == 0 ? rec[1] : -1;
      g_crash_at = crash_at;
      g_seen = 0;
      sim::crash_hook = child_hook;
      const bool ok = s.op(**d0, gr, held, win);
      sim::crash_hook = nullptr;
      // Done: die holding what it holds (the hypervisor releases it all the same).
      ::_exit(ok ? 0 : 12);
    }
    ::close(rec[1]);
    int st = -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (bool exited = false; !exited || gone_.size() == gone_before;) {
      EXPECT_LT(std::chrono::steady_clock::now(), deadline) << s.name << ": the client or its release never ended";
      if (std::chrono::steady_clock::now() > deadline) break;
      pollfd p{server_->fd(), POLLIN, 0};
      ::poll(&p, 1, 5);
      server_->handle();
      if (!exited) {
        int wst = 0;
        if (::waitpid(pid, &wst, WNOHANG) == pid) {
          exited = true;
          st = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
        }
      }
    }
    std::vector<uint8_t> steps;
    uint8_t b;
    while (::read(rec[0], &b, 1) == 1) steps.push_back(b);
    ::close(rec[0]);
    *status = st;
    return steps;
  }

  // The entry as the hypervisor sees it, with the other pinner's `pins` (readonly) left on `a` and nothing on the
  // others; then the other pinner goes and the guest takes every grant back.
  void expect_released(const std::string& what, unsigned survivor_pins, unsigned pins_released_lo,
                       unsigned pins_released_hi) {
    ASSERT_FALSE(gone_.empty());
    const SimServer::ClientGone& g = gone_.back();
    EXPECT_EQ(g.dom, kDom0) << what;
    EXPECT_EQ(g.flags_mismatch, 0u) << what;
    EXPECT_GE(g.pins_released, pins_released_lo) << what;
    EXPECT_LE(g.pins_released, pins_released_hi) << what;
    for (GrantRef r : {grants_.a, grants_.b, grants_.bad}) {
      const sim::ActiveEntry* act = view_->active_entry(r.value);
      const uint16_t flags = __atomic_load_n(&view_->shared_entry(r.value)->flags, __ATOMIC_ACQUIRE);
      const unsigned want = r.value == grants_.a.value ? survivor_pins : 0;
      EXPECT_EQ(act->lock, 0u) << what << ", ref " << r.value;
      EXPECT_EQ(act->undo_armed, 0u) << what << ", ref " << r.value;
      EXPECT_EQ(act->pin_read, want) << what << ", ref " << r.value;
      EXPECT_EQ(act->pin_write, 0u) << what << ", ref " << r.value;
      EXPECT_EQ((flags & GTF_reading) != 0, want > 0) << what << ", ref " << r.value;
      EXPECT_EQ(flags & GTF_writing, 0) << what << ", ref " << r.value;
      EXPECT_EQ(flags & GTF_permit_access, GTF_permit_access) << what << ", ref " << r.value;
      if (want) {
        EXPECT_EQ(act->frame, 1u) << what;
      }
    }
    EXPECT_EQ(server_->pins_held_by(kDom0), survivor_pins) << what;
  }

  void take_back_and_regrant(const std::string& what) {
    auto& gt = guest_->grant_table();
    for (GrantRef r : {grants_.a, grants_.b, grants_.bad}) EXPECT_TRUE(gt.end_access(r)) << what << ", ref " << r.value;
    grant();
  }

  static constexpr DomId kGuest{7};
  std::string path_;
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<SimServer> server_;
  std::vector<SimServer::ClientGone> gone_;
  std::unique_ptr<Platform> guest_, dom0_;
  std::shared_ptr<sim::SimDomain> view_;
  Grants grants_;
};

TEST_F(CrashConsistency, ClientEndedAtEveryStepOfEveryPinAndUnpinLeavesTheEntryAsIfDoneOrNotStarted) {
  std::set<uint8_t> covered;
  for (const Scenario& s : scenarios()) {
    // The other pinner, when the scenario has one, is there for the recorded run too: it changes the path.
    auto run = [&](unsigned crash_at, int* st, const std::string& what) {
      MapOp survivor;
      if (s.survivor) {
        survivor.dom = kGuest;
        survivor.ref = grants_.a;
        dom0_->mapper().map({&survivor, 1});
        EXPECT_EQ(survivor.status, GntSt::okay) << what;
      }
      std::vector<uint8_t> steps = run_child(s, crash_at, st);
      if (crash_at == 0) expect_released(what, s.survivor ? 1 : 0, s.pins_after, s.pins_after);
      else expect_released(what, s.survivor ? 1 : 0, std::min(s.pins_before, s.pins_after), s.pins_most);
      if (s.survivor) {
        UnmapOp u;
        u.handle = survivor.handle;
        dom0_->mapper().unmap({&u, 1});
        EXPECT_EQ(u.status, GntSt::okay) << what;
      }
      take_back_and_regrant(what);
      return steps;
    };
    int st = -1;
    const std::vector<uint8_t> steps = run(0, &st, std::string(s.name) + ", completed");
    ASSERT_EQ(st, 0) << s.name << ": the scenario itself failed";
    ASSERT_FALSE(steps.empty()) << s.name;
    for (unsigned k = 1; k <= steps.size(); ++k) {
      const auto point = static_cast<sim::CrashPoint>(steps[k - 1]);
      const std::string what = std::string(s.name) + ", ended at step " + std::to_string(k) + " (" +
                               sim::to_string(point) + ")";
      covered.insert(steps[k - 1]);
      (void)run(k, &st, what);
      ASSERT_EQ(st, kDied) << what;
      const SimServer::ClientGone& g = gone_.back();
      // Ended between taking and letting go of an entry's lock: the hypervisor took it over.
      EXPECT_EQ(g.locks_recovered, 1u) << what;
      const bool armed = point != sim::CrashPoint::pin_locked && point != sim::CrashPoint::pin_journaled &&
                         point != sim::CrashPoint::unpin_locked && point != sim::CrashPoint::unpin_journaled &&
                         point != sim::CrashPoint::pin_disarmed && point != sim::CrashPoint::unpin_disarmed;
      EXPECT_EQ(g.entries_rolled_back, armed ? 1u : 0u) << what;
      if (HasFailure()) return;
    }
  }
  for (uint8_t p = 0; p < static_cast<uint8_t>(sim::CrashPoint::count); ++p)
    EXPECT_TRUE(covered.count(p)) << "no scenario reaches " << sim::to_string(static_cast<sim::CrashPoint>(p));
}

}  // namespace
}  // namespace pvnet
