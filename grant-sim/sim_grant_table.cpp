// Xen v1 grant-table rules, both halves:
// - the granting domain's (Linux's gnttab_grant_foreign_access_ref / gnttab_end_foreign_access_ref_v1):
//   fill frame and domid, publish flags last; take the entry back only by a cmpxchg that sees it unused;
// - the hypervisor's (xen/common/grant_table.c map_grant_ref/_set_status_v1/unmap_common): under the active
//   entry's lock, check and set GTF_reading/GTF_writing with one cmpxchg on {flags, domid}, pin, and on the
//   last unpin clear them again.
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>

#include "grant-sim/sim_grant_table.hpp"

namespace pvnet {
namespace sim {
namespace {

// The {flags, domid} pair as one word, as Xen's _set_status_v1 cmpxchg's it (flags in the low half on x86).
using alias_u32 = uint32_t __attribute__((__may_alias__));
using alias_u16 = uint16_t __attribute__((__may_alias__));

alias_u32* combo(GrantEntryV1* e) { return reinterpret_cast<alias_u32*>(e); }
alias_u16* flags_word(GrantEntryV1* e) { return reinterpret_cast<alias_u16*>(&e->flags); }

// A spin lock in shared memory so every process playing the hypervisor agrees. Held for a few hundred
// instructions at most; sched_yield keeps two processes on two cores from livelocking.
class EntryLock {
 public:
  // tag: who holds it (1, or a SimServer client's id), so the hypervisor can tell a lock a dead client left held.
  EntryLock(ActiveEntry* a, uint32_t tag) : a_(a) {
    for (unsigned spins = 0; __atomic_exchange_n(&a_->lock, tag, __ATOMIC_ACQUIRE) != 0;) {
      if (++spins % 64 == 0) ::sched_yield();
      else __builtin_ia32_pause();
    }
  }
  ~EntryLock() { __atomic_store_n(&a_->lock, 0u, __ATOMIC_RELEASE); }
  EntryLock(const EntryLock&) = delete;
  EntryLock& operator=(const EntryLock&) = delete;

