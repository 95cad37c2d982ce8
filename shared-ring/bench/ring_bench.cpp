// Descriptors per second through a netif TX ring shared by two processes (frontend = this process, backend = a
// forked child), three ways of waking the other side:
//   BusyPoll          both sides spin on the shared indices, never sleep: the ceiling.
//   Suppressed        ring.h's protocol: push_*_and_check_notify + final_check, eventfd kick only when asked.
//   EventfdPerMessage one push and one eventfd write per descriptor in each direction: the naive baseline.
// Each reports desc/s and its ratio to BusyPoll measured earlier in the same run (vs_busy_poll), plus kicks per
// descriptor. Registration order is the run order, so BusyPoll runs first.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "shared-ring/netif.hpp"

namespace pvnet::netif {
namespace {

enum class Mode { kBusyPoll, kSuppressed, kEventfdPerMessage };

constexpr uint64_t kPerIteration = 1 << 16;  // descriptors per benchmark iteration

struct Control {  // lives in the shared page after the ring
  std::atomic<uint32_t> stop;
  std::atomic<uint64_t> backend_kicks;
};

void kick(int fd) {
  const uint64_t one = 1;
  while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void wait_on(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
  }
}

// Busy-poll spin. Every 4096 empty polls it yields the CPU: on a machine with more runnable threads than cores a
// pure spinner can burn its whole time slice while the peer it waits for is descheduled (measured here: busy-poll
// fell to ~20 k desc/s at load 7 on 2 cores). Still never sleeps and never notifies.
inline void cpu_relax(uint32_t& spins) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  if (++spins % 4096 == 0) sched_yield();
}

[[noreturn]] void backend(std::span<std::byte> ring_mem, Control* ctl, Mode mode, int req_fd, int rsp_fd) {
  TxBackRing back = *TxBackRing::init(ring_mem);
  uint64_t kicks = 0;
  uint32_t spins = 0;
  for (;;) {
    auto rp = back.checked_req_prod();
    if (!rp) std::_Exit(2);
    uint32_t avail = *rp - back.req_cons();
    if (avail == 0) {
      if (ctl->stop.load(std::memory_order_acquire)) break;
      switch (mode) {
        case Mode::kBusyPoll:
          cpu_relax(spins);
          break;
        case Mode::kSuppressed:
          if (!back.final_check_for_requests()) wait_on(req_fd);
          break;
        case Mode::kEventfdPerMessage:
          wait_on(req_fd);  // every request comes with its own kick, so no final check is needed to stay live
          break;
      }
      continue;
    }
    for (; avail > 0; --avail) {
      const TxRequest req = back.consume_request();
      back.produce_response(TxResponse{req.id, rsp::okay});
      if (mode == Mode::kEventfdPerMessage) {
        back.push_responses();
        kick(rsp_fd);
        ++kicks;
      }
    }
    if (mode == Mode::kBusyPoll) {
      back.push_responses();
    } else if (mode == Mode::kSuppressed && back.push_responses_and_check_notify()) {
      kick(rsp_fd);
      ++kicks;
    }
  }
  ctl->backend_kicks.store(kicks, std::memory_order_release);
  std::_Exit(0);
}

double g_busy_poll_rate = 0;  // desc/s of BusyPoll in this run

void BM_TxRing(benchmark::State& state, Mode mode) {
  const size_t ring_bytes = kPageSize;
  void* area = mmap(nullptr, ring_bytes + kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  std::span<std::byte> ring_mem(static_cast<std::byte*>(area), ring_bytes);
  auto* ctl = new (static_cast<std::byte*>(area) + ring_bytes) Control{};
  const int req_fd = eventfd(0, EFD_CLOEXEC), rsp_fd = eventfd(0, EFD_CLOEXEC);
  TxFrontRing front = *TxFrontRing::init(ring_mem);

  const pid_t pid = fork();
  if (pid == 0) backend(ring_mem, ctl, mode, req_fd, rsp_fd);

  uint64_t total = 0, front_kicks = 0;
  uint16_t id = 0;
  uint32_t spins = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    uint64_t sent = 0, acked = 0;
    while (acked < kPerIteration) {
      const uint32_t ready = front.unconsumed_responses();
      front.advance_rsp_cons(ready);  // a real netfront would free the slots' grants here
      acked += ready;
      uint32_t n = std::min<uint64_t>(front.free_requests(), kPerIteration - sent);
      if (n > 0) {
        for (uint32_t i = 0; i < n; ++i) {
          front.produce_request(TxRequest{GrantRef{id}, 0, 0, id, 64});
          ++id;
          if (mode == Mode::kEventfdPerMessage) {
            front.push_requests();
            kick(req_fd);
            ++front_kicks;
          }
        }
        sent += n;
        if (mode == Mode::kBusyPoll) {
          front.push_requests();
        } else if (mode == Mode::kSuppressed && front.push_requests_and_check_notify()) {
          kick(req_fd);
          ++front_kicks;
        }
        continue;
      }
      if (ready != 0 || acked == kPerIteration) continue;
      switch (mode) {
        case Mode::kBusyPoll:
          cpu_relax(spins);
          break;
        case Mode::kSuppressed:
          if (!front.final_check_for_responses()) wait_on(rsp_fd);
          break;
        case Mode::kEventfdPerMessage:
          wait_on(rsp_fd);
          break;
      }
    }
    total += kPerIteration;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  ctl->stop.store(1, std::memory_order_release);
  kick(req_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("backend process failed");

  const double rate = static_cast<double>(total) / secs;
  if (mode == Mode::kBusyPoll) g_busy_poll_rate = rate;
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.counters["desc_per_s"] = rate;
  state.counters["vs_busy_poll"] = g_busy_poll_rate > 0 ? rate / g_busy_poll_rate : 0;
  state.counters["fe_kicks_per_desc"] = static_cast<double>(front_kicks) / static_cast<double>(total);
  state.counters["be_kicks_per_desc"] =
      static_cast<double>(ctl->backend_kicks.load(std::memory_order_acquire)) / static_cast<double>(total);
  close(req_fd);
  close(rsp_fd);
  munmap(area, ring_bytes + kPageSize);
}

BENCHMARK_CAPTURE(BM_TxRing, BusyPoll, Mode::kBusyPoll)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TxRing, Suppressed, Mode::kSuppressed)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TxRing, EventfdPerMessage, Mode::kEventfdPerMessage)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pvnet::netif

BENCHMARK_MAIN();
