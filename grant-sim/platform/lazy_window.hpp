// Lazy foreign mapping: a window of page-sized slots. assign() costs nothing (no hypercall, no mapping, no
// check); the first CPU touch of a slot faults, the fault handler validates the grant and maps the page, and the
// touch completes. A grant that fails validation gets a scratch page (reads as zeros, writes go nowhere) and the
// slot records the GNTST_* status, so dom0 never crashes on a guest's bad grant: read, then check status().
#pragma once
#include <cstddef>
#include <span>
#include "grant-sim/platform/grant_status.hpp"
#include "shared-ring/ids.hpp"

namespace pvnet {

class LazyWindow {
 public:
  virtual ~LazyWindow() = default;
  virtual size_t slots() const = 0;
  // Let slot `slot` stand for (dom, ref). Returns the slot's page address. Nothing is mapped yet.
  virtual std::byte* assign(size_t slot, DomId dom, GrantRef ref, bool readonly) = 0;
  // okay if the slot was never touched or its fault mapped the grant; the failure status otherwise.
  virtual GntSt status(size_t slot) const = 0;
  // Whether a fault mapped this slot.
  virtual bool mapped(size_t slot) const = 0;
  // Give slots back. Those a fault mapped are unmapped in one batch (one hypercall, one TLB shootdown);
  // those never touched cost nothing.
  virtual void release(std::span<const size_t> slots) = 0;
};

}  // namespace pvnet
