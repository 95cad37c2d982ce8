// The Xen implementations, without Xen: what fails cleanly off Xen, and the pure logic (gntdev copy plans,
// the gntalloc pool's books, xenstore permissions, the conformance runner's verdicts).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "grant-sim/xen/xen_event_channel.hpp"
#include "grant-sim/xen/xen_grant_mapper.hpp"
#include "grant-sim/xen/xen_grant_table.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "grant-sim/xen/xen_store.hpp"
#include "tools/lab/xen_selftest.hpp"

namespace pvnet {
namespace {

// Points the Xen device directory at an empty folder for the test's duration.
class NoXenDevices {
 public:
  NoXenDevices() {
    char tmpl[] = "/tmp/pvnet-noxen-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::setenv("PVNET_XEN_DEV_DIR", dir_.c_str(), 1);
  }
  ~NoXenDevices() {
    ::unsetenv("PVNET_XEN_DEV_DIR");
    ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

TEST(XenOffXen, EveryPartRefusesWithTheDeviceItNeeds) {
  NoXenDevices none;
  auto p = XenPlatform::open(XenPlatformOptions{});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ENOENT);
  EXPECT_EQ(p.error().reason, "no " + none.dir() + "/gntdev: not running on Xen");
  auto m = XenGrantMapper::open(kDom0);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().reason.find("/gntdev: not running on Xen"), std::string::npos);
  auto e = open_xen_event_channel();
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().reason.find("/evtchn: not running on Xen"), std::string::npos);
  auto g = XenGntallocPool::create(DomId{1}, kDom0, 4, true);
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().reason.find("/gntalloc: not running on Xen"), std::string::npos);
  auto w = tools::make_xen_world();
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().reason.find("not running on Xen"), std::string::npos);
}

TEST(XenOffXen, DefaultDeviceDirectoryOnThisMachine) {
  struct stat st {};
  if (::stat("/dev/xen/gntdev", &st) == 0) GTEST_SKIP() << "this machine is a Xen domain";
  auto p = XenPlatform::open(XenPlatformOptions{});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().reason.rfind("no /dev/xen/gntdev: not running on Xen", 0), 0u) << p.error().reason;
}

std::string run_pvnet(const std::string& args, int* status) {
  const std::string cmd = std::string(PVNET_TEST_BINARY_DIR) + "/tools/pvnet " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (f && std::fgets(buf, sizeof buf, f)) out += buf;
  *status = f ? ::pclose(f) : -1;
  return out;
}

