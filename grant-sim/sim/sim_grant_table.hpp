// The hypervisor's half of a simulated grant table: the shared grant_entry_v1 array the granting domain writes,
// the hypervisor-private "active" array (pin counts, like Xen's struct active_grant_entry), and the two
// operations every grantee path goes through: pin (validate + set GTF_reading/GTF_writing) and unpin.
// Used by the mapper (eager map, copy) and by the lazy windows' fault handlers, so pin/unpin are
// async-signal-safe: atomics on shared memory and a spin lock per entry, no allocation, no libc locks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>
#include "grant-sim/sim/sim_domain.hpp"
#include "shared-ring/xen_headers.hpp"

namespace pvnet::sim {

// grant_entry_v1 as the granting domain writes it. Our own struct so flags and domid can be read and
// cmpxchg'd together as one 32-bit word, as Xen's _set_status_v1 does.
struct GrantEntryV1 {
  uint16_t flags;  // GTF_*: written by the granting domain, GTF_reading/GTF_writing by the hypervisor
  uint16_t domid;  // the grantee (written by the granting domain)
  uint32_t frame;  // the granting domain's frame (written by the granting domain)
};
static_assert(sizeof(GrantEntryV1) == sizeof(grant_entry_v1_t));
static_assert(offsetof(GrantEntryV1, flags) == offsetof(grant_entry_v1_t, flags));
static_assert(offsetof(GrantEntryV1, domid) == offsetof(grant_entry_v1_t, domid));
static_assert(offsetof(GrantEntryV1, frame) == offsetof(grant_entry_v1_t, frame));
static_assert(sizeof(grant_entry_v1_t::domid) == sizeof(uint16_t));

// Xen: the first GNTTAB_NR_RESERVED_ENTRIES references are for the toolstack (console, xenstore rings).
inline constexpr uint32_t kNrReservedEntries = GNTTAB_NR_RESERVED_ENTRIES;

// Hypervisor-private per-entry state, in DomainShm::active, shared by every process playing the hypervisor
// for this domain. Owner: the hypervisor only (a guest never has this fd: the hypervisor makes it, never takes it
// from a client, and sends it only to privileged clients).
//
// Crash consistency: a dom0 client runs pin_grant/unpin_grant on this entry in its own process, and it can be
// SIGKILLed at any instruction, where Xen cannot be killed inside a hypercall. So every change a client makes
// under the lock is journaled first: `undo` holds the entry's pin counts and the client's ledger counts for the
// entry as they were before the operation, and `undo_armed` says the operation has started changing things. The
// invariant: whenever the lock is free, pin_read/pin_write are the sum of every pinner's ledger counts (plus
// unrecorded pins), and GTF_reading/GTF_writing are set exactly while pins of that kind are held; when the lock
// is held with undo_armed, the journal restores that invariant. The hypervisor process recovering a dead
// client's lock rolls back from the journal (release_dead_pinner), so the entry is as if the operation had
// never started, then releases what the ledger says (docs/grant-sim.md, "Crash-consistent pins").
struct ActiveEntry {
  uint32_t lock;        // spin lock, taken with atomic_ref: Xen's per-active-entry lock; holds its holder's tag
  uint32_t pin_read;    // readonly host maps + copy reads in progress
  uint32_t pin_write;   // writable host maps + copy writes in progress
  uint32_t frame;       // the frame pinned while pin_read + pin_write > 0 (Xen's act->frame)
  uint16_t domid;       // the grantee the pins belong to (Xen's act->domid)
  uint16_t undo_armed;  // 1 while the lock holder is changing the entry (the journal below is valid)
  uint32_t pad = 0;
  uint64_t undo;        // the journal: pin_read, pin_write, ledger read, ledger write before, 16 bits each
};
static_assert(sizeof(ActiveEntry) == 32);

inline constexpr uint32_t kMaxPins = 0xffff;  // a pin count beyond this fails, as Xen's GNTPIN_*_mask overflow

// Where a frame of a domain lives: its memfd and offset (to mmap it into a window) and the hypervisor's
// own mapping of it (the "directmap", for grant copy).
struct FrameLoc {
  int fd = -1;
  uint64_t fd_offset = 0;
  std::byte* direct = nullptr;
};

// The concrete view: every mapping of one DomainShm in this process.
class SimDomain final : public SimDomainView {
 public:
  static Result<std::shared_ptr<SimDomain>> open_impl(DomainShm shm);
  ~SimDomain() override;
  SimDomain(const SimDomain&) = delete;
  SimDomain& operator=(const SimDomain&) = delete;

  DomId dom() const override { return shm_.dom; }
  const DomainShm& shm() const override { return shm_; }

