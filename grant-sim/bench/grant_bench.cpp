// What each way of reaching a guest's bytes costs dom0, against a plain memcpy of the same bytes measured in
// the same run: grant copy (one GNTTABOP_copy batch), map+touch+unmap (one map batch, read, one unmap batch),
// and a lazy window fault (assign, touch, release) with either fault handler. Every benchmark reads the same
// bytes into the same local buffer, so the ratio is the price of the mechanism.
//
//   build-h2/grant-sim/bench/grant_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstring>
#include <map>
#include <vector>

#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/lazy_window_uffd.hpp"
#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_mapper.hpp"

namespace pvnet {
namespace {

constexpr DomId kGuest{1};
constexpr size_t kMaxPages = 16;  // 64 KiB

class Directory final : public DomainDirectory {
 public:
  std::shared_ptr<SimDomainView> find(DomId dom) override { return dom == kGuest ? guest : nullptr; }
  std::shared_ptr<SimDomainView> guest;
};

// One guest with kMaxPages pages granted readonly to dom0, and dom0's mapper.
struct World {
  Directory dir;
  std::unique_ptr<GrantTable> gt;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<sim::SimMapper> mapper;
  std::vector<GrantRef> refs;
  World() {
    auto shm = create_domain_shm(kGuest, kMaxPages * kPageSize, 64);
    dir.guest = *SimDomainView::open(std::move(*shm));
    gt = make_sim_grant_table(dir.guest);
    mem = make_sim_guest_memory(dir.guest);
    for (size_t i = 0; i < kMaxPages; ++i) {
      auto p = mem->page(Pfn{i});
      for (size_t k = 0; k < p.size(); ++k) p[k] = std::byte(static_cast<uint8_t>(k * 13 + i));
      refs.push_back(*gt->grant_access(kDom0, Pfn{i}, true));
    }
    mapper = std::make_unique<sim::SimMapper>(kDom0, dir);
  }
  static World& get() {
    static World w;
    return w;
  }
};

size_t pages_for(size_t bytes) { return (bytes + kPageSize - 1) / kPageSize; }

// ns per iteration of BM_Memcpy for each size, so the others can report their ratio to it.
std::map<size_t, double>& memcpy_ns() {
  static std::map<size_t, double> m;
  return m;
}

// The machine is shared (2 cores, other builds running): ratios use this thread's CPU time, which includes
// the kernel work of our syscalls and faults but not the time we were descheduled.
struct Clock {
  using time_point = double;
  static double now() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
};

double elapsed_ns(const benchmark::State& state, double t0) {
  return (Clock::now() - t0) / static_cast<double>(state.iterations());
}

void report(benchmark::State& state, size_t bytes, double t0) {
  const double ns = elapsed_ns(state, t0);
  state.counters["cpu_ns"] = ns;
  state.counters["pages"] = static_cast<double>(pages_for(bytes));
  auto it = memcpy_ns().find(bytes);
  if (it != memcpy_ns().end() && it->second > 0) state.counters["x_memcpy"] = ns / it->second;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_Memcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  World& w = World::get();
  std::vector<std::byte> out(bytes);
  // The guest's RAM is contiguous here, so one memcpy covers multi-page sizes.
  const std::byte* src = w.mem->page(Pfn{0}).data();
  const auto t0 = Clock::now();
  for (auto _ : state) {
    std::memcpy(out.data(), src, bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  memcpy_ns()[bytes] = elapsed_ns(state, t0);
  report(state, bytes, t0);
}

void BM_GrantCopy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  World& w = World::get();
  std::vector<std::byte> out(bytes);
  std::vector<CopyOp> ops(pages_for(bytes));
  const auto t0 = Clock::now();
  for (auto _ : state) {
    for (size_t i = 0; i < ops.size(); ++i) {
      const size_t len = std::min<size_t>(kPageSize, bytes - i * kPageSize);
      ops[i].src = CopySide::gref(kGuest, w.refs[i], 0);
      ops[i].dst = CopySide::local(out.data() + i * kPageSize);
      ops[i].len = static_cast<uint16_t>(len);
    }
    w.mapper->copy(ops);
    if (ops[0].status != GntSt::okay) state.SkipWithError("grant copy failed");
    benchmark::ClobberMemory();
  }
  report(state, bytes, t0);
}

void BM_MapTouchUnmap(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  World& w = World::get();
  std::vector<std::byte> out(bytes);
  const size_t n = pages_for(bytes);
  std::vector<MapOp> ops(n);
  std::vector<UnmapOp> un(n);
  const auto t0 = Clock::now();
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      ops[i].dom = kGuest;
      ops[i].ref = w.refs[i];
      ops[i].readonly = true;
    }
    w.mapper->map(ops);
    for (size_t i = 0; i < n; ++i) {
      const size_t len = std::min<size_t>(kPageSize, bytes - i * kPageSize);
      std::memcpy(out.data() + i * kPageSize, ops[i].addr, len);
      un[i].handle = ops[i].handle;
    }
    w.mapper->unmap(un);
    benchmark::ClobberMemory();
  }
  report(state, bytes, t0);
}

void lazy(benchmark::State& state, sim::LazyHandler h, bool touch) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  World& w = World::get();
  if (h == sim::LazyHandler::uffd && !sim::uffd_lazy_supported()) {
    state.SkipWithError("userfaultfd unavailable");
    return;
  }
  auto win = w.mapper->make_lazy_window(kMaxPages, h);
  std::vector<std::byte> out(bytes);
  const size_t n = pages_for(bytes);
  std::vector<size_t> slots(n);
  for (size_t i = 0; i < n; ++i) slots[i] = i;
  const GrantCounters before = w.mapper->counters();
  const auto t0 = Clock::now();
  for (auto _ : state) {
    std::byte* base = nullptr;
    for (size_t i = 0; i < n; ++i) {
      std::byte* p = win->assign(i, kGuest, w.refs[i], true);
      if (i == 0) base = p;
    }
    if (touch) std::memcpy(out.data(), base, bytes);  // adjacent slots: one contiguous read
    win->release(slots);
    benchmark::ClobberMemory();
  }
  report(state, bytes, t0);
  const GrantCounters d = w.mapper->counters() - before;
  state.counters["faults_per_op"] = static_cast<double>(d.faults) / static_cast<double>(state.iterations());
  if (d.fault_errors) state.SkipWithError("lazy fault failed validation");
}

void BM_LazyFaultSegv(benchmark::State& state) { lazy(state, sim::LazyHandler::segv, true); }
void BM_LazyFaultUffd(benchmark::State& state) { lazy(state, sim::LazyHandler::uffd, true); }
void BM_LazyUntouchedSegv(benchmark::State& state) { lazy(state, sim::LazyHandler::segv, false); }
void BM_LazyUntouchedUffd(benchmark::State& state) { lazy(state, sim::LazyHandler::uffd, false); }

#define SIZES ->Arg(64)->Arg(256)->Arg(1514)->Arg(4096)->Arg(16384)->Arg(65536)
// Registration order is run order: the memcpy baselines first.
BENCHMARK(BM_Memcpy) SIZES;
BENCHMARK(BM_GrantCopy) SIZES;
BENCHMARK(BM_MapTouchUnmap) SIZES;
BENCHMARK(BM_LazyFaultSegv) SIZES;
BENCHMARK(BM_LazyFaultUffd) SIZES;
BENCHMARK(BM_LazyUntouchedSegv) SIZES;
BENCHMARK(BM_LazyUntouchedUffd) SIZES;

}  // namespace
}  // namespace pvnet

BENCHMARK_MAIN();