TEST(XenOffXen, CommandsSayWhyAndExitNonzero) {
  NoXenDevices none;
  const char* bin = PVNET_TEST_BINARY_DIR;
  struct stat st {};
  ASSERT_EQ(::stat((std::string(bin) + "/tools/pvnet").c_str(), &st), 0) << "no pvnet under " << bin;
  for (const char* args : {"backend --hypervisor xen", "frontend --hypervisor xen --domid 3",
                           "frontend --hypervisor xen", "xen-selftest"}) {
    int status = 0;
    const std::string out = run_pvnet(args, &status);
    EXPECT_NE(out.find("gntdev: not running on Xen"), std::string::npos) << args << ": " << out;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << args;
  }
  int status = 0;
  const std::string out = run_pvnet("backend", &status);
  EXPECT_NE(out.find("--socket"), std::string::npos) << out;  // which hypervisor to serve or attach to
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

// ---- gntdev copy plans ----

TEST(GntdevCopyPlan, TranslatesEachSideAndRefusesWhatGntdevWouldRejectWhole) {
  alignas(4096) static std::byte buf[3 * 4096];
  std::vector<CopyOp> ops(4);
  ops[0] = CopyOp{CopySide::gref(DomId{3}, GrantRef{17}, 100), CopySide::local(buf), 60};
  ops[1] = CopyOp{CopySide::local(buf + 10), CopySide::gref(DomId{4}, GrantRef{18}, 4000), 96};
  ops[2] = CopyOp{CopySide::gref(DomId{3}, GrantRef{19}, 4000), CopySide::local(buf), 200};  // past the page
  ops[3] = CopyOp{CopySide::local(buf), CopySide::local(buf + 4096), 10};                  // local -> local
  GntdevCopyPlan plan = plan_gntdev_copy(ops);
  ASSERT_EQ(plan.segs.size(), 2u);
  EXPECT_EQ(plan.op_of_seg, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(plan.local_ops, (std::vector<size_t>{3}));
  EXPECT_EQ(ops[2].status, GntSt::bad_copy_arg);
  const auto& s0 = plan.segs[0];
  EXPECT_EQ(s0.flags, GNTCOPY_source_gref);
  EXPECT_EQ(s0.source.foreign.ref, 17u);
  EXPECT_EQ(s0.source.foreign.domid, 3u);
  EXPECT_EQ(s0.source.foreign.offset, 100u);
  EXPECT_EQ(s0.dest.virt, buf);
  EXPECT_EQ(s0.len, 60u);
  const auto& s1 = plan.segs[1];
  EXPECT_EQ(s1.flags, GNTCOPY_dest_gref);
  EXPECT_EQ(s1.dest.foreign.ref, 18u);
  EXPECT_EQ(s1.dest.foreign.domid, 4u);
  EXPECT_EQ(s1.dest.foreign.offset, 4000u);
  EXPECT_EQ(s1.source.virt, buf + 10);
  EXPECT_EQ(plan.pieces, 2u);
  EXPECT_EQ(plan.hypercalls, 1u);
}

TEST(GntdevCopyPlan, CountsTheKernelsSixteenOpBatchesAndPageSplits) {
  alignas(4096) static std::byte buf[2 * 4096];
  auto gref_to_gref = [](size_t n) {
    std::vector<CopyOp> ops(n, CopyOp{CopySide::gref(DomId{1}, GrantRef{8}, 0), CopySide::gref(DomId{2}, GrantRef{9}, 0), 64});
    return plan_gntdev_copy(ops);
  };
  EXPECT_EQ(gref_to_gref(16).hypercalls, 1u);
  EXPECT_EQ(gref_to_gref(17).hypercalls, 2u);
  EXPECT_EQ(gref_to_gref(32).hypercalls, 2u);
  EXPECT_EQ(gref_to_gref(0).hypercalls, 0u);
  // A local buffer crossing a page boundary is two GNTTABOP_copy ops in the kernel.
  std::vector<CopyOp> ops(16, CopyOp{CopySide::gref(DomId{1}, GrantRef{8}, 0), CopySide::local(buf + 4000), 200});
  GntdevCopyPlan plan = plan_gntdev_copy(ops);
  EXPECT_EQ(plan.pieces, 32u);
  EXPECT_EQ(plan.hypercalls, 2u);
}

// ---- the gntalloc pool's books ----

TEST(GntallocPoolBook, GrantsOnlyToItsGranteeAndCountsWhatDiffersFromNetfront) {
  std::vector<std::byte> mem(4 * kPageSize);
  GntallocPoolBook b(DomId{5}, kDom0, true, mem, {100, 101, 102, 103});
  EXPECT_EQ(b.nr_pages(), 4u);
  EXPECT_EQ(b.free_count(), 4u);
  auto r = b.grant_access(kDom0, Pfn{2}, true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 102u);
  EXPECT_EQ(b.stats().readonly_as_writable, 1u);
  auto again = b.grant_access(kDom0, Pfn{2}, false);  // one page, one reference
  ASSERT_TRUE(again);
  EXPECT_EQ(again->value, 102u);
  EXPECT_EQ(b.free_count(), 3u);
  auto other = b.grant_access(DomId{7}, Pfn{1}, false);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, EPERM);
  EXPECT_EQ(b.stats().refused_other_domain, 1u);
  EXPECT_FALSE(b.grant_access(kDom0, Pfn{4}, false));
  ASSERT_TRUE(b.end_access(GrantRef{102}));
  EXPECT_EQ(b.free_count(), 3u);  // still granted once
  ASSERT_TRUE(b.end_access(GrantRef{102}));
  EXPECT_EQ(b.free_count(), 4u);
  EXPECT_EQ(b.stats().ended_still_granted, 2u);
  EXPECT_EQ(b.end_access(GrantRef{102}).error().code, GNTST_bad_gntref);
  EXPECT_EQ(b.end_access(GrantRef{999}).error().code, GNTST_bad_gntref);
  EXPECT_EQ(b.stats().grants, 2u);
}

TEST(GntallocPoolBook, MemoryAndGrantTableViews) {
  std::vector<std::byte> mem(3 * kPageSize);
  GntallocPoolBook b(DomId{5}, kDom0, false, mem, {7, 8, 9});
  auto gm = make_pool_memory(b);
  auto gt = make_pool_grant_table(b);
  EXPECT_EQ(gm->page(Pfn{1}).data(), mem.data() + kPageSize);
  EXPECT_TRUE(gm->page(Pfn{3}).empty());
  Pfn pfn;
  ASSERT_TRUE(gm->frame_of(mem.data() + 2 * kPageSize + 5, &pfn));
  EXPECT_EQ(pfn, Pfn{2});
  EXPECT_FALSE(gm->frame_of(mem.data() + mem.size(), &pfn));
  EXPECT_EQ(gt->self(), DomId{5});
  EXPECT_EQ(gt->capacity(), 3u);
  EXPECT_FALSE(gt->grant_access(kDom0, Pfn{0}, false));  // a readonly pool cannot grant writable
  auto r = gt->grant_access(kDom0, Pfn{0}, true);
  ASSERT_TRUE(r);
  EXPECT_FALSE(gt->in_use(*r));
  EXPECT_EQ(gt->free_count(), 2u);
  EXPECT_TRUE(gt->end_access(*r));
  EXPECT_EQ(gt->free_count(), 3u);
}

// ---- xenstore permissions ----

TEST(XenStorePerms, OwnerFirstWritersReadWrite) {
  NodePerms p{DomId{3}, {kDom0, DomId{9}}};
  auto v = to_xs_perms(p);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], (XsPerm{3, 0}));
  EXPECT_EQ(v[1].id, 0u);
  EXPECT_EQ(v[1].perms, 3);  // XS_PERM_READ | XS_PERM_WRITE
  EXPECT_EQ(from_xs_perms(v), p);
  EXPECT_EQ(from_xs_perms({XsPerm{4, 0}, XsPerm{0, 1}}), (NodePerms{DomId{4}, {}, {kDom0}}));  // readers are not writers
}

