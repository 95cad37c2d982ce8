// The grantee side: GNTTABOP_map_grant_ref / unmap_grant_ref / copy rules, batches, counters.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <thread>
#include <vector>

#include "tests/grant/grant_fixture.hpp"

namespace pvnet::test {
namespace {

MapOp map_one(GrantMapper& m, DomId dom, GrantRef ref, bool readonly) {
  MapOp op = map_op(dom, ref, readonly);
  m.map({&op, 1});
  return op;
}

GntSt unmap_one(GrantMapper& m, MapHandle h) {
  UnmapOp u = unmap_op(h);
  m.unmap({&u, 1});
  return u.status;
}

TEST_F(GrantTest, ReadonlyMapSeesGuestDataAndSetsReadingOnly) {
  const GrantRef ref = a.grant_page(kDom0, 2, true, 9);
  mark();
  MapOp op = map_one(*mapper, kA, ref, true);
  ASSERT_EQ(op.status, GntSt::okay);
  ASSERT_TRUE(op.handle.valid());
  EXPECT_TRUE(page_has_pattern(op.addr, 9));
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading);
  EXPECT_TRUE(a.gt->in_use(ref));
  // It is the same page, not a copy: a later guest write shows through.
  a.mem->page(Pfn{2})[17] = std::byte{0xee};
  EXPECT_EQ(op.addr[17], std::byte{0xee});
  EXPECT_EQ(unmap_one(*mapper, op.handle), GntSt::okay);
  EXPECT_FALSE(a.gt->in_use(ref));
  const GrantCounters d = delta();
  EXPECT_EQ(d.hypercalls, 2u);
  EXPECT_EQ(d.map_ops, 1u);
  EXPECT_EQ(d.pages_mapped, 1u);
  EXPECT_EQ(d.pages_unmapped, 1u);
  EXPECT_EQ(d.tlb_shootdowns, 1u);
  EXPECT_EQ(d.failed_ops, 0u);
}

TEST_F(GrantTest, WritableMapWritesIntoGuestAndSetsWriting) {
  const GrantRef ref = a.grant_page(kDom0, 4, false, 0);
  MapOp op = map_one(*mapper, kA, ref, false);
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
  op.addr[100] = std::byte{0x5a};
  EXPECT_EQ(a.mem->page(Pfn{4})[100], std::byte{0x5a});
  EXPECT_EQ(unmap_one(*mapper, op.handle), GntSt::okay);
  EXPECT_EQ(a.flags(ref), GTF_permit_access);
}

TEST_F(GrantTest, ReadonlyGrantRefusesWritableMapButAllowsReadonly) {
  const GrantRef ref = a.grant_page(kDom0, 1, true, 0);
  mark();
  MapOp op = map_one(*mapper, kA, ref, false);
  EXPECT_EQ(op.status, GntSt::permission_denied);
  EXPECT_FALSE(op.handle.valid());
  EXPECT_EQ(op.addr, nullptr);
  EXPECT_FALSE(a.gt->in_use(ref));
  EXPECT_EQ(delta().failed_ops, 1u);
  EXPECT_EQ(delta().pages_mapped, 0u);
  MapOp ro = map_one(*mapper, kA, ref, true);
  EXPECT_EQ(ro.status, GntSt::okay);
  // Already pinned readonly: a writer still may not upgrade a readonly grant.
  EXPECT_EQ(map_one(*mapper, kA, ref, false).status, GntSt::permission_denied);
  EXPECT_EQ(unmap_one(*mapper, ro.handle), GntSt::okay);
}

TEST_F(GrantTest, GrantForAnotherDomainIsDenied) {
  const GrantRef ref = a.grant_page(kB, 1, false, 0);  // granted to domain 2, we are dom0
  EXPECT_EQ(map_one(*mapper, kA, ref, true).status, GntSt::permission_denied);
  // ...but domain 2's own mapper may.
  sim::SimMapper mb(kB, dir);
  MapOp op = map_one(mb, kA, ref, true);
  EXPECT_EQ(op.status, GntSt::okay);
  // While domain 2 holds it pinned, dom0 still may not.
  EXPECT_EQ(map_one(*mapper, kA, ref, true).status, GntSt::permission_denied);
  EXPECT_EQ(unmap_one(mb, op.handle), GntSt::okay);
}

TEST_F(GrantTest, UngrantedOutOfRangeUnknownDomainAndBadFrame) {
  EXPECT_EQ(map_one(*mapper, kA, GrantRef{30}, true).status, GntSt::permission_denied);  // never granted
  EXPECT_EQ(map_one(*mapper, kA, GrantRef{3}, true).status, GntSt::permission_denied);   // reserved, empty
  EXPECT_EQ(map_one(*mapper, kA, GrantRef{64}, true).status, GntSt::bad_gntref);
  EXPECT_EQ(map_one(*mapper, kA, GrantRef{UINT32_MAX}, true).status, GntSt::bad_gntref);
  EXPECT_EQ(map_one(*mapper, DomId{99}, GrantRef{8}, true).status, GntSt::bad_domain);
  auto bad = a.gt->grant_access(kDom0, Pfn{16}, true);  // one past the domain's last frame
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(map_one(*mapper, kA, *bad, true).status, GntSt::bad_page);
  EXPECT_FALSE(a.gt->in_use(*bad));  // the failed map left no GTF_reading behind
  EXPECT_TRUE(a.gt->end_access(*bad).ok());
  EXPECT_EQ(mapper->counters().failed_ops, 6u);
  EXPECT_EQ(mapper->counters().pages_mapped, 0u);
}

TEST_F(GrantTest, EndAccessFailsWhileMappedThenSucceeds) {
  const GrantRef ref = a.grant_page(kDom0, 6, false, 0);
  MapOp op = map_one(*mapper, kA, ref, false);
  ASSERT_EQ(op.status, GntSt::okay);
  auto r = a.gt->end_access(ref);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GNTST_eagain);
  EXPECT_EQ(a.flags(ref) & GTF_permit_access, GTF_permit_access);  // untouched by the failed attempt
  EXPECT_EQ(unmap_one(*mapper, op.handle), GntSt::okay);
  EXPECT_TRUE(a.gt->end_access(ref).ok());
  // The old reference is dead: mapping it now is refused.
  EXPECT_EQ(map_one(*mapper, kA, ref, true).status, GntSt::permission_denied);
  // Reused for another page: the mapper sees the new page.
  const GrantRef reused = a.grant_page(kDom0, 7, true, 77);
  EXPECT_EQ(reused, ref);
  MapOp op2 = map_one(*mapper, kA, reused, true);
  ASSERT_EQ(op2.status, GntSt::okay);
  EXPECT_TRUE(page_has_pattern(op2.addr, 77));
  EXPECT_EQ(unmap_one(*mapper, op2.handle), GntSt::okay);
}

