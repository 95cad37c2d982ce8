#include "grant-sim/platform/atomic_grant_counters.hpp"

namespace pvnet {

GrantCounters AtomicGrantCounters::snapshot() const {
  GrantCounters c;
  c.hypercalls = hypercalls.load(std::memory_order_relaxed);
  c.map_ops = map_ops.load(std::memory_order_relaxed);
  c.pages_mapped = pages_mapped.load(std::memory_order_relaxed);
  c.pages_unmapped = pages_unmapped.load(std::memory_order_relaxed);
  c.tlb_shootdowns = tlb_shootdowns.load(std::memory_order_relaxed);
  c.faults = faults.load(std::memory_order_relaxed);
  c.fault_errors = fault_errors.load(std::memory_order_relaxed);
  c.copy_ops = copy_ops.load(std::memory_order_relaxed);
  c.grant_copy_bytes = grant_copy_bytes.load(std::memory_order_relaxed);
  c.failed_ops = failed_ops.load(std::memory_order_relaxed);
  return c;
}

}  // namespace pvnet
