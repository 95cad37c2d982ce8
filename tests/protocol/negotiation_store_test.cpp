// The xenstore negotiation module (shared-ring/negotiation): every field of BackendFeatures and FrontendKeys
// survives write -> read, each refusal of FrontendKeys::read (Backend::connect's reasons) and of
// BackendFeatures::read (Netfront::connect's) comes with its exact text, and the recall values parse strictly.
#include <gtest/gtest.h>

#include <bit>
#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grant-sim/sim/sim_hypervisor.hpp"
#include "shared-ring/header_slots.hpp"
#include "shared-ring/negotiation/features.hpp"
#include "shared-ring/negotiation/keys.hpp"
#include "shared-ring/negotiation/recall.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet::netif {
namespace {

class NegotiationStore : public ::testing::Test {
 protected:
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<Platform> dom0 = hv->attach(kDom0).value();
  Store& store() { return dom0->store(); }
  const std::string fe = vif_frontend_dir(DomId{3}, 0);
  const std::string be = vif_paths(kDom0, DomId{3}, 0).backend;
  std::string at(const std::string& dir, std::string_view key) { return key_path(dir, key); }
};

// ---- BackendFeatures ----------------------------------------------------------------------------------------------

struct OfferCase {
  const char* name;
  std::function<void(BackendFeatures&)> change;
};

TEST_F(NegotiationStore, EveryBackendFeatureSurvivesWriteThenRead) {
  const OfferCase cases[] = {
      {"defaults", [](BackendFeatures&) {}},
      {"no sg", [](BackendFeatures& f) { f.sg = false; }},
      {"no gso tcpv4", [](BackendFeatures& f) { f.gso_tcpv4 = false; }},
      {"no gso tcpv6", [](BackendFeatures& f) { f.gso_tcpv6 = false; }},
      {"no split event channels", [](BackendFeatures& f) { f.split_event_channels = false; }},
      {"no ctrl ring", [](BackendFeatures& f) { f.ctrl_ring = false; }},
      {"no header slots", [](BackendFeatures& f) { f.header_slots = false; }},
      {"no rx extents", [](BackendFeatures& f) { f.rx_extents = false; }},
      {"tx ring order 1", [](BackendFeatures& f) { f.max_tx_ring_page_order = 1; }},
      {"tx ring order max", [](BackendFeatures& f) { f.max_tx_ring_page_order = kTxRingPageOrderMax; }},
      {"mtu 9000", [](BackendFeatures& f) { f.mtu = 9000; }},
      {"no mtu", [](BackendFeatures& f) { f.mtu.reset(); }},
      {"nothing but rx copy",
       [](BackendFeatures& f) {
         f = BackendFeatures{false, false, false, true, false, false, false, false, 0, 68};
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    (void)store().remove(be);
    BackendFeatures f;
    c.change(f);
    ASSERT_TRUE(f.write(store(), be));
    auto back = BackendFeatures::read(store(), be);
    ASSERT_TRUE(back) << back.error().reason;
    EXPECT_EQ(*back, f);
  }
}

TEST_F(NegotiationStore, BackendWritesEveryFlagAsNetbackDoes) {
  BackendFeatures f;
  f.ctrl_ring = false;
  ASSERT_TRUE(f.write(store(), be));
  EXPECT_EQ(store().read_opt(at(be, "feature-sg")), "1");
  EXPECT_EQ(store().read_opt(at(be, "feature-ctrl-ring")), "0");  // said, not left out
  EXPECT_EQ(store().read_opt(at(be, "feature-rx-flip")), "0");
  EXPECT_EQ(store().read_opt(at(be, "max-tx-ring-page-order")), "0");
  EXPECT_EQ(store().read_opt(at(be, "mtu")), "1500");
}

TEST_F(NegotiationStore, ABackendWithoutRxCopyIsRefused) {
  BackendFeatures f;
  f.rx_copy = false;
  ASSERT_TRUE(f.write(store(), be));
  auto r = BackendFeatures::read(store(), be);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EOPNOTSUPP);
  EXPECT_EQ(r.error().reason, "backend lacks feature-rx-copy (the only RX mode netfront speaks)");
}

TEST_F(NegotiationStore, AnMtuOutsideOneTo65535ReadsAsUnsaid) {
  for (const char* v : {"0", "65536", "-1", "1500x", ""}) {
    SCOPED_TRACE(v);
    ASSERT_TRUE(BackendFeatures{}.write(store(), be));
    ASSERT_TRUE(store().write(at(be, key::mtu), v));
    auto r = BackendFeatures::read(store(), be);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->mtu.has_value());
  }
}

// ---- FrontendKeys -------------------------------------------------------------------------------------------------

BackendFeatures everything_offered() {
  BackendFeatures f;
  f.max_tx_ring_page_order = kTxRingPageOrderMax;
  return f;
}

FrontendKeys plain_keys() {
  FrontendKeys k;
  k.tx_ring_refs = {8};
  k.rx_ring_ref = 9;
  k.tx_port = k.rx_port = 5;
  return k;
}

struct KeysCase {
  const char* name;
  std::function<void(FrontendKeys&)> change;
};

TEST_F(NegotiationStore, EveryFrontendKeySurvivesWriteThenRead) {
  const KeysCase cases[] = {
      {"plain netif", [](FrontendKeys&) {}},
      {"two-page tx ring", [](FrontendKeys& k) { k.tx_ring_refs = {20, 21}; }},
      {"four-page tx ring", [](FrontendKeys& k) { k.tx_ring_refs = {30, 31, 32, 33}; }},
      {"rx ring ref", [](FrontendKeys& k) { k.rx_ring_ref = 4000; }},
      {"split event channels",
       [](FrontendKeys& k) {
         k.split_event_channels = true;
         k.tx_port = 7;
         k.rx_port = 11;
       }},
      {"shared port", [](FrontendKeys& k) { k.tx_port = k.rx_port = 12; }},
      {"control ring", [](FrontendKeys& k) { k.ctrl = FrontendKeys::CtrlRing{44, 13}; }},
      {"no rx notify", [](FrontendKeys& k) { k.rx_notify = false; }},
      {"sg", [](FrontendKeys& k) { k.sg = true; }},
      {"gso tcpv4", [](FrontendKeys& k) { k.gso_tcpv4 = true; }},
      {"gso tcpv6", [](FrontendKeys& k) { k.gso_tcpv6 = true; }},
      {"no csum offload", [](FrontendKeys& k) { k.no_csum_offload = true; }},
      {"header slots of 64",
       [](FrontendKeys& k) {
         k.ctrl = FrontendKeys::CtrlRing{44, 13};
         k.header_slot_size = kHeaderSlotSizeMin;
       }},
      {"header slots of 2048",
       [](FrontendKeys& k) {
         k.ctrl = FrontendKeys::CtrlRing{44, 13};
         k.header_slot_size = kHeaderSlotSizeMax;
       }},
      {"rx extents", [](FrontendKeys& k) { k.rx_extents = FrontendKeys::RxExtents{55, 0}; }},
      {"rx extents with headroom",
       [](FrontendKeys& k) { k.rx_extents = FrontendKeys::RxExtents{55, kRxExtentHeadroomMax}; }},
      {"everything",
       [](FrontendKeys& k) {
         k.tx_ring_refs = {60, 61, 62, 63};
         k.split_event_channels = true;
         k.rx_port = 14;
         k.ctrl = FrontendKeys::CtrlRing{64, 15};
         k.sg = k.gso_tcpv4 = k.gso_tcpv6 = true;
         k.header_slot_size = 256;
         k.rx_extents = FrontendKeys::RxExtents{65, 32};
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    (void)store().remove(fe);
    FrontendKeys k = plain_keys();
    c.change(k);
    ASSERT_TRUE(k.write(store(), fe));
    auto back = FrontendKeys::read(store(), fe, everything_offered());
    ASSERT_TRUE(back) << back.error().reason;
    EXPECT_EQ(*back, k);
    EXPECT_EQ(back->tx_ring_page_order(), static_cast<uint32_t>(std::countr_zero(k.tx_ring_refs.size())));
  }
}

TEST_F(NegotiationStore, OneTxRingPageIsTxRingRefAndSeveralAreNumbered) {
  FrontendKeys k = plain_keys();
  ASSERT_TRUE(k.write(store(), fe));
  EXPECT_EQ(store().read_opt(at(fe, "tx-ring-ref")), "8");
  EXPECT_FALSE(store().read_opt(at(fe, "tx-ring-page-order")));
  ASSERT_TRUE(store().remove(fe));
  k.tx_ring_refs = {1, 2};
  ASSERT_TRUE(k.write(store(), fe));
  EXPECT_FALSE(store().read_opt(at(fe, "tx-ring-ref")));
  EXPECT_EQ(store().read_opt(at(fe, "tx-ring-page-order")), "1");
  EXPECT_EQ(store().read_opt(at(fe, "tx-ring-ref1")), "2");
}

// What is not offered is not read: the frontend gets plain netif, as from a backend that never heard of it.
TEST_F(NegotiationStore, KeysForWhatWasNotOfferedAreIgnored) {
  FrontendKeys k = plain_keys();
  k.ctrl = FrontendKeys::CtrlRing{44, 13};
  k.header_slot_size = 100;  // would be refused if header slots were offered
  k.rx_extents = FrontendKeys::RxExtents{55, 1000};
  ASSERT_TRUE(k.write(store(), fe));
  BackendFeatures offer = everything_offered();
  offer.header_slots = false;
  offer.rx_extents = false;
  auto r = FrontendKeys::read(store(), fe, offer);
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_TRUE(r->ctrl);
  EXPECT_FALSE(r->header_slot_size);
  EXPECT_FALSE(r->rx_extents);
  offer.ctrl_ring = false;
  r = FrontendKeys::read(store(), fe, offer);
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_FALSE(r->ctrl);
}

TEST_F(NegotiationStore, HeaderSlotSizeDefaultsWhenAbsent) {
  FrontendKeys k = plain_keys();
  k.ctrl = FrontendKeys::CtrlRing{44, 13};
  ASSERT_TRUE(k.write(store(), fe));
  ASSERT_TRUE(store().write(at(fe, key::request_header_slots), "1"));
  auto r = FrontendKeys::read(store(), fe, everything_offered());
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_EQ(r->header_slot_size, kHeaderSlotSizeDefault);
}

// Each refusal of Backend::connect, by a raw store edit of an otherwise valid set of keys. The texts are the ones
// the backend writes to <backend>/error (tests/backend match on them).
struct Refusal {
  const char* name;
  std::function<void(Store&, const std::string& dir)> edit;
  int code;
  std::string reason;  // "<fe>" stands for the frontend directory
};

TEST_F(NegotiationStore, EachRefusalOfBackendConnectHasItsReason) {
  auto put = [](Store& s, const std::string& dir, const char* key, const char* v) {
    ASSERT_TRUE(s.write(key_path(dir, key), v));
  };
  auto drop = [](Store& s, const std::string& dir, const char* key) { ASSERT_TRUE(s.remove(key_path(dir, key))); };
  const Refusal cases[] = {
      {"tx ring order above the offer", [&](Store& s, const std::string& d) { put(s, d, "tx-ring-page-order", "3"); },
       EINVAL, "<fe>/tx-ring-page-order is not a number from 0 to the offered 2"},
      {"tx ring order not a number", [&](Store& s, const std::string& d) { put(s, d, "tx-ring-page-order", "two"); },
       EINVAL, "<fe>/tx-ring-page-order is not a number from 0 to the offered 2"},
      {"a numbered tx ring ref missing",
       [&](Store& s, const std::string& d) {
         put(s, d, "tx-ring-page-order", "2");
         put(s, d, "tx-ring-ref0", "1");
         put(s, d, "tx-ring-ref1", "2");
         put(s, d, "tx-ring-ref2", "3");
       },
       EINVAL, "reading <fe>/tx-ring-ref3"},
      {"no tx ring ref", [&](Store& s, const std::string& d) { drop(s, d, "tx-ring-ref"); }, EINVAL,
       "reading <fe>/tx-ring-ref and rx-ring-ref"},
      {"no rx ring ref", [&](Store& s, const std::string& d) { drop(s, d, "rx-ring-ref"); }, EINVAL,
       "reading <fe>/tx-ring-ref and rx-ring-ref"},
      {"a ring ref that is not a number", [&](Store& s, const std::string& d) { put(s, d, "rx-ring-ref", "-1"); },
       EINVAL, "reading <fe>/tx-ring-ref and rx-ring-ref"},
      {"no event channel", [&](Store& s, const std::string& d) { drop(s, d, "event-channel"); }, EINVAL,
       "reading <fe>/event-channel or event-channel-tx/-rx"},
      {"half a split pair",
       [&](Store& s, const std::string& d) {
         drop(s, d, "event-channel");
         put(s, d, "event-channel-tx", "5");
       },
       EINVAL, "reading <fe>/event-channel or event-channel-tx/-rx"},
      {"no request-rx-copy", [&](Store& s, const std::string& d) { drop(s, d, "request-rx-copy"); }, EOPNOTSUPP,
       "<fe>/request-rx-copy is not 1"},
      {"request-rx-copy 0", [&](Store& s, const std::string& d) { put(s, d, "request-rx-copy", "0"); }, EOPNOTSUPP,
       "<fe>/request-rx-copy is not 1"},
      {"a control ring without its port", [&](Store& s, const std::string& d) { put(s, d, "ctrl-ring-ref", "44"); },
       EINVAL, "reading <fe>/event-channel-ctrl"},
      {"header slots without a control ring",
       [&](Store& s, const std::string& d) { put(s, d, "request-header-slots", "1"); }, EINVAL,
       "request-header-slots without a control ring"},
      {"a header slot size not a power of two",
       [&](Store& s, const std::string& d) {
         put(s, d, "ctrl-ring-ref", "44");
         put(s, d, "event-channel-ctrl", "13");
         put(s, d, "request-header-slots", "1");
         put(s, d, "header-slot-size", "100");
       },
       EINVAL, "<fe>/header-slot-size is not a power of two from 64 to 2048"},
      {"a header slot size above 2048",
       [&](Store& s, const std::string& d) {
         put(s, d, "ctrl-ring-ref", "44");
         put(s, d, "event-channel-ctrl", "13");
         put(s, d, "request-header-slots", "1");
         put(s, d, "header-slot-size", "4096");
       },
       EINVAL, "<fe>/header-slot-size is not a power of two from 64 to 2048"},
      {"rx extents without a table", [&](Store& s, const std::string& d) { put(s, d, "request-rx-extents", "1"); },
       EINVAL, "request-rx-extents without <fe>/rx-extents-ref"},
      {"rx extent headroom above 256",
       [&](Store& s, const std::string& d) {
         put(s, d, "request-rx-extents", "1");
         put(s, d, "rx-extents-ref", "55");
         put(s, d, "rx-extent-headroom", "257");
       },
       EINVAL, "<fe>/rx-extent-headroom is not a number from 0 to 256"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    (void)store().remove(fe);
    ASSERT_TRUE(plain_keys().write(store(), fe));
    c.edit(store(), fe);
    auto r = FrontendKeys::read(store(), fe, everything_offered());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, c.code);
    std::string want = c.reason;
    if (auto p = want.find("<fe>"); p != std::string::npos) want.replace(p, 4, fe);
    EXPECT_EQ(r.error().reason, want);
  }
}

// ---- recall -------------------------------------------------------------------------------------------------------

TEST(RecallValues, RequestDoneAndRefusedSurviveFormatThenParse) {
  const recall::Request reqs[] = {{"1", {}}, {"123456789", {GrantRef{0}, GrantRef{7}, GrantRef{UINT32_MAX}}}};
  for (const auto& r : reqs) EXPECT_EQ(recall::parse_request(recall::format_request(r)), r);
  EXPECT_EQ(recall::format_request({"5", {GrantRef{1}, GrantRef{2}}}), "5 1 2");
  const recall::Done dones[] = {{false, "42"}, {true, {}}};
  for (const auto& d : dones) EXPECT_EQ(recall::parse_done(recall::format_done(d)), d);
  EXPECT_EQ(recall::format_done({true, {}}), "error");
  const std::vector<GrantRef> refused = {GrantRef{3}, GrantRef{9}};
  EXPECT_EQ(recall::format_grefs(refused), "3 9");
  EXPECT_EQ(recall::parse_grefs("3 9"), refused);
  EXPECT_EQ(recall::parse_grefs(""), std::vector<GrantRef>{});
  EXPECT_FALSE(recall::parse_done(""));
}

// One strict parser for all three: garbage is refused whole, never read as gref 0 (the old netfront's strtoul).
TEST(RecallValues, GarbageIsRefusedWhole) {
  for (const char* v : {"", "   ", "1 abc", "1 -1", "1 4294967296", "1 2x", "123456789012345678901 1"}) {
    SCOPED_TRACE(v);
    EXPECT_FALSE(recall::parse_request(v));
  }
  for (const char* v : {"x", "3 x", "-3", "3,9"}) {
    SCOPED_TRACE(v);
    EXPECT_FALSE(recall::parse_grefs(v));
  }
  std::string page = "1";
  for (size_t i = 0; i < recall::kMaxGrefs; ++i) page += " 1";
  EXPECT_TRUE(recall::parse_request(page));
  EXPECT_FALSE(recall::parse_request(page + " 1")) << "more than one page of grefs";
}

// ---- header-slot geometry --------------------------------------------------------------------------------------

// What a registration ends up with: the fewest pages of what the frontend wants, the backend allows and one
// gref-table page lists, at a slot size both ends take by the same rule.
TEST(HeaderSlotNegotiation, PagesAreTheFewestOfWantedAllowedAndOneTablePage) {
  EXPECT_EQ(HeaderSlotGeometry::negotiate(128, 4, 64).value().nr_pages(), 4u);
  EXPECT_EQ(HeaderSlotGeometry::negotiate(128, 64, 3).value().nr_pages(), 3u);
  EXPECT_EQ(HeaderSlotGeometry::max_registered_pages(), kPageSize / sizeof(NetifGref));
  EXPECT_EQ(HeaderSlotGeometry::negotiate(2048, 100000, 100000).value().nr_pages(),
            HeaderSlotGeometry::max_registered_pages());
  EXPECT_FALSE(HeaderSlotGeometry::negotiate(128, 4, 0)) << "a backend that allows none";
  EXPECT_FALSE(HeaderSlotGeometry::negotiate(96, 4, 4)) << "not a power of two";
  for (uint32_t size : {32u, 64u, 100u, 128u, 2048u, 4096u})
    EXPECT_EQ(HeaderSlotGeometry::negotiate(size, 1, 1).ok(), HeaderSlotGeometry::valid_slot_size(size)) << size;
}

// ---- paths --------------------------------------------------------------------------------------------------------

TEST(VifPathsTest, FrontendAndBackendDirectories) {
  const VifPaths p = vif_paths(DomId{0}, DomId{7}, 2);
  EXPECT_EQ(p.frontend, "/local/domain/7/device/vif/2");
  EXPECT_EQ(p.backend, "/local/domain/0/backend/vif/7/2");
  EXPECT_EQ(vif_frontend_dir(DomId{7}, 2), p.frontend);
  EXPECT_EQ(vif_backend_root(DomId{0}), "/local/domain/0/backend/vif");
  auto name = backend_dir_name(p.backend);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->frontend, "7");
  EXPECT_EQ(name->handle, "2");
  EXPECT_FALSE(backend_dir_name("vif"));
  EXPECT_FALSE(backend_dir_name("/vif"));
}

}  // namespace
}  // namespace pvnet::netif
