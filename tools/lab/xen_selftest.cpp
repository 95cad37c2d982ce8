#include "tools/lab/xen_selftest.hpp"

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <ostream>

#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/xen/xen_grant_mapper.hpp"
#include "grant-sim/xen/xen_grant_table.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "grant-sim/xen/xen_store.hpp"
#include "tools/platform/open_platform.hpp"

namespace pvnet::tools {
namespace {

std::byte pattern(uint8_t seed, size_t i) { return static_cast<std::byte>((seed * 31 + i * 7) & 0xff); }

void fill(std::span<std::byte> page, uint8_t seed) {
  for (size_t i = 0; i < page.size(); ++i) page[i] = pattern(seed, i);
}

// ---- the simulator: domain 1 grants, dom0 maps ----

class SimWorld final : public GrantWorld {
 public:
  static Result<std::unique_ptr<GrantWorld>> create() {
    auto hv = SimHypervisor::create();
    if (!hv) return hv.error();
    std::unique_ptr<SimWorld> w(new SimWorld());
    w->hv_ = std::move(hv).value();
    auto g = w->hv_->create_domain(DomId{1}, kPages * kPageSize, 256);
    if (!g) return g.error();
    w->granter_ = std::move(g).value();
    auto m = open_platform(PlatformSpec::in_process(*w->hv_, kDom0));
    if (!m) return m.error();
    w->mapper_ = std::move(m).value();
    return std::unique_ptr<GrantWorld>(std::move(w));
  }
  std::string name() const override { return "sim"; }
  DomId granter() const override { return DomId{1}; }
  DomId mapper_dom() const override { return kDom0; }
  Result<Granted> grant(DomId grantee, bool readonly, uint8_t seed) override {
    const Pfn pfn{next_++ % kPages};
    auto page = granter_->memory().page(pfn);
    fill(page, seed);
    auto r = granter_->grant_table().grant_access(grantee, pfn, readonly);
    if (!r) return r.error();
    return Granted{*r, page, r->value};
  }
  Result<void> end(const Granted& g) override { return granter_->grant_table().end_access(g.ref); }
  GrantMapper& mapper() override { return mapper_->mapper(); }

 private:
  static constexpr uint64_t kPages = 64;
  SimWorld() = default;
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<Platform> granter_;
  std::unique_ptr<Platform> mapper_;  // declared last: its mappings go first
  uint64_t next_ = 0;
};

// ---- real Xen: this domain grants to whom it is told with gntalloc (one pool per grant, so each grant has
// its own readonly-ness) and maps with gntdev ----

class XenWorld final : public GrantWorld {
 public:
  static Result<std::unique_ptr<GrantWorld>> create() {
    if (auto r = xen_device_present("gntdev"); !r) return r.error();
    if (auto r = xen_device_present("gntalloc"); !r) return r.error();
    auto self = xen_store_self_domid();
    if (!self) return self.error();
    std::unique_ptr<XenWorld> w(new XenWorld());
    w->self_ = *self;
    auto m = XenGrantMapper::open(w->self_);
    if (!m) return m.error();
    w->mapper_ = std::move(m).value();
    return std::unique_ptr<GrantWorld>(std::move(w));
  }
  std::string name() const override { return "xen"; }
  DomId granter() const override { return self_; }
  DomId mapper_dom() const override { return self_; }
  Result<Granted> grant(DomId grantee, bool readonly, uint8_t seed) override {
    auto p = XenGntallocPool::create(self_, grantee, 1, !readonly);
    if (!p) return p.error();
    auto page = (*p)->book().page(Pfn{0});
    fill(page, seed);
    const uint32_t id = next_id_++;
    Granted g{GrantRef{(*p)->ref(0)}, page, id};
    pools_[id] = std::move(p).value();
    return g;
  }
  Result<void> end(const Granted& g) override {
    if (!pools_.erase(g.id)) return make_error(ENOENT, "no such grant");
    return {};
  }
  GrantMapper& mapper() override { return *mapper_; }
  ~XenWorld() override {
    mapper_.reset();  // unmap before the pools unshare
    pools_.clear();
  }