  uint32_t nr_grant_entries() const { return shm_.nr_grant_entries; }
  GrantEntryV1* shared_entry(uint32_t ref) const { return gt_ + ref; }
  ActiveEntry* active_entry(uint32_t ref) const { return act_ + ref; }
  // Whether this view has the active table (a hypervisor's view). A guest's view of its own domain has none:
  // nothing may pin through it (no DomainDirectory hands one out), only grant and use its memory.
  bool has_active() const { return act_ != nullptr; }
  // Async-signal-safe: a linear walk of an array fixed at open().
  bool locate(uint64_t frame, FrameLoc* out) const;
  uint64_t nr_pages() const { return nr_pages_; }
  bool frame_of(const std::byte* p, uint64_t* frame) const;

  // The pin ledger of the process that plays the grantee through this view (a SimClient's, in memory the
  // hypervisor process also maps): per entry {read pins, write pins} this process holds, updated by pin_grant
  // and unpin_grant under the entry's lock, which then carries `tag` so a holder that died inside is known.
  // The hypervisor process releases a dead client's pins from it (SimServer). nullptr: not recorded.
  void set_pin_ledger(uint32_t* counts, uint32_t tag) {
    ledger_ = counts;
    ledger_tag_ = tag;
  }
  uint32_t* pin_ledger() const { return ledger_; }
  uint32_t lock_tag() const { return ledger_ ? ledger_tag_ : 1u; }

 private:
  struct Region {
    std::byte* direct = nullptr;
    uint64_t first = 0;
    uint64_t nr = 0;
    int fd = -1;
    uint64_t fd_offset = 0;
  };
  SimDomain() = default;

  DomainShm shm_;
  std::vector<Region> regions_;
  uint64_t nr_pages_ = 0;
  GrantEntryV1* gt_ = nullptr;
  size_t gt_bytes_ = 0;
  ActiveEntry* act_ = nullptr;
  size_t act_bytes_ = 0;
  uint32_t* ledger_ = nullptr;
  uint32_t ledger_tag_ = 1;
};

// The steps of the critical sections a client runs on an active entry, in order, named so that a test can end
// the process at each one (tests/sim/crash_consistency_test.cpp).
enum class CrashPoint : uint8_t {
  pin_locked,            // lock taken, nothing written
  pin_journaled,         // journal written, not armed
  pin_armed,             // armed, entry unchanged
  pin_status_set,        // GTF_reading (| GTF_writing) set in the guest's entry
  pin_bad_page_cleared,  // (bad frame) the flags just set cleared again
  pin_frame_set,         // act->frame and act->domid written (first pin)
  pin_counted,           // pin_read or pin_write incremented
  pin_ledgered,          // the client's ledger incremented
  pin_disarmed,          // journal disarmed, lock still held
  unpin_locked,
  unpin_journaled,
  unpin_armed,
  unpin_counted,   // pin count decremented
  unpin_ledgered,  // ledger decremented
  unpin_flags_cleared,
  unpin_disarmed,
  count
};
const char* to_string(CrashPoint p);
// Test hook, nullptr in the product: called at every CrashPoint, also from the lazy-fault signal handler (so it
// must be async-signal-safe). Set it only while the process runs one thread.
inline void (*crash_hook)(CrashPoint) = nullptr;

// Pin (dom, ref) for `grantee`: GNTTABOP_map_grant_ref's and GNTTABOP_copy's check-and-mark step
// (Xen's _set_status_v1 under the active entry's lock). On okay, *loc says where the frame is and the entry
// has GTF_reading (and GTF_writing unless readonly) set until unpin(). Async-signal-safe.
GntSt pin_grant(const SimDomain& dom, DomId grantee, GrantRef ref, bool readonly, FrameLoc* loc);
// Undo one successful pin_grant(): drop the pin; clear GTF_writing when no writer is left and GTF_reading
// when no pin is left. Async-signal-safe.
void unpin_grant(const SimDomain& dom, GrantRef ref, bool readonly);

// The hypervisor's release of a dead client's pins on one entry (`tag`: the dead client's lock tag, `ledger`:
// its {read, write} counts for the entry, set to 0 here). If the client died holding the lock, the lock is taken
// over and an armed journal rolled back first. Then the ledger's pins are dropped and the entry's flags made to
// match the pins that remain. Runs in the hypervisor process only.
struct DeadPinnerRelease {
  uint64_t pins_released = 0;
  bool lock_recovered = false;  // it died holding the entry's lock
  bool rolled_back = false;     // ... in the middle of changing it (the journal was armed)
  bool flags_mismatch = false;  // afterwards, pins remain that GTF_reading/GTF_writing do not show (never, unless
                                // the guest cleared them itself)
};
DeadPinnerRelease release_dead_pinner(const SimDomain& dom, GrantRef ref, uint32_t tag, uint32_t ledger[2]);

// The active table's size for n entries (create_domain_shm sizes the memfd with it).
inline size_t active_table_bytes(uint32_t nr_entries) { return size_t{nr_entries} * sizeof(ActiveEntry); }
inline size_t grant_table_bytes(uint32_t nr_entries) { return size_t{nr_entries} * sizeof(GrantEntryV1); }

}  // namespace pvnet::sim
