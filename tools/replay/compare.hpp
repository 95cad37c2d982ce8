// The comparison the project exists to make (docs/DESIGN): the same trace, through the same frontend and backend,
// under every backend payload policy. Each policy's output is checked against the input frame by frame (a policy
// that loses or changes a frame fails the whole comparison, naming the policy and the frame), each (policy,
// trace) is replayed several times with the policies interleaved so drift on a shared machine hits all alike, and
// the median run is reported with the run-to-run spread. The same is done again per frame-size bin, each bin
// replayed alone from a filtered temporary trace, so a bin's costs are measured, not apportioned.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "shared-ring/result.hpp"
#include "tools/replay/replay.hpp"

namespace pvnet::tools {

// Every policy the project compares. A policy this build does not know or has not implemented fails the
// comparison: none is skipped silently.
std::vector<std::string> default_compare_policies();

// Frame-size bins in the style of DPDK's per-queue statistics, plus the two this project cares about: jumbo
// frames and GSO super-frames.
struct SizeBin {
  const char* name;
  uint32_t lo, hi;  // frame length, inclusive
};
const std::vector<SizeBin>& frame_size_bins();
// The bin a frame falls in: by length, except that any frame the guest stack sends as a GSO super-frame (TCP
// longer than the MTU) is "gso" whatever its length. Index into frame_size_bins().
size_t frame_size_bin(std::span<const std::byte> frame, uint32_t mtu);

struct CompareOptions {
  std::string in;
  SinkKind sink = SinkKind::vif;
  std::vector<std::string> policies = default_compare_policies();
  uint32_t runs = 3;        // replays of each (policy, trace); the median is reported
  bool by_size = true;      // also replay each non-empty frame-size bin alone
  ReplayOptions base;       // slot size, MTU, header slots, data offset, repeat (in, out, policy, sink are set here)
  std::string work_dir;     // temporary traces and outputs; empty: a fresh directory, removed afterwards
  // Test hook: called after every replay with the policy and the file the replay wrote (empty for the null
  // sink), before that file is checked against the input.
  std::function<void(const std::string& policy, const std::string& output)> after_replay;
};

// One policy on one trace: the median run's figures, and every run's ns/packet.
struct PolicyRow {
  std::string policy;
  uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0, dropped = 0;
  double gbit_per_s = 0, mpps = 0, ns_per_packet = 0;
  std::vector<double> ns_per_packet_runs;  // in run order
  uint64_t memcpy_bytes = 0, grant_copy_bytes = 0;
  uint64_t pages_mapped = 0, pages_unmapped = 0, tlb_shootdowns = 0, faults = 0, hypercalls = 0;
  uint64_t frames_verified = 0;  // output frames matched byte for byte against the input

  uint64_t dom0_bytes_copied() const { return memcpy_bytes + grant_copy_bytes; }
  double pct_bytes_copied() const;  // of bytes_in
  double ns_min() const;
  double ns_max() const;
  double spread_pct() const;  // (max - min) / median
  nlohmann::json to_json() const;
};

struct BinReport {
  std::string name;
  uint32_t lo = 0, hi = 0;
  uint64_t frames = 0, bytes = 0;  // in the trace (once, before --repeat)
  std::vector<PolicyRow> rows;
};

struct CompareReport {
  std::string trace;
  SinkKind sink = SinkKind::vif;
  uint32_t runs = 0, repeat = 1;
  std::string verification;  // how outputs were checked
  std::string method;        // how the bins were measured
  std::vector<PolicyRow> rows;  // the whole trace, one per policy, in the order asked
  std::vector<BinReport> bins;  // non-empty bins only
  nlohmann::json to_json() const;
  std::string to_csv() const;       // the whole trace: a header line, then one row per policy
  std::string bins_to_csv() const;  // one row per (bin, policy)
  std::string table() const;        // for a terminal
};

Result<CompareReport> run_compare(const CompareOptions& options);

// report.json, report.csv and report_bins.csv in `dir` (created if missing).
Result<void> write_report_files(const CompareReport& report, const std::string& dir);

}  // namespace pvnet::tools
