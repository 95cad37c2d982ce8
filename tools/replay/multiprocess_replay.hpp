// `pvnet replay --processes`: the main job across three processes, as it would run on Xen (dom0 and two guests):
// `pvnet backend` (hypervisor socket, toolstack, netback), `pvnet frontend --rx` (guest B; not needed when dom0
// itself is the sink) and `pvnet frontend --tx --wait-go` (guest A). The orchestration is line-based over each
// child's stdin/stdout; the counters come back as each child's JSON and are merged into the same ReplayStats (and
// STATS.json keys) as the in-process replay.
#pragma once
#include <chrono>

#include "shared-ring/result.hpp"
#include "tools/replay/replay.hpp"

namespace pvnet::tools {

struct ProcessTimeouts {
  std::chrono::milliseconds start{10'000};     // backend: "ready"
  std::chrono::milliseconds connect{20'000};   // a frontend: "connected" (domain, vif, xenbus, header slots)
  std::chrono::milliseconds snapshot{5'000};   // backend: "snapshot start" / "snapshot end"
  std::chrono::milliseconds traffic{600'000};  // guest A: "done" after "go"
  std::chrono::milliseconds exit{10'000};      // a child told to close or stop: exited
};

// Fails (with the step that failed in the reason) on bad input, or if a child fails, dies or times out; every
// child still running is then killed.
Result<ReplayStats> run_replay_processes(const ReplayOptions& options, const ProcessTimeouts& timeouts = {});

}  // namespace pvnet::tools