 private:
  XenWorld() = default;
  DomId self_;
  std::map<uint32_t, std::unique_ptr<XenGntallocPool>> pools_;
  std::unique_ptr<XenGrantMapper> mapper_;
  uint32_t next_id_ = 0;
};

// ---- the checks ----

constexpr DomId kNobody{0x7FEF};           // a domain id no domain has (grantee / mapping target)
constexpr GrantRef kBadRef{0x0FFFFFFF};    // beyond any grant table

CheckOutcome fail_setup(const Error& e) { return CheckOutcome{GntSt::general_error, false, "setup: " + e.reason}; }

MapOp map_op(DomId dom, GrantRef ref, bool readonly) {
  MapOp op;
  op.dom = dom;
  op.ref = ref;
  op.readonly = readonly;
  return op;
}

GntSt map_one(GrantWorld& w, DomId dom, GrantRef ref, bool readonly, MapOp* out) {
  MapOp op = map_op(dom, ref, readonly);
  w.mapper().map(std::span<MapOp>(&op, 1));
  *out = op;
  return op.status;
}

void unmap_one(GrantWorld& w, MapHandle h) {
  if (!h.valid()) return;
  UnmapOp u{h};
  w.mapper().unmap(std::span<UnmapOp>(&u, 1));
}

CheckOutcome map_check(GrantWorld& w, bool grant_ro, bool map_ro, DomId grantee, bool write_through) {
  auto g = w.grant(grantee, grant_ro, 11);
  if (!g) return fail_setup(g.error());
  MapOp op;
  CheckOutcome o;
  o.status = map_one(w, w.granter(), g->ref, map_ro, &op);
  if (o.status == GntSt::okay) {
    o.data_ok = std::memcmp(op.addr, g->page.data(), kPageSize) == 0;
    if (write_through) {
      op.addr[100] = std::byte{0x5a};
      o.data_ok = o.data_ok && g->page[100] == std::byte{0x5a};
    }
  }
  unmap_one(w, op.handle);
  (void)w.end(*g);
  return o;
}

CheckOutcome copy_check(GrantWorld& w, bool grant_ro, DomId grantee, bool to_grant, uint16_t offset, uint16_t len,
                        bool end_first = false) {
  auto g = w.grant(grantee, grant_ro, 23);
  if (!g) return fail_setup(g.error());
  const Granted granted = *g;
  if (end_first) (void)w.end(granted);
  std::vector<std::byte> local(kPageSize);
  fill(local, 99);
  CopyOp op;
  op.len = len;
  if (to_grant) {
    op.src = CopySide::local(local.data());
    op.dst = CopySide::gref(w.granter(), granted.ref, offset);
  } else {
    op.src = CopySide::gref(w.granter(), granted.ref, offset);
    op.dst = CopySide::local(local.data());
  }
  w.mapper().copy(std::span<CopyOp>(&op, 1));
  CheckOutcome o;
  o.status = op.status;
  if (op.status == GntSt::okay && !end_first) {
    // Read what the granter sees before it ends the grant (a pool page goes with its grant).
    o.data_ok = std::memcmp(granted.page.data() + offset, local.data(), len) == 0;
  }
  if (!end_first) (void)w.end(granted);
  return o;
}

CheckOutcome bad_target_map(GrantWorld& w, DomId dom, GrantRef ref) {
  MapOp op;
  CheckOutcome o;
  o.status = map_one(w, dom, ref, true, &op);
  unmap_one(w, op.handle);
  return o;
}

CheckOutcome bad_target_copy(GrantWorld& w, DomId dom, GrantRef ref) {
  std::vector<std::byte> local(64);
  CopyOp op{CopySide::gref(dom, ref, 0), CopySide::local(local.data()), 64};
  w.mapper().copy(std::span<CopyOp>(&op, 1));
  return CheckOutcome{op.status, true, {}};
}

CheckOutcome batch_continues_map(GrantWorld& w) {
  auto g = w.grant(w.mapper_dom(), true, 31);
  if (!g) return fail_setup(g.error());
  MapOp ops[2] = {map_op(w.granter(), kBadRef, true), map_op(w.granter(), g->ref, true)};
  w.mapper().map(ops);
  CheckOutcome o;
  o.status = ops[1].status;
  o.data_ok = ops[0].status != GntSt::okay &&
              (ops[1].status != GntSt::okay || std::memcmp(ops[1].addr, g->page.data(), kPageSize) == 0);
  for (auto& op : ops) unmap_one(w, op.handle);
  (void)w.end(*g);
  return o;
}

CheckOutcome batch_continues_copy(GrantWorld& w) {
  auto g = w.grant(w.mapper_dom(), true, 37);
  if (!g) return fail_setup(g.error());
  std::vector<std::byte> a(64), b(64);
  CopyOp ops[2] = {CopyOp{CopySide::gref(w.granter(), kBadRef, 0), CopySide::local(a.data()), 64},
                   CopyOp{CopySide::gref(w.granter(), g->ref, 64), CopySide::local(b.data()), 64}};
  w.mapper().copy(ops);
  CheckOutcome o;
  o.status = ops[1].status;
  o.data_ok = ops[0].status != GntSt::okay && std::memcmp(b.data(), g->page.data() + 64, 64) == 0;
  (void)w.end(*g);
  return o;
}

CheckOutcome unmap_then_end(GrantWorld& w) {
  auto g = w.grant(w.mapper_dom(), false, 41);
  if (!g) return fail_setup(g.error());
  MapOp op;
  CheckOutcome o;
  if (map_one(w, w.granter(), g->ref, false, &op) != GntSt::okay) return CheckOutcome{op.status, false, "map"};
  UnmapOp u{op.handle};
  w.mapper().unmap(std::span<UnmapOp>(&u, 1));
  o.status = u.status;
  o.data_ok = static_cast<bool>(w.end(*g));
  return o;
}

CheckOutcome unmap_bad_handle(GrantWorld& w) {
  UnmapOp u{MapHandle{123456}};
  w.mapper().unmap(std::span<UnmapOp>(&u, 1));
  return CheckOutcome{u.status, true, {}};
}

CheckOutcome lazy_touch(GrantWorld& w, bool good_ref) {
  auto g = w.grant(w.mapper_dom(), true, 53);
  if (!g) return fail_setup(g.error());
  auto win = w.mapper().make_lazy_window(4);
  if (!win) return CheckOutcome{GntSt::no_device_space, false, "no lazy window"};
  std::byte* p = win->assign(2, w.granter(), good_ref ? g->ref : kBadRef, true);
  const std::byte first = *static_cast<volatile std::byte*>(p);  // the fault maps it
  CheckOutcome o;
  o.status = win->status(2);
  o.data_ok = good_ref ? (win->mapped(2) && first == g->page[0] && std::memcmp(p, g->page.data(), kPageSize) == 0)
                       : (!win->mapped(2) && first == std::byte{0});
  const size_t one[] = {2};
  win->release(one);
  win.reset();
  (void)w.end(*g);
  return o;
}

CheckOutcome lazy_untouched_is_free(GrantWorld& w) {
  auto g = w.grant(w.mapper_dom(), true, 59);
  if (!g) return fail_setup(g.error());
  auto win = w.mapper().make_lazy_window(4);
  if (!win) return CheckOutcome{GntSt::no_device_space, false, "no lazy window"};
  const GrantCounters before = w.mapper().counters();
  (void)win->assign(1, w.granter(), g->ref, true);
  const size_t one[] = {1};
  win->release(one);
  const GrantCounters d = w.mapper().counters() - before;
  CheckOutcome o{win->status(1), d.hypercalls == 0 && d.faults == 0 && d.pages_mapped == 0, {}};
  win.reset();
  (void)w.end(*g);
  return o;
}

// ---- contiguous maps (a multi-page ring, docs/protocol.md 9) ----

constexpr size_t kRunPages = 4;

struct GrantRun {
  std::vector<Granted> pages;
  GrantWorld* w = nullptr;
  ~GrantRun() {
    for (const Granted& g : pages) (void)w->end(g);
  }
};

Result<void> grant_run(GrantWorld& w, bool readonly, uint8_t seed, GrantRun* run) {
  run->w = &w;
  for (size_t i = 0; i < kRunPages; ++i) {
    auto g = w.grant(w.mapper_dom(), readonly, static_cast<uint8_t>(seed + i));
    if (!g) return g.error();
    run->pages.push_back(*g);
  }
  return {};
}

std::vector<MapOp> run_ops(GrantWorld& w, const GrantRun& run, bool readonly) {
  std::vector<MapOp> ops;
  for (const Granted& g : run.pages) ops.push_back(map_op(w.granter(), g.ref, readonly));
  return ops;
}

GntSt first_failure(std::span<const MapOp> ops) {
  for (const MapOp& op : ops)
    if (op.status != GntSt::okay) return op.status;
  return GntSt::okay;
}

// Unmaps every handle of a contiguous map in one call (as a ring's teardown does); true if each said okay.
bool unmap_run(GrantWorld& w, std::span<const MapOp> ops) {
  std::vector<UnmapOp> u;
  for (const MapOp& op : ops)
    if (op.handle.valid()) u.push_back(UnmapOp{op.handle});
  if (u.empty()) return true;
  w.mapper().unmap(u);
  bool ok = true;
  for (const UnmapOp& x : u) ok = ok && x.status == GntSt::okay;
  return ok;
}

// 4 writable grants mapped as one run: page i at start + i pages showing grant i's bytes, a write through any page
// reaching its grant; all unmapped in one call; the same refs map again as a run afterwards (nothing was left
// holding them).
CheckOutcome contiguous_rw(GrantWorld& w) {
  if (!w.mapper().can_map_contiguous()) return CheckOutcome{GntSt::general_error, false, "cannot map contiguously"};
  GrantRun run;
  if (auto r = grant_run(w, false, 61, &run); !r) return fail_setup(r.error());
  std::vector<MapOp> ops = run_ops(w, run, false);
  w.mapper().map_contiguous(ops);
  CheckOutcome o;
  o.status = first_failure(ops);
  if (o.status == GntSt::okay) {
    std::byte* start = ops[0].addr;
    for (size_t i = 0; i < kRunPages; ++i) {
      const std::span<std::byte> page = run.pages[i].page;
      if (ops[i].addr != start + i * kPageSize) {
        o.data_ok = false;
        o.note = "page " + std::to_string(i) + " not at start + " + std::to_string(i) + " pages";
        break;
      }
      if (std::memcmp(start + i * kPageSize, page.data(), kPageSize) != 0) {
        o.data_ok = false;
        o.note = "page " + std::to_string(i) + " shows other bytes than its grant";
        break;
      }
      // Writes at both ends of each page, through the run's one address range.
      start[i * kPageSize] = std::byte{static_cast<uint8_t>(0xa0 + i)};
      start[i * kPageSize + kPageSize - 1] = std::byte{static_cast<uint8_t>(0xb0 + i)};
      if (page[0] != std::byte{static_cast<uint8_t>(0xa0 + i)} ||
          page[kPageSize - 1] != std::byte{static_cast<uint8_t>(0xb0 + i)}) {
        o.data_ok = false;
        o.note = "a write to page " + std::to_string(i) + " of the run did not reach its grant";
        break;
      }
    }
  }
  if (!unmap_run(w, ops)) {
    o.data_ok = false;
    o.note = "unmap of the run";
  }
  if (o.status == GntSt::okay) {
    std::vector<MapOp> again = run_ops(w, run, false);
    w.mapper().map_contiguous(again);
    if (first_failure(again) != GntSt::okay || std::memcmp(again[3].addr, run.pages[3].page.data(), kPageSize) != 0) {
      o.data_ok = false;
      o.note = "the refs did not map again as a run after the unmap";
    }
    if (!unmap_run(w, again)) o.data_ok = false;
  }
  for (const Granted& g : run.pages) o.data_ok = o.data_ok && static_cast<bool>(w.end(g));
  run.pages.clear();
  return o;
}

// A run of 4 where page 2 does not map (a bad gntref, or a readonly grant mapped writable): no op okay, no
// address or handle given out, as many pages unmapped as mapped, every good grant ends and maps alone afterwards.
// The status is page 0's (a good grant failed with the batch).
CheckOutcome contiguous_all_or_nothing(GrantWorld& w, bool bad_ref) {
  if (!w.mapper().can_map_contiguous()) return CheckOutcome{GntSt::general_error, false, "cannot map contiguously"};
  GrantRun run;
  if (auto r = grant_run(w, false, 71, &run); !r) return fail_setup(r.error());
  std::vector<MapOp> ops = run_ops(w, run, false);
  std::optional<Granted> ro;
  if (bad_ref) {
    ops[2].ref = kBadRef;
  } else {
    auto g = w.grant(w.mapper_dom(), true, 79);
    if (!g) return fail_setup(g.error());
    ro = *g;
    ops[2].ref = g->ref;
  }
  const GrantCounters before = w.mapper().counters();
  w.mapper().map_contiguous(ops);
  const GrantCounters d = w.mapper().counters() - before;
  CheckOutcome o;
  o.status = ops[0].status;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].status == GntSt::okay || ops[i].addr != nullptr || ops[i].handle.valid()) {
      o.data_ok = false;
      o.note = "op " + std::to_string(i) + " says okay or kept an address or handle";
    }
  }
  if (d.pages_mapped != d.pages_unmapped) {
    o.data_ok = false;
    o.note = std::to_string(d.pages_mapped) + " pages mapped, " + std::to_string(d.pages_unmapped) + " unmapped";
  }
  (void)unmap_run(w, ops);  // nothing, if it held
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}}) {
    MapOp alone;
    if (map_one(w, w.granter(), run.pages[i].ref, false, &alone) != GntSt::okay ||
        std::memcmp(alone.addr, run.pages[i].page.data(), kPageSize) != 0) {
      o.data_ok = false;
      o.note = "grant " + std::to_string(i) + " does not map alone after the failed run";
    }
    unmap_one(w, alone.handle);
  }
  for (const Granted& g : run.pages) o.data_ok = o.data_ok && static_cast<bool>(w.end(g));
  run.pages.clear();
  if (ro) (void)w.end(*ro);
  return o;
}

}  // namespace

