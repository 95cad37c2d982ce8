// The pvnet daemons' control protocol: one line each way, on the daemon's stdout (what it reached) and stdin
// (what its parent asks). Written here by the daemons (ControlWriter) and read here by whoever started them
// (parse_control_line: ChildProcess::wait_for, multiprocess replay, the end-to-end tests), so a line's spelling
// lives in one place. Lines:
//   ready WHERE                       the backend or hypervisor serves (WHERE: its socket, or "xen")
//   connected slots=on|off [tx-ring=N] a frontend's vif is Connected (N: its TX ring's entries)
//   reconnected lost=N                a frontend is Connected again after its backend came back
//   done / stopped                    a frontend sent its trace / was stopped by a signal before the end
//   snapshot start / snapshot end     the backend took its counters snapshot (SIGUSR1 / SIGUSR2)
//   go / close                        (to a frontend --wait-go) start sending / close the vif and exit
// Other lines (the backend's "added vif1.0", a TAP's "tap NAME up", ...) are informational: kind `other`.
#pragma once
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

struct ControlLine {
  enum class Kind { ready, connected, reconnected, done, stopped, snapshot_start, snapshot_end, go, close, other };
  Kind kind = Kind::other;
  std::string text;   // the whole line
  std::string where;  // ready
  bool header_slots = false;           // connected
  std::optional<uint32_t> tx_ring;     // connected (the vhost-user frontend does not say it)
  uint64_t lost = 0;                   // reconnected
};

const char* to_string(ControlLine::Kind k);

// Strict: a line that starts with a known word but does not continue as that line says (e.g. "connected
// slots=maybe", "ready" with no place, "done now") is EPROTO with the reason; an unknown first word is `other`.
Result<ControlLine> parse_control_line(std::string_view line);

// Writes one line and flushes it: a parent waiting for it must not wait for a buffer to fill.
void say(std::string_view line, FILE* out = stdout);

// The lines above, spelled once.
std::string ready_line(std::string_view where);
std::string connected_line(bool header_slots, std::optional<uint32_t> tx_ring);
std::string reconnected_line(uint64_t lost);
inline constexpr std::string_view kDoneLine = "done";
inline constexpr std::string_view kStoppedLine = "stopped";
inline constexpr std::string_view kSnapshotStartLine = "snapshot start";
inline constexpr std::string_view kSnapshotEndLine = "snapshot end";
inline constexpr std::string_view kGoLine = "go";
inline constexpr std::string_view kCloseLine = "close";

}  // namespace pvnet::tools
