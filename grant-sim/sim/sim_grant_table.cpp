// Xen v1 grant-table rules, both halves:
// - the granting domain's (Linux's gnttab_grant_foreign_access_ref / gnttab_end_foreign_access_ref_v1):
//   fill frame and domid, publish flags last; take the entry back only by a cmpxchg that sees it unused;
// - the hypervisor's (xen/common/grant_table.c map_grant_ref/_set_status_v1/unmap_common): under the active
//   entry's lock, check and set GTF_reading/GTF_writing with one cmpxchg on {flags, domid}, pin, and on the
//   last unpin clear them again.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <iterator>
#include <mutex>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"

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
  // dead_tag (non-zero): also take the lock over from that holder, which is known to be dead; *taken_over says so.
  EntryLock(ActiveEntry* a, uint32_t tag, uint32_t dead_tag = 0, bool* taken_over = nullptr) : a_(a) {
    for (unsigned spins = 0;; ) {
      uint32_t held = 0;
      if (__atomic_compare_exchange_n(&a_->lock, &held, tag, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
      if (dead_tag != 0 && held == dead_tag &&
          __atomic_compare_exchange_n(&a_->lock, &held, tag, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        *taken_over = true;
        return;
      }
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

void crash_point(CrashPoint p) {
  if (crash_hook) [[unlikely]]
    crash_hook(p);
}

uint64_t pack_undo(uint32_t pin_read, uint32_t pin_write, uint32_t ledger_read, uint32_t ledger_write) {
  return uint64_t{pin_read & 0xffff} | uint64_t{pin_write & 0xffff} << 16 | uint64_t{ledger_read & 0xffff} << 32 |
         uint64_t{ledger_write & 0xffff} << 48;
}
uint32_t undo_field(uint64_t undo, int i) { return static_cast<uint32_t>(undo >> (16 * i)) & 0xffff; }

// One pin or unpin on an active entry by this process: the entry's lock, and the journal (crash consistency,
// ActiveEntry). The journal is written, then armed, before anything changes; disarmed when all is done, before the
// lock is let go. Pin counts never exceed kMaxPins, so 16 bits each hold them. Only a pinner with a ledger (a
// SimServer client) can die apart from the hypervisor and be recovered; one without (the hypervisor's own
// process, one-process runs) takes every pin with it when it dies, so it keeps no journal.
class EntryOp {
 public:
  EntryOp(const SimDomain& dom, GrantRef ref, bool pin)
      : a_(dom.active_entry(ref.value)), lock_(a_, dom.lock_tag()), pin_(pin) {
    uint32_t* l = dom.pin_ledger();
    ledger_ = l ? l + 2 * size_t{ref.value} : nullptr;
    crash_point(pin ? CrashPoint::pin_locked : CrashPoint::unpin_locked);
    if (!ledger_) return;
    a_->undo = pack_undo(a_->pin_read, a_->pin_write, ledger_[0], ledger_[1]);
    crash_point(pin ? CrashPoint::pin_journaled : CrashPoint::unpin_journaled);
    __atomic_store_n(&a_->undo_armed, uint16_t{1}, __ATOMIC_RELEASE);
    crash_point(pin ? CrashPoint::pin_armed : CrashPoint::unpin_armed);
  }
  ~EntryOp() {
    if (ledger_) __atomic_store_n(&a_->undo_armed, uint16_t{0}, __ATOMIC_RELEASE);
    crash_point(pin_ ? CrashPoint::pin_disarmed : CrashPoint::unpin_disarmed);
  }
  EntryOp(const EntryOp&) = delete;
  EntryOp& operator=(const EntryOp&) = delete;

  ActiveEntry* entry() const { return a_; }
  void count_in_ledger(bool readonly, int delta) {
    if (ledger_) __atomic_add_fetch(&ledger_[readonly ? 0 : 1], static_cast<uint32_t>(delta), __ATOMIC_RELAXED);
  }

 private:
  ActiveEntry* a_;
  EntryLock lock_;
  bool pin_;
  uint32_t* ledger_ = nullptr;
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

// GTF_writing only while a writer is pinned, GTF_reading only while anything is (the lock held).
void clear_unpinned_flags(GrantEntryV1* e, const ActiveEntry& a) {
  uint16_t clear = 0;
  if (a.pin_write == 0) clear |= GTF_writing;
  if (a.pin_read + a.pin_write == 0) clear |= GTF_reading;
  if (clear) clear_flags(e, clear);
}

}  // namespace

const char* to_string(CrashPoint p) {
  static constexpr const char* kNames[] = {
      "pin_locked",     "pin_journaled",   "pin_armed",      "pin_status_set",      "pin_bad_page_cleared",
      "pin_frame_set",  "pin_counted",     "pin_ledgered",   "pin_disarmed",        "unpin_locked",
      "unpin_journaled", "unpin_armed",    "unpin_counted",  "unpin_ledgered",      "unpin_flags_cleared",
      "unpin_disarmed"};
  static_assert(std::size(kNames) == static_cast<size_t>(CrashPoint::count));
  const auto i = static_cast<size_t>(p);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

GntSt pin_grant(const SimDomain& dom, DomId grantee, GrantRef ref, bool readonly, FrameLoc* loc) {
  if (ref.value >= dom.nr_grant_entries()) return GntSt::bad_gntref;
  GrantEntryV1* e = dom.shared_entry(ref.value);
  EntryOp op(dom, ref, /*pin=*/true);
  ActiveEntry* a = op.entry();
  const bool pinned = a->pin_read + a->pin_write > 0;
  if (pinned && a->domid != grantee.value) return GntSt::permission_denied;
  if ((readonly ? a->pin_read : a->pin_write) >= kMaxPins) return GntSt::general_error;
  // As Xen: the shared entry is (re)checked when nothing is pinned yet or a first writer arrives; an
  // entry already pinned keeps the frame it was pinned with, whatever the guest writes meanwhile.
  if (!pinned || (!readonly && a->pin_write == 0)) {
    if (GntSt st = set_status(e, grantee.value, readonly); st != GntSt::okay) return st;
    crash_point(CrashPoint::pin_status_set);
    if (!pinned) {
      const uint32_t frame = __atomic_load_n(&e->frame, __ATOMIC_ACQUIRE);
      FrameLoc probe;
      if (!dom.locate(frame, &probe)) {
        clear_flags(e, GTF_reading | GTF_writing);
        crash_point(CrashPoint::pin_bad_page_cleared);
        return GntSt::bad_page;
      }
      a->frame = frame;
      a->domid = grantee.value;
      crash_point(CrashPoint::pin_frame_set);
    }
  }
  if (readonly) ++a->pin_read;
  else ++a->pin_write;
  crash_point(CrashPoint::pin_counted);
  op.count_in_ledger(readonly, +1);
  crash_point(CrashPoint::pin_ledgered);
  dom.locate(a->frame, loc);
  return GntSt::okay;
}

void unpin_grant(const SimDomain& dom, GrantRef ref, bool readonly) {
  if (ref.value >= dom.nr_grant_entries()) return;
  GrantEntryV1* e = dom.shared_entry(ref.value);
  EntryOp op(dom, ref, /*pin=*/false);
  ActiveEntry* a = op.entry();
  uint32_t& pin = readonly ? a->pin_read : a->pin_write;
  if (pin == 0) return;  // not ours to drop: a bug upstream must not corrupt another pinner's state
  --pin;
  crash_point(CrashPoint::unpin_counted);
  op.count_in_ledger(readonly, -1);
  crash_point(CrashPoint::unpin_ledgered);
  clear_unpinned_flags(e, *a);
  crash_point(CrashPoint::unpin_flags_cleared);
}

DeadPinnerRelease release_dead_pinner(const SimDomain& dom, GrantRef ref, uint32_t tag, uint32_t ledger[2]) {
  DeadPinnerRelease out;
  if (ref.value >= dom.nr_grant_entries()) return out;
  ActiveEntry* a = dom.active_entry(ref.value);
  // Nothing to do for an entry the client held no pin on and whose lock it did not die holding (it is dead: neither
  // can change any more).
  if (ledger[0] == 0 && ledger[1] == 0 && __atomic_load_n(&a->lock, __ATOMIC_ACQUIRE) != tag) return out;
  GrantEntryV1* e = dom.shared_entry(ref.value);
  EntryLock lock(a, /*tag=*/1, /*dead_tag=*/tag, &out.lock_recovered);
  if (out.lock_recovered && __atomic_load_n(&a->undo_armed, __ATOMIC_ACQUIRE)) {
    // Died changing the entry: put back the counts (the entry's and its own) as they were before that operation.
    a->pin_read = undo_field(a->undo, 0);
    a->pin_write = undo_field(a->undo, 1);
    ledger[0] = undo_field(a->undo, 2);
    ledger[1] = undo_field(a->undo, 3);
    out.rolled_back = true;
  }
  __atomic_store_n(&a->undo_armed, uint16_t{0}, __ATOMIC_RELEASE);
  // The ledger is the dead client's own record: never drop more than the entry holds.
  const uint32_t n_read = std::min(ledger[0], a->pin_read), n_write = std::min(ledger[1], a->pin_write);
  a->pin_read -= n_read;
  a->pin_write -= n_write;
  ledger[0] = ledger[1] = 0;
  out.pins_released = uint64_t{n_read} + n_write;
  clear_unpinned_flags(e, *a);
  // What remains pinned (other pinners) must still show as in use to the guest.
  const uint16_t flags = __atomic_load_n(flags_word(e), __ATOMIC_ACQUIRE);
  out.flags_mismatch = (a->pin_read + a->pin_write > 0 && !(flags & GTF_reading)) ||
                       (a->pin_write > 0 && !(flags & GTF_writing));
  return out;
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
