// What both lazy-window handlers share: the slot table, the reservation, the process-wide fault handlers
// (SIGSEGV and SIGBUS) and the lock-free registry they use to find the window that owns a faulting address,
// and the batched release. Everything reachable from a fault handler is async-signal-safe: no allocation,
// no locks but the grant entry's spin lock, raw syscalls.
#pragma once
#include <atomic>
#include <memory>
#include <vector>
#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/platform/fault_range.hpp"
#include "grant-sim/sim/sim_mapper.hpp"

namespace pvnet::sim {

class LazyWindowBase : public LazyWindow, public FaultRange {
 public:
  LazyWindowBase(size_t slots, DomId self, DomainDirectory& dir, std::shared_ptr<AtomicGrantCounters> counters);
  ~LazyWindowBase() override;
  LazyWindowBase(const LazyWindowBase&) = delete;
  LazyWindowBase& operator=(const LazyWindowBase&) = delete;

  // Reserve the range and register it with the fault handlers. False if the system refused.
  bool init();

  size_t slots() const override { return nr_slots_; }
  std::byte* assign(size_t slot, DomId dom, GrantRef ref, bool readonly) override;
  GntSt status(size_t slot) const override;
  bool mapped(size_t slot) const override;
  void release(std::span<const size_t> slots) override;

  bool on_fault(uintptr_t addr, int sig, Access access) override;

  std::byte* base() const { return base_; }

 protected:
  enum State : uint32_t {
    kFree,      // nothing assigned; the slot's page is PROT_NONE or a stale, unpopulated mapping
    kAssigned,  // assigned, never touched
    kFaulting,  // a thread is resolving the first touch
    kMapped,    // the grant is mapped and pinned
    kScratch,   // validation failed, or the backing went away: a private zero page stands in
  };
  struct Slot {
    std::atomic<uint32_t> state{kFree};
    std::atomic<int16_t> status{static_cast<int16_t>(GntSt::okay)};
    std::shared_ptr<SimDomain> keep;  // keeps the view alive while assigned (touched only outside handlers)
    const SimDomain* dom = nullptr;
    GrantRef ref;
    bool readonly = true;
    FrameLoc prebuilt;  // uffd: the frame assign() pre-mapped (fd < 0: none)
    FrameLoc installed;  // the frame the fault mapped (kMapped)
  };

  std::byte* slot_addr(size_t slot) const { return base_ + slot * kPageSize; }
  // Handler-specific steps.
  virtual void on_assign(size_t /*slot*/, Slot& /*s*/) {}
  // Map the validated frame at the slot. Async-signal-safe. False if the kernel refused.
  virtual bool install(size_t slot, Slot& s, const FrameLoc& loc) = 0;

  // Raw-syscall helpers (no libc interposition, no errno games) for use in handlers.
  static bool map_fixed(void* at, int prot, int flags, int fd, uint64_t off);
  bool map_scratch(size_t slot);
  // Whether the memfd behind `loc` still holds its page (a guest can truncate an unsealed memfd).
  static bool backing_covers(const FrameLoc& loc);
  bool reserve_range(std::byte* at, size_t len);

  size_t nr_slots_;
  DomId self_;
  DomainDirectory& dir_;
  std::shared_ptr<AtomicGrantCounters> counters_;
  std::byte* base_ = nullptr;
  std::unique_ptr<Slot[]> slots_;
  bool registered_ = false;

 private:
  void release_locked(std::span<const size_t> slots);
  bool page_present(size_t slot, const Slot& s) const;
  bool lose_backing(size_t slot, Slot& s);
};

}  // namespace pvnet::sim
