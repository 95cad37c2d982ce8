#include "grant-sim/platform/atomic_grant_counters.hpp"

namespace pvnet {

GrantCounters AtomicGrantCounters::snapshot() const {
  GrantCounters c;
#define PVNET_ATOMIC_COUNTER_LOAD(f) c.f = f.load(std::memory_order_relaxed);
  PVNET_GRANT_COUNTERS(PVNET_ATOMIC_COUNTER_LOAD)
#undef PVNET_ATOMIC_COUNTER_LOAD
  return c;
}

}  // namespace pvnet