TEST_F(GrantTest, PinsCountReadersAndWritersSeparately) {
  const GrantRef ref = a.grant_page(kDom0, 8, false, 0);
  MapOp r1 = map_one(*mapper, kA, ref, true);
  MapOp w1 = map_one(*mapper, kA, ref, false);
  MapOp w2 = map_one(*mapper, kA, ref, false);
  ASSERT_EQ(r1.status, GntSt::okay);
  ASSERT_EQ(w1.status, GntSt::okay);
  ASSERT_EQ(w2.status, GntSt::okay);
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
  EXPECT_EQ(unmap_one(*mapper, w1.handle), GntSt::okay);
  EXPECT_EQ(a.flags(ref) & GTF_writing, GTF_writing);  // w2 still writes
  EXPECT_EQ(unmap_one(*mapper, w2.handle), GntSt::okay);
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading);
  EXPECT_FALSE(a.gt->end_access(ref).ok());
  EXPECT_EQ(unmap_one(*mapper, r1.handle), GntSt::okay);
  EXPECT_FALSE(a.gt->in_use(ref));
}

TEST_F(GrantTest, PinnedEntryKeepsItsFrameWhateverTheGuestWrites) {
  const GrantRef ref = a.grant_page(kDom0, 2, true, 5);
  a.grant_page(kDom0, 3, true, 6);
  MapOp m1 = map_one(*mapper, kA, ref, true);
  ASSERT_EQ(m1.status, GntSt::okay);
  __atomic_store_n(&a.entry(ref).frame, 3u, __ATOMIC_RELEASE);  // a hostile guest rewrites a live entry
  MapOp m2 = map_one(*mapper, kA, ref, true);
  ASSERT_EQ(m2.status, GntSt::okay);
  EXPECT_TRUE(page_has_pattern(m2.addr, 5));  // Xen's act->frame: the pinned frame, not the new one
  unmap_one(*mapper, m1.handle);
  unmap_one(*mapper, m2.handle);
}

