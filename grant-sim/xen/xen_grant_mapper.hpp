// GrantMapper over gntdev (libxengnttab's handle; its fd for the raw ioctls). What each call costs on Xen:
//  - map(): per op, IOCTL_GNTDEV_MAP_GRANT_REF + mmap of one page. In a PV dom0 the mmap is the hypercall
//    (GNTTABOP_map_grant_ref for that page), so a batch of n maps is n hypercalls, and counted as n. gntdev
//    reports a failed map as EINVAL from mmap without the GNTST code: a failed map is GntSt::general_error.
//  - map_contiguous(): ONE IOCTL_GNTDEV_MAP_GRANT_REF with count = n refs, then ONE mmap of n pages at the
//    returned offset (what xengnttab_map_domain_grant_refs does): one VMA, one GNTTABOP_map_grant_ref of n ops,
//    counted as one hypercall. gntdev fails the mmap whole (and unmaps what it had mapped) if any grant is refused,
//    without saying which: every op reports general_error then. The VMA can only go whole (munmap of the n pages
//    + IOCTL_GNTDEV_UNMAP_GRANT_REF with the same offset and count), so each page keeps its own handle (the
//    GrantMapper contract) but the n pages are unmapped when the last of their handles is.
//  - unmap(): per mapping, munmap (the kernel's GNTTABOP_unmap_grant_ref and TLB flush) +
//    IOCTL_GNTDEV_UNMAP_GRANT_REF.
//  - copy(): one IOCTL_GNTDEV_GRANT_COPY (xengnttab_grant_copy) per batch; the kernel splits local buffers at page
//    boundaries and issues GNTTABOP_copy 16 ops at a time, so a batch costs ceil(pieces / 16) hypercalls, counted
//    so. Per-op GNTST statuses come back from Xen. An op with offset + len past the page is refused here with
//    bad_copy_arg (gntdev would fail the whole batch with EINVAL); a local -> local op is a memcpy (no hypercall).
//  - make_lazy_window(): slots mapped on first touch by the process-wide SIGSEGV handler (lazy_window_base's
//    registry): IOCTL_GNTDEV_MAP_GRANT_REF then mmap(MAP_FIXED) of the gntdev fd at the returned offset.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>
extern "C" {
#include <xengnttab.h>
}
#include "grant-sim/platform/grant_mapper.hpp"
#include "grant-sim/platform/lazy_window.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

struct AtomicGrantCounters;

// The pure part of a grant copy: pvnet's CopyOps as gntdev segments (tests check it without Xen).
struct GntdevCopyPlan {
  std::vector<xengnttab_grant_copy_segment_t> segs;
  std::vector<size_t> op_of_seg;    // which CopyOp each segment came from
  std::vector<size_t> local_ops;    // local -> local ops (a memcpy, no hypercall)
  uint64_t pieces = 0;              // GNTTABOP_copy ops the kernel will issue
  uint64_t hypercalls = 0;          // ceil(pieces / kGntdevCopyBatch)
};
inline constexpr uint64_t kGntdevCopyBatch = 16;  // linux drivers/xen/gntdev.c GNTDEV_COPY_BATCH
// Fills the plan; ops refused before any hypercall get their status set here (bad_copy_arg, bad_virt_addr).
GntdevCopyPlan plan_gntdev_copy(std::span<CopyOp> ops);

// The mapper's handles (pure: no Xen calls, tests check it without Xen). A gntdev region is one
// IOCTL_GNTDEV_MAP_GRANT_REF offset and one VMA of `pages` pages; every page of it has its own MapHandle, and the
// region is handed back for unmapping when the last of them is released.
struct GntdevRegion {
  std::byte* addr = nullptr;
  uint64_t index = 0;  // gntdev offset
  uint32_t pages = 0;
};
class GntdevHandleTable {
 public:
  // Handles for every page of r, in page order.
  std::vector<MapHandle> add(GntdevRegion r);
  struct Released {
    bool found = false;                  // false: not a live handle (bad_handle)
    std::optional<GntdevRegion> unmap;   // set: h was the region's last live page, unmap the whole region now
  };
  Released release(MapHandle h);
  size_t live() const { return pages_.size() - free_pages_.size(); }
  std::vector<MapHandle> live_handles() const;

 private:
  struct Page {
    uint32_t region = UINT32_MAX;  // UINT32_MAX: free
  };
  struct Region {
    GntdevRegion r;
    uint32_t live = 0;  // 0: free
  };
  std::vector<Page> pages_;  // by MapHandle::value
  std::vector<uint32_t> free_pages_;
  std::vector<Region> regions_;
  std::vector<uint32_t> free_regions_;
};

class XenGrantMapper final : public GrantMapper {
 public:
  // ENOENT "no /dev/xen/gntdev: not running on Xen" when absent.
  static Result<std::unique_ptr<XenGrantMapper>> open(DomId self);
  ~XenGrantMapper() override;
  XenGrantMapper(const XenGrantMapper&) = delete;
  XenGrantMapper& operator=(const XenGrantMapper&) = delete;

  DomId self() const override { return self_; }
  void map(std::span<MapOp> ops) override;
  void map_contiguous(std::span<MapOp> ops) override;
  bool can_map_contiguous() const override { return true; }
  void unmap(std::span<UnmapOp> ops) override;
  void copy(std::span<CopyOp> ops) override;
  std::unique_ptr<LazyWindow> make_lazy_window(size_t slots) override;
  GrantCounters counters() const override;
  size_t live_mappings() const;

 private:
  XenGrantMapper(DomId self, xengnttab_handle* xgt);
  DomId self_;
  xengnttab_handle* xgt_;
  int fd_;
  std::shared_ptr<AtomicGrantCounters> counters_;
  mutable std::mutex mu_;
  GntdevHandleTable handles_;
};

}  // namespace pvnet
