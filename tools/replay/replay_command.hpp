// What `pvnet replay` does once its options are read: one replay (in one process or across processes), its
// summary printed, its output verified against the trace and its --json written; or, with --compare, every
// payload policy on the trace (compare.hpp) as a table, a report and charts.
#pragma once
#include <cstdint>
#include <string>

#include "tools/replay/replay.hpp"

namespace pvnet::tools {

// The exit status: 0 when every frame is accounted for, --out holds what was delivered and nothing leaked.
// `policy` and `sink` are the names the summary line shows.
int run_replay_command(const ReplayOptions& o, bool processes, const std::string& policy, const std::string& sink,
                       const std::string& json);

// replay --compare: every payload policy on the trace, checked and measured, `runs` replays each. The exit
// status (1 when a replay failed or the report could not be written).
int run_compare_command(const ReplayOptions& base, uint32_t runs, const std::string& report_dir,
                        const std::string& json);

}  // namespace pvnet::tools
