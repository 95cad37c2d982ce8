// The one bounded spawn (tools/process/spawn.hpp) under ChildProcess and run_bounded: a child that overstays its
// time limit is killed with what it started, a killed ChildProcess is reaped, and stdin/stdout are what they say.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "tools/process/child_process.hpp"
#include "tools/process/spawn.hpp"

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

// Running, not a zombie nobody reaped yet (a container's init may never reap the orphans it inherits).
bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

TEST(Spawn, RunBoundedKillsTheWholeGroupAtItsTimeLimit) {
  // The grandchild prints its pid and sleeps: the limit must reach it too (its own process group).
  const auto t0 = Clock::now();
  auto r = run_bounded({"sh", "-c", "sleep 30 & echo $!; wait"}, Ms(500));
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_LT(took, std::chrono::seconds(10));
  const std::string out = r.error().reason.substr(r.error().reason.find("output:\n") + 8);
  const pid_t grandchild = static_cast<pid_t>(std::stol(out));
  ASSERT_GT(grandchild, 0);
  for (int i = 0; i < 200 && alive(grandchild); ++i) std::this_thread::sleep_for(Ms(10));
  EXPECT_FALSE(alive(grandchild)) << "sleep " << grandchild << " outlived run_bounded's limit";
}

TEST(Spawn, RunBoundedCollectsOutputAndStatusAndGivesNoStdin) {
  auto r = run_bounded({"sh", "-c", "cat; echo out; echo err >&2; exit 4"}, Ms(10'000));
  ASSERT_TRUE(r.ok()) << r.error().reason;
  EXPECT_EQ(r->status, 4);
  EXPECT_EQ(r->output, "out\nerr\n");  // cat read /dev/null: nothing, at once
}

TEST(Spawn, SpawnProcessRefusesAnEmptyCommandAndReportsAFailedExec) {
  EXPECT_EQ(spawn_process(SpawnSpec{}).error().code, EINVAL);
  SpawnSpec s;
  s.exe = "/nonexistent/program";
  s.argv = {"program"};
  auto pid = spawn_process(s);
  ASSERT_TRUE(pid.ok());
  int st = 0;
  ASSERT_EQ(::waitpid(*pid, &st, 0), *pid);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 127);
}

TEST(Spawn, ChildProcessWaitTimesOutThenKillAndReapEndsIt) {
  auto c = ChildProcess::spawn("/bin/sleep", {"sleep", "30"}, "sleeper");
  ASSERT_TRUE(c.ok()) << c.error().reason;
  const pid_t pid = (*c)->pid();
  auto w = (*c)->wait(Ms(100));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ETIMEDOUT);
  EXPECT_TRUE((*c)->running());
  (*c)->kill_and_reap();
  EXPECT_FALSE((*c)->running());
  EXPECT_NE((*c)->status_text().find("killed by signal 9"), std::string::npos) << (*c)->status_text();
  EXPECT_FALSE(alive(pid));
}

TEST(Spawn, ChildProcessTalksLinesBothWaysAndItsSignalsArriveUnblocked) {
  // The child starts with no signal blocked, even when we block one (the daemons block theirs for signalfd).
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, &mask, &old), 0);
  auto c = ChildProcess::spawn("/bin/sh", {"sh", "-c", "read l; echo got $l; sleep 30"}, "sh");
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->send_line("go").ok());
  auto l = (*c)->read_line(Ms(10'000));
  ASSERT_TRUE(l.ok()) << l.error().reason;
  EXPECT_EQ(*l, "got go");
  ASSERT_TRUE((*c)->signal(SIGTERM).ok());
  auto w = (*c)->wait(Ms(10'000));
  ASSERT_TRUE(w.ok()) << w.error().reason;
  EXPECT_EQ(*w, 128 + SIGTERM);
}

}  // namespace
}  // namespace pvnet::tools
