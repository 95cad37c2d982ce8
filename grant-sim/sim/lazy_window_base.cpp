#include "grant-sim/sim/lazy_window_base.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

namespace pvnet::sim {

LazyWindowBase::LazyWindowBase(size_t slots, DomId self, DomainDirectory& dir,
                               std::shared_ptr<AtomicGrantCounters> counters)
    : nr_slots_(slots), self_(self), dir_(dir), counters_(std::move(counters)), slots_(new Slot[slots]) {}

bool LazyWindowBase::init() {
  if (nr_slots_ == 0) return false;
  void* p = ::mmap(nullptr, nr_slots_ * kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  base_ = static_cast<std::byte*>(p);
  registered_ = register_fault_range(this, reinterpret_cast<uintptr_t>(base_),
                                reinterpret_cast<uintptr_t>(base_ + nr_slots_ * kPageSize));
  return registered_;
}

LazyWindowBase::~LazyWindowBase() {
  if (registered_) unregister_fault_range(this);
  if (base_) {
    std::vector<size_t> all(nr_slots_);
    for (size_t i = 0; i < nr_slots_; ++i) all[i] = i;
    release_locked(all);
    ::munmap(base_, nr_slots_ * kPageSize);
  }
}

bool LazyWindowBase::map_fixed(void* at, int prot, int flags, int fd, uint64_t off) {
  const long r = ::syscall(SYS_mmap, at, kPageSize, prot, flags | MAP_FIXED, fd, off);
  return r == reinterpret_cast<long>(at);
}

bool LazyWindowBase::map_scratch(size_t slot) {
  // A private zero page: reads see zeros, writes land in a page nobody else sees and that release() drops.
  return map_fixed(slot_addr(slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

bool LazyWindowBase::reserve_range(std::byte* at, size_t len) {
  const long r = ::syscall(SYS_mmap, at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                           -1, 0);
  return r == reinterpret_cast<long>(at);
}

std::byte* LazyWindowBase::assign(size_t slot, DomId dom, GrantRef ref, bool readonly) {
  if (slot >= nr_slots_) return nullptr;
  Slot& s = slots_[slot];
  const uint32_t st = s.state.load(std::memory_order_acquire);
  if (st == kMapped || st == kScratch) {
    const size_t one[] = {slot};
    release(one);
  }
  s.keep = std::static_pointer_cast<SimDomain>(dir_.find(dom));
  s.dom = s.keep.get();
  s.ref = ref;
  s.readonly = readonly;
  s.status.store(static_cast<int16_t>(GntSt::okay), std::memory_order_relaxed);
  on_assign(slot, s);
  s.state.store(kAssigned, std::memory_order_release);
  return slot_addr(slot);
}

GntSt LazyWindowBase::status(size_t slot) const {
  if (slot >= nr_slots_) return GntSt::general_error;
  return static_cast<GntSt>(slots_[slot].status.load(std::memory_order_acquire));
}

bool LazyWindowBase::mapped(size_t slot) const {
  return slot < nr_slots_ && slots_[slot].state.load(std::memory_order_acquire) == kMapped;
}

bool LazyWindowBase::on_fault(uintptr_t addr, int sig, Access access) {
  const size_t slot = (addr - reinterpret_cast<uintptr_t>(base_)) / kPageSize;
  if (slot >= nr_slots_) return false;
  Slot& s = slots_[slot];
  auto& c = *counters_;
  for (;;) {
    uint32_t st = s.state.load(std::memory_order_acquire);
    if (st == kFaulting) {  // another thread is mapping this slot: wait, then let the access retry
      ::sched_yield();
      continue;
    }
    if (st == kMapped || st == kScratch) {
      // Another thread mapped the slot after our access faulted: retry it. Unless the access could never
      // succeed (a write to a readonly grant, an instruction fetch): that is a real violation, not ours.
      if (access == Access::exec) return false;
      if (st == kMapped && s.readonly && access != Access::read && sig == SIGSEGV) return false;
      // A SIGBUS on a mapped slot whose page the kernel cannot bring back: the granting domain's memory under
      // it is gone (its memfd shrank). Retrying would fault for ever: a zero page and a status instead.
      if (st == kMapped && sig == SIGBUS && !page_present(slot, s)) {
        if (!s.state.compare_exchange_strong(st, kFaulting, std::memory_order_acq_rel)) continue;
        return lose_backing(slot, s);
      }
      return true;
    }
    if (!s.state.compare_exchange_weak(st, kFaulting, std::memory_order_acq_rel)) continue;
    c.faults.fetch_add(1, std::memory_order_relaxed);
    GntSt result = GntSt::general_error;  // a touch of an unassigned slot
    if (st == kAssigned) {
      c.hypercalls.fetch_add(1, std::memory_order_relaxed);
      c.map_ops.fetch_add(1, std::memory_order_relaxed);
      FrameLoc loc;
      result = s.dom ? pin_grant(*s.dom, self_, s.ref, s.readonly, &loc) : GntSt::bad_domain;
      if (result == GntSt::okay) {
        if (install(slot, s, loc)) {
          s.installed = loc;
          c.pages_mapped.fetch_add(1, std::memory_order_relaxed);
          s.state.store(kMapped, std::memory_order_release);
          return true;
        }
        unpin_grant(*s.dom, s.ref, s.readonly);
        // The kernel refused, or (uffd) the frame lies past the end of a memfd that shrank.
        result = backing_covers(loc) ? GntSt::no_device_space : GntSt::bad_page;
      }
      c.failed_ops.fetch_add(1, std::memory_order_relaxed);
    }
    c.fault_errors.fetch_add(1, std::memory_order_relaxed);
    s.status.store(static_cast<int16_t>(result), std::memory_order_release);
    if (!map_scratch(slot)) {
      s.state.store(st, std::memory_order_release);
      return false;  // cannot even map a zero page: let the previous handler report it
    }
    s.state.store(kScratch, std::memory_order_release);
    return true;
  }
}

bool LazyWindowBase::backing_covers(const FrameLoc& loc) {
  struct stat st {};
  if (::syscall(SYS_fstat, loc.fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_size) >= loc.fd_offset + kPageSize;
}

bool LazyWindowBase::page_present(size_t slot, const Slot& s) const {
  // Ask the kernel to fault the page in without a signal: 0 if it is there (another thread's install raced
  // with our access: retry), EFAULT if the access can only fault again. Kernels before 5.14 lack
  // MADV_POPULATE_READ (EINVAL): look at the memfd's size instead.
  if (::syscall(SYS_madvise, slot_addr(slot), kPageSize, MADV_POPULATE_READ) == 0) return true;
  if (errno == EINVAL) return backing_covers(s.installed);
  return false;
}

bool LazyWindowBase::lose_backing(size_t slot, Slot& s) {
  // Called with the slot kFaulting. The mapping goes (a private zero page takes its place), the pin with it,
  // and the slot reports bad_page as if the grant had failed validation: the reader completes its access and
  // drops the packet when it checks status().
  auto& c = *counters_;
  c.faults.fetch_add(1, std::memory_order_relaxed);
  c.fault_errors.fetch_add(1, std::memory_order_relaxed);
  s.status.store(static_cast<int16_t>(GntSt::bad_page), std::memory_order_release);
  if (!map_scratch(slot)) {
    s.state.store(kMapped, std::memory_order_release);
    return false;  // cannot even map a zero page: let the previous handler report it
  }
  unpin_grant(*s.dom, s.ref, s.readonly);
  c.pages_unmapped.fetch_add(1, std::memory_order_relaxed);
  s.installed = FrameLoc{};
  s.state.store(kScratch, std::memory_order_release);
  return true;
}

void LazyWindowBase::release(std::span<const size_t> slots) { release_locked(slots); }

void LazyWindowBase::release_locked(std::span<const size_t> slots) {
  // Collect the slots a fault populated; untouched ones only change state (zero cost, as promised).
  std::vector<size_t> touched;
  for (size_t slot : slots) {
    if (slot >= nr_slots_) continue;
    Slot& s = slots_[slot];
    const uint32_t st = s.state.load(std::memory_order_acquire);
    if (st == kMapped || st == kScratch) touched.push_back(slot);
    else {
      s.state.store(kFree, std::memory_order_release);
      s.keep.reset();
      s.dom = nullptr;
    }
  }
  if (touched.empty()) return;
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  // One "unmap batch": contiguous runs go back to PROT_NONE in one mmap each (the kernel zaps the PTEs and
  // flushes the TLB), then the pins are dropped: the page stays the guest's business until it is unmapped.
  for (size_t i = 0; i < touched.size();) {
    size_t j = i + 1;
    while (j < touched.size() && touched[j] == touched[j - 1] + 1) ++j;
    reserve_range(slot_addr(touched[i]), (j - i) * kPageSize);
    i = j;
  }
  uint64_t unmapped = 0;
  for (size_t slot : touched) {
    Slot& s = slots_[slot];
    if (s.state.load(std::memory_order_acquire) == kMapped) {
      unpin_grant(*s.dom, s.ref, s.readonly);
      ++unmapped;
    }
    s.status.store(static_cast<int16_t>(GntSt::okay), std::memory_order_relaxed);
    s.state.store(kFree, std::memory_order_release);
    s.keep.reset();
    s.dom = nullptr;
    s.prebuilt = FrameLoc{};
    s.installed = FrameLoc{};
  }
  auto& c = *counters_;
  c.hypercalls.fetch_add(1, std::memory_order_relaxed);
  c.tlb_shootdowns.fetch_add(1, std::memory_order_relaxed);
  c.pages_unmapped.fetch_add(unmapped, std::memory_order_relaxed);
}

}  // namespace pvnet::sim
