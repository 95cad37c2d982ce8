// What `pvnet guest` needs from the host: where the source tree and the guest cache are, programs on PATH,
// commands run with a time limit, and the network namespace + TAP addresses of the TAP sink.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

// $PVNET_SOURCE_DIR, else the source directory recorded in the CMakeCache.txt of the build tree the running
// pvnet binary lives in.
Result<std::string> pvnet_source_dir();
// $PVNET_GUEST_CACHE, else <build tree>/guest-cache.
std::string guest_cache_dir();
// The absolute path of `program` on $PATH (also /usr/sbin and /sbin), or ENOENT with a hint to run setup.sh.
Result<std::string> find_program(const std::string& program);

struct CommandOutput {
  int status = 0;       // exit status, or 128 + signal
  std::string output;   // stdout and stderr together
};
// Runs argv (argv[0] looked up on PATH) in its own process group; kills the group after `timeout`
// (ETIMEDOUT). stdin is /dev/null.
Result<CommandOutput> run_bounded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
// The same, failing with the command's output unless it exits 0.
Result<std::string> run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Builds the guest (tools/guest/build-guest.sh) into `cache` unless it is there already. Bounded to 10 min.
Result<void> build_guest(const std::string& cache, bool verbose);

// The TAP sink's namespace: created with `ip netns add` when missing; /run/netns/NAME.
Result<std::string> ensure_netns(const std::string& name);
// Brings `ifname` (in namespace `netns`) up with the given addresses (198.18.0.0/15 and fd00::/8 only).
Result<void> configure_netns_link(const std::string& netns, const std::string& ifname,
                                  const std::vector<std::string>& addresses, unsigned mtu);
// Whether an address is one the guest tools may use: IPv4 in 198.18.0.0/15, IPv6 in fd00::/8 (with /prefix).
bool allowed_guest_address(const std::string& cidr);

}  // namespace pvnet::tools
