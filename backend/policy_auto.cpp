#include "backend/policy_auto.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "grant-sim/platform/lazy_window.hpp"

namespace pvnet {

double PayloadCosts::copy_ns(uint32_t bytes, uint32_t pages) const {
  // Charged a whole batch: conservative for copy (in a busy poll the call is shared with other packets' copies).
  return grant_copy_per_call + grant_copy_per_op * pages + grant_copy_per_byte * bytes;
}
double PayloadCosts::map_ns(uint32_t pages) const { return map_touch_unmap_per_page * pages; }
double PayloadCosts::lazy_ns(uint32_t pages) const { return lazy_fault_per_page * pages; }

void to_json(nlohmann::json& j, const PayloadCosts& c) {
  j = {{"memcpy_per_byte_ns", c.memcpy_per_byte},
       {"grant_copy_per_call_ns", c.grant_copy_per_call},
       {"grant_copy_per_op_ns", c.grant_copy_per_op},
       {"grant_copy_per_byte_ns", c.grant_copy_per_byte},
       {"map_touch_unmap_per_page_ns", c.map_touch_unmap_per_page},
       {"lazy_fault_per_page_ns", c.lazy_fault_per_page},
       {"iterations", c.iterations},
       {"measured", c.measured},
       {"note", c.note}};
}

const char* to_string(PayloadChoice c) {
  switch (c) {
    case PayloadChoice::leave: return "leave";
    case PayloadChoice::copy: return "copy";
    case PayloadChoice::map: return "map";
    case PayloadChoice::lazy: return "lazy";
  }
  return "?";
}

PayloadChoice choose_payload(const PayloadCosts& c, bool reads, uint32_t bytes, uint32_t pages) {
  // Nothing read, nothing to pay: the vif sink forwards by grant copy from the guest's page, null never looks.
  if (!reads || bytes == 0) return PayloadChoice::leave;
  const double copy = c.copy_ns(bytes, pages), map = c.map_ns(pages), lazy = c.lazy_ns(pages);
  if (copy <= map && copy <= lazy) return PayloadChoice::copy;
  return map <= lazy ? PayloadChoice::map : PayloadChoice::lazy;
}

std::vector<PayloadDecision> decision_table(const PayloadCosts& c) {
  std::vector<PayloadDecision> t;
  for (bool reads : {false, true})
    for (uint32_t bytes : {64u, 256u, 1460u, 4096u, 8960u, 16384u, 65536u}) {
      const uint32_t pages = (bytes + kPageSize - 1) / kPageSize;
      t.push_back(PayloadDecision{reads, bytes, pages, choose_payload(c, reads, bytes, pages)});
    }
  return t;
}

// ---- measurement -----------------------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <class F>
double median_ns(uint32_t iterations, F&& f) {
  std::vector<double> samples;
  samples.reserve(iterations);
  for (uint32_t i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    f();
    samples.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  return median(std::move(samples));
}

void touch(const std::byte* p) {
  const volatile std::byte* v = p;
  (void)*v;
}

// Pages dom0 grants to itself for the measurement, ended on every path.
class ScratchGrants {
 public:
  ScratchGrants(Platform& dom0) : gt_(dom0.grant_table()) {}
  ~ScratchGrants() {
    for (GrantRef r : refs_) (void)gt_.end_access(r);
  }
  ScratchGrants(const ScratchGrants&) = delete;
  ScratchGrants& operator=(const ScratchGrants&) = delete;
  Result<void> grant(DomId self, Pfn pfn) {
    auto r = gt_.grant_access(self, pfn, /*readonly=*/true);
    if (!r) return r.error();
    refs_.push_back(*r);
    return {};
  }
  const std::vector<GrantRef>& refs() const { return refs_; }

 private:
  GrantTable& gt_;
  std::vector<GrantRef> refs_;
};

constexpr uint32_t kScratchPages = 8;

// Map + touch + unmap, and a lazy fault, of one scratch grant (measure_payload_costs' last two rows).
Result<void> measure_mapping_costs(GrantMapper& mapper, DomId self, GrantRef ref, uint32_t iterations,
                                   PayloadCosts& c) {
  // Map + touch + unmap, a batch of one each (what a lone packet pays; a poll's batch shares the calls).
  bool map_ok = true;
  c.map_touch_unmap_per_page = median_ns(iterations, [&] {
    MapOp op;
    op.dom = self;
    op.ref = ref;
    op.readonly = true;
    mapper.map(std::span<MapOp>(&op, 1));
    if (op.status != GntSt::okay) {
      map_ok = false;
      return;
    }
    touch(op.addr);
    UnmapOp u;
    u.handle = op.handle;
    mapper.unmap(std::span<UnmapOp>(&u, 1));
  });
  if (!map_ok) return make_error(EIO, "mapping dom0's scratch grant failed");

  // Lazy: assign (free), touch (the fault maps the page), release (the unmap).
  auto window = mapper.make_lazy_window(1);
  if (!window) return make_error(ENOMEM, "no lazy window to measure on");
  bool lazy_ok = true;
  const size_t slot0 = 0;
  c.lazy_fault_per_page = median_ns(iterations, [&] {
    touch(window->assign(0, self, ref, /*readonly=*/true));
    lazy_ok = lazy_ok && window->status(0) == GntSt::okay && window->mapped(0);
    window->release(std::span<const size_t>(&slot0, 1));
  });
  if (!lazy_ok) return make_error(EIO, "lazy fault on dom0's scratch grant failed");
  return {};
}

}  // namespace

Result<PayloadCosts> measure_payload_costs(Platform& dom0, uint32_t iterations) {
  GuestMemory& mem = dom0.memory();
  if (mem.nr_pages() < kScratchPages) return make_error(ENOMEM, "dom0 has fewer than 8 pages to measure on");
  const DomId self = dom0.self();
  ScratchGrants scratch(dom0);
  // The top pages of dom0's memory: only read (granted read-only), so sharing them with anyone is harmless.
  for (uint32_t i = 0; i < kScratchPages; ++i)
    if (auto ok = scratch.grant(self, Pfn{mem.nr_pages() - 1 - i}); !ok)
      return make_error(ok.error().code, "granting a scratch page to dom0: " + ok.error().reason);
  const auto& refs = scratch.refs();
  GrantMapper& mapper = dom0.mapper();
  std::vector<std::byte> buf(kScratchPages * kPageSize);
  PayloadCosts c;
  c.iterations = iterations;

  // memcpy: 64 copies per sample, so the clock's own cost does not swamp a 14 ns copy.
  const std::byte* src = mem.page(Pfn{mem.nr_pages() - 1}).data();
  auto memcpy_ns = [&](size_t n) {
    return median_ns(iterations, [&] {
             for (int k = 0; k < 64; ++k) {
               std::memcpy(buf.data(), src, n);
               asm volatile("" ::"r"(buf.data()) : "memory");
             }
           }) / 64;
  };
  const double m64 = memcpy_ns(64), m4k = memcpy_ns(kPageSize);
  c.memcpy_per_byte = std::max(0.0, (m4k - m64) / (kPageSize - 64));

  // Grant copy: one op of 64 B, one of 4 KiB, eight of 4 KiB (separate pages).
  bool copy_ok = true;
  auto gcopy_ns = [&](uint32_t ops, uint16_t len) {
    std::vector<CopyOp> batch(ops);
    return median_ns(iterations, [&] {
      for (uint32_t i = 0; i < ops; ++i) {
        batch[i].src = CopySide::gref(self, refs[i], 0);
        batch[i].dst = CopySide::local(buf.data() + i * kPageSize);
        batch[i].len = len;
      }
      mapper.copy(batch);
      for (const auto& op : batch) copy_ok = copy_ok && op.status == GntSt::okay;
    });
  };
  const double g64 = gcopy_ns(1, 64), g4k = gcopy_ns(1, kPageSize), g8x4k = gcopy_ns(kScratchPages, kPageSize);
  if (!copy_ok) return make_error(EIO, "grant copy of dom0's scratch grants failed");
  c.grant_copy_per_byte = std::max(0.0, (g4k - g64) / (kPageSize - 64));
  c.grant_copy_per_op = std::max(0.0, (g8x4k - g4k) / (kScratchPages - 1) - c.grant_copy_per_byte * kPageSize);
  c.grant_copy_per_call = std::max(0.0, g64 - c.grant_copy_per_op - c.grant_copy_per_byte * 64);

  if (auto ok = measure_mapping_costs(mapper, self, refs[0], iterations, c); !ok) return ok.error();
  c.measured = true;
  return c;
}

// ---- the policy -----------------------------------------------------------------------------------------------

AutoPolicy::AutoPolicy(GrantMapper& mapper, size_t window_slots, PayloadCosts costs)
    : PayloadPolicy(mapper, window_slots), costs_(std::move(costs)) {}

void AutoPolicy::prepare(TxPacket& pkt, bool sink_reads_payload, TxBatch& batch) {
  uint32_t bytes = 0, pages = 0;
  for (const auto& f : pkt.frags)
    if (f.len != 0) {
      bytes += f.len;
      ++pages;
    }
  const PayloadChoice choice = choose_payload(costs_, sink_reads_payload, bytes, pages);
  ++chosen_[static_cast<size_t>(choice)];
  switch (choice) {
    case PayloadChoice::copy: copy_payload(pkt, batch); break;
    case PayloadChoice::map: map_payload(pkt, batch); break;
    case PayloadChoice::leave:
    case PayloadChoice::lazy: break;  // a reading sink's expose() puts it behind the lazy window
  }
}

Result<std::unique_ptr<PayloadPolicy>> make_auto_policy(Platform& dom0, size_t window_slots) {
  auto measured = measure_payload_costs(dom0);
  PayloadCosts costs;
  if (measured) {
    costs = *measured;
  } else {
    // the figures measured on this machine class (docs/machine-notes.md), so auto still decides as they did.
    costs.memcpy_per_byte = 0.01;
    costs.grant_copy_per_call = 1200;
    costs.grant_copy_per_op = 30;
    costs.grant_copy_per_byte = 0.03;
    costs.map_touch_unmap_per_page = 6000;
    costs.lazy_fault_per_page = 10000;
    costs.note = measured.error().reason;
  }
  auto p = std::make_unique<AutoPolicy>(dom0.mapper(), window_slots, std::move(costs));
  if (auto ok = p->reserve(); !ok) return ok.error();
  return std::unique_ptr<PayloadPolicy>(std::move(p));
}

}  // namespace pvnet