Result<std::unique_ptr<GrantWorld>> make_sim_world() { return SimWorld::create(); }
Result<std::unique_ptr<GrantWorld>> make_xen_world() { return XenWorld::create(); }

std::vector<ConformanceCheck> conformance_checks() {
  const std::string flags = "Xen's _set_status_v1 fails bad flags/domid and write-pins of r/o entries with "
                            "GNTST_general_error; the simulator says permission_denied";
  const std::string gntdev = "gntdev reports a refused map as EINVAL from mmap, without Xen's GNTST code";
  auto self = [](GrantWorld& w) { return w.mapper_dom(); };
  std::vector<ConformanceCheck> c = {
      {"map_rw", [=](GrantWorld& w) { return map_check(w, false, false, self(w), true); }, {}, {}},
      {"map_ro", [=](GrantWorld& w) { return map_check(w, true, true, self(w), false); }, {}, {}},
      {"map_rw_of_ro_grant", [=](GrantWorld& w) { return map_check(w, true, false, self(w), false); },
       GntSt::general_error, flags},
      {"map_wrong_grantee", [=](GrantWorld& w) { return map_check(w, false, true, kNobody, false); },
       GntSt::general_error, flags},
      {"map_bad_gntref", [](GrantWorld& w) { return bad_target_map(w, w.granter(), kBadRef); },
       GntSt::general_error, gntdev},
      {"map_bad_domain", [](GrantWorld& w) { return bad_target_map(w, DomId{0x7FEE}, GrantRef{8}); },
       GntSt::general_error, gntdev},
      {"map_batch_continues_after_failure", batch_continues_map, {}, {}},
      {"unmap_then_end_access", unmap_then_end, {}, {}},
      {"unmap_bad_handle", unmap_bad_handle, {}, {}},
      {"copy_from_grant", [=](GrantWorld& w) { return copy_check(w, true, self(w), false, 10, 100); }, {}, {}},
      {"copy_to_grant", [=](GrantWorld& w) { return copy_check(w, false, self(w), true, 3000, 1000); }, {}, {}},
      {"copy_to_ro_grant", [=](GrantWorld& w) { return copy_check(w, true, self(w), true, 0, 64); },
       GntSt::general_error, flags},
      {"copy_wrong_grantee", [=](GrantWorld& w) { return copy_check(w, false, kNobody, false, 0, 64); },
       GntSt::general_error, flags},
      {"copy_ended_grant", [=](GrantWorld& w) { return copy_check(w, false, self(w), false, 0, 64, true); },
       GntSt::general_error, flags},
      {"copy_offset_past_page", [=](GrantWorld& w) { return copy_check(w, false, self(w), false, 4000, 200); },
       {}, {}},
      {"copy_bad_gntref", [](GrantWorld& w) { return bad_target_copy(w, w.granter(), kBadRef); }, {}, {}},
      {"copy_bad_domain", [](GrantWorld& w) { return bad_target_copy(w, DomId{0x7FEE}, GrantRef{8}); }, {}, {}},
      {"copy_batch_continues_after_failure", batch_continues_copy, {}, {}},
      {"lazy_first_touch_maps", [](GrantWorld& w) { return lazy_touch(w, true); }, {}, {}},
      {"lazy_bad_gntref_reads_zeros", [](GrantWorld& w) { return lazy_touch(w, false); }, GntSt::general_error,
       gntdev},
      {"lazy_untouched_costs_nothing", lazy_untouched_is_free, {}, {}},
      {"map_contiguous_rw", contiguous_rw, {}, {}},
      {"map_contiguous_bad_gntref_maps_nothing", [](GrantWorld& w) { return contiguous_all_or_nothing(w, true); },
       {}, {}},
      {"map_contiguous_ro_grant_maps_nothing", [](GrantWorld& w) { return contiguous_all_or_nothing(w, false); },
       {}, {}},
  };
  return c;
}

