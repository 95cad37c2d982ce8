#include "grant-sim/xen/xen_grant_mapper.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xen/sys/gntdev.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "grant-sim/platform/atomic_grant_counters.hpp"
#include "grant-sim/platform/fault_range.hpp"
#include "grant-sim/xen/xen_platform.hpp"

namespace pvnet {


// ---- the pure part: CopyOps as gntdev segments ----

namespace {

uint64_t pages_touched(const void* p, uint16_t len) {
  if (len == 0) return 1;  // the kernel still queues one (empty) op
  const auto a = reinterpret_cast<uintptr_t>(p);
  return (a + len - 1) / kPageSize - a / kPageSize + 1;
}

}  // namespace

GntdevCopyPlan plan_gntdev_copy(std::span<CopyOp> ops) {
  GntdevCopyPlan plan;
  for (size_t i = 0; i < ops.size(); ++i) {
    CopyOp& op = ops[i];
    op.status = GntSt::okay;
    if ((op.src.is_gref && uint32_t{op.src.offset} + op.len > kPageSize) ||
        (op.dst.is_gref && uint32_t{op.dst.offset} + op.len > kPageSize)) {
      op.status = GntSt::bad_copy_arg;
      continue;
    }
    if ((!op.src.is_gref && op.src.ptr == nullptr && op.len) || (!op.dst.is_gref && op.dst.ptr == nullptr && op.len)) {
      op.status = GntSt::bad_virt_addr;
      continue;
    }
    if (!op.src.is_gref && !op.dst.is_gref) {
      plan.local_ops.push_back(i);
      continue;
    }
    xengnttab_grant_copy_segment_t s{};
    s.len = op.len;
    s.flags = 0;
    if (op.src.is_gref) {
      s.flags |= GNTCOPY_source_gref;
      s.source.foreign.ref = op.src.ref.value;
      s.source.foreign.offset = op.src.offset;
      s.source.foreign.domid = op.src.dom.value;
    } else {
      s.source.virt = op.src.ptr;
    }
    if (op.dst.is_gref) {
      s.flags |= GNTCOPY_dest_gref;
      s.dest.foreign.ref = op.dst.ref.value;
      s.dest.foreign.offset = op.dst.offset;
      s.dest.foreign.domid = op.dst.dom.value;
    } else {
      s.dest.virt = op.dst.ptr;
    }
    s.status = GNTST_general_error;
    // gntdev_grant_copy_seg: one GNTTABOP_copy op per page of the local side (a gref side never crosses one).
    if (!op.src.is_gref) plan.pieces += pages_touched(op.src.ptr, op.len);
    else if (!op.dst.is_gref) plan.pieces += pages_touched(op.dst.ptr, op.len);
    else plan.pieces += 1;
    plan.segs.push_back(s);
    plan.op_of_seg.push_back(i);
  }
  plan.hypercalls = (plan.pieces + kGntdevCopyBatch - 1) / kGntdevCopyBatch;
  return plan;
}

// ---- raw gntdev, usable from a signal handler ----

namespace {

long raw_ioctl(int fd, unsigned long req, void* arg) { return ::syscall(SYS_ioctl, fd, req, arg); }

// IOCTL_GNTDEV_MAP_GRANT_REF for one grant: reserves a gntdev offset (no hypercall yet). -1 on failure.
bool gntdev_add(int fd, DomId dom, GrantRef ref, uint64_t* index) {
  ioctl_gntdev_map_grant_ref m{};
  m.count = 1;
  m.refs[0].domid = dom.value;
  m.refs[0].ref = ref.value;
  if (raw_ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &m) != 0) return false;
  *index = m.index;
  return true;
}

void gntdev_remove(int fd, uint64_t index, uint32_t count = 1) {
  ioctl_gntdev_unmap_grant_ref u{};
  u.index = index;
  u.count = count;
  (void)raw_ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &u);
}

