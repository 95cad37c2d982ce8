// `pvnet bench`: the copy-avoidance comparison on generated traffic. Frames of fixed sizes go from a guest's
// netfront in one process (the frontend child, `pvnet bench --role frontend`) to dom0's netback in this process,
// which hosts the simulated hypervisor (SimHypervisor + SimServer) and one Backend per payload policy, each with
// its own vif of the same guest. Every cell (policy x size x mode) runs for a fixed time on the same two
// processes; cells are interleaved and repeated, each figure is the median of the runs, and every ratio is to
// `copy` measured in the same run. The bare ring's descriptor rate (shared-ring/ring_pingpong.hpp) runs in
// between, as the ceiling.
//
// Modes: busy (both sides spin, never sleep) and event (each side sleeps on its event-channel fd when idle, and
// wakes the other only when ring.h's notification suppression says so).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "backend/payload_policy.hpp"
#include "shared-ring/result.hpp"
#include "tools/replay/replay.hpp"

namespace pvnet::tools {

enum class BenchMode : uint8_t { busy, event };
const char* to_string(BenchMode m);

struct BenchOptions {
  std::vector<uint32_t> sizes = {64, 128, 256, 1514, 9000, 65536};
  std::vector<PayloadPolicyKind> policies = {PayloadPolicyKind::copy, PayloadPolicyKind::map,
                                             PayloadPolicyKind::hdrcopy, PayloadPolicyKind::slots,
                                             PayloadPolicyKind::automatic};
  std::vector<BenchMode> modes = {BenchMode::busy, BenchMode::event};
  double seconds = 0.25;  // per cell and run
  uint32_t runs = 3;      // each figure is the median of this many interleaved runs
  SinkKind sink = SinkKind::null;  // null or vif
  uint32_t mtu = 9000;
  bool progress = false;  // force the progress line when stderr is not a terminal
  std::string exe;        // the pvnet binary to start the frontend with (default: this executable)
};

// One cell, one run, as measured.
struct BenchSample {
  uint64_t packets = 0;  // TX completions with status okay
  uint64_t bytes = 0;
  uint64_t errors = 0;   // completions with another status (should be 0)
  uint64_t elapsed_ns = 0;
  uint64_t fe_notifications = 0;  // netfront's kicks to the backend
  uint64_t be_notifications = 0;  // the backend's kicks (TX responses, and RX under --sink vif)
  uint64_t pages_mapped = 0, faults = 0, grant_copy_bytes = 0, backend_memcpy_bytes = 0, hypercalls = 0;
  double ns_per_packet() const { return packets ? static_cast<double>(elapsed_ns) / static_cast<double>(packets) : 0; }
  double mpps() const { return elapsed_ns ? static_cast<double>(packets) * 1e3 / static_cast<double>(elapsed_ns) : 0; }
};

struct BenchCell {
  PayloadPolicyKind policy;
  uint32_t size;  // as requested (65536 is sent as 65535 bytes, see bench_wire_size)
  BenchMode mode;
  std::vector<BenchSample> runs;
  // Medians over runs.
  double mpps = 0, gbit_per_s = 0, ns_per_packet = 0, notifications_per_packet = 0, vs_copy = 0;
};

struct BenchTarget {
  std::string name;       // what is claimed
  std::string relation;   // ">=" or "<"
  double threshold = 0;
  std::optional<double> value;  // nullopt: the cells it needs were not run
  bool pass() const;
};

struct BenchReport {
  BenchOptions options;
  std::vector<BenchCell> cells;
  // Bare ring desc/s per mode (busy: BusyPoll, event: Suppressed), one per run, and their median.
  struct Ring {
    BenchMode mode;
    std::vector<double> runs;
    double desc_per_s = 0;
  };
  std::vector<Ring> ring;
  std::vector<BenchTarget> targets;
  double load_before = 0, load_after = 0;  // 1-minute load average

  const BenchCell* find(PayloadPolicyKind p, uint32_t size, BenchMode m) const;
  const Ring* ring_for(BenchMode m) const;
  nlohmann::json to_json() const;
  std::string table() const;
};

Result<BenchReport> run_bench(const BenchOptions& options);

// The frontend child (`pvnet bench --role frontend ...`): argv as cmd_bench receives it.
int bench_frontend_main(int argc, char** argv);

}  // namespace pvnet::tools
