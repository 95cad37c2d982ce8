// The granting side (GrantTable) and the domain's own memory (GuestMemory, SimDomainView::open).
#include <sys/mman.h>

#include "tests/grant/grant_fixture.hpp"

namespace pvnet::test {
namespace {

TEST_F(GrantTest, GrantWritesAXenV1EntryWithFlagsLast) {
  const GrantRef ref = a.grant_page(kDom0, 3, /*readonly=*/true, 1);
  // Read the memfd through a separate mapping of the raw fd, with Xen's own struct.
  const size_t bytes = a.view->shm().nr_grant_entries * sizeof(grant_entry_v1_t);
  void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, a.view->shm().grant_table.get(), 0);
  ASSERT_NE(p, MAP_FAILED);
  const auto* e = static_cast<const grant_entry_v1_t*>(p) + ref.value;
  EXPECT_EQ(e->flags, GTF_permit_access | GTF_readonly);
  EXPECT_EQ(e->domid, 0);
  EXPECT_EQ(e->frame, 3u);
  ::munmap(p, bytes);
  ASSERT_TRUE(a.gt->end_access(ref).ok());
  EXPECT_EQ(a.flags(ref), 0);
}

TEST_F(GrantTest, ReservedEntriesAreNeverHandedOut) {
  EXPECT_EQ(a.gt->capacity(), 64u);
  EXPECT_EQ(a.gt->free_count(), 64u - GNTTAB_NR_RESERVED_ENTRIES);
  std::vector<GrantRef> refs;
  for (;;) {
    auto r = a.gt->grant_access(kDom0, Pfn{0}, true);
    if (!r) {
      EXPECT_EQ(r.error().code, ENOSPC);
      break;
    }
    EXPECT_GE(r->value, GNTTAB_NR_RESERVED_ENTRIES);
    EXPECT_LT(r->value, 64u);
    refs.push_back(*r);
  }
  EXPECT_EQ(refs.size(), 64u - GNTTAB_NR_RESERVED_ENTRIES);
  EXPECT_EQ(a.gt->free_count(), 0u);
  ASSERT_TRUE(a.gt->end_access(refs[5]).ok());
  EXPECT_EQ(a.gt->free_count(), 1u);
  auto again = a.gt->grant_access(kDom0, Pfn{1}, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, refs[5]);  // the freed reference is reused
}

TEST_F(GrantTest, EndAccessOfUngrantedOrOutOfRangeRefFails) {
  auto r = a.gt->end_access(GrantRef{20});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GNTST_bad_gntref);
  r = a.gt->end_access(GrantRef{1000});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GNTST_bad_gntref);
  const GrantRef ref = a.grant_page(kDom0, 0, true, 0);
  ASSERT_TRUE(a.gt->end_access(ref).ok());
  EXPECT_FALSE(a.gt->end_access(ref).ok());  // twice: the second is a bug and is refused
}

TEST_F(GrantTest, FrameBeyondV1EntryIsRefused) {
  auto r = a.gt->grant_access(kDom0, Pfn{uint64_t{1} << 33}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST_F(GrantTest, GuestMemoryPagesAndFrames) {
  EXPECT_EQ(a.mem->nr_pages(), 16u);
  auto p = a.mem->page(Pfn{5});
  ASSERT_EQ(p.size(), kPageSize);
  Pfn f;
  ASSERT_TRUE(a.mem->frame_of(p.data() + 100, &f));
  EXPECT_EQ(f, Pfn{5});
  EXPECT_TRUE(a.mem->page(Pfn{16}).empty());
  std::byte local[8];
  EXPECT_FALSE(a.mem->frame_of(local, &f));
  // A domain's memory is not another's.
  EXPECT_FALSE(b.mem->frame_of(p.data(), &f));
}

UniqueFd memfd_pages(uint64_t pages) {
  UniqueFd fd{::memfd_create("test-region", MFD_CLOEXEC)};
  EXPECT_TRUE(fd);
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(pages * kPageSize)), 0);
  return fd;
}

