// Descriptors per second through a netif TX ring shared by two processes (frontend = this process, backend = a
// forked child), three ways of waking the other side (the core is shared-ring/ring_pingpong.hpp, which
// `pvnet bench` also runs as its ceiling):
//   BusyPoll          both sides spin on the shared indices, never sleep: the ceiling.
//   Suppressed        ring.h's protocol: push_*_and_check_notify + final_check, eventfd kick only when asked.
//   EventfdPerMessage one push and one eventfd write per descriptor in each direction: the naive baseline.
// Each reports desc/s and its ratio to BusyPoll measured earlier in the same run (vs_busy_poll), plus kicks per
// descriptor. Registration order is the run order, so BusyPoll runs first.
#include <benchmark/benchmark.h>

#include <chrono>

#include "shared-ring/ring_pingpong.hpp"

namespace pvnet::netif {
namespace {

constexpr uint64_t kPerIteration = 1 << 16;  // descriptors per benchmark iteration

double g_busy_poll_rate = 0;  // desc/s of BusyPoll in this run

void BM_TxRing(benchmark::State& state, RingWakeMode mode) {
  auto pp = TxRingPingPong::start(mode);
  if (!pp) {
    state.SkipWithError(pp.error().reason.c_str());
    return;
  }
  uint64_t total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    pp->run(kPerIteration);
    total += kPerIteration;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (auto r = pp->stop(); !r) state.SkipWithError("backend process failed");

  const double rate = static_cast<double>(total) / secs;
  if (mode == RingWakeMode::kBusyPoll) g_busy_poll_rate = rate;
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.counters["desc_per_s"] = rate;
  state.counters["vs_busy_poll"] = g_busy_poll_rate > 0 ? rate / g_busy_poll_rate : 0;
  state.counters["fe_kicks_per_desc"] = static_cast<double>(pp->frontend_kicks()) / static_cast<double>(total);
  state.counters["be_kicks_per_desc"] = static_cast<double>(pp->backend_kicks()) / static_cast<double>(total);
}

BENCHMARK_CAPTURE(BM_TxRing, BusyPoll, RingWakeMode::kBusyPoll)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TxRing, Suppressed, RingWakeMode::kSuppressed)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TxRing, EventfdPerMessage, RingWakeMode::kEventfdPerMessage)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pvnet::netif

BENCHMARK_MAIN();
