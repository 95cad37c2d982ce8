// Where `pvnet guest` and `pvnet xen-lab` find their inputs: the source tree (its scripts), the guest cache, and
// the guest build itself. Programs are run through tools/process/spawn.hpp; the TAP namespace helpers are in
// tools/process/netns.hpp.
#pragma once
#include <string>

#include "shared-ring/result.hpp"
#include "tools/process/netns.hpp"
#include "tools/process/spawn.hpp"

namespace pvnet::tools {

// $PVNET_SOURCE_DIR, else the source directory recorded in the CMakeCache.txt of the build tree the running
// pvnet binary lives in.
Result<std::string> pvnet_source_dir();
// $PVNET_GUEST_CACHE, else <build tree>/guest-cache.
std::string guest_cache_dir();

// Builds the guest (tools/guest/build-guest.sh) into `cache` unless it is there already. Bounded to 10 min.
Result<void> build_guest(const std::string& cache, bool verbose);

}  // namespace pvnet::tools
