#include "grant-sim/sim/sim_mapper.hpp"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "grant-sim/sim/lazy_window_segv.hpp"
#include "grant-sim/sim/lazy_window_uffd.hpp"

namespace pvnet {
namespace sim {

const char* to_string(LazyHandler h) { return h == LazyHandler::segv ? "segv" : "uffd"; }

LazyHandler default_lazy_handler() {
  if (const char* env = std::getenv("PVNET_LAZY_HANDLER")) {
    if (std::strcmp(env, "segv") == 0) return LazyHandler::segv;
    if (std::strcmp(env, "uffd") == 0) return LazyHandler::uffd;
  }
  // Chosen by grant_bench's numbers (docs/grant-sim.md, "Choosing the lazy-fault handler").
  return LazyHandler::segv;
}

SimMapper::SimMapper(DomId self, DomainDirectory& dir)
    : self_(self), dir_(dir), counters_(std::make_shared<AtomicGrantCounters>()) {}

SimMapper::~SimMapper() {
  std::vector<UnmapOp> left;
  {
    std::lock_guard g(mu_);
    for (uint32_t h = 0; h < mappings_.size(); ++h)
      if (mappings_[h].addr) left.push_back(UnmapOp{MapHandle{h}});
  }
  if (!left.empty()) unmap(left);
}

std::shared_ptr<SimDomain> SimMapper::find(DomId dom) {
  return std::static_pointer_cast<SimDomain>(dir_.find(dom));
}

size_t SimMapper::live_mappings() const {
  std::lock_guard g(mu_);
  return mappings_.size() - free_handles_.size();
}

void SimMapper::map(std::span<MapOp> ops) {
  counters_->hypercalls.fetch_add(1, std::memory_order_relaxed);
  for (MapOp& op : ops) map_one(op, nullptr);
}

void SimMapper::map_one(MapOp& op, std::byte* at) {
  auto& c = *counters_;
  c.map_ops.fetch_add(1, std::memory_order_relaxed);
  op.addr = nullptr;
  op.handle = MapHandle{};
  op.status = GntSt::okay;
  auto d = find(op.dom);
  FrameLoc loc;
  if (!d) op.status = GntSt::bad_domain;
  else op.status = pin_grant(*d, self_, op.ref, op.readonly, &loc);
  if (op.status == GntSt::okay) {
    const int prot = PROT_READ | (op.readonly ? 0 : PROT_WRITE);
    void* p = ::mmap(at, kPageSize, prot, MAP_SHARED | (at ? MAP_FIXED : 0), loc.fd,
                     static_cast<off_t>(loc.fd_offset));
    if (p == MAP_FAILED) {
      unpin_grant(*d, op.ref, op.readonly);
      op.status = GntSt::no_device_space;  // no room for another mapping (vm.max_map_count, ENOMEM)
    } else {
      op.addr = static_cast<std::byte*>(p);
      std::lock_guard g(mu_);
      uint32_t h;
      if (!free_handles_.empty()) {
        h = free_handles_.back();
        free_handles_.pop_back();
      } else {
        h = static_cast<uint32_t>(mappings_.size());
        mappings_.emplace_back();
      }
      mappings_[h] = Mapping{std::move(d), op.ref, op.readonly, op.addr};
      op.handle = MapHandle{h};
      c.pages_mapped.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (op.status != GntSt::okay) c.failed_ops.fetch_add(1, std::memory_order_relaxed);
}

// A range is reserved first (PROT_NONE), then every page is mapped over its place in it: each page is a mapping
// of its own (own handle, own unmap), as the single-page path, only at a chosen address.
void SimMapper::map_contiguous(std::span<MapOp> ops) {
  counters_->hypercalls.fetch_add(1, std::memory_order_relaxed);
  if (ops.empty()) return;
  void* r = ::mmap(nullptr, ops.size() * kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    for (MapOp& op : ops) op.status = GntSt::no_device_space;
    return;
  }
  auto* base = static_cast<std::byte*>(r);
  size_t done = 0;
  for (; done < ops.size(); ++done) {
    map_one(ops[done], base + done * kPageSize);
    if (ops[done].status != GntSt::okay) break;
  }
  if (done == ops.size()) return;
  // All or nothing: undo what was mapped, give the rest of the reservation back.
  std::vector<UnmapOp> undo;
  for (size_t i = 0; i < done; ++i) undo.push_back(UnmapOp{ops[i].handle});
  if (!undo.empty()) unmap(undo);
  ::munmap(base + done * kPageSize, (ops.size() - done) * kPageSize);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (i != done) ops[i].status = GntSt::general_error;
    ops[i].addr = nullptr;
    ops[i].handle = MapHandle{};
  }
}

void SimMapper::unmap(std::span<UnmapOp> ops) {
  auto& c = *counters_;
  c.hypercalls.fetch_add(1, std::memory_order_relaxed);
  bool any = false;
  for (UnmapOp& op : ops) {
    Mapping m;
    {
      std::lock_guard g(mu_);
      if (op.handle.value < mappings_.size() && mappings_[op.handle.value].addr) {
        m = std::move(mappings_[op.handle.value]);
        mappings_[op.handle.value] = Mapping{};
        free_handles_.push_back(op.handle.value);
      }
    }
    if (!m.addr) {
      op.status = GntSt::bad_handle;
      c.failed_ops.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // The page is still the guest's until the mapping is gone: unmap first, then drop the pin.
    ::munmap(m.addr, kPageSize);
    unpin_grant(*m.dom, m.ref, m.readonly);
    op.status = GntSt::okay;
    any = true;
    c.pages_unmapped.fetch_add(1, std::memory_order_relaxed);
  }
  if (any) c.tlb_shootdowns.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// One side of a copy op, resolved: where its bytes are and which pin to drop afterwards.
struct ResolvedSide {
  std::byte* ptr = nullptr;
  const SimDomain* pinned = nullptr;  // non-null: unpin (ref, readonly) after the copy
  GrantRef ref;
  bool readonly = true;
};

class BatchDomains {
 public:
  explicit BatchDomains(DomainDirectory& dir) : dir_(dir) {}
  const SimDomain* get(DomId dom) {
    for (auto& [id, d] : cache_)
      if (id == dom) return d.get();
    auto d = std::static_pointer_cast<SimDomain>(dir_.find(dom));
    cache_.emplace_back(dom, d);
    return d.get();
  }

 private:
  DomainDirectory& dir_;
  std::vector<std::pair<DomId, std::shared_ptr<SimDomain>>> cache_;  // keeps views alive for the batch
};

GntSt resolve(BatchDomains& doms, DomId self, const CopySide& s, uint16_t len, bool is_src, ResolvedSide* out) {
  if (!s.is_gref) {
    if (s.ptr == nullptr && len > 0) return GntSt::bad_virt_addr;
    out->ptr = s.ptr;
    return GntSt::okay;
  }
  if (uint32_t{s.offset} + len > kPageSize) return GntSt::bad_copy_arg;
  const SimDomain* d = doms.get(s.dom);
  if (!d) return GntSt::bad_domain;
  FrameLoc loc;
  if (GntSt st = pin_grant(*d, self, s.ref, is_src, &loc); st != GntSt::okay) return st;
  out->ptr = loc.direct + s.offset;
  out->pinned = d;
  out->ref = s.ref;
  out->readonly = is_src;
  return GntSt::okay;
}

void unpin(const ResolvedSide& s) {
  if (s.pinned) unpin_grant(*s.pinned, s.ref, s.readonly);
}

}  // namespace

void SimMapper::copy(std::span<CopyOp> ops) {
  auto& c = *counters_;
  c.hypercalls.fetch_add(1, std::memory_order_relaxed);
  c.copy_ops.fetch_add(ops.size(), std::memory_order_relaxed);
  BatchDomains doms(dir_);
  struct Pending {
    CopyOp* op;
    ResolvedSide src, dst;
  };
  std::vector<Pending> pending;
  pending.reserve(ops.size());
  // Check and pin every op first (GTF_reading on sources, GTF_writing on destinations, held for the whole
  // copy as Xen holds them across its memcpy), then one kernel copy for the batch.
  for (CopyOp& op : ops) {
    Pending p{&op, {}, {}};
    op.status = resolve(doms, self_, op.src, op.len, true, &p.src);
    if (op.status == GntSt::okay) {
      op.status = resolve(doms, self_, op.dst, op.len, false, &p.dst);
      if (op.status != GntSt::okay) unpin(p.src);
    }
    if (op.status == GntSt::okay && op.len > 0) pending.push_back(p);
  }
  // process_vm_readv on ourselves: the kernel pins the source pages and copies into the destination, one
  // syscall per UIO_MAXIOV segments, as GNTTABOP_copy is one hypercall per batch.
  constexpr size_t kMaxIov = 1024;
  std::vector<iovec> local, remote;
  for (size_t i = 0; i < pending.size(); i += kMaxIov) {
    const size_t n = std::min(kMaxIov, pending.size() - i);
    local.resize(n);
    remote.resize(n);
    size_t want = 0;
    for (size_t k = 0; k < n; ++k) {
      const Pending& p = pending[i + k];
      local[k] = iovec{p.dst.ptr, p.op->len};
      remote[k] = iovec{p.src.ptr, p.op->len};
      want += p.op->len;
    }
    ssize_t got = ::process_vm_readv(::getpid(), local.data(), n, remote.data(), n, 0);
    if (got < 0) got = 0;
    size_t done = static_cast<size_t>(got);
    for (size_t k = 0; k < n; ++k) {
      CopyOp& op = *pending[i + k].op;
      if (done >= op.len) {
        done -= op.len;
      } else {
        done = 0;
        op.status = GntSt::bad_virt_addr;  // a local buffer the kernel could not reach
      }
    }
    (void)want;
  }
  for (const Pending& p : pending) {
    unpin(p.dst);
    unpin(p.src);
  }
  for (const CopyOp& op : ops) {
    if (op.status == GntSt::okay) c.grant_copy_bytes.fetch_add(op.len, std::memory_order_relaxed);
    else c.failed_ops.fetch_add(1, std::memory_order_relaxed);
  }
}

std::unique_ptr<LazyWindow> SimMapper::make_lazy_window(size_t slots) {
  return make_lazy_window(slots, default_lazy_handler());
}

std::unique_ptr<LazyWindow> SimMapper::make_lazy_window(size_t slots, LazyHandler h) {
  if (h == LazyHandler::uffd && uffd_lazy_supported()) {
    if (auto w = make_uffd_window(slots, self_, dir_, counters_)) return w;
  }
  return make_segv_window(slots, self_, dir_, counters_);
}

}  // namespace sim

std::unique_ptr<GrantMapper> make_sim_mapper(DomId self, DomainDirectory& dir) {
  return std::make_unique<sim::SimMapper>(self, dir);
}

}  // namespace pvnet
