// The granting side of Xen's grant tables (what netfront calls through gnttab_*): a domain offers its own
// frames to another domain. Xen v1 semantics: entries are grant_entry_v1 {flags, domid, frame} in memory the
// granting domain writes; the hypervisor sets GTF_reading/GTF_writing while a grant is mapped or being copied.
#pragma once
#include <cerrno>
#include <span>
#include <vector>

#include "grant-sim/platform/grant_status.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

class GrantTable {
 public:
  virtual ~GrantTable() = default;
  virtual DomId self() const = 0;
  // gnttab_grant_foreign_access: allocate a free reference, fill the entry, publish GTF_permit_access last.
  virtual Result<GrantRef> grant_access(DomId grantee, Pfn frame, bool readonly) = 0;
  // gnttab_end_foreign_access_ref: atomically clear the entry unless the grantee has it in use
  // (GTF_reading|GTF_writing); on success the reference goes back to the free list.
  // Fails with code GNTST_eagain while the grant is in use: the caller keeps the page and retries later.
  virtual Result<void> end_access(GrantRef ref) = 0;
  // GTF_reading|GTF_writing currently set by the hypervisor on this entry.
  virtual bool in_use(GrantRef ref) const = 0;
  virtual uint32_t capacity() const = 0;    // number of entries
  virtual uint32_t free_count() const = 0;  // references not currently granted

  // A driver's own pool of references, as Linux netfront keeps for TX (gref_tx_head): the table's free list is
  // touched once per batch of references, not once per page.
  // gnttab_alloc_grant_references: move `n` free references into `out` (appended), none granted yet. A table
  // that has no such pool answers ENOTSUP; the caller then uses grant_access/end_access.
  virtual Result<void> reserve(uint32_t n, std::vector<GrantRef>& out) {
    (void)n;
    (void)out;
    return make_error(ENOTSUP, "this grant table keeps no reserved references");
  }
  // gnttab_free_grant_references: give reserved references (not granted) back to the free list.
  virtual void unreserve(std::span<const GrantRef> refs) { (void)refs; }
  // gnttab_grant_foreign_access_ref: fill a reserved reference's entry, GTF_permit_access last. No lock.
  virtual void grant_access_ref(GrantRef ref, DomId grantee, Pfn frame, bool readonly) {
    (void)ref, (void)grantee, (void)frame, (void)readonly;
  }
  // gnttab_end_foreign_access_ref on a reserved reference: clear the entry unless it is in use (false then:
  // keep the page, retry). The reference stays reserved either way.
  virtual bool end_access_ref(GrantRef ref) {
    (void)ref;
    return false;
  }
};

}  // namespace pvnet
