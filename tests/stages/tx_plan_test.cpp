// netfront's plan_tx on frames in plain memory (no hypervisor): the header-slot length, the payload pieces,
// linearisation, the counts of requests, ids and grants, and every refusal.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "frontend/tx_plan.hpp"

namespace pvnet::test {
namespace {

// An Ethernet + IPv4 + TCP frame (54 header bytes) of `len` bytes.
std::vector<std::byte> tcp_frame(size_t len) {
  std::vector<std::byte> f(len, std::byte{0x11});
  const uint8_t hdr[54] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,  // Ethernet
                           0x45, 0, uint8_t((len - 14) >> 8), uint8_t(len - 14), 0, 1, 0x40, 0, 64, 6, 0, 0,
                           10, 0, 0, 1, 10, 0, 0, 2,  // IPv4
                           0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0};
  std::memcpy(f.data(), hdr, sizeof hdr);
  return f;
}

// The frame cut into pieces of the given lengths (each in a page of its own, from offset 0).
std::vector<TxSeg> pieces_of(const std::vector<std::byte>& f, const std::vector<uint16_t>& lens) {
  std::vector<TxSeg> s;
  size_t at = 0;
  uint64_t pfn = 100;
  for (uint16_t n : lens) {
    s.push_back(TxSeg{Pfn{pfn++}, 0, n, f.data() + at});
    at += n;
  }
  return s;
}

const TxCaps kPlainSg{false, 128, true, true, true};
const TxCaps kSlotsSg{true, 128, true, true, true};
const TxCaps kSlotsNoSg{true, 128, false, false, false};

TEST(PlanTx, Refusals) {
  const auto f = tcp_frame(5000);
  TxPlan plan;
  struct Case {
    const char* name;
    std::vector<TxSeg> segs;
    uint8_t gso_type;
    uint16_t gso_size;
    TxCaps caps;
    const char* why;
  };
  std::vector<TxSeg> huge;
  for (int i = 0; i < 17; ++i) huge.push_back(TxSeg{Pfn{uint64_t(i)}, 0, 4000, f.data()});
  const std::vector<Case> cases = {
      {"empty", {}, 0, 0, kPlainSg, "frame of 0 B: netif carries 1..65535"},
      {"over 65535", huge, 0, 0, kPlainSg, "frame of 68000 B: netif carries 1..65535"},
      {"GSO not offered", pieces_of(f, {4000, 1000}), netif::gso_type::tcpv6, 1448, TxCaps{false, 128, true, true, false},
       "GSO type not offered by the backend, or MSS 0"},
      {"MSS 0", pieces_of(f, {4000, 1000}), netif::gso_type::tcpv4, 0, kPlainSg,
       "GSO type not offered by the backend, or MSS 0"},
      {"over a page without sg", pieces_of(f, {4000, 1000}), 0, 0, kSlotsNoSg,
       "backend lacks feature-sg: frames above one page cannot be sent"},
  };
  for (const auto& c : cases) {
    auto r = plan_tx(c.segs, c.gso_type, c.gso_size, c.caps, plan);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().reason, c.why) << c.name;
  }
}