TEST_F(GrantTest, UnmapOfUnknownOrStaleHandleIsBadHandle) {
  mark();
  EXPECT_EQ(unmap_one(*mapper, MapHandle{}), GntSt::bad_handle);
  EXPECT_EQ(unmap_one(*mapper, MapHandle{12345}), GntSt::bad_handle);
  const GrantRef ref = a.grant_page(kDom0, 1, true, 0);
  MapOp op = map_one(*mapper, kA, ref, true);
  EXPECT_EQ(unmap_one(*mapper, op.handle), GntSt::okay);
  EXPECT_EQ(unmap_one(*mapper, op.handle), GntSt::bad_handle);
  const GrantCounters d = delta();
  EXPECT_EQ(d.failed_ops, 3u);
  EXPECT_EQ(d.tlb_shootdowns, 1u);  // batches that unmapped nothing flush nothing
}

TEST_F(GrantTest, BatchedMapAndUnmapWithMixedOps) {
  const GrantRef g1 = a.grant_page(kDom0, 1, true, 1);
  const GrantRef g2 = b.grant_page(kDom0, 2, false, 2);
  const GrantRef ro = a.grant_page(kDom0, 3, true, 3);
  mark();
  std::vector<MapOp> ops = {
      map_op(kA, g1, true), map_op(kA, ro, false), map_op(kB, g2, false), map_op(DomId{55}, g1, true), map_op(kA, GrantRef{500}, true),
  };
  mapper->map(ops);
  EXPECT_EQ(ops[0].status, GntSt::okay);
  EXPECT_EQ(ops[1].status, GntSt::permission_denied);
  EXPECT_EQ(ops[2].status, GntSt::okay);
  EXPECT_EQ(ops[3].status, GntSt::bad_domain);
  EXPECT_EQ(ops[4].status, GntSt::bad_gntref);
  EXPECT_TRUE(page_has_pattern(ops[0].addr, 1));
  EXPECT_TRUE(page_has_pattern(ops[2].addr, 2));
  GrantCounters d = delta();
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_EQ(d.map_ops, 5u);
  EXPECT_EQ(d.pages_mapped, 2u);
  EXPECT_EQ(d.failed_ops, 3u);
  EXPECT_EQ(mapper->live_mappings(), 2u);
  std::vector<UnmapOp> un = {unmap_op(ops[0].handle), unmap_op(ops[1].handle), unmap_op(ops[2].handle)};
  mark();
  mapper->unmap(un);
  EXPECT_EQ(un[0].status, GntSt::okay);
  EXPECT_EQ(un[1].status, GntSt::bad_handle);
  EXPECT_EQ(un[2].status, GntSt::okay);
  d = delta();
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_EQ(d.pages_unmapped, 2u);
  EXPECT_EQ(d.tlb_shootdowns, 1u);
  EXPECT_EQ(d.failed_ops, 1u);
  EXPECT_FALSE(a.gt->in_use(g1));
  EXPECT_FALSE(b.gt->in_use(g2));
}

