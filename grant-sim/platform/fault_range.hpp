// Address ranges whose first touch someone resolves in a signal handler: the simulator's lazy windows and the Xen
// gntdev window both register here. One process-wide SIGSEGV/SIGBUS handler serves them all.
#pragma once
#include <cstdint>

namespace pvnet {

// A range of addresses whose first touches someone resolves: the simulator's lazy windows, and the Xen gntdev
// window (grant-sim/xen/xen_grant_mapper.cpp). One process-wide SIGSEGV/SIGBUS handler serves them all, finding the
// owner of a faulting address in a fixed-size lock-free registry.
class FaultRange {
 public:
  enum class Access { read, write, exec, unknown };
  // Called from the signal handler with an address inside the range. True if the fault is resolved (the access
  // is retried); false to pass it to the previous handler. Must be async-signal-safe.
  virtual bool on_fault(uintptr_t addr, int sig, Access access) = 0;

 protected:
  ~FaultRange() = default;
};
// Register [begin, end) (installs the handlers on first use). False if the registry is full.
bool register_fault_range(FaultRange* r, uintptr_t begin, uintptr_t end);
// Unregister before the range is unmapped or `r` is destroyed.
void unregister_fault_range(FaultRange* r);

}  // namespace pvnet
