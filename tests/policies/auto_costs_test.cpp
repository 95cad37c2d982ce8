// auto's start-up measurement (on dom0's own scratch grants, with the backend's GrantMapper) gives sane numbers,
// and its decision table is what those numbers imply.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "backend/policy_auto.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"

namespace pvnet {
namespace {

struct Dom0 {
  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> dom0;
  Dom0() {
    auto h = SimHypervisor::create();
    EXPECT_TRUE(h.ok());
    hv = std::move(h).value();
    auto d = hv->attach(kDom0);
    EXPECT_TRUE(d.ok());
    dom0 = std::move(d).value();
  }
};

TEST(AutoCosts, MeasurementGivesSaneNumbersAndGivesEverythingBack) {
  Dom0 w;
  const uint32_t grants_free = w.dom0->grant_table().free_count();
  const GrantCounters before = w.dom0->mapper().counters();
  auto c = measure_payload_costs(*w.dom0, 200);
  ASSERT_TRUE(c.ok()) << c.error().reason;
  EXPECT_TRUE(c->measured);
  EXPECT_EQ(c->iterations, 200u);
  for (double v : {c->map_touch_unmap_per_page, c->lazy_fault_per_page, c->grant_copy_per_call}) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GT(v, 0.0);
    EXPECT_LT(v, 1e6);  // a millisecond for one page would mean the clock or the mapper is broken
  }
  EXPECT_GE(c->memcpy_per_byte, 0.0);
  EXPECT_LT(c->memcpy_per_byte, 10.0);
  EXPECT_GE(c->grant_copy_per_byte, 0.0);
  EXPECT_GE(c->grant_copy_per_op, 0.0);
  // docs/machine-notes.md: on this machine class mapping a page (a real mmap + munmap) never beats copying 4 KiB.
  EXPECT_GT(c->map_touch_unmap_per_page, c->memcpy_per_byte * kPageSize);
  EXPECT_GT(c->map_ns(1), c->copy_ns(1460, 1));
  EXPECT_GT(c->lazy_ns(1), c->copy_ns(1460, 1));

  // It really did the operations it timed, with the backend's mapper, and gave every mapping and grant back.
  const GrantCounters d = w.dom0->mapper().counters() - before;
  EXPECT_GE(d.pages_mapped, 2u * 200u);  // 200 eager maps + 200 lazy faults
  EXPECT_GE(d.faults, 200u);
  EXPECT_GE(d.copy_ops, 3u * 200u);
  EXPECT_EQ(d.pages_mapped, d.pages_unmapped);
  EXPECT_EQ(d.failed_ops, 0u);
  EXPECT_EQ(w.dom0->grant_table().free_count(), grants_free);
}

TEST(AutoCosts, DecisionTableIsWhatTheMeasuredNumbersImply) {
  Dom0 w;
  auto c = measure_payload_costs(*w.dom0, 200);
  ASSERT_TRUE(c.ok()) << c.error().reason;
  auto table = decision_table(*c);
  ASSERT_FALSE(table.empty());
  size_t reading = 0;
  for (const auto& d : table) {
    SCOPED_TRACE(std::to_string(d.bytes) + " B, reads=" + std::to_string(d.reads));
    if (!d.reads) {
      EXPECT_EQ(d.choice, PayloadChoice::leave);  // nothing read: nothing paid
      continue;
    }
    ++reading;
    // Recomputed here from the raw figures, independently of choose_payload().
    const double copy = c->grant_copy_per_call + c->grant_copy_per_op * d.pages + c->grant_copy_per_byte * d.bytes;
    const double map = c->map_touch_unmap_per_page * d.pages;
    const double lazy = c->lazy_fault_per_page * d.pages;
    const double best = std::min({copy, map, lazy});
    const double chosen = d.choice == PayloadChoice::copy ? copy : d.choice == PayloadChoice::map ? map : lazy;
    EXPECT_NE(d.choice, PayloadChoice::leave);
    EXPECT_EQ(chosen, best);
  }
  EXPECT_GT(reading, 0u);
  // And on this machine class that is a copy for a full-size Ethernet payload (docs/machine-notes.md, docs/performance.md).
  EXPECT_EQ(choose_payload(*c, true, 1460, 1), PayloadChoice::copy);
}

TEST(AutoCosts, TheRuleFollowsTheNumbersNotAFixedAnswer) {
  PayloadCosts c;
  c.grant_copy_per_call = 100, c.grant_copy_per_op = 10, c.grant_copy_per_byte = 1;  // expensive bytes
  c.map_touch_unmap_per_page = 2000, c.lazy_fault_per_page = 3000;
  EXPECT_EQ(choose_payload(c, true, 64, 1), PayloadChoice::copy);    // 174 < 2000
  EXPECT_EQ(choose_payload(c, true, 4096, 1), PayloadChoice::map);   // 4206 > 2000
  c.lazy_fault_per_page = 1000;
  EXPECT_EQ(choose_payload(c, true, 4096, 1), PayloadChoice::lazy);
  EXPECT_EQ(choose_payload(c, false, 4096, 1), PayloadChoice::leave);
  EXPECT_EQ(choose_payload(c, true, 0, 0), PayloadChoice::leave);
}

TEST(AutoCosts, BackendWithAutoOffersHeaderSlotsAndTheFixedOldDesignsDoNot) {
  for (auto k : kAllPayloadPolicies) {
    Dom0 w;
    BackendOptions bo;
    bo.payload_policy = k;
    auto be = Backend::create(*w.dom0, bo);
    ASSERT_TRUE(be.ok()) << be.error().reason;
    EXPECT_EQ((*be)->payload_policy().kind(), k);
    auto vif = (*be)->add_vif(DomId{1}, 0);
    ASSERT_TRUE(vif.ok()) << vif.error().reason;
    auto v = w.dom0->store().read((*be)->paths(*vif).backend + "/feature-header-slots");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, payload_policy_traits(k).offers_header_slots ? "1" : "0") << to_string(k);
    EXPECT_EQ(parse_payload_policy(to_string(k)), k);
  }
  EXPECT_EQ(parse_payload_policy("auto"), PayloadPolicyKind::automatic);
  EXPECT_FALSE(parse_payload_policy("bogus").has_value());
}

}  // namespace
}  // namespace pvnet