TEST_F(GrantTest, DestroyingTheMapperUnmapsWhatIsLeft) {
  const GrantRef ref = a.grant_page(kDom0, 1, false, 0);
  auto m = make_sim_mapper(kDom0, dir);
  MapOp op = map_op(kA, ref, false);
  m->map({&op, 1});
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_TRUE(a.gt->in_use(ref));
  m.reset();
  EXPECT_FALSE(a.gt->in_use(ref));
  EXPECT_TRUE(a.gt->end_access(ref).ok());
}

// ---- grant copy ----

TEST_F(GrantTest, CopyGrefToLocalAndLocalToGref) {
  const GrantRef src = a.grant_page(kDom0, 1, true, 11);
  const GrantRef dst = a.grant_page(kDom0, 2, false, 0);
  std::vector<std::byte> buf(kPageSize), out(200);
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte(i);
  mark();
  std::vector<CopyOp> ops = {
      copy_op(CopySide::gref(kA, src, 100), CopySide::local(buf.data()), 1514),
      copy_op(CopySide::local(out.data()), CopySide::gref(kA, dst, 3000), 200),
  };
  mapper->copy(ops);
  EXPECT_EQ(ops[0].status, GntSt::okay);
  EXPECT_EQ(ops[1].status, GntSt::okay);
  for (size_t i = 0; i < 1514; ++i) ASSERT_EQ(buf[i], std::byte(pattern(11, 100 + i))) << i;
  EXPECT_EQ(std::memcmp(a.mem->page(Pfn{2}).data() + 3000, out.data(), 200), 0);
  const GrantCounters d = delta();
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_EQ(d.copy_ops, 2u);
  EXPECT_EQ(d.grant_copy_bytes, 1714u);
  EXPECT_EQ(d.failed_ops, 0u);
  EXPECT_EQ(d.pages_mapped, 0u);  // a copy maps nothing into dom0
  EXPECT_FALSE(a.gt->in_use(src));
  EXPECT_FALSE(a.gt->in_use(dst));
}

// How a backend forwards a packet from guest A to guest B without touching it.
TEST_F(GrantTest, CopyGrefToGrefBetweenTwoOtherDomains) {
  const GrantRef src = a.grant_page(kDom0, 5, true, 33);
  const GrantRef dst = b.grant_page(kDom0, 9, false, 0);
  CopyOp op = copy_op(CopySide::gref(kA, src, 0), CopySide::gref(kB, dst, 0), static_cast<uint16_t>(kPageSize));
  mapper->copy({&op, 1});
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{9}).data(), 33));
  EXPECT_FALSE(a.gt->in_use(src));
  EXPECT_FALSE(b.gt->in_use(dst));
}

TEST_F(GrantTest, CopyRulesEachFailureHasItsStatus) {
  const GrantRef src = a.grant_page(kDom0, 1, true, 1);
  const GrantRef ro_dst = b.grant_page(kDom0, 2, true, 2);
  const GrantRef other = b.grant_page(kA, 3, false, 3);
  const GrantRef dst = b.grant_page(kDom0, 4, false, 4);
  std::vector<std::byte> buf(kPageSize);
  mark();
  std::vector<CopyOp> ops = {
      copy_op(CopySide::gref(kA, src, 4000), CopySide::local(buf.data()), 97),   // 4000 + 97 > 4096
      copy_op(CopySide::gref(kA, src, 0), CopySide::gref(kB, ro_dst, 0), 64),    // write into a readonly grant
      copy_op(CopySide::gref(kA, src, 0), CopySide::gref(kB, other, 0), 64),     // granted to domain 1, not us
      copy_op(CopySide::gref(DomId{77}, src, 0), CopySide::local(buf.data()), 64),
      copy_op(CopySide::gref(kA, GrantRef{9999}, 0), CopySide::local(buf.data()), 64),
      copy_op(CopySide::gref(kA, src, 4000), CopySide::gref(kB, dst, 96), 96),   // the good one in the middle
      copy_op(CopySide::local(nullptr), CopySide::gref(kB, dst, 0), 10),
  };
  mapper->copy(ops);
  EXPECT_EQ(ops[0].status, GntSt::bad_copy_arg);
  EXPECT_EQ(ops[1].status, GntSt::permission_denied);
  EXPECT_EQ(ops[2].status, GntSt::permission_denied);
  EXPECT_EQ(ops[3].status, GntSt::bad_domain);
  EXPECT_EQ(ops[4].status, GntSt::bad_gntref);
  EXPECT_EQ(ops[5].status, GntSt::okay);
  EXPECT_EQ(ops[6].status, GntSt::bad_virt_addr);
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{4}).data() + 96 - 4000, 1, 4000, 96));
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{4}).data(), 4, 0, 96));  // bytes before the window untouched
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{2}).data(), 2));         // readonly grant untouched
  const GrantCounters d = delta();
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_EQ(d.copy_ops, 7u);
  EXPECT_EQ(d.failed_ops, 6u);
  EXPECT_EQ(d.grant_copy_bytes, 96u);
  for (GrantRef r : {src}) EXPECT_FALSE(a.gt->in_use(r));
  for (GrantRef r : {ro_dst, other, dst}) EXPECT_FALSE(b.gt->in_use(r));
}