size_t ConformanceReport::failures() const {
  size_t n = 0;
  for (const auto& l : lines) n += l.verdict == "FAIL";
  return n;
}

ConformanceReport run_conformance(GrantWorld& reference, GrantWorld& subject) {
  ConformanceReport r;
  for (const ConformanceCheck& c : conformance_checks()) {
    ConformanceLine l;
    l.name = c.name;
    l.expected = c.run(reference);
    l.actual = c.run(subject);
    if (l.expected == l.actual) {
      l.verdict = "PASS";
    } else if (c.known_xen_status && l.actual.status == *c.known_xen_status && l.actual.data_ok == l.expected.data_ok) {
      l.verdict = "KNOWN";
      l.reason = c.known_reason;
    } else {
      l.verdict = "FAIL";
    }
    r.lines.push_back(std::move(l));
  }
  return r;
}

void print(std::ostream& os, const ConformanceReport& r, const std::string& subject_name) {
  for (const auto& l : r.lines) {
    os << l.verdict << " " << l.name << " sim=" << to_string(l.expected.status)
       << (l.expected.data_ok ? "" : "(data wrong)") << " " << subject_name << "=" << to_string(l.actual.status)
       << (l.actual.data_ok ? "" : "(data wrong)");
    if (!l.reason.empty()) os << " (" << l.reason << ")";
    if (!l.actual.note.empty()) os << " [" << l.actual.note << "]";
    os << "\n";
  }
  os << (r.failures() ? "FAILED " : "OK ") << r.failures() << " of " << r.lines.size() << " checks differ\n";
}

}  // namespace pvnet::tools
