// The backend RX stages on plain memory (no hypervisor): rx_drop_reason, claim_rx_buffers (plain netif and RX
// extents) and plan_rx_copies. Every drop reason and the violation have a row.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "backend/rx_stages.hpp"
#include "tests/stages/ring_memory.hpp"

namespace pvnet::test {
namespace {

RxFrame frame_of(uint32_t len, uint8_t gso_type = netif::gso_type::none) {
  RxFrame f;
  f.local.assign(len, std::byte{0x5a});
  f.len = len;
  if (gso_type != netif::gso_type::none) f.gso = GsoInfo{gso_type, 1448};
  return f;
}

TEST(RxDropReason, EachReason) {
  struct Case {
    const char* name;
    RxFrame f;
    RxVifCaps caps;
    bool extents;
    std::optional<DropReason> want;
  };
  const RxVifCaps all{true, true, true}, none{};
  const std::vector<Case> cases = {
      {"fine", frame_of(1500), none, false, std::nullopt},
      {"empty", frame_of(0), all, false, DropReason::rx_bad_length},
      {"longer than netif carries", frame_of(netif::kMaxFrameBytes + 1), all, false, DropReason::rx_bad_length},
      {"two pages without sg", frame_of(5000), none, false, DropReason::rx_no_sg},
      {"two pages with extents: claim decides", frame_of(5000), none, true, std::nullopt},
      {"GSO v4 not asked for", frame_of(5000, netif::gso_type::tcpv4), RxVifCaps{true, false, true}, false,
       DropReason::rx_no_gso},
      {"GSO v6 not asked for", frame_of(5000, netif::gso_type::tcpv6), RxVifCaps{true, true, false}, false,
       DropReason::rx_no_gso},
      {"GSO v6", frame_of(5000, netif::gso_type::tcpv6), all, false, std::nullopt},
      {"more pages than the ring", frame_of(65000, netif::gso_type::tcpv4), all, false, std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(rx_drop_reason(c.f, c.caps, c.extents, 256), c.want) << c.name;
  // 16 pages and a GSO extra need 17 slots: a ring of 16 never holds them.
  EXPECT_EQ(rx_drop_reason(frame_of(65000, netif::gso_type::tcpv4), all, false, 16), DropReason::rx_too_many_slots);
  EXPECT_EQ(rx_drop_reason(frame_of(65000, netif::gso_type::tcpv4), all, true, 16), std::nullopt);
}

std::vector<netif::RxRequest> rx_reqs(uint16_t n) {
  std::vector<netif::RxRequest> r;
  for (uint16_t i = 0; i < n; ++i) r.push_back(netif::RxRequest{i, 0, GrantRef{100u + i}});
  return r;
}

TEST(ClaimRxBuffers, PlainNetifTakesWholePagesOrWaits) {
  RxRingMemory ring;
  RxExtents ext;
  ring.push(rx_reqs(2));
  const RxVifCaps caps{true, true, true};
  RxClaim c = claim_rx_buffers(ring.back, ext, frame_of(5000, netif::gso_type::tcpv4), caps);
  EXPECT_EQ(c.kind, RxClaim::Kind::wait) << "two pages and the extra need three buffers";
  EXPECT_TRUE(ext.held.empty()) << "plain netif consumes nothing while it waits";
  ring.push(rx_reqs(1));
  c = claim_rx_buffers(ring.back, ext, frame_of(5000, netif::gso_type::tcpv4), caps);
  ASSERT_EQ(c.kind, RxClaim::Kind::take);
  EXPECT_EQ(c.take, 3u);
  ASSERT_EQ(ext.held.size(), 3u);
  EXPECT_EQ(ext.held[2].req.gref, GrantRef{100});  // the third request pushed (ids restart in rx_reqs)
  EXPECT_EQ(ext.held[0].offset, 0);
  EXPECT_EQ(ext.held[0].length, kPageSize);
}

struct ExtentWorld {
  RxRingMemory ring;
  std::array<netif::RxExtent, netif::kRxRingSize> table{};
  RxExtents ext;
  explicit ExtentWorld(uint16_t headroom) {
    ext.active = true;
    ext.table = reinterpret_cast<const std::byte*>(table.data());
    ext.headroom = headroom;
  }
};

TEST(ClaimRxBuffers, ExtentsEachOutcome) {
  const RxVifCaps sg{true, true, true}, no_sg{};
  struct Case {
    const char* name;
    netif::RxExtent extent;  // every buffer's
    uint16_t posted;
    uint32_t len;
    RxVifCaps caps;
    RxClaim::Kind want;
    uint32_t take = 0;
    DropReason drop = DropReason::rx_too_many_slots;
  };
  const std::vector<Case> cases = {
      {"one buffer after the headroom", {0, 2048}, 4, 1984, sg, RxClaim::Kind::take, 1},
      {"the headroom does not count", {0, 2048}, 4, 1985, sg, RxClaim::Kind::take, 2},
      {"not enough posted yet", {0, 1024}, 1, 2000, sg, RxClaim::Kind::wait},
      {"two buffers without sg", {0, 2048}, 4, 3000, no_sg, RxClaim::Kind::drop, 0, DropReason::rx_no_sg},
      {"empty extent", {0, 0}, 1, 100, sg, RxClaim::Kind::violation},
      {"extent past its page", {4000, 200}, 1, 100, sg, RxClaim::Kind::violation},
      {"extent inside the headroom", {0, 64}, 1, 100, sg, RxClaim::Kind::violation},
  };
  for (const auto& c : cases) {
    ExtentWorld w(64);
    for (auto& e : w.table) e = c.extent;
    w.ring.push(rx_reqs(c.posted));
    RxClaim got = claim_rx_buffers(w.ring.back, w.ext, frame_of(c.len), c.caps);
    ASSERT_EQ(got.kind, c.want) << c.name;
    if (c.want == RxClaim::Kind::take) {
      EXPECT_EQ(got.take, c.take) << c.name;
    }
    if (c.want == RxClaim::Kind::drop) {
      EXPECT_EQ(got.drop, c.drop) << c.name;
    }
  }
}

TEST(ClaimRxBuffers, ExtentsDropAFrameTheWholeRingCannotHold) {
  ExtentWorld w(0);
  for (auto& e : w.table) e = netif::RxExtent{0, 128};
  w.ring.push(rx_reqs(255));
  RxClaim c = claim_rx_buffers(w.ring.back, w.ext, frame_of(60000), RxVifCaps{true, true, true});
  EXPECT_EQ(c.kind, RxClaim::Kind::wait) << "one ring slot is still free";
  w.ring.push(rx_reqs(1));
  c = claim_rx_buffers(w.ring.back, w.ext, frame_of(60000), RxVifCaps{true, true, true});
  ASSERT_EQ(c.kind, RxClaim::Kind::drop);
  EXPECT_EQ(c.drop, DropReason::rx_too_many_slots);
  EXPECT_EQ(w.ext.held.size(), 256u) << "held for the next frame";
}

TEST(PlanRxCopies, LocalBytesCutAtPagesWithGsoExtra) {
  RxFrame f = frame_of(5000, netif::gso_type::tcpv6);
  f.rx_flags = netif::rxf::csum_blank;
  const std::vector<RxBuf> bufs = {RxBuf{{1, 0, GrantRef{11}}, 0, kPageSize}, RxBuf{{2, 0, GrantRef{12}}, 0, kPageSize},
                                   RxBuf{{3, 0, GrantRef{13}}, 0, kPageSize}};
  const RxCopyPlan p = plan_rx_copies(f, bufs, DomId{7}, 0);
  ASSERT_EQ(p.ops.size(), 2u);
  EXPECT_EQ(p.ops[0].len, 4096);
  EXPECT_EQ(p.ops[0].dst.ref, GrantRef{11});
  EXPECT_EQ(p.ops[0].dst.dom, DomId{7});
  EXPECT_EQ(p.ops[0].src.ptr, f.local.data());
  EXPECT_EQ(p.ops[1].len, 904);
  EXPECT_EQ(p.ops[1].dst.ref, GrantRef{13}) << "the second buffer is the GSO extra's slot";
  EXPECT_EQ(p.ops[1].src.ptr, f.local.data() + 4096);
  ASSERT_EQ(p.rsps.size(), 3u);
  EXPECT_EQ(p.extra_at, 1u);
  EXPECT_EQ(p.data_buffers, 2u);
  EXPECT_EQ(p.rsps[0].id, 1);
  EXPECT_EQ(p.rsps[0].status, 4096);
  EXPECT_EQ(p.rsps[0].flags, netif::rxf::more_data | netif::rxf::csum_blank | netif::rxf::data_validated |
                                 netif::rxf::extra_info);
  EXPECT_EQ(p.rsps[2].id, 3);
  EXPECT_EQ(p.rsps[2].status, 904);
  EXPECT_EQ(p.rsps[2].flags, 0);
  netif::ExtraInfo e;
  std::memcpy(&e, &p.rsps[1], sizeof e);
  EXPECT_EQ(e.type, netif::extra_type::gso);
  EXPECT_EQ(e.u.gso.type, netif::gso_type::tcpv6);
  EXPECT_EQ(e.u.gso.size, 1448);
}

TEST(PlanRxCopies, ExtentsWithHeadroomAndGrantFrags) {
  RxFrame f;
  f.local.assign(100, std::byte{1});
  TxFrag g{DomId{3}, GrantRef{50}, 200, 1000};  // forwarded gref -> gref
  f.frags.push_back(g);
  f.len = 1100;
  f.rx_flags = netif::rxf::data_validated;
  const std::vector<RxBuf> bufs = {RxBuf{{4, 0, GrantRef{21}}, 1024, 600}, RxBuf{{5, 0, GrantRef{22}}, 2048, 2048}};
  const RxCopyPlan p = plan_rx_copies(f, bufs, DomId{9}, 64);
  // Buffer 0 holds 600 - 64 = 536 bytes from offset 1088: 100 local, then 436 of the frag; buffer 1 the rest.
  ASSERT_EQ(p.ops.size(), 3u);
  EXPECT_FALSE(p.ops[0].src.is_gref);
  EXPECT_EQ(p.ops[0].dst.offset, 1088);
  EXPECT_EQ(p.ops[0].len, 100);
  EXPECT_TRUE(p.ops[1].src.is_gref);
  EXPECT_EQ(p.ops[1].src.ref, GrantRef{50});
  EXPECT_EQ(p.ops[1].src.offset, 200);
  EXPECT_EQ(p.ops[1].dst.offset, 1188);
  EXPECT_EQ(p.ops[1].len, 436);
  EXPECT_EQ(p.ops[2].src.offset, 636);
  EXPECT_EQ(p.ops[2].dst.ref, GrantRef{22});
  EXPECT_EQ(p.ops[2].dst.offset, 2048);
  EXPECT_EQ(p.ops[2].len, 564);
  ASSERT_EQ(p.rsps.size(), 2u);
  EXPECT_EQ(p.extra_at, SIZE_MAX);
  EXPECT_EQ(p.rsps[0].offset, 1088);
  EXPECT_EQ(p.rsps[0].status, 536);
  EXPECT_EQ(p.rsps[0].flags, netif::rxf::more_data | netif::rxf::data_validated);
  EXPECT_EQ(p.rsps[1].offset, 2048);
  EXPECT_EQ(p.rsps[1].status, 564);
}

}  // namespace
}  // namespace pvnet::test
