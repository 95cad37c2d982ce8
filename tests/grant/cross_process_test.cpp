// The simulator across processes: a forked child plays dom0. It re-opens the guests' domains from the fds it
// inherited (as a backend process would from fds received over a socket) and maps, copies and lazily faults
// on grants the parent made; the parent sees the hypervisor's marks on its own grant table meanwhile.
#include <sys/wait.h>
#include <unistd.h>

#include "grant-sim/sim/lazy_window_uffd.hpp"
#include "tests/grant/grant_fixture.hpp"

namespace pvnet::test {
namespace {

// A one-byte-message pipe pair for lock-step parent/child checks.
class Channel {
 public:
  Channel() {
    EXPECT_EQ(::pipe(to_child_), 0);
    EXPECT_EQ(::pipe(to_parent_), 0);
  }
  ~Channel() {
    for (int fd : {to_child_[0], to_child_[1], to_parent_[0], to_parent_[1]}) ::close(fd);
  }
  void tell_child(char c) { (void)!::write(to_child_[1], &c, 1); }
  void tell_parent(char c) { (void)!::write(to_parent_[1], &c, 1); }
  char from_child() { return recv(to_parent_[0]); }
  char from_parent() { return recv(to_child_[0]); }

 private:
  static char recv(int fd) {
    char c = 0;
    return ::read(fd, &c, 1) == 1 ? c : '!';
  }
  int to_child_[2];
  int to_parent_[2];
};

// Runs `body` in a child; its return value (number of failed checks) becomes the exit status.
template <class F>
pid_t spawn(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// In the child: dom0's own directory, built from duplicated fds only (nothing of the parent's mappings used).
struct ChildDom0 {
  TestDirectory dir;
  std::unique_ptr<sim::SimMapper> mapper;
  explicit ChildDom0(std::initializer_list<const DomainShm*> shms) {
    for (const DomainShm* s : shms) {
      auto v = SimDomainView::open(dup_shm(*s));
      if (v) dir.add(*v);
    }
    mapper = std::make_unique<sim::SimMapper>(kDom0, dir);
  }
};

#define CHILD_CHECK(cond) \
  do {                    \
    if (!(cond)) ++failures; \
  } while (0)

TEST_F(GrantTest, ChildMapsParentSeesReadingAndCannotEndAccess) {
  const GrantRef ref = a.grant_page(kDom0, 4, false, 61);
  Channel ch;
  const DomainShm* shm = &a.view->shm();
  const pid_t pid = spawn([&] {
    int failures = 0;
    ChildDom0 d0({shm});
    MapOp op = map_op(kA, ref, false);
    d0.mapper->map({&op, 1});
    CHILD_CHECK(op.status == GntSt::okay);
    CHILD_CHECK(op.status == GntSt::okay && page_has_pattern(op.addr, 61));
    if (op.status == GntSt::okay) op.addr[9] = std::byte{0x99};
    ch.tell_parent('m');
    CHILD_CHECK(ch.from_parent() == 'u');
    UnmapOp u = unmap_op(op.handle);
    d0.mapper->unmap({&u, 1});
    CHILD_CHECK(u.status == GntSt::okay);
    ch.tell_parent('d');
    return failures;
  });
  ASSERT_EQ(ch.from_child(), 'm');
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
  EXPECT_EQ(a.mem->page(Pfn{4})[9], std::byte{0x99});  // the child's write landed in our page
  auto r = a.gt->end_access(ref);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, GNTST_eagain);
  // The active table is shared: the parent playing dom0 too sees the child's pin (a second pinner, same grantee).
  MapOp op = map_op(kA, ref, true);
  mapper->map({&op, 1});
  EXPECT_EQ(op.status, GntSt::okay);
  ch.tell_child('u');
  EXPECT_EQ(ch.from_child(), 'd');
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_EQ(a.flags(ref) & (GTF_reading | GTF_writing), GTF_reading);  // our readonly pin is what is left
  EXPECT_FALSE(a.gt->end_access(ref).ok());
  UnmapOp u = unmap_op(op.handle);
  mapper->unmap({&u, 1});
  EXPECT_TRUE(a.gt->end_access(ref).ok());
}

TEST_F(GrantTest, ChildCopiesGrefToGrefAndChecksRules) {
  const GrantRef src = a.grant_page(kDom0, 1, true, 71);
  const GrantRef dst = b.grant_page(kDom0, 2, false, 0);
  const GrantRef ro = b.grant_page(kDom0, 3, true, 0);
  const DomainShm* sa = &a.view->shm();
  const DomainShm* sb = &b.view->shm();
  const pid_t pid = spawn([&] {
    int failures = 0;
    ChildDom0 d0({sa, sb});
    std::vector<CopyOp> ops = {
        copy_op(CopySide::gref(kA, src, 0), CopySide::gref(kB, dst, 0), 1514),
        copy_op(CopySide::gref(kA, src, 0), CopySide::gref(kB, ro, 0), 64),
        copy_op(CopySide::gref(kA, src, 4090), CopySide::gref(kB, dst, 0), 64),
    };
    d0.mapper->copy(ops);
    CHILD_CHECK(ops[0].status == GntSt::okay);
    CHILD_CHECK(ops[1].status == GntSt::permission_denied);
    CHILD_CHECK(ops[2].status == GntSt::bad_copy_arg);
    const GrantCounters c = d0.mapper->counters();
    CHILD_CHECK(c.hypercalls == 1 && c.copy_ops == 3 && c.grant_copy_bytes == 1514 && c.failed_ops == 2);
    return failures;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{2}).data(), 71, 0, 1514));
  EXPECT_TRUE(page_has_pattern(b.mem->page(Pfn{2}).data(), 0, 1514, kPageSize - 1514));  // the rest untouched
  EXPECT_FALSE(a.gt->in_use(src));
  EXPECT_FALSE(b.gt->in_use(dst));
}

class CrossProcessLazy : public GrantTest, public ::testing::WithParamInterface<sim::LazyHandler> {};

TEST_P(CrossProcessLazy, ChildFaultsOnParentsGrants) {
  if (GetParam() == sim::LazyHandler::uffd && !sim::uffd_lazy_supported()) GTEST_SKIP();
  const GrantRef good = a.grant_page(kDom0, 6, true, 81);
  const GrantRef other = a.grant_page(kB, 7, true, 82);
  Channel ch;
  const DomainShm* sa = &a.view->shm();
  const sim::LazyHandler h = GetParam();
  const pid_t pid = spawn([&] {
    int failures = 0;
    ChildDom0 d0({sa});
    auto win = d0.mapper->make_lazy_window(4, h);
    CHILD_CHECK(win != nullptr);
    if (!win) return 100;
    std::byte* p = win->assign(0, kA, good, true);
    std::byte* q = win->assign(1, kA, other, true);
    win->assign(2, kA, good, true);  // assigned, never touched
    CHILD_CHECK(page_has_pattern(p, 81));
    CHILD_CHECK(q[100] == std::byte{0});
    CHILD_CHECK(win->status(1) == GntSt::permission_denied);
    const GrantCounters c = d0.mapper->counters();
    CHILD_CHECK(c.faults == 2 && c.pages_mapped == 1 && c.fault_errors == 1);
    ch.tell_parent('f');
    CHILD_CHECK(ch.from_parent() == 'r');
    const size_t all[] = {0, 1, 2};
    win->release(all);
    CHILD_CHECK(d0.mapper->counters().pages_unmapped == 1);
    ch.tell_parent('d');
    return failures;
  });
  ASSERT_EQ(ch.from_child(), 'f');
  EXPECT_EQ(a.flags(good) & (GTF_reading | GTF_writing), GTF_reading);
  EXPECT_FALSE(a.gt->in_use(other));
  ch.tell_child('r');
  EXPECT_EQ(ch.from_child(), 'd');
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_FALSE(a.gt->in_use(good));
  EXPECT_TRUE(a.gt->end_access(good).ok());
}

INSTANTIATE_TEST_SUITE_P(Handlers, CrossProcessLazy, ::testing::Values(sim::LazyHandler::segv, sim::LazyHandler::uffd),
                         [](const auto& p) { return std::string(sim::to_string(p.param)); });

// A dom0 process that dies holding a map leaves its pin behind, as a crashed backend leaves grants mapped in
// Xen until the domain is destroyed. Documented, not hidden: the guest sees the grant still in use.
TEST_F(GrantTest, ChildThatExitsWithoutUnmappingLeavesTheGrantPinned) {
  const GrantRef ref = a.grant_page(kDom0, 1, true, 0);
  const DomainShm* sa = &a.view->shm();
  const pid_t pid = spawn([&] {
    ChildDom0 d0({sa});
    MapOp op = map_op(kA, ref, true);
    d0.mapper->map({&op, 1});
    ::_exit(op.status == GntSt::okay ? 0 : 1);  // no destructors: the mapper never unmaps
    return 1;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_TRUE(a.gt->in_use(ref));
}

}  // namespace
}  // namespace pvnet::test
