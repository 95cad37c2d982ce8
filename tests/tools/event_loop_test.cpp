// The daemons' event loop (tools/process/event_loop.hpp): a blocked signal wakes it and is read as an event; fds
// keep their index across holes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tools/process/event_loop.hpp"

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;

TEST(EventLoop, ASignalEndsALoopThatSleepsWithoutALimit) {
  auto loop = EventLoop::create({SIGUSR2});
  ASSERT_TRUE(loop.ok()) << loop.error().reason;
  EventLoop& ev = **loop;
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  // Process-directed, from another thread: the signal is blocked there too (inherited mask), so only the
  // signalfd can take it.
  std::thread sender([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(::getpid(), SIGUSR2);
  });
  const auto t0 = Clock::now();
  int rounds = 0;
  std::vector<int> got;
  while (got.empty() && rounds < 100) {
    ev.clear();
    const size_t pipe_at = ev.add(p[0]);
    auto n = ev.wait(-1);
    ASSERT_TRUE(n.ok()) << n.error().reason;
    EXPECT_FALSE(ev.ready(pipe_at));
    got = ev.take_signals();
    ++rounds;
  }
  sender.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], SIGUSR2);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  EXPECT_TRUE(ev.take_signals().empty());  // read once
  ::close(p[0]);
  ::close(p[1]);
}

TEST(EventLoop, ReadyFdsKeepTheirIndexAcrossHoles) {
  auto loop = EventLoop::create({SIGUSR1});
  ASSERT_TRUE(loop.ok());
  EventLoop& ev = **loop;
  int a[2], b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  ASSERT_EQ(::write(b[1], "x", 1), 1);
  ev.clear();
  const size_t at_a = ev.add(a[0]);
  const size_t hole = ev.add(-1);
  const size_t at_b = ev.add(b[0]);
  auto n = ev.wait(1000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(ev.ready(at_a));
  EXPECT_FALSE(ev.ready(hole));
  EXPECT_TRUE(ev.ready(at_b));
  // Nothing ready, a zero timeout: only look.
  ev.clear();
  ev.add(a[0]);
  auto none = ev.wait(0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
}

}  // namespace
}  // namespace pvnet::tools