// A QEMU guest's RAM arrives as several memfds at arbitrary guest-physical bases (vhost-user SET_MEM_TABLE).
TEST_F(GrantTest, DomainFromSeveralRegionsAtArbitraryBases) {
  auto shm = create_domain_shm(DomId{7}, 0, 32);
  ASSERT_TRUE(shm.ok());
  EXPECT_TRUE(shm->regions.empty());
  shm->regions.push_back(MemRegion{memfd_pages(4), Pfn{0}, 4, 0});
  // Second region: its frames start at 0x100 and live 2 pages into its fd.
  shm->regions.push_back(MemRegion{memfd_pages(10), Pfn{0x100}, 8, 2 * kPageSize});
  auto v = SimDomainView::open(std::move(*shm));
  ASSERT_TRUE(v.ok()) << v.error().reason;
  Guest g = Guest::of(*v);
  dir.add(g.view);
  EXPECT_EQ(g.mem->nr_pages(), 12u);
  EXPECT_TRUE(g.mem->page(Pfn{4}).empty());
  EXPECT_TRUE(g.mem->page(Pfn{0xff}).empty());
  ASSERT_FALSE(g.mem->page(Pfn{0x107}).empty());
  EXPECT_TRUE(g.mem->page(Pfn{0x108}).empty());
  Pfn f;
  ASSERT_TRUE(g.mem->frame_of(g.mem->page(Pfn{0x105}).data() + 4095, &f));
  EXPECT_EQ(f, Pfn{0x105});
  const GrantRef ref = g.grant_page(kDom0, 0x105, true, 42);
  MapOp op = map_op(DomId{7}, ref, true);
  mapper->map({&op, 1});
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_TRUE(page_has_pattern(op.addr, 42));
  UnmapOp u = unmap_op(op.handle);
  mapper->unmap({&u, 1});
  EXPECT_EQ(u.status, GntSt::okay);
}

TEST_F(GrantTest, OverlappingOrShortRegionsAreRefused) {
  auto shm = create_domain_shm(DomId{8}, 0, 32);
  ASSERT_TRUE(shm.ok());
  shm->regions.push_back(MemRegion{memfd_pages(4), Pfn{0}, 4, 0});
  shm->regions.push_back(MemRegion{memfd_pages(4), Pfn{3}, 4, 0});
  EXPECT_FALSE(SimDomainView::open(std::move(*shm)).ok());
  auto shm2 = create_domain_shm(DomId{9}, 0, 32);
  ASSERT_TRUE(shm2.ok());
  shm2->regions.push_back(MemRegion{memfd_pages(4), Pfn{0}, 8, 0});  // the fd is smaller than claimed
  EXPECT_FALSE(SimDomainView::open(std::move(*shm2)).ok());
}

TEST_F(GrantTest, DomainMemfdsAreSealedAgainstShrinking) {
  const int fd = a.view->shm().regions.at(0).fd.get();
  EXPECT_NE(::ftruncate(fd, 0), 0);
  EXPECT_NE(::ftruncate(a.view->shm().grant_table.get(), 0), 0);
}

}  // namespace
}  // namespace pvnet::test

namespace pvnet::test {
namespace {

// netfront's TX pool (Linux's gref_tx_head): references reserved in a batch, granted and ended without the
// table's free list, given back at teardown.
TEST_F(GrantTest, ReservedReferencesAreGrantedAndEndedOutsideTheFreeList) {
  const uint32_t free0 = a.gt->free_count();
  std::vector<GrantRef> pool;
  ASSERT_TRUE(a.gt->reserve(8, pool).ok());
  ASSERT_EQ(pool.size(), 8u);
  EXPECT_EQ(a.gt->free_count(), free0 - 8);
  EXPECT_EQ(a.flags(pool[0]), 0) << "reserved is not granted";
  EXPECT_FALSE(a.gt->end_access(pool[0]).ok()) << "end_access is for grant_access's references only";

  auto p = a.mem->page(Pfn{5});
  p[0] = std::byte{0x5A};
  a.gt->grant_access_ref(pool[0], kDom0, Pfn{5}, /*readonly=*/true);
  EXPECT_EQ(a.flags(pool[0]), GTF_permit_access | GTF_readonly);
  MapOp op = map_op(kA, pool[0], true);
  mapper->map(std::span<MapOp>(&op, 1));
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_EQ(op.addr[0], std::byte{0x5A});
  EXPECT_FALSE(a.gt->end_access_ref(pool[0])) << "mapped: in use, the page must not be reused";
  UnmapOp un = unmap_op(op.handle);
  mapper->unmap(std::span<UnmapOp>(&un, 1));
  EXPECT_TRUE(a.gt->end_access_ref(pool[0]));
  EXPECT_EQ(a.flags(pool[0]), 0);
  // Ended, the entry refuses the grantee; the reference is still reserved (not back in the free list).
  op = map_op(kA, pool[0], true);
  mapper->map(std::span<MapOp>(&op, 1));
  EXPECT_NE(op.status, GntSt::okay);
  EXPECT_EQ(a.gt->free_count(), free0 - 8);

  a.gt->unreserve(pool);
  EXPECT_EQ(a.gt->free_count(), free0);
  a.gt->unreserve(pool);  // twice: ignored, nothing freed twice
  EXPECT_EQ(a.gt->free_count(), free0);
  std::vector<GrantRef> too_many;
  EXPECT_EQ(a.gt->reserve(free0 + 1, too_many).error().code, ENOSPC);
  EXPECT_TRUE(too_many.empty());
}

}  // namespace
}  // namespace pvnet::test