TEST(XenStorePerms, ReadersAreXsPermRead) {
  // libxl's backend directory: n0 r<frontend>.
  NodePerms p{kDom0, {}, {DomId{7}}};
  auto v = to_xs_perms(p);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], (XsPerm{0, 0}));  // XS_PERM_NONE for everyone else
  EXPECT_EQ(v[1], (XsPerm{7, 1}));  // XS_PERM_READ only
  EXPECT_EQ(from_xs_perms(v), p);
  NodePerms both{DomId{3}, {DomId{4}}, {kDom0, DomId{5}}};
  EXPECT_EQ(from_xs_perms(to_xs_perms(both)), both);
}

// ---- the conformance runner ----

TEST(XenConformance, SimulatorAgainstItselfPassesEveryCheck) {
  auto a = tools::make_sim_world();
  auto b = tools::make_sim_world();
  ASSERT_TRUE(a && b);
  auto r = tools::run_conformance(**a, **b);
  EXPECT_EQ(r.lines.size(), tools::conformance_checks().size());
  EXPECT_GE(r.lines.size(), 20u);
  for (const auto& l : r.lines) {
    EXPECT_EQ(l.verdict, "PASS") << l.name;
    EXPECT_TRUE(l.expected.data_ok) << l.name << " " << l.expected.note;
  }
}

// A world whose mapper reports every failure as general_error (what gntdev does for maps): the documented map
// differences come out KNOWN, the grant-copy checks (where Xen keeps its GNTST codes) FAIL.
class GeneralErrorMapper final : public GrantMapper {
 public:
  explicit GeneralErrorMapper(GrantMapper& m) : m_(m) {}
  DomId self() const override { return m_.self(); }
  void map(std::span<MapOp> ops) override {
    m_.map(ops);
    for (auto& o : ops) if (o.status != GntSt::okay) o.status = GntSt::general_error;
  }
  void map_contiguous(std::span<MapOp> ops) override {
    m_.map_contiguous(ops);
    for (auto& o : ops) if (o.status != GntSt::okay) o.status = GntSt::general_error;
  }
  bool can_map_contiguous() const override { return m_.can_map_contiguous(); }
  void unmap(std::span<UnmapOp> ops) override { m_.unmap(ops); }
  void copy(std::span<CopyOp> ops) override {
    m_.copy(ops);
    for (auto& o : ops) if (o.status != GntSt::okay) o.status = GntSt::general_error;
  }
  std::unique_ptr<LazyWindow> make_lazy_window(size_t slots) override { return m_.make_lazy_window(slots); }
  GrantCounters counters() const override { return m_.counters(); }

 private:
  GrantMapper& m_;
};

