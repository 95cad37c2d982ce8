// The grantee side's counters as atomics, shared by the simulator's and Xen's mappers.
#pragma once
#include <atomic>
#include <cstdint>
#include "grant-sim/platform/counters.hpp"

namespace pvnet {

// GrantCounters as atomics, so lazy-window fault handlers (signal context, any thread) can count lock-free.
struct AtomicGrantCounters {
  std::atomic<uint64_t> hypercalls{0}, map_ops{0}, pages_mapped{0}, pages_unmapped{0}, tlb_shootdowns{0},
      faults{0}, fault_errors{0}, copy_ops{0}, grant_copy_bytes{0}, failed_ops{0};
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  GrantCounters snapshot() const;
};

}  // namespace pvnet
