// The granting side on real Xen, over gntalloc (libxengnttab's xengntshr_*). gntalloc can only share pages it
// allocates itself, so a pvnet domain's "memory" on Xen is a pool of gntalloc pages, allocated and granted once
// to one grantee (the backend domain) when the platform opens, and ungranted only when the pool goes.
//
// What differs from Xen's own netfront, which grants arbitrary pages with gnttab_grant_foreign_access:
//  - one grantee per pool: grant_access() for another domain fails (EPERM), counted in refused_other_domain;
//  - one readonly-ness per pool (writable here): a readonly request still hands out the writable grant,
//    counted in readonly_as_writable;
//  - the Xen grant entry lives as long as the pool: end_access() only returns the page to pvnet's books
//    (always succeeds, never GNTST_eagain), counted in ended_still_granted; the backend could still map it;
//  - in_use() cannot see GTF_reading/GTF_writing (gntalloc does not expose the entry): always false;
//  - a page has exactly one reference: granting the same pfn twice returns the same gref.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>
#include "grant-sim/platform/grant_table.hpp"
#include "grant-sim/platform/guest_memory.hpp"

namespace pvnet {

struct GntallocStats {
  uint64_t grants = 0;                 // successful grant_access calls
  uint64_t readonly_as_writable = 0;   // readonly asked, the pool's writable grant given
  uint64_t refused_other_domain = 0;   // grantee other than the pool's
  uint64_t ended_still_granted = 0;    // end_access calls: Xen still has the entry until the pool goes
};

// The books of a pool (pure: no Xen calls), over memory and references someone else allocated.
class GntallocPoolBook {
 public:
  GntallocPoolBook(DomId self, DomId grantee, bool writable, std::span<std::byte> pages, std::vector<uint32_t> refs);
  DomId self() const { return self_; }
  DomId grantee() const { return grantee_; }
  uint64_t nr_pages() const { return refs_.size(); }
  std::span<std::byte> page(Pfn pfn);
  bool frame_of(const std::byte* p, Pfn* pfn) const;
  Result<GrantRef> grant_access(DomId grantee, Pfn frame, bool readonly);
  Result<void> end_access(GrantRef ref);
  uint32_t free_count() const { return free_; }
  const GntallocStats& stats() const { return stats_; }

 private:
  DomId self_, grantee_;
  bool writable_;
  std::span<std::byte> pages_;
  std::vector<uint32_t> refs_;     // by pfn
  std::vector<uint32_t> granted_;  // by pfn: how many grant_access calls are not ended yet
  uint32_t free_;
  GntallocStats stats_;
};

// GuestMemory and GrantTable views of one book (the book must outlive them).
std::unique_ptr<GuestMemory> make_pool_memory(GntallocPoolBook& book);
std::unique_ptr<GrantTable> make_pool_grant_table(GntallocPoolBook& book);

// A pool of nr_pages gntalloc pages shared with `grantee` (xengntshr_share_pages, writable), unshared on
// destruction. ENOENT "no /dev/xen/gntalloc: ..." when not running on Xen.
class XenGntallocPool {
 public:
  static Result<std::unique_ptr<XenGntallocPool>> create(DomId self, DomId grantee, uint32_t nr_pages, bool writable);
  ~XenGntallocPool();
  XenGntallocPool(const XenGntallocPool&) = delete;
  XenGntallocPool& operator=(const XenGntallocPool&) = delete;
  GntallocPoolBook& book() { return *book_; }
  uint32_t ref(uint32_t i) const;

 private:
  XenGntallocPool() = default;
  void* xgs_ = nullptr;  // xengntshr_handle*
  void* base_ = nullptr;
  uint32_t nr_ = 0;
  std::vector<uint32_t> refs_;
  std::unique_ptr<GntallocPoolBook> book_;
};

}  // namespace pvnet