// Another world's grants, mapped through a mapper M that wraps that world's own (the fault under test).
template <class M>
class WrappedMapperWorld final : public tools::GrantWorld {
 public:
  template <class... Args>
  WrappedMapperWorld(std::string name, std::unique_ptr<tools::GrantWorld> w, Args&&... args)
      : name_(std::move(name)), w_(std::move(w)), m_(w_->mapper(), std::forward<Args>(args)...) {}
  std::string name() const override { return name_; }
  DomId granter() const override { return w_->granter(); }
  DomId mapper_dom() const override { return w_->mapper_dom(); }
  Result<tools::Granted> grant(DomId g, bool ro, uint8_t seed) override { return w_->grant(g, ro, seed); }
  Result<void> end(const tools::Granted& g) override { return w_->end(g); }
  GrantMapper& mapper() override { return m_; }

 private:
  std::string name_;
  std::unique_ptr<tools::GrantWorld> w_;
  M m_;  // destroyed before w_: its mapper outlives the wrapper
};

TEST(XenConformance, VerdictsSeparateDocumentedDifferencesFromFailures) {
  auto a = tools::make_sim_world();
  auto b = tools::make_sim_world();
  ASSERT_TRUE(a && b);
  WrappedMapperWorld<GeneralErrorMapper> subject("general-error", std::move(b).value());
  auto r = tools::run_conformance(**a, subject);
  std::map<std::string, std::string> verdict;
  for (const auto& l : r.lines) verdict[l.name] = l.verdict;
  EXPECT_EQ(verdict["map_rw"], "PASS");
  EXPECT_EQ(verdict["map_bad_gntref"], "KNOWN");
  EXPECT_EQ(verdict["map_wrong_grantee"], "KNOWN");
  EXPECT_EQ(verdict["copy_to_ro_grant"], "KNOWN");
  EXPECT_EQ(verdict["copy_bad_gntref"], "FAIL");
  EXPECT_EQ(verdict["copy_bad_domain"], "FAIL");
  EXPECT_EQ(verdict["copy_offset_past_page"], "FAIL");
  EXPECT_EQ(verdict["map_contiguous_bad_gntref_maps_nothing"], "PASS");  // a good page's status: general_error
  EXPECT_EQ(r.failures(), 3u);
}

