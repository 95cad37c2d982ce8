// Test scaffolding for the grant simulator: a directory of domains and a few guests with their grant tables.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>

#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"
#include "grant-sim/sim/sim_mapper.hpp"

namespace pvnet::test {

class TestDirectory final : public DomainDirectory {
 public:
  std::shared_ptr<SimDomainView> find(DomId dom) override {
    auto it = doms_.find(dom.value);
    return it == doms_.end() ? nullptr : it->second;
  }
  void add(std::shared_ptr<SimDomainView> v) { doms_[v->dom().value] = std::move(v); }

 private:
  std::map<uint16_t, std::shared_ptr<SimDomainView>> doms_;
};

inline UniqueFd dup_fd(const UniqueFd& fd) { return UniqueFd{::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)}; }

// What a process receiving the domain's fds (inherited across fork, or over a socket) rebuilds.
inline DomainShm dup_shm(const DomainShm& s) {
  DomainShm d;
  d.dom = s.dom;
  d.nr_grant_entries = s.nr_grant_entries;
  d.grant_table = dup_fd(s.grant_table);
  d.active = dup_fd(s.active);
  for (const MemRegion& r : s.regions) d.regions.push_back(MemRegion{dup_fd(r.fd), r.first, r.nr_pages, r.fd_offset});
  return d;
}

// A guest: its view, its own grant table (the granting side) and its RAM.
struct Guest {
  std::shared_ptr<SimDomainView> view;
  std::unique_ptr<GrantTable> gt;
  std::unique_ptr<GuestMemory> mem;

  static Guest make(DomId dom, uint64_t pages = 16, uint32_t entries = 64) {
    auto shm = create_domain_shm(dom, pages * kPageSize, entries);
    EXPECT_TRUE(shm.ok());
    auto v = SimDomainView::open(std::move(*shm));
    EXPECT_TRUE(v.ok());
    return of(*v);
  }
  // A guest over a view opened elsewhere (memory the test assembled region by region).
  static Guest of(std::shared_ptr<SimDomainView> v) {
    Guest g;
    g.view = std::move(v);
    g.gt = make_sim_grant_table(g.view);
    g.mem = make_sim_guest_memory(g.view);
    return g;
  }
  // Fill a page with a pattern derived from `seed` and grant it.
  GrantRef grant_page(DomId grantee, uint64_t pfn, bool readonly, uint8_t seed) {
    auto p = mem->page(Pfn{pfn});
    for (size_t i = 0; i < p.size(); ++i) p[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
    auto r = gt->grant_access(grantee, Pfn{pfn}, readonly);
    EXPECT_TRUE(r.ok());
    return *r;
  }
  // The raw shared entry, as the hypervisor sees it.
  sim::GrantEntryV1& entry(GrantRef ref) {
    return *std::static_pointer_cast<sim::SimDomain>(view)->shared_entry(ref.value);
  }
  uint16_t flags(GrantRef ref) { return __atomic_load_n(&entry(ref).flags, __ATOMIC_ACQUIRE); }
};

inline MapOp map_op(DomId dom, GrantRef ref, bool readonly) {
  MapOp op;
  op.dom = dom;
  op.ref = ref;
  op.readonly = readonly;
  return op;
}
inline CopyOp copy_op(CopySide src, CopySide dst, uint16_t len) {
  CopyOp op;
  op.src = src;
  op.dst = dst;
  op.len = len;
  return op;
}
inline UnmapOp unmap_op(MapHandle h) {
  UnmapOp op;
  op.handle = h;
  return op;
}

inline uint8_t pattern(uint8_t seed, size_t i) { return static_cast<uint8_t>(seed + i * 7); }

inline bool page_has_pattern(const std::byte* p, uint8_t seed, size_t from = 0, size_t len = kPageSize) {
  for (size_t i = from; i < from + len; ++i)
    if (p[i] != std::byte(pattern(seed, i))) return false;
  return true;
}

class GrantTest : public ::testing::Test {
 protected:
  static constexpr DomId kA{1};
  static constexpr DomId kB{2};
  void SetUp() override {
    a = Guest::make(kA);
    b = Guest::make(kB);
    dir.add(a.view);
    dir.add(b.view);
    mapper = std::make_unique<sim::SimMapper>(kDom0, dir);
  }
  GrantCounters delta() { return mapper->counters() - base; }
  void mark() { base = mapper->counters(); }

  TestDirectory dir;
  Guest a, b;
  std::unique_ptr<sim::SimMapper> mapper;
  GrantCounters base;
};

}  // namespace pvnet::test
