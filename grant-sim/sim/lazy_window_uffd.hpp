// Lazy window, userfaultfd flavour: assign() builds the slot's VMA on the granting domain's frame (one mmap,
// no page-table entry) and registers it for userfaultfd MINOR|MISSING faults with UFFD_FEATURE_SIGBUS. The
// first touch raises SIGBUS in the touching thread, whose handler validates and pins the grant and installs
// the PTE with UFFDIO_CONTINUE: no VMA work on the fault path. The price moves to assign().
#pragma once
#include <memory>
#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/sim_mapper.hpp"

namespace pvnet::sim {

// nullptr if userfaultfd (MINOR on shmem, SIGBUS mode) is not available to this process.
std::unique_ptr<LazyWindow> make_uffd_window(size_t slots, DomId self, DomainDirectory& dir,
                                             std::shared_ptr<AtomicGrantCounters> counters);

}  // namespace pvnet::sim
