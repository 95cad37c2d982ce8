// The grantee side: what a backend (dom0) may do with another domain's grants, batched as Xen's
// GNTTABOP_map_grant_ref / GNTTABOP_unmap_grant_ref / GNTTABOP_copy. One call = one hypercall-equivalent.
// Every op reports its own GNTST_* status; a failed op never aborts the rest of its batch (as in Xen).
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include "grant-sim/platform/counters.hpp"
#include "grant-sim/platform/grant_status.hpp"
#include "shared-ring/ids.hpp"

namespace pvnet {

class LazyWindow;

struct MapHandle {
  uint32_t value = UINT32_MAX;
  bool valid() const { return value != UINT32_MAX; }
};

struct MapOp {
  // in
  DomId dom;
  GrantRef ref;
  bool readonly = true;
  // out
  GntSt status = GntSt::general_error;
  std::byte* addr = nullptr;  // the page, mapped into the caller
  MapHandle handle;
};

struct UnmapOp {
  MapHandle handle;                     // in
  GntSt status = GntSt::general_error;  // out
};

// One side of a grant copy: a granted page of another domain (gref) or a buffer of the caller's own (local).
struct CopySide {
  static CopySide gref(DomId dom, GrantRef ref, uint16_t offset) { return CopySide{true, dom, ref, offset, nullptr}; }
  static CopySide local(std::byte* p) { return CopySide{false, DomId{}, GrantRef{}, 0, p}; }
  bool is_gref = false;
  DomId dom;
  GrantRef ref;
  uint16_t offset = 0;        // within the granted page; offset + len must stay inside it (else bad_copy_arg)
  std::byte* ptr = nullptr;   // local buffer (for the source side it is only read)
};

struct CopyOp {
  CopySide src;
  CopySide dst;
  uint16_t len = 0;
  GntSt status = GntSt::general_error;  // out
};

class GrantMapper {
 public:
  virtual ~GrantMapper() = default;
  virtual DomId self() const = 0;
  virtual void map(std::span<MapOp> ops) = 0;
  // Map a batch of one domain's grants at consecutive addresses (ops[0].addr is the start, ops[i].addr =
  // start + i pages): a ring of several pages (blkif's ring-page-order; Xen's gntdev maps a count of refs in one
  // mmap). All or nothing: if one op fails, none stays mapped and every op reports a status (the failed one
  // its own, the others general_error). Each page keeps its own handle for unmap; unmap them all together (as
  // a ring's teardown does): a mapper may keep the run mapped until the last of its handles is unmapped (Xen's
  // gntdev maps the run as one VMA that only goes whole). A mapper that cannot lays every op to general_error:
  // callers ask can_map_contiguous() before offering what needs it.
  virtual void map_contiguous(std::span<MapOp> ops) {
    for (MapOp& op : ops) op.status = GntSt::general_error;
  }
  virtual bool can_map_contiguous() const { return false; }
  // Unmap a batch: one hypercall, and one TLB shootdown if anything was unmapped.
  virtual void unmap(std::span<UnmapOp> ops) = 0;
  // GNTTABOP_copy: a real kernel copy between address spaces, so its cost is real.
  virtual void copy(std::span<CopyOp> ops) = 0;
  // A reserved range of `slots` pages where a granted page is mapped only when first touched.
  virtual std::unique_ptr<LazyWindow> make_lazy_window(size_t slots) = 0;
  // Counters of everything this mapper (and its lazy windows) made dom0 pay for.
  virtual GrantCounters counters() const = 0;
};

}  // namespace pvnet
