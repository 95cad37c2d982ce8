// Each protocol violation of docs/protocol.md 4/5 disables only the offending vif (fatal_tx_err, counted once);
// another vif on the same backend keeps forwarding.
#include <gtest/gtest.h>

#include "backend/null_sink.hpp"
#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

using Reqs = std::vector<netif::TxRequest>;

const Violation kViolations[] = {
    {"piece_crosses_page", violation::piece_crosses_page(1000, 3500)},  // 958 bytes from 3500 run past the page
    {"too_many_slots", violation::too_many_pieces(21, 60)},
    {"unknown_extra_type",
     [](ScriptedFrontend& fe) {
       auto r = fe.build(make_frame(1000), true, 42);
       r[0].flags |= netif::txf::extra_info;
       netif::ExtraInfo e{};
       e.type = netif::extra_type::max;
       r.insert(r.begin() + 1, ScriptedFrontend::extra_req(e));
       return r;
     }},
    {"repeated_extra_type",
     [](ScriptedFrontend& fe) {
       auto gso = ScriptedFrontend::gso_extra(netif::gso_type::tcpv4, 1448);
       auto r = fe.build(make_frame(3000, 6), true, 54, 0, &gso);
       netif::ExtraInfo e = gso;
       e.flags = netif::extra_flag::more;
       r[1] = ScriptedFrontend::extra_req(e);
       r.insert(r.begin() + 2, ScriptedFrontend::extra_req(gso));
       return r;
     }},
    {"gso_size_zero", violation::gso_size_zero(3000)},
    {"req_prod_overflow", violation::req_prod_past_ring(1)},
    {"slot_gref_not_kept",
     [](ScriptedFrontend& fe) {
       auto r = fe.build(make_frame(1000), true, 42);
       r[0].gref = fe.grant(fe.alloc_page(), true);  // a real grant, but not a registered slot page
       return r;
     }},
    {"slot_offset_misaligned",
     [](ScriptedFrontend& fe) {
       auto r = fe.build(make_frame(1000), true, 42);
       r[0].offset += 8;
       return r;
     }},
    {"header_longer_than_slot",
     [](ScriptedFrontend& fe) {
       auto r = fe.build(make_frame(1000), true, 42);
       r[0].size += 100;  // first piece = 142 > 128
       r.back().size = static_cast<uint16_t>(r.back().size);
       return r;
     }},
    {"chain_past_req_prod", violation::chain_cut(1000, 1)},  // more_data set, the next piece never published
};

class BackendViolation : public ::testing::TestWithParam<Violation> {};

TEST_P(BackendViolation, DisablesOnlyThatVif) {
  Host h;
  ScriptedFrontend bad(*h.hv, DomId{1}), good(*h.hv, DomId{2});
  VifId vbad = h.attach(bad);
  VifId vgood = h.attach(good);

  bad.send(make_frame(200), 42);  // works before the violation
  h.be->poll_until_idle();
  ASSERT_EQ(bad.tx_responses().size(), 2u);

  Reqs r = GetParam().make(bad);
  if (!r.empty()) bad.push_raw(r);
  good.send(make_frame(1514), 42);
  h.be->poll_until_idle();

  EXPECT_TRUE(h.be->disabled(vbad)) << GetParam().name;
  EXPECT_EQ(h.be->counters(vbad).tx_fatal_errors, 1u);
  EXPECT_FALSE(h.be->disabled(vgood));
  EXPECT_EQ(h.be->counters(vgood).packets_out, 1u);

  // Disabled stays disabled (and is logged once) while the other vif keeps going.
  bad.send(make_frame(200), 42);
  good.send(make_frame(700), 42);
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->counters(vbad).tx_fatal_errors, 1u);
  EXPECT_EQ(h.be->counters(vbad).packets_out, 1u);
  EXPECT_EQ(h.be->counters(vgood).packets_out, 2u);
  EXPECT_EQ(h.be->total().tx_fatal_errors, 1u);

  // The frontend closing still releases everything of the disabled vif.
  bad.set_state(XenbusState::Closing);
  h.be->poll_until_idle();
  EXPECT_EQ(h.be->state(vbad), XenbusState::Closed);
  EXPECT_EQ(h.be->kept_mappings(vbad), 0u);
}

INSTANTIATE_TEST_SUITE_P(All, BackendViolation, ::testing::ValuesIn(kViolations),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace pvnet::test