// Mappers that get contiguous maps wrong, each in one way: the contiguous checks FAIL, nothing else does.
class WrongContiguousMapper final : public GrantMapper {
 public:
  enum class Fault { cannot, page_by_page, keeps_on_failure, unmap_leaves_pinned };
  WrongContiguousMapper(GrantMapper& m, Fault f) : m_(m), f_(f) {}
  ~WrongContiguousMapper() override {  // what a fault left behind
    std::vector<UnmapOp> u;
    for (MapHandle h : leaked_) u.push_back(UnmapOp{h});
    if (!u.empty()) m_.unmap(u);
    for (void* g : gaps_)
      if (g != MAP_FAILED) ::munmap(g, kPageSize);
  }
  DomId self() const override { return m_.self(); }
  void map(std::span<MapOp> ops) override { m_.map(ops); }
  bool can_map_contiguous() const override { return f_ != Fault::cannot; }
  void map_contiguous(std::span<MapOp> ops) override {
    switch (f_) {
      case Fault::cannot:
        GrantMapper::map_contiguous(ops);
        return;
      case Fault::page_by_page: {  // all or nothing, but each page where mmap put it, not in a row
        std::vector<UnmapOp> undo;
        bool ok = true;
        for (MapOp& op : ops) {
          m_.map(std::span<MapOp>(&op, 1));
          if (op.status == GntSt::okay) undo.push_back(UnmapOp{op.handle});
          else ok = false;
          gaps_.push_back(::mmap(nullptr, kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        }
        if (ok) return;
        if (!undo.empty()) m_.unmap(undo);
        for (MapOp& op : ops) {
          if (op.status == GntSt::okay) op.status = GntSt::general_error;
          op.addr = nullptr;
          op.handle = MapHandle{};
        }
        return;
      }
      case Fault::keeps_on_failure:  // a run when it all maps; when not, what mapped alone stays mapped
        m_.map_contiguous(ops);
        if (ops[0].status != GntSt::okay) m_.map(ops);
        return;
      case Fault::unmap_leaves_pinned:
        m_.map_contiguous(ops);
        for (MapOp& op : ops)
          if (op.status == GntSt::okay) {
            MapOp again = op;  // a second mapping of the page that nobody unmaps
            m_.map(std::span<MapOp>(&again, 1));
            leaked_.push_back(again.handle);
          }
        return;
    }
  }
  void unmap(std::span<UnmapOp> ops) override { m_.unmap(ops); }
  void copy(std::span<CopyOp> ops) override { m_.copy(ops); }
  std::unique_ptr<LazyWindow> make_lazy_window(size_t slots) override { return m_.make_lazy_window(slots); }
  GrantCounters counters() const override { return m_.counters(); }

 private:
  GrantMapper& m_;
  Fault f_;
  std::vector<MapHandle> leaked_;
  std::vector<void*> gaps_;
};

TEST(XenConformance, ContiguousChecksCatchAMapperThatGetsRunsWrong) {
  using F = WrongContiguousMapper::Fault;
  const std::map<F, std::vector<std::string>> expect_fail = {
      {F::cannot,
       {"map_contiguous_rw", "map_contiguous_bad_gntref_maps_nothing", "map_contiguous_ro_grant_maps_nothing"}},
      {F::page_by_page, {"map_contiguous_rw"}},
      {F::keeps_on_failure, {"map_contiguous_bad_gntref_maps_nothing", "map_contiguous_ro_grant_maps_nothing"}},
      {F::unmap_leaves_pinned, {"map_contiguous_rw"}},
  };
  for (const auto& [fault, names] : expect_fail) {
    auto a = tools::make_sim_world();
    auto b = tools::make_sim_world();
    ASSERT_TRUE(a && b);
    WrappedMapperWorld<WrongContiguousMapper> subject("wrong-contiguous", std::move(b).value(), fault);
    auto r = tools::run_conformance(**a, subject);
    std::vector<std::string> failed;
    for (const auto& l : r.lines)
      if (l.verdict != "PASS") failed.push_back(l.name);
    EXPECT_EQ(failed, names) << "fault " << static_cast<int>(fault);
  }
}

// ---- the Xen mapper's handles ----

TEST(GntdevHandleTable, OneHandlePerPageAndARunGoesWhenItsLastHandleDoes) {
  GntdevHandleTable t;
  alignas(4096) static std::byte mem[6 * 4096];
  auto single = t.add(GntdevRegion{mem, 0x1000, 1});
  auto run = t.add(GntdevRegion{mem + 4096, 0x2000, 4});
  ASSERT_EQ(single.size(), 1u);
  ASSERT_EQ(run.size(), 4u);
  EXPECT_EQ(t.live(), 5u);
  for (size_t i = 0; i < run.size(); ++i)
    for (size_t j = 0; j < i; ++j) EXPECT_NE(run[i].value, run[j].value);

  // A single page's region goes with its handle.
  auto r = t.release(single[0]);
  ASSERT_TRUE(r.found);
  ASSERT_TRUE(r.unmap);
  EXPECT_EQ(r.unmap->index, 0x1000u);
  EXPECT_EQ(r.unmap->pages, 1u);
  EXPECT_FALSE(t.release(single[0]).found) << "released twice";

  // The run's pages in any order: the whole region once, at the last.
  for (size_t i : {2u, 0u, 3u}) {
    auto x = t.release(run[i]);
    EXPECT_TRUE(x.found);
    EXPECT_FALSE(x.unmap) << "page " << i << " released the run early";
  }
  EXPECT_EQ(t.live(), 1u);
  auto last = t.release(run[1]);
  ASSERT_TRUE(last.found && last.unmap);
  EXPECT_EQ(last.unmap->addr, mem + 4096);
  EXPECT_EQ(last.unmap->index, 0x2000u);
  EXPECT_EQ(last.unmap->pages, 4u);
  EXPECT_EQ(t.live(), 0u);
  EXPECT_FALSE(t.release(MapHandle{}).found);
  EXPECT_FALSE(t.release(MapHandle{999}).found);

  // Handles and regions are reused; a reused handle belongs to its new region only.
  auto again = t.add(GntdevRegion{mem, 0x3000, 2});
  EXPECT_EQ(t.live_handles().size(), 2u);
  EXPECT_FALSE(t.release(again[0]).unmap);
  auto x = t.release(again[1]);
  ASSERT_TRUE(x.unmap);
  EXPECT_EQ(x.unmap->index, 0x3000u);
}

}  // namespace
}  // namespace pvnet
