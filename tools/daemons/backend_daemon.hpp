// pvnet backend: dom0 as its own process. Hosts the simulated hypervisor (served on --socket for the frontend
// processes), plays the toolstack (a vif for every domain that appears, as libxl does on @introduceDomain; removed
// when the domain goes, @releaseDomain: domain_rescan.hpp) and runs netback, all in one event loop. With
// --toolstack libxl it writes no directories: it serves the vifs libxl writes (`xl network-attach`,
// backend/vif_adopter.hpp). SIGUSR1/SIGUSR2 snapshot the counters at traffic start/end; SIGTERM/SIGINT tear every
// vif down and write --json. Control lines on stdout (tools/process/control_lines.hpp): "ready PATH", "added
// vifN.0", "adopted vifN.M", "offline vifN.M", "removed vifN.M", "refused PATH: why", "snapshot start",
// "snapshot end".
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::tools {

// Option ranges (tools/options.hpp): what the backend can hold to.
inline constexpr uint32_t kMaxKeptPages = 4096;      // --max-kept-pages: 16 MiB of kept slot pages per domain
inline constexpr uint32_t kMaxInflight = 1u << 16;   // --max-inflight: more than any TX ring holds
inline constexpr size_t kMinRxQueueBytes = 1u << 16;  // --rx-queue-bytes: at least one frame of netif's largest size
inline constexpr size_t kMaxRxQueueBytes = 1u << 30;

struct DaemonOptions {
  bool xen = false;  // --hypervisor xen: dom0 of a real Xen host (docs/xen.md)
  bool libxl = false;  // --toolstack libxl: serve the vif directories libxl writes instead of writing our own
  std::string socket;
  std::string attach;  // --hypervisor-socket: attach as dom0 to a `pvnet hypervisor` instead of serving one
  PayloadPolicyKind policy = PayloadPolicyKind::slots;
  std::string sink = "vif";
  std::string out;
  std::map<uint16_t, uint16_t> forward;     // source domain -> destination domain
  std::optional<std::set<uint16_t>> frontends;  // absent: every domain
  uint32_t mtu = 9000;
  // Per-guest limits (docs/security.md): what one guest can make dom0 hold or do.
  BackendOptions limits;  // max_kept_pages_per_domain, max_inflight_per_vif
  VifOptions vif_limits;  // rx_queue_max_bytes, rx_stall_timeout_ms, credit
  std::string json;
  // The TAP sink (dom0 -> host): domain tap_for's TX goes to TAP tap_name in namespace tap_netns, and back.
  std::string tap_netns;
  uint16_t tap_for = 0;
  std::string tap_name;
  std::vector<std::string> tap_addrs;
};

// What the command line gave as text, before it is checked.
struct BackendDaemonArgs {
  std::string hypervisor = "sim", toolstack = "pvnet", policy = "slots";
  std::vector<std::string> forward;
  std::optional<std::string> frontends;
};
// Checks the options and fills in what they decide (o.xen, o.libxl, o.policy, o.forward, o.frontends, the TAP
// defaults); the error is the message for the user (exit status 2).
Result<void> resolve_backend_options(const BackendDaemonArgs& args, DaemonOptions& o);

// "1,2,5": guest domain ids (not 0, not reserved).
Result<std::set<uint16_t>> parse_domain_list(const std::string& s);

// Runs the daemon until SIGTERM/SIGINT; the exit status (1 with the reason on stderr).
int run_backend_daemon(DaemonOptions o);

}  // namespace pvnet::tools