TEST(PlanTx, Shapes) {
  const auto f = tcp_frame(5000);
  struct Case {
    const char* name;
    std::vector<uint16_t> lens;
    TxCaps caps;
    bool gso;
    // what the plan must say
    bool use_slot;
    uint32_t hdr_len;
    size_t payload_pieces;
    uint32_t payload_first_offset;
    bool linearise;
    uint32_t n_linear, n_data, n_grants, n_ring, gathered;
  };
  const std::vector<Case> cases = {
      {"plain netif, one piece", {3000}, kPlainSg, false, false, 0, 1, 0, false, 0, 1, 1, 1, 0},
      {"plain netif, GSO", {4000, 1000}, kPlainSg, true, false, 0, 2, 0, false, 0, 2, 2, 3, 0},
      {"slot: parsed TCP header", {3000}, kSlotsSg, false, true, 54, 1, 54, false, 0, 2, 1, 2, 0},
      {"slot: the whole frame", {100}, kSlotsSg, false, true, 100, 0, 0, false, 0, 1, 0, 1, 0},
      {"slot: header scattered, gathered to parse", {20, 2980}, kSlotsSg, false, true, 54, 1, 34, false, 0, 2, 1, 2,
       128},
      {"slot: header exactly one piece", {54, 2946}, kSlotsSg, false, true, 54, 1, 0, false, 0, 2, 1, 2, 128},
      {"no sg: slot given up above its size", {1000}, kSlotsNoSg, false, false, 54, 1, 0, false, 0, 1, 1, 1, 0},
      {"no sg: two pieces linearised", {100, 900}, TxCaps{false, 128, false, false, false}, false, false, 0, 2, 0,
       true, 1, 1, 1, 1, 0},
      {"19 pieces: linearised under XEN_NETIF_NR_SLOTS_MIN",
       std::vector<uint16_t>(19, 200), kPlainSg, false, false, 0, 19, 0, true, 1, 1, 1, 1, 0},
      {"18 pieces: as they are", std::vector<uint16_t>(18, 200), kPlainSg, false, false, 0, 18, 0, false, 0, 18, 18,
       18, 0},
  };
  for (const auto& c : cases) {
    TxPlan plan;
    auto r = plan_tx(pieces_of(f, c.lens), c.gso ? netif::gso_type::tcpv4 : 0, c.gso ? 1448 : 0, c.caps, plan);
    ASSERT_TRUE(r) << c.name << ": " << r.error().reason;
    EXPECT_EQ(plan.use_slot, c.use_slot) << c.name;
    if (c.use_slot) {
      EXPECT_EQ(plan.hdr_len, c.hdr_len) << c.name;
    }
    ASSERT_EQ(plan.payload.size(), c.payload_pieces) << c.name;
    if (!plan.payload.empty()) {
      EXPECT_EQ(plan.payload[0].offset, c.payload_first_offset) << c.name;
    }
    uint64_t sum = 0;
    for (const auto& s : plan.payload) sum += s.len;
    EXPECT_EQ(sum, plan.payload_bytes) << c.name;
    EXPECT_EQ(plan.payload_bytes + (plan.use_slot ? plan.hdr_len : 0), plan.total) << c.name;
    EXPECT_EQ(plan.linearise, c.linearise) << c.name;
    EXPECT_EQ(plan.n_linear, c.n_linear) << c.name;
    EXPECT_EQ(plan.n_data, c.n_data) << c.name;
    EXPECT_EQ(plan.n_grants, c.n_grants) << c.name;
    EXPECT_EQ(plan.n_ring, c.n_ring) << c.name;
    EXPECT_EQ(plan.gathered, c.gathered) << c.name;
  }
}

TEST(PlanTx, ReusedPlanStartsOver) {
  const auto f = tcp_frame(5000);
  TxPlan plan;
  ASSERT_TRUE(plan_tx(pieces_of(f, std::vector<uint16_t>(19, 200)), 0, 0, kPlainSg, plan));
  ASSERT_TRUE(plan_tx(pieces_of(f, {100}), 0, 0, kSlotsSg, plan));
  EXPECT_TRUE(plan.payload.empty());
  EXPECT_FALSE(plan.linearise);
  EXPECT_EQ(plan.n_linear, 0u);
  EXPECT_EQ(plan.payload_bytes, 0u);
}

TEST(TxSlotHeaderLen, UnparseableFillsTheSlot) {
  std::vector<std::byte> junk = tcp_frame(1000);
  junk[14] = std::byte{0xf5};  // IPv4 ethertype, IP version 15: malformed
  uint32_t gathered = 0;
  EXPECT_EQ(tx_slot_header_len(pieces_of(junk, {1000}), 1000, 256, gathered), 256u);
  EXPECT_EQ(gathered, 0u);
}

}  // namespace
}  // namespace pvnet::test
