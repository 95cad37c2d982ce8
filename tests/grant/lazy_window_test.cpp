// Lazy windows, both fault handlers: a touched slot is mapped and counted, an untouched one costs nothing, a
// bad grant gives a scratch page and a status instead of a crash, release unmaps in one batch.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "grant-sim/sim/lazy_window_uffd.hpp"
#include "tests/grant/grant_fixture.hpp"

namespace pvnet::test {
namespace {

class LazyTest : public GrantTest, public ::testing::WithParamInterface<sim::LazyHandler> {
 protected:
  void SetUp() override {
    GrantTest::SetUp();
    if (GetParam() == sim::LazyHandler::uffd && !sim::uffd_lazy_supported())
      GTEST_SKIP() << "userfaultfd MINOR/SIGBUS unavailable";
    win = mapper->make_lazy_window(8, GetParam());
    ASSERT_NE(win, nullptr);
  }
  void TearDown() override { win.reset(); }
  uint8_t read(const std::byte* p, size_t i) { return static_cast<uint8_t>(reinterpret_cast<const volatile std::byte*>(p)[i]); }

  std::unique_ptr<LazyWindow> win;
};

TEST_P(LazyTest, TouchMapsTheGrantAndReleaseUnmapsIt) {
  const GrantRef ref = a.grant_page(kDom0, 3, true, 44);
  mark();
  std::byte* p = win->assign(2, kA, ref, true);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(win->mapped(2));
  EXPECT_FALSE(a.gt->in_use(ref));  // assign checks nothing and pins nothing
  EXPECT_EQ(delta(), GrantCounters{});
  EXPECT_EQ(read(p, 10), pattern(44, 10));  // the fault
  EXPECT_TRUE(page_has_pattern(p, 44));     // no further faults for the rest of the page
  EXPECT_TRUE(win->mapped(2));
  EXPECT_EQ(win->status(2), GntSt::okay);
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading);
  EXPECT_FALSE(a.gt->end_access(ref).ok());
  GrantCounters d = delta();
  EXPECT_EQ(d.faults, 1u);
  EXPECT_EQ(d.pages_mapped, 1u);
  EXPECT_EQ(d.fault_errors, 0u);
  const size_t slots[] = {2};
  mark();
  win->release(slots);
  d = delta();
  EXPECT_EQ(d.pages_unmapped, 1u);
  EXPECT_EQ(d.tlb_shootdowns, 1u);
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_FALSE(win->mapped(2));
  EXPECT_FALSE(a.gt->in_use(ref));
  EXPECT_TRUE(a.gt->end_access(ref).ok());
}

TEST_P(LazyTest, UntouchedSlotsCostNothing) {
  std::vector<GrantRef> refs;
  for (size_t i = 0; i < 8; ++i) refs.push_back(a.grant_page(kDom0, i, true, static_cast<uint8_t>(i)));
  mark();
  for (int round = 0; round < 100; ++round) {
    for (size_t i = 0; i < 8; ++i) win->assign(i, kA, refs[i], true);
    const size_t all[] = {0, 1, 2, 3, 4, 5, 6, 7};
    win->release(all);
  }
  EXPECT_EQ(delta(), GrantCounters{});
  for (GrantRef r : refs) EXPECT_FALSE(a.gt->in_use(r));
}

TEST_P(LazyTest, WritableSlotWritesIntoTheGuest) {
  const GrantRef ref = a.grant_page(kDom0, 5, false, 0);
  std::byte* p = win->assign(0, kA, ref, false);
  p[123] = std::byte{0xab};
  EXPECT_EQ(a.mem->page(Pfn{5})[123], std::byte{0xab});
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
  const size_t s[] = {0};
  win->release(s);
  EXPECT_EQ(a.flags(ref), GTF_permit_access);
}

TEST_P(LazyTest, BadGrantsGetAScratchPageAndAStatus) {
  const GrantRef ro = a.grant_page(kDom0, 1, true, 1);
  const GrantRef theirs = a.grant_page(kB, 2, true, 2);
  auto badframe = a.gt->grant_access(kDom0, Pfn{1000}, true);
  ASSERT_TRUE(badframe.ok());
  struct Case {
    DomId dom;
    GrantRef ref;
    bool readonly;
    GntSt want;
  } cases[] = {
      {kA, ro, false, GntSt::permission_denied},     // write access to a readonly grant
      {kA, theirs, true, GntSt::permission_denied},  // granted to someone else
      {kA, GrantRef{40}, true, GntSt::permission_denied},  // not granted at all
      {kA, GrantRef{4096}, true, GntSt::bad_gntref},
      {DomId{66}, ro, true, GntSt::bad_domain},
      {kA, *badframe, true, GntSt::bad_page},
  };
  mark();
  size_t slot = 0;
  for (const Case& c : cases) {
    std::byte* p = win->assign(slot, c.dom, c.ref, c.readonly);
    EXPECT_EQ(read(p, 0), 0) << slot;
    EXPECT_EQ(read(p, 4095), 0) << slot;
    p[7] = std::byte{1};  // writes go to the scratch page, never to the guest
    EXPECT_EQ(win->status(slot), c.want) << slot;
    EXPECT_FALSE(win->mapped(slot));
    ++slot;
  }
  EXPECT_TRUE(page_has_pattern(a.mem->page(Pfn{1}).data(), 1));
  GrantCounters d = delta();
  EXPECT_EQ(d.faults, 6u);
  EXPECT_EQ(d.fault_errors, 6u);
  EXPECT_EQ(d.failed_ops, 6u);
  EXPECT_EQ(d.pages_mapped, 0u);
  EXPECT_FALSE(a.gt->in_use(ro));
  EXPECT_FALSE(a.gt->in_use(*badframe));
  const size_t all[] = {0, 1, 2, 3, 4, 5};
  win->release(all);
  EXPECT_EQ(win->status(0), GntSt::okay);
  // The slot is reusable, and the scratch page's junk is gone.
  std::byte* p = win->assign(0, kA, ro, true);
  EXPECT_TRUE(page_has_pattern(p, 1));
  EXPECT_EQ(win->status(0), GntSt::okay);
}

TEST_P(LazyTest, ReleaseIsOneBatchAndSlotsAreReusable) {
  std::vector<GrantRef> refs;
  for (size_t i = 0; i < 8; ++i) refs.push_back(b.grant_page(kDom0, i, true, static_cast<uint8_t>(10 + i)));
  for (size_t i = 0; i < 8; ++i) win->assign(i, kB, refs[i], true);
  mark();
  for (size_t i : {0, 1, 2, 5, 7}) EXPECT_EQ(read(win->assign(i, kB, refs[i], true), 1), pattern(10 + i, 1));
  EXPECT_EQ(delta().faults, 5u);
  mark();
  const size_t all[] = {0, 1, 2, 3, 4, 5, 6, 7};
  win->release(all);
  GrantCounters d = delta();
  EXPECT_EQ(d.hypercalls, 1u);
  EXPECT_EQ(d.tlb_shootdowns, 1u);
  EXPECT_EQ(d.pages_unmapped, 5u);
  // Slot 3 now shows another grant.
  std::byte* p = win->assign(3, kB, refs[6], true);
  EXPECT_TRUE(page_has_pattern(p, 16));
  // Reassigning a touched slot releases it first.
  p = win->assign(3, kB, refs[4], true);
  EXPECT_TRUE(page_has_pattern(p, 14));
  EXPECT_FALSE(b.gt->in_use(refs[6]));
}

TEST_P(LazyTest, GuestRewritingTheEntryAfterAssignIsCaughtAtFault) {
  const GrantRef ref = a.grant_page(kDom0, 2, true, 2);
  a.grant_page(kDom0, 9, true, 9);
  std::byte* p = win->assign(1, kA, ref, true);
  __atomic_store_n(&a.entry(ref).frame, 9u, __ATOMIC_RELEASE);  // before the first touch: legitimate
  EXPECT_TRUE(page_has_pattern(p, 9));
  const size_t one[] = {1};
  win->release(one);
  ASSERT_TRUE(a.gt->end_access(ref).ok());
  std::byte* q = win->assign(2, kA, ref, true);  // revoked before the touch: the fault must refuse it
  EXPECT_EQ(read(q, 0), 0);
  EXPECT_EQ(win->status(2), GntSt::permission_denied);
}

TEST_P(LazyTest, DestroyingTheWindowUnpins) {
  const GrantRef ref = a.grant_page(kDom0, 2, true, 2);
  EXPECT_EQ(read(win->assign(0, kA, ref, true), 0), pattern(2, 0));
  EXPECT_TRUE(a.gt->in_use(ref));
  win.reset();
  EXPECT_FALSE(a.gt->in_use(ref));
}

// Several threads touching the same slots at once: each slot faults (and is mapped and pinned) exactly once.
TEST_P(LazyTest, ConcurrentTouchesOfOneSlotMapItOnce) {
  std::vector<GrantRef> refs;
  std::vector<std::byte*> addrs;
  for (size_t i = 0; i < 8; ++i) refs.push_back(a.grant_page(kDom0, i, true, static_cast<uint8_t>(50 + i)));
  for (int round = 0; round < 20; ++round) {
    addrs.clear();
    for (size_t i = 0; i < 8; ++i) addrs.push_back(win->assign(i, kA, refs[i], true));
    mark();
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        for (size_t k = 0; k < 8; ++k) {
          const size_t i = (k + static_cast<size_t>(t)) % 8;
          if (read(addrs[i], 100) != pattern(static_cast<uint8_t>(50 + i), 100)) ++bad;
        }
      });
    for (auto& th : ts) th.join();
    EXPECT_EQ(bad.load(), 0);
    const GrantCounters d = delta();
    EXPECT_EQ(d.faults, 8u);
    EXPECT_EQ(d.pages_mapped, 8u);
    const size_t all[] = {0, 1, 2, 3, 4, 5, 6, 7};
    win->release(all);
    for (GrantRef r : refs) ASSERT_FALSE(a.gt->in_use(r));
  }
}

