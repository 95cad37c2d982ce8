// The grantee side's counters as atomics, shared by the simulator's and Xen's mappers.
#pragma once
#include <atomic>
#include <cstdint>
#include "grant-sim/platform/counters.hpp"

namespace pvnet {

// GrantCounters as atomics, so lazy-window fault handlers (signal context, any thread) can count lock-free.
struct AtomicGrantCounters {
#define PVNET_ATOMIC_COUNTER_FIELD(f) std::atomic<uint64_t> f{0};
  PVNET_GRANT_COUNTERS(PVNET_ATOMIC_COUNTER_FIELD)
#undef PVNET_ATOMIC_COUNTER_FIELD
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  GrantCounters snapshot() const;
};

}  // namespace pvnet
