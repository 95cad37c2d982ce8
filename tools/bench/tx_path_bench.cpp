// One guest, one backend, one thread: what a packet costs through netfront's TX, netback's TX path, the null sink
// and the completion back to netfront, per payload policy and frame size. No second core, no cache line moving
// between cores and no scheduler in the number: this is the instruction budget of the path (callgrind this
// binary to see where it goes), `pvnet bench` is the cross-process rate.
//
//   build/tools/bench/tx_path_bench                          # every policy x size
//   valgrind --tool=callgrind build/tools/bench/tx_path_bench --benchmark_filter='policy:0/size:64$'
#include <benchmark/benchmark.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tools/bench/bench_frames.hpp"

namespace pvnet {
namespace {

constexpr DomId kGuest{1};
constexpr uint32_t kFrames = 256;  // frames the guest keeps in flight at most, as `pvnet bench`

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().reason);
  return std::move(r).value();
}

struct Rig {
  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0, guest;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Netfront> nf;
  std::vector<PlacedFrame> frames;
  std::vector<uint32_t> free_idx;
  TxOptions tx;
  uint64_t completed = 0, errors = 0;

  Rig(PayloadPolicyKind policy, uint32_t size) {
    hv = must(SimHypervisor::create(), "hypervisor");
    dom0 = must(hv->attach(DomId{0}), "dom0");
    guest = must(hv->create_domain(kGuest, 256u << 20, 8192), "guest");
    pool = std::make_unique<MemoryPagePool>(guest->memory());
    BackendOptions bo;
    bo.payload_policy = policy;
    be = must(Backend::create(*dom0, bo), "backend");
    VifOptions vo;
    const VifId vif = must(be->add_vif(kGuest, 0, vo), "add_vif");
    if (!be->set_sink(vif, std::make_shared<NullSink>())) throw std::runtime_error("set_sink");
    nf = std::make_unique<Netfront>(*guest, *pool, vif_frontend_dir(DomId{1}, 0), NetfrontConfig{});
    for (int i = 0; i < 10000 && !nf->connected(); ++i) {
      nf->poll();
      be->poll();
    }
    if (!nf->connected()) throw std::runtime_error("netfront did not connect");
    const auto frame = tools::make_bench_frame(tools::bench_wire_size(size));
    tx = tools::bench_tx_options(tools::bench_wire_size(size), vo.mtu);
    for (uint32_t i = 0; i < kFrames; ++i) {
      frames.push_back(must(place_frame(*pool, frame), "place_frame"));
      free_idx.push_back(i);
    }
    nf->on_tx_complete([this](const TxDone& d) {
      if (d.status == netif::rsp::okay) ++completed;
      else ++errors;
      free_idx.push_back(static_cast<uint32_t>(d.cookie));
    });
  }

  // One round: the guest puts every free frame on the ring (one push), dom0 polls once, the guest collects.
  void round() {
    uint32_t queued = 0;
    while (!free_idx.empty()) {
      TxOptions o = tx;
      o.cookie = free_idx.back();
      o.defer_push = true;
      if (nf->transmit(frames[free_idx.back()].pieces(), o) != TxStatus::kQueued) break;
      free_idx.pop_back();
      ++queued;
    }
    if (queued) nf->flush();
    be->poll();
    nf->poll();
  }
};

void BM_TxPath(benchmark::State& state) {
  const auto policy = static_cast<PayloadPolicyKind>(state.range(0));
  const auto size = static_cast<uint32_t>(state.range(1));
  Rig rig(policy, size);
  for (int i = 0; i < 8; ++i) rig.round();  // warm: every buffer has its capacity
  const uint64_t done0 = rig.completed;
  for (auto _ : state) rig.round();
  const uint64_t packets = rig.completed - done0;
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["ns_per_pkt"] = benchmark::Counter(static_cast<double>(packets),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["errors"] = static_cast<double>(rig.errors);
  state.SetLabel(to_string(policy));
}

void args(benchmark::internal::Benchmark* b) {
  for (PayloadPolicyKind p : {PayloadPolicyKind::slots, PayloadPolicyKind::copy, PayloadPolicyKind::map,
                              PayloadPolicyKind::hdrcopy})
    for (int64_t size : {64, 1514, 65536}) b->Args({static_cast<int64_t>(p), size});
  b->ArgNames({"policy", "size"});
}

BENCHMARK(BM_TxPath)->Apply(args);

}  // namespace
}  // namespace pvnet

BENCHMARK_MAIN();