 private:
  ActiveEntry* a_;
};

// _set_status_v1: check the entry grants `grantee` the access asked for and mark it in use, atomically
// against the granting domain's own cmpxchg in end_access.
GntSt set_status(GrantEntryV1* e, uint16_t grantee, bool readonly) {
  uint32_t scombo = __atomic_load_n(combo(e), __ATOMIC_ACQUIRE);
  // A guest rewriting its entry in a loop must not keep the hypervisor here: Xen gives up after 4 retries
  // ("Shared grant entry is unstable").
  for (int retries = 0;; ++retries) {
    if (retries > 4) return GntSt::general_error;
    const uint16_t flags = static_cast<uint16_t>(scombo & 0xffff);
    const uint16_t domid = static_cast<uint16_t>(scombo >> 16);
    // Xen answers these with GNTST_general_error; pvnet reports permission_denied so a caller can tell a
    // guest's bad grant from a simulator fault.
    if ((flags & GTF_type_mask) != GTF_permit_access || domid != grantee) return GntSt::permission_denied;
    if (!readonly && (flags & GTF_readonly)) return GntSt::permission_denied;
    uint16_t nflags = flags | GTF_reading;
    if (!readonly) nflags |= GTF_writing;
    const uint32_t ncombo = (uint32_t{domid} << 16) | nflags;
    if (__atomic_compare_exchange_n(combo(e), &scombo, ncombo, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return GntSt::okay;
  }
}

void clear_flags(GrantEntryV1* e, uint16_t bits) {
  __atomic_fetch_and(flags_word(e), static_cast<uint16_t>(~bits), __ATOMIC_RELEASE);
}

}  // namespace

GntSt pin_grant(const SimDomain& dom, DomId grantee, GrantRef ref, bool readonly, FrameLoc* loc) {
  if (ref.value >= dom.nr_grant_entries()) return GntSt::bad_gntref;
  GrantEntryV1* e = dom.shared_entry(ref.value);
  ActiveEntry* a = dom.active_entry(ref.value);
  EntryLock lock(a, dom.lock_tag());
  const bool pinned = a->pin_read + a->pin_write > 0;
  if (pinned && a->domid != grantee.value) return GntSt::permission_denied;
  if ((readonly ? a->pin_read : a->pin_write) >= kMaxPins) return GntSt::general_error;
  // As Xen: the shared entry is (re)checked when nothing is pinned yet or a first writer arrives; an
  // entry already pinned keeps the frame it was pinned with, whatever the guest writes meanwhile.
  if (!pinned || (!readonly && a->pin_write == 0)) {
    if (GntSt st = set_status(e, grantee.value, readonly); st != GntSt::okay) return st;
    if (!pinned) {
      const uint32_t frame = __atomic_load_n(&e->frame, __ATOMIC_ACQUIRE);
      FrameLoc probe;
      if (!dom.locate(frame, &probe)) {
        clear_flags(e, GTF_reading | GTF_writing);
        return GntSt::bad_page;
      }
      a->frame = frame;
      a->domid = grantee.value;
    }
  }
  if (readonly) ++a->pin_read;
  else ++a->pin_write;
  if (uint32_t* l = dom.pin_ledger()) __atomic_add_fetch(&l[2 * ref.value + (readonly ? 0 : 1)], 1u, __ATOMIC_RELAXED);
  dom.locate(a->frame, loc);
  return GntSt::okay;
}

void unpin_grant(const SimDomain& dom, GrantRef ref, bool readonly) {
  if (ref.value >= dom.nr_grant_entries()) return;
  GrantEntryV1* e = dom.shared_entry(ref.value);
  ActiveEntry* a = dom.active_entry(ref.value);
  EntryLock lock(a, dom.lock_tag());
  uint32_t& pin = readonly ? a->pin_read : a->pin_write;
  if (pin == 0) return;  // not ours to drop: a bug upstream must not corrupt another pinner's state
  --pin;
  if (uint32_t* l = dom.pin_ledger()) __atomic_sub_fetch(&l[2 * ref.value + (readonly ? 0 : 1)], 1u, __ATOMIC_RELAXED);
  uint16_t clear = 0;
  if (a->pin_write == 0) clear |= GTF_writing;
  if (a->pin_read + a->pin_write == 0) clear |= GTF_reading;
  if (clear) clear_flags(e, clear);
}

namespace {

class SimGrantTable final : public GrantTable {
 public:
  explicit SimGrantTable(std::shared_ptr<SimDomain> d) : d_(std::move(d)), granted_(d_->nr_grant_entries(), 0) {
    // LIFO, lowest reference first, like Linux's gnttab free list after boot.
    for (uint32_t r = d_->nr_grant_entries(); r-- > kNrReservedEntries;) free_.push_back(r);
  }
  DomId self() const override { return d_->dom(); }

  Result<GrantRef> grant_access(DomId grantee, Pfn frame, bool readonly) override {
    if (frame.value > UINT32_MAX) return make_error(EINVAL, "grant_entry_v1 holds a 32-bit frame");
    std::lock_guard g(mu_);
    if (free_.empty()) return make_error(ENOSPC, "no free grant references");
    const uint32_t ref = free_.back();
    free_.pop_back();
    granted_[ref] = 1;
    GrantEntryV1* e = d_->shared_entry(ref);
    __atomic_store_n(&e->frame, static_cast<uint32_t>(frame.value), __ATOMIC_RELAXED);
    __atomic_store_n(&e->domid, grantee.value, __ATOMIC_RELAXED);
    // The hypervisor may look at the entry the moment GTF_permit_access is visible: publish it last (Linux: wmb()).
    const uint16_t flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
    __atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
    return GrantRef{ref};
  }

  Result<void> end_access(GrantRef ref) override {
    std::lock_guard g(mu_);
    if (ref.value >= d_->nr_grant_entries() || granted_[ref.value] != 1)
      return make_error(GNTST_bad_gntref, "end_access: reference " + std::to_string(ref.value) + " is not granted");
    // gnttab_end_foreign_access_ref_v1: clear the entry only if nobody has it in use, in one cmpxchg, so the
    // hypervisor cannot set GTF_reading between our check and our write.
    alias_u16* pflags = flags_word(d_->shared_entry(ref.value));
    uint16_t flags = __atomic_load_n(pflags, __ATOMIC_ACQUIRE);
    do {
      if (flags & (GTF_reading | GTF_writing))
        return make_error(GNTST_eagain, "end_access: reference " + std::to_string(ref.value) + " is in use");
    } while (!__atomic_compare_exchange_n(pflags, &flags, uint16_t{0}, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    granted_[ref.value] = 0;
    free_.push_back(ref.value);
    return {};
  }

  // granted_: 0 free, 1 granted through grant_access, 2 reserved (the caller's own pool, granted or not).
  Result<void> reserve(uint32_t n, std::vector<GrantRef>& out) override {
    std::lock_guard g(mu_);
    if (free_.size() < n) return make_error(ENOSPC, "no free grant references");
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t ref = free_.back();
      free_.pop_back();
      granted_[ref] = 2;
      out.push_back(GrantRef{ref});
    }
    return {};
  }
  void unreserve(std::span<const GrantRef> refs) override {
    std::lock_guard g(mu_);
    for (GrantRef r : refs) {
      if (r.value >= d_->nr_grant_entries() || granted_[r.value] != 2) continue;  // not ours to give back
      granted_[r.value] = 0;
      free_.push_back(r.value);
    }
  }
  void grant_access_ref(GrantRef ref, DomId grantee, Pfn frame, bool readonly) override {
    if (ref.value >= d_->nr_grant_entries()) return;
    GrantEntryV1* e = d_->shared_entry(ref.value);
    __atomic_store_n(&e->frame, static_cast<uint32_t>(frame.value), __ATOMIC_RELAXED);
    __atomic_store_n(&e->domid, grantee.value, __ATOMIC_RELAXED);
    const uint16_t flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
    __atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
  }
  bool end_access_ref(GrantRef ref) override {
    if (ref.value >= d_->nr_grant_entries()) return false;
    alias_u16* pflags = flags_word(d_->shared_entry(ref.value));
    uint16_t flags = __atomic_load_n(pflags, __ATOMIC_ACQUIRE);
    do {
      if (flags & (GTF_reading | GTF_writing)) return false;
    } while (!__atomic_compare_exchange_n(pflags, &flags, uint16_t{0}, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    return true;
  }

  bool in_use(GrantRef ref) const override {
    if (ref.value >= d_->nr_grant_entries()) return false;
    const uint16_t flags = __atomic_load_n(flags_word(d_->shared_entry(ref.value)), __ATOMIC_ACQUIRE);
    return (flags & (GTF_reading | GTF_writing)) != 0;
  }
  uint32_t capacity() const override { return d_->nr_grant_entries(); }
  uint32_t free_count() const override {
    std::lock_guard g(mu_);
    return static_cast<uint32_t>(free_.size());
  }

 private:
  std::shared_ptr<SimDomain> d_;
  mutable std::mutex mu_;
  std::vector<uint32_t> free_;
  std::vector<uint8_t> granted_;
};

}  // namespace
}  // namespace sim

std::unique_ptr<GrantTable> make_sim_grant_table(std::shared_ptr<SimDomainView> self) {
  return std::make_unique<sim::SimGrantTable>(std::static_pointer_cast<sim::SimDomain>(std::move(self)));
}

}  // namespace pvnet
