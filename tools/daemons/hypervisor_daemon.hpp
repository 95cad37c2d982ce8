// pvnet hypervisor: the simulated hypervisor (grant tables, event channels, store) served on a Unix socket, so
// that backend and frontend processes (and QEMU-facing daemons) can share it. Runs until SIGINT/SIGTERM. On
// stdout: "ready PATH", then per client that goes a "client-gone id=N dom=D ..." line (cmd_hypervisor.cpp's
// help lists the fields).
#pragma once
#include <cstdint>
#include <string>

namespace pvnet::tools {

inline constexpr uint64_t kMaxDom0Mem = 1ull << 36;  // --dom0-mem: 64 GiB

struct HypervisorDaemonOptions {
  std::string socket;
  uint64_t dom0_mem = 1u << 20;
  uint32_t dom0_grants = 256;
};

// The exit status: 0 after SIGINT/SIGTERM, 1 with the reason on stderr.
int run_hypervisor_daemon(const HypervisorDaemonOptions& o);

}  // namespace pvnet::tools