// mmap of the gntdev offset: in a PV domain this is where Xen maps the grant (and refuses a bad one).
void* gntdev_mmap(int fd, void* at, bool readonly, uint64_t index, uint32_t pages = 1) {
  const int prot = PROT_READ | (readonly ? 0 : PROT_WRITE);
  const int flags = MAP_SHARED | (at ? MAP_FIXED : 0);
  const long r = ::syscall(SYS_mmap, at, size_t{pages} * kPageSize, prot, flags, fd, index);
  if (r < 0 && r > -4096) return MAP_FAILED;
  return reinterpret_cast<void*>(r);
}

// ---- the lazy window ----

class XenLazyWindow final : public LazyWindow, public FaultRange {
 public:
  XenLazyWindow(size_t slots, int fd, std::shared_ptr<AtomicGrantCounters> c)
      : nr_(slots), fd_(fd), counters_(std::move(c)), slots_(new Slot[slots]) {}
  ~XenLazyWindow() override {
    if (registered_) unregister_fault_range(this);
    if (base_) {
      std::vector<size_t> all(nr_);
      for (size_t i = 0; i < nr_; ++i) all[i] = i;
      release(all);
      ::munmap(base_, nr_ * kPageSize);
    }
  }
  bool init() {
    if (nr_ == 0) return false;
    void* p = ::mmap(nullptr, nr_ * kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<std::byte*>(p);
    registered_ = register_fault_range(this, reinterpret_cast<uintptr_t>(base_),
                                            reinterpret_cast<uintptr_t>(base_ + nr_ * kPageSize));
    return registered_;
  }

  size_t slots() const override { return nr_; }
  std::byte* assign(size_t slot, DomId dom, GrantRef ref, bool readonly) override {
    if (slot >= nr_) return nullptr;
    Slot& s = slots_[slot];
    const uint32_t st = s.state.load(std::memory_order_acquire);
    if (st == kMapped || st == kScratch) {
      const size_t one[] = {slot};
      release(one);
    }
    s.dom = dom;
    s.ref = ref;
    s.readonly = readonly;
    s.status.store(static_cast<int16_t>(GntSt::okay), std::memory_order_relaxed);
    s.state.store(kAssigned, std::memory_order_release);
    return addr(slot);
  }
  GntSt status(size_t slot) const override {
    if (slot >= nr_) return GntSt::general_error;
    return static_cast<GntSt>(slots_[slot].status.load(std::memory_order_acquire));
  }
  bool mapped(size_t slot) const override {
    return slot < nr_ && slots_[slot].state.load(std::memory_order_acquire) == kMapped;
  }
  void release(std::span<const size_t> slots) override {
    std::vector<size_t> touched;
    for (size_t slot : slots) {
      if (slot >= nr_) continue;
      Slot& s = slots_[slot];
      const uint32_t st = s.state.load(std::memory_order_acquire);
      if (st == kMapped || st == kScratch) touched.push_back(slot);
      else s.state.store(kFree, std::memory_order_release);
    }
    if (touched.empty()) return;
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    uint64_t runs = 0;
    for (size_t i = 0; i < touched.size();) {
      size_t j = i + 1;
      while (j < touched.size() && touched[j] == touched[j - 1] + 1) ++j;
      // Replacing the gntdev VMAs closes them: the kernel unmaps each grant (GNTTABOP_unmap_grant_ref).
      (void)::mmap(addr(touched[i]), (j - i) * kPageSize, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
      ++runs;
      i = j;
    }
    uint64_t unmapped = 0;
    for (size_t slot : touched) {
      Slot& s = slots_[slot];
      if (s.state.load(std::memory_order_acquire) == kMapped) {
        gntdev_remove(fd_, s.index);
        ++unmapped;
      }
      s.status.store(static_cast<int16_t>(GntSt::okay), std::memory_order_relaxed);
      s.state.store(kFree, std::memory_order_release);
    }
    auto& c = *counters_;
    // Each mapped page was its own VMA: one unmap hypercall each (honest), one flush per contiguous run.
    c.hypercalls.fetch_add(unmapped, std::memory_order_relaxed);
    c.tlb_shootdowns.fetch_add(unmapped ? runs : 0, std::memory_order_relaxed);
    c.pages_unmapped.fetch_add(unmapped, std::memory_order_relaxed);
  }

  bool on_fault(uintptr_t a, int sig, Access access) override {
    const size_t slot = (a - reinterpret_cast<uintptr_t>(base_)) / kPageSize;
    if (slot >= nr_) return false;
    Slot& s = slots_[slot];
    auto& c = *counters_;
    for (;;) {
      uint32_t st = s.state.load(std::memory_order_acquire);
      if (st == kFaulting) {
        ::sched_yield();
        continue;
      }
      if (st == kMapped || st == kScratch) {
        if (access == Access::exec) return false;
        if (st == kMapped && s.readonly && access != Access::read && sig == SIGSEGV) return false;
        return true;
      }
      if (!s.state.compare_exchange_weak(st, kFaulting, std::memory_order_acq_rel)) continue;
      c.faults.fetch_add(1, std::memory_order_relaxed);
      GntSt result = GntSt::general_error;  // a touch of an unassigned slot
      if (st == kAssigned) {
        c.hypercalls.fetch_add(1, std::memory_order_relaxed);
        c.map_ops.fetch_add(1, std::memory_order_relaxed);
        uint64_t index = 0;
        if (gntdev_add(fd_, s.dom, s.ref, &index)) {
          if (gntdev_mmap(fd_, addr(slot), s.readonly, index) != MAP_FAILED) {
            s.index = index;
            c.pages_mapped.fetch_add(1, std::memory_order_relaxed);
            s.state.store(kMapped, std::memory_order_release);
            return true;
          }
          gntdev_remove(fd_, index);  // Xen refused the grant; gntdev does not say with which GNTST code
        } else {
          result = GntSt::no_device_space;  // gntdev's own limit on mapped grants
        }
        c.failed_ops.fetch_add(1, std::memory_order_relaxed);
      }
      c.fault_errors.fetch_add(1, std::memory_order_relaxed);
      s.status.store(static_cast<int16_t>(result), std::memory_order_release);
      // The failed mmap(MAP_FIXED) may have left a hole: a private zero page stands in either way.
      const long r = ::syscall(SYS_mmap, addr(slot), kPageSize, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (r != reinterpret_cast<long>(addr(slot))) {
        s.state.store(st, std::memory_order_release);
        return false;
      }
      s.state.store(kScratch, std::memory_order_release);
      return true;
    }
  }

 private:
  enum State : uint32_t { kFree, kAssigned, kFaulting, kMapped, kScratch };
  struct Slot {
    std::atomic<uint32_t> state{kFree};
    std::atomic<int16_t> status{static_cast<int16_t>(GntSt::okay)};
    DomId dom;
    GrantRef ref;
    bool readonly = true;
    uint64_t index = 0;
  };
  std::byte* addr(size_t slot) const { return base_ + slot * kPageSize; }

  size_t nr_;
  int fd_;
  std::shared_ptr<AtomicGrantCounters> counters_;
  std::unique_ptr<Slot[]> slots_;
  std::byte* base_ = nullptr;
  bool registered_ = false;
};

}  // namespace

// ---- the handles ----

namespace {
// An entry of `v` to reuse: the last freed one, else a new one at the end.
template <class T>
uint32_t take_entry(std::vector<uint32_t>& free, std::vector<T>& v) {
  if (free.empty()) {
    v.emplace_back();
    return static_cast<uint32_t>(v.size() - 1);
  }
  const uint32_t i = free.back();
  free.pop_back();
  return i;
}
}  // namespace

std::vector<MapHandle> GntdevHandleTable::add(GntdevRegion r) {
  const uint32_t reg = take_entry(free_regions_, regions_);
  regions_[reg] = Region{r, r.pages};
  std::vector<MapHandle> hs;
  hs.reserve(r.pages);
  for (uint32_t i = 0; i < r.pages; ++i) {
    const uint32_t h = take_entry(free_pages_, pages_);
    pages_[h].region = reg;
    hs.push_back(MapHandle{h});
  }
  return hs;
}

GntdevHandleTable::Released GntdevHandleTable::release(MapHandle h) {
  Released out;
  if (!h.valid() || h.value >= pages_.size() || pages_[h.value].region == UINT32_MAX) return out;
  out.found = true;
  const uint32_t reg = std::exchange(pages_[h.value].region, UINT32_MAX);
  free_pages_.push_back(h.value);
  if (--regions_[reg].live == 0) {
    out.unmap = regions_[reg].r;
    regions_[reg] = Region{};
    free_regions_.push_back(reg);
  }
  return out;
}

std::vector<MapHandle> GntdevHandleTable::live_handles() const {
  std::vector<MapHandle> hs;
  for (uint32_t h = 0; h < pages_.size(); ++h)
    if (pages_[h].region != UINT32_MAX) hs.push_back(MapHandle{h});
  return hs;
}

// ---- the mapper ----

Result<std::unique_ptr<XenGrantMapper>> XenGrantMapper::open(DomId self) {
  if (auto r = xen_device_present("gntdev"); !r) return r.error();
  errno = 0;
  xengnttab_handle* xgt = xengnttab_open(nullptr, 0);
  if (!xgt) {
    const int e = errno ? errno : EIO;
    return make_error(e, std::string("xengnttab_open: ") + std::strerror(e));
  }
  return std::unique_ptr<XenGrantMapper>(new XenGrantMapper(self, xgt));
}

XenGrantMapper::XenGrantMapper(DomId self, xengnttab_handle* xgt)
    : self_(self), xgt_(xgt), fd_(xengnttab_fd(xgt)), counters_(std::make_shared<AtomicGrantCounters>()) {}

XenGrantMapper::~XenGrantMapper() {
  std::vector<UnmapOp> left;
  {
    std::lock_guard g(mu_);
    for (MapHandle h : handles_.live_handles()) left.push_back(UnmapOp{h});
  }
  if (!left.empty()) unmap(left);
  xengnttab_close(xgt_);
}

size_t XenGrantMapper::live_mappings() const {
  std::lock_guard g(mu_);
  return handles_.live();
}

GrantCounters XenGrantMapper::counters() const { return counters_->snapshot(); }

void XenGrantMapper::map(std::span<MapOp> ops) {
  auto& c = *counters_;
  for (MapOp& op : ops) {
    c.map_ops.fetch_add(1, std::memory_order_relaxed);
    op.addr = nullptr;
    op.handle = MapHandle{};
    op.status = GntSt::general_error;
    uint64_t index = 0;
    if (!gntdev_add(fd_, op.dom, op.ref, &index)) {
      op.status = GntSt::no_device_space;
      c.failed_ops.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    c.hypercalls.fetch_add(1, std::memory_order_relaxed);  // the mmap is the GNTTABOP_map_grant_ref
    void* p = gntdev_mmap(fd_, nullptr, op.readonly, index);
    if (p == MAP_FAILED) {
      gntdev_remove(fd_, index);
      c.failed_ops.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    op.status = GntSt::okay;
    op.addr = static_cast<std::byte*>(p);
    c.pages_mapped.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard g(mu_);
    op.handle = handles_.add(GntdevRegion{op.addr, index, 1}).front();
  }
}

void XenGrantMapper::map_contiguous(std::span<MapOp> ops) {
  auto& c = *counters_;
  if (ops.empty()) return;
  const auto n = static_cast<uint32_t>(ops.size());
  c.map_ops.fetch_add(n, std::memory_order_relaxed);
  for (MapOp& op : ops) {
    op.addr = nullptr;
    op.handle = MapHandle{};
    op.status = GntSt::general_error;
  }
  // struct ioctl_gntdev_map_grant_ref ends in refs[1]: room for n.
  const size_t bytes = sizeof(ioctl_gntdev_map_grant_ref) + (n - 1) * sizeof(ioctl_gntdev_grant_ref);
  std::vector<uint64_t> buf((bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t), 0);
  auto* m = reinterpret_cast<ioctl_gntdev_map_grant_ref*>(buf.data());
  m->count = n;
  bool readonly = true;
  for (uint32_t i = 0; i < n; ++i) {
    m->refs[i].domid = ops[i].dom.value;
    m->refs[i].ref = ops[i].ref.value;
    readonly = readonly && ops[i].readonly;  // one VMA, one protection: writable if any op asks for it
  }
  if (raw_ioctl(fd_, IOCTL_GNTDEV_MAP_GRANT_REF, m) != 0) {
    for (MapOp& op : ops) op.status = GntSt::no_device_space;  // gntdev's own limit on mapped grants
    c.failed_ops.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  const uint64_t index = m->index;
  c.hypercalls.fetch_add(1, std::memory_order_relaxed);  // the mmap: one GNTTABOP_map_grant_ref of n ops
  void* p = gntdev_mmap(fd_, nullptr, readonly, index, n);
  if (p == MAP_FAILED) {
    // gntdev unmapped whatever part of the batch Xen had mapped; which grant was refused it does not say.
    gntdev_remove(fd_, index, n);
    c.failed_ops.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  auto* base = static_cast<std::byte*>(p);
  std::vector<MapHandle> hs;
  {
    std::lock_guard g(mu_);
    hs = handles_.add(GntdevRegion{base, index, n});
  }
  for (uint32_t i = 0; i < n; ++i) {
    ops[i].status = GntSt::okay;
    ops[i].addr = base + size_t{i} * kPageSize;
    ops[i].handle = hs[i];
  }
  c.pages_mapped.fetch_add(n, std::memory_order_relaxed);
}

void XenGrantMapper::unmap(std::span<UnmapOp> ops) {
  auto& c = *counters_;
  uint64_t regions = 0, pages = 0;
  for (UnmapOp& op : ops) {
    GntdevHandleTable::Released rel;
    {
      std::lock_guard g(mu_);
      rel = handles_.release(op.handle);
    }
    if (!rel.found) {
      op.status = GntSt::bad_handle;
      c.failed_ops.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    op.status = GntSt::okay;
    if (!rel.unmap) continue;  // a page of a contiguous map whose other pages are still mapped: it goes with them
    const GntdevRegion& r = *rel.unmap;
    ::munmap(r.addr, size_t{r.pages} * kPageSize);  // the kernel unmaps the grants (and flushes) as the VMA goes
    gntdev_remove(fd_, r.index, r.pages);
    ++regions;
    pages += r.pages;
  }
  // One GNTTABOP_unmap_grant_ref and one flush per VMA.
  c.hypercalls.fetch_add(regions, std::memory_order_relaxed);
  c.tlb_shootdowns.fetch_add(regions, std::memory_order_relaxed);
  c.pages_unmapped.fetch_add(pages, std::memory_order_relaxed);
}

void XenGrantMapper::copy(std::span<CopyOp> ops) {
  auto& c = *counters_;
  c.copy_ops.fetch_add(ops.size(), std::memory_order_relaxed);
  GntdevCopyPlan plan = plan_gntdev_copy(ops);
  for (size_t i : plan.local_ops) std::memmove(ops[i].dst.ptr, ops[i].src.ptr, ops[i].len);
  if (!plan.segs.empty()) {
    c.hypercalls.fetch_add(plan.hypercalls, std::memory_order_relaxed);
    errno = 0;
    const int r = xengnttab_grant_copy(xgt_, static_cast<uint32_t>(plan.segs.size()), plan.segs.data());
    for (size_t k = 0; k < plan.segs.size(); ++k)
      ops[plan.op_of_seg[k]].status = r == 0 ? static_cast<GntSt>(plan.segs[k].status) : GntSt::general_error;
  }
  uint64_t bytes = 0, failed = 0;
  for (const CopyOp& op : ops) {
    if (op.status == GntSt::okay) bytes += op.len;
    else ++failed;
  }
  c.grant_copy_bytes.fetch_add(bytes, std::memory_order_relaxed);
  c.failed_ops.fetch_add(failed, std::memory_order_relaxed);
}

std::unique_ptr<LazyWindow> XenGrantMapper::make_lazy_window(size_t slots) {
  auto w = std::make_unique<XenLazyWindow>(slots, fd_, counters_);
  if (!w->init()) return nullptr;
  return w;
}

}  // namespace pvnet
