// Lazy window, SIGSEGV flavour: the window is a PROT_NONE reservation; the first touch of a slot raises
// SIGSEGV, the handler validates and pins the grant and mmap(MAP_FIXED)s the granting domain's frame over the
// slot. assign() and release() of an untouched slot make no syscall at all.
#pragma once
#include <memory>
#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/sim_mapper.hpp"

namespace pvnet::sim {

std::unique_ptr<LazyWindow> make_segv_window(size_t slots, DomId self, DomainDirectory& dir,
                                             std::shared_ptr<AtomicGrantCounters> counters);

}  // namespace pvnet::sim