TEST_F(GrantTest, LargeCopyBatchBeyondOneIovBlock) {
  const GrantRef src = a.grant_page(kDom0, 1, true, 3);
  std::vector<std::byte> buf(3000 * 16);
  std::vector<CopyOp> ops;
  for (size_t i = 0; i < 3000; ++i)
    ops.push_back(copy_op(CopySide::gref(kA, src, static_cast<uint16_t>(i % 256)), CopySide::local(&buf[i * 16]), 16));
  mark();
  mapper->copy(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSERT_EQ(ops[i].status, GntSt::okay);
    ASSERT_EQ(buf[i * 16 + 5], std::byte(pattern(3, i % 256 + 5)));
  }
  EXPECT_EQ(delta().hypercalls, 1u);
  EXPECT_EQ(delta().grant_copy_bytes, 3000u * 16);
}

// Freeze a copy half-way (its local destination is a userfaultfd page nobody has filled yet) and look at the
// grant from the guest's side while the hypervisor is in the middle of GNTTABOP_copy.
TEST_F(GrantTest, EndAccessFailsWhileCopyingThenSucceeds) {
  UniqueFd uffd{static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC))};
  if (!uffd) GTEST_SKIP() << "userfaultfd for kernel-mode faults is not available";
  uffdio_api api{UFFD_API, 0, 0};
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_API, &api), 0);
  void* dst = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(dst, MAP_FAILED);
  uffdio_register reg{};
  reg.range = {reinterpret_cast<uint64_t>(dst), kPageSize};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_REGISTER, &reg), 0);

  const GrantRef src = a.grant_page(kDom0, 1, true, 21);
  std::thread copier([&] {
    CopyOp op = copy_op(CopySide::gref(kA, src, 0), CopySide::local(static_cast<std::byte*>(dst)), 512);
    mapper->copy({&op, 1});
    EXPECT_EQ(op.status, GntSt::okay);
  });
  pollfd pfd{uffd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  uffd_msg msg{};
  ASSERT_EQ(::read(uffd.get(), &msg, sizeof msg), static_cast<ssize_t>(sizeof msg));
  EXPECT_EQ(msg.event, UFFD_EVENT_PAGEFAULT);
  // The copy is in flight: the source is marked, and the guest cannot take it back.
  EXPECT_EQ(a.flags(src) & (GTF_reading | GTF_writing), GTF_reading);
  auto r = a.gt->end_access(src);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GNTST_eagain);
  uffdio_zeropage zp{};
  zp.range = {reinterpret_cast<uint64_t>(dst), kPageSize};
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_ZEROPAGE, &zp), 0);
  copier.join();
  EXPECT_TRUE(page_has_pattern(static_cast<std::byte*>(dst), 21, 0, 512));
  EXPECT_TRUE(a.gt->end_access(src).ok());
  ::munmap(dst, kPageSize);
}

}  // namespace
}  // namespace pvnet::test