// A guest whose RAM is an unsealed memfd (built through the lower-level API: the vhost-user device and the
// hypervisor's adopt path refuse such memory) cuts it under the window. A touch of a slot already mapped on a
// page past the cut (SIGBUS: its backing is gone), or of one never mapped, must complete on a zero page with a
// bad status, not retry the access for ever; the pin goes with the mapping; pages below the cut still work.
TEST_P(LazyTest, ShrunkBackingGivesAScratchPageAndAStatusNotALivelock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr DomId kC{3};
  constexpr uint64_t kPages = 16;
  UniqueFd ram{::memfd_create("unsealed-guest-ram", MFD_CLOEXEC)};
  ASSERT_TRUE(ram);
  ASSERT_EQ(::ftruncate(ram.get(), kPages * kPageSize), 0);
  auto shm = create_domain_shm(kC, 0, 64);
  ASSERT_TRUE(shm.ok());
  shm->regions.push_back(MemRegion{dup_fd(ram), Pfn{0}, kPages, 0});
  auto v = SimDomainView::open(std::move(*shm));
  ASSERT_TRUE(v.ok()) << v.error().reason;
  Guest c = Guest::of(*v);
  dir.add(c.view);
  const GrantRef below = c.grant_page(kDom0, 1, true, 3);
  const GrantRef mapped_ro = c.grant_page(kDom0, 5, true, 5);
  const GrantRef mapped_rw = c.grant_page(kDom0, 6, false, 6);
  const GrantRef never = c.grant_page(kDom0, 9, true, 9);
  std::byte* p0 = win->assign(0, kC, below, true);
  std::byte* p1 = win->assign(1, kC, mapped_ro, true);
  std::byte* p2 = win->assign(2, kC, mapped_rw, false);
  std::byte* p3 = win->assign(3, kC, never, true);
  ASSERT_EQ(read(p1, 0), pattern(5, 0));
  p2[0] = std::byte{0x5a};
  ASSERT_TRUE(win->mapped(1) && win->mapped(2));
  mark();
  // In a child bounded by an alarm: the old handler saw the slot mapped and retried for ever.
  auto cut_and_touch = [&] {
    ::alarm(10);
    if (::ftruncate(ram.get(), 2 * kPageSize) != 0) ::_exit(2);  // frames 2.. are gone
    EXPECT_EQ(read(p1, 100), 0);
    EXPECT_EQ(win->status(1), GntSt::bad_page);
    EXPECT_FALSE(win->mapped(1));
    p2[1] = std::byte{1};  // a write lands on the scratch page
    EXPECT_EQ(read(p2, 1), 1);
    EXPECT_EQ(win->status(2), GntSt::bad_page);
    EXPECT_EQ(read(p3, 4095), 0);
    EXPECT_EQ(win->status(3), GntSt::bad_page);
    EXPECT_EQ(read(p0, 7), pattern(3, 7));
    EXPECT_EQ(win->status(0), GntSt::okay);
    EXPECT_FALSE(c.gt->in_use(mapped_ro));  // the pins went with the mappings
    EXPECT_FALSE(c.gt->in_use(mapped_rw));
    EXPECT_FALSE(c.gt->in_use(never));
    EXPECT_EQ(delta().fault_errors, 3u);
    const size_t all[] = {0, 1, 2, 3};
    win->release(all);
    // Every mapping is gone: the two made before the cut, any the never-mapped slot got (SIGSEGV flavour: its
    // fault maps the frame, the retried access raises SIGBUS; uffd: the install fails) and slot 0's.
    EXPECT_EQ(delta().pages_unmapped, delta().pages_mapped + 2);
    EXPECT_EQ(mapper->counters().pages_mapped, mapper->counters().pages_unmapped);
    EXPECT_EQ(win->status(1), GntSt::okay);
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  };
  EXPECT_EXIT(cut_and_touch(), ::testing::ExitedWithCode(0), "");
}

TEST_P(LazyTest, FaultsOutsideAnyWindowStillCrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        void* guard = ::mmap(nullptr, kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *static_cast<volatile int*>(guard) = 1;
      },
      "");
}

// A readonly grant stays readonly when mapped lazily: a write after the fault is a real violation.
TEST_P(LazyTest, WriteToAReadonlySlotCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const GrantRef ref = a.grant_page(kDom0, 1, true, 1);
  std::byte* p = win->assign(0, kA, ref, true);
  EXPECT_EQ(read(p, 0), pattern(1, 0));
  EXPECT_DEATH({ reinterpret_cast<volatile std::byte*>(p)[0] = std::byte{1}; }, "");
  EXPECT_EQ(a.mem->page(Pfn{1})[0], std::byte(pattern(1, 0)));
}

INSTANTIATE_TEST_SUITE_P(Handlers, LazyTest, ::testing::Values(sim::LazyHandler::segv, sim::LazyHandler::uffd),
                         [](const auto& p) { return std::string(sim::to_string(p.param)); });

}  // namespace
}  // namespace pvnet::test
