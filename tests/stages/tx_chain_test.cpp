// The backend TX stages on ring contents in plain memory (no hypervisor): read_tx_chain, check_tx_chain,
// tx_drop_reason, claim_request_ids, tx_over_mtu. Every violation and drop reason of read and check has a row.
#include <gtest/gtest.h>

#include <variant>

#include "backend/tx_stages.hpp"
#include "tests/stages/ring_memory.hpp"

namespace pvnet::test {
namespace {

using netif::txf::data_validated;
using netif::txf::extra_info;
using netif::txf::header_slot;
using netif::txf::more_data;
namespace et = netif::extra_type;
namespace ef = netif::extra_flag;

// `n` pieces of 100 bytes after a first of `first_size`, every one but the last with more_data.
std::vector<netif::TxRequest> chain_of(uint32_t n, uint16_t first_size) {
  std::vector<netif::TxRequest> r{tx_req(0, first_size, n ? more_data : 0)};
  for (uint32_t i = 1; i <= n; ++i) r.push_back(tx_req(static_cast<uint16_t>(i), 100, i < n ? more_data : 0));
  return r;
}

struct ReadCase {
  const char* name;
  std::vector<netif::TxRequest> reqs;
  enum { chain, incomplete, violation } want;
  uint32_t slots;   // chain: its slots; incomplete: slots read before req_prod
  const char* why;  // violation
};

TEST(ReadTxChain, EachOutcome) {
  const std::vector<ReadCase> cases = {
      {"one request", {tx_req(1, 60)}, ReadCase::chain, 1, ""},
      {"first and two pieces", chain_of(2, 1000), ReadCase::chain, 3, ""},
      {"GSO extra and a piece",
       {tx_req(1, 3000, extra_info | more_data), tx_extra(et::gso), tx_req(2, 1000)}, ReadCase::chain, 3, ""},
      {"two extras", {tx_req(1, 60, extra_info), tx_extra(et::gso, ef::more), tx_extra(et::mcast_add)},
       ReadCase::chain, 3, ""},
      {"19 slots", chain_of(18, 4000), ReadCase::chain, 19, ""},
      // fatal_skb_slots counts the slots read before another piece: the 20th slot may end the chain...
      {"20 slots", chain_of(19, 4000), ReadCase::chain, 20, ""},
      // ...but a chain that goes on after it is a violation.
      {"a 21st slot", chain_of(20, 4000), ReadCase::violation, 0, "Too many slots (20 or more) in one packet"},
      {"extra type none", {tx_req(1, 60, extra_info), tx_extra(et::none)}, ReadCase::violation, 0,
       "Invalid extra type: 0"},
      {"extra type max", {tx_req(1, 60, extra_info), tx_extra(et::max)}, ReadCase::violation, 0,
       "Invalid extra type: 5"},
      {"repeated extra", {tx_req(1, 60, extra_info), tx_extra(et::gso, ef::more), tx_extra(et::gso)},
       ReadCase::violation, 0, "Repeated extra type: 1"},
      {"more_data past req_prod", {tx_req(1, 2000, more_data), tx_req(2, 100, more_data)}, ReadCase::incomplete, 2,
       ""},
      {"extra past req_prod", {tx_req(1, 60, extra_info)}, ReadCase::incomplete, 1, ""},
      {"more extras past req_prod", {tx_req(1, 60, extra_info), tx_extra(et::gso, ef::more)},
       ReadCase::incomplete, 2, ""},
  };
  for (const auto& c : cases) {
    TxRingMemory ring;
    const uint32_t avail = ring.push(c.reqs);
    auto got = read_tx_chain(ring.back, 0, avail);
    switch (c.want) {
      case ReadCase::chain:
        ASSERT_TRUE(std::holds_alternative<TxChain>(got)) << c.name;
        EXPECT_EQ(std::get<TxChain>(got).slots(), c.slots) << c.name;
        break;
      case ReadCase::incomplete:
        ASSERT_TRUE(std::holds_alternative<TxChainIncomplete>(got)) << c.name;
        EXPECT_EQ(std::get<TxChainIncomplete>(got).slots, c.slots) << c.name;
        break;
      case ReadCase::violation:
        ASSERT_TRUE(std::holds_alternative<Violation>(got)) << c.name;
        EXPECT_EQ(std::get<Violation>(got).why, c.why) << c.name;
        break;
    }
  }
}

TEST(ReadTxChain, ReadsFromConsAndKeepsTheFields) {
  TxRingMemory ring;
  ring.push(std::vector<netif::TxRequest>{tx_req(7, 60)});  // an older packet, already consumed
  ring.push(std::vector<netif::TxRequest>{tx_req(1, 3000, extra_info | more_data | data_validated, 14, 33),
                                          tx_extra(et::gso, 0, 1400, netif::gso_type::tcpv6),
                                          tx_req(2, 2000, 0, 0, 34)});
  auto got = read_tx_chain(ring.back, 1, 3);
  ASSERT_TRUE(std::holds_alternative<TxChain>(got));
  const TxChain& c = std::get<TxChain>(got);
  EXPECT_EQ(c.first.id, 1);
  EXPECT_EQ(c.first.offset, 14);
  EXPECT_EQ(c.first.gref, GrantRef{33});
  EXPECT_EQ(c.n_extras, 1u);
  ASSERT_TRUE(c.gso());
  EXPECT_EQ(c.gso()->type, netif::gso_type::tcpv6);
  EXPECT_EQ(c.gso()->size, 1400);
  ASSERT_EQ(c.pieces.size(), 1u);
  EXPECT_EQ(c.pieces[0].gref, GrantRef{34});
  EXPECT_EQ(c.extra(et::mcast_add), nullptr);
}

TEST(ReadTxChain, PastReqProdSaysHowFar) {
  EXPECT_EQ(past_req_prod(TxChainIncomplete{3}, 3).why, "packet chain of 3+ slots runs past req_prod (3 published)");
}

TxChain read(const std::vector<netif::TxRequest>& reqs) {
  TxRingMemory ring;
  const uint32_t avail = ring.push(reqs);
  auto got = read_tx_chain(ring.back, 0, avail);
  EXPECT_TRUE(std::holds_alternative<TxChain>(got));
  return std::get<TxChain>(got);
}

struct CheckCase {
  const char* name;
  std::vector<netif::TxRequest> reqs;
  const char* why;  // "" : passes
  uint32_t first_len = 0;
  bool first_too_small = false;
};

TEST(CheckTxChain, EachViolationAndWhatPasses) {
  const std::vector<CheckCase> cases = {
      {"plain", {tx_req(1, 1500, more_data), tx_req(2, 1000)}, "", 500},
      {"piece crosses its page", {tx_req(1, 1500, more_data), tx_req(2, 1000, 0, 3100)},
       "Cross page boundary, txp->offset: 3100, size: 1000"},
      {"first crosses its page", {tx_req(1, 1500, 0, 3000)}, "Cross page boundary, txp->offset: 3000, size: 1500"},
      {"first smaller than the rest", {tx_req(1, 100, more_data), tx_req(2, 1000)}, "", 0, true},
      {"header slot not negotiated", {tx_req(1, 60, header_slot, 0, 77)}, "header-slot request without negotiated header slots"},
      {"GSO size 0", {tx_req(1, 3000, extra_info), tx_extra(et::gso, 0, 0)}, "GSO size must not be zero"},
      {"GSO type unknown", {tx_req(1, 3000, extra_info), tx_extra(et::gso, 0, 1448, 9)}, "Bad GSO type 9"},
      {"GSO tcpv6", {tx_req(1, 3000, extra_info), tx_extra(et::gso, 0, 1448, netif::gso_type::tcpv6)}, "", 3000},
  };
  for (const auto& c : cases) {
    auto got = check_tx_chain(read(c.reqs), TxVifRules{});
    if (*c.why) {
      ASSERT_FALSE(got) << c.name;
      EXPECT_EQ(got.error().reason, c.why) << c.name;
    } else {
      ASSERT_TRUE(got) << c.name << ": " << got.error().reason;
      EXPECT_EQ(got->first_len, c.first_len) << c.name;
      EXPECT_EQ(got->first_too_small, c.first_too_small) << c.name;
      EXPECT_EQ(got->kept, nullptr) << c.name;
    }
  }
}

TEST(CheckTxChain, HeaderSlots) {
  alignas(4096) static std::array<std::byte, 4096> slot_page{};
  KeptMappings kept{{GrantRef{77}, KeptMapping{slot_page.data(), MapHandle{}}}};
  const TxVifRules rules{true, 128, &kept};
  struct Case {
    const char* name;
    std::vector<netif::TxRequest> reqs;
    const char* why;
  };
  const std::vector<Case> cases = {
      {"in its slot", {tx_req(1, 1500, header_slot | more_data, 256, 77), tx_req(2, 1446)}, ""},
      {"empty slot header", {tx_req(1, 1000, header_slot | more_data, 128, 77), tx_req(2, 1000)}, ""},
      {"gref not kept", {tx_req(1, 60, header_slot, 0, 78)}, "header-slot gref 78 is not a kept mapping"},
      {"offset off a slot boundary", {tx_req(1, 60, header_slot, 100, 77)},
       "header-slot offset 100 is not a multiple of 128"},
      {"header longer than the slot", {tx_req(1, 200, header_slot, 0, 77)}, "header length 200 exceeds the slot size 128"},
  };
  for (const auto& c : cases) {
    auto got = check_tx_chain(read(c.reqs), rules);
    if (*c.why) {
      ASSERT_FALSE(got) << c.name;
      EXPECT_EQ(got.error().reason, c.why) << c.name;
    } else {
      ASSERT_TRUE(got) << c.name << ": " << got.error().reason;
      EXPECT_EQ(got->kept, &kept.at(GrantRef{77})) << c.name;
    }
  }
  auto unslotted = check_tx_chain(read({tx_req(1, 60, 0, 0, 77)}), rules);
  ASSERT_TRUE(unslotted);
  EXPECT_EQ(unslotted->kept, nullptr) << "a kept gref without NETTXF_header_slot is a plain request";
}

TEST(TxDropReason, OddButLegalPackets) {
  struct Case {
    const char* name;
    std::vector<netif::TxRequest> reqs;
    std::optional<DropReason> want;
  };
  const std::vector<Case> cases = {
      {"fine", chain_of(2, 1000), std::nullopt},
      {"18 slots (XEN_NETIF_NR_SLOTS_MIN)", chain_of(17, 4000), std::nullopt},
      {"19 slots", chain_of(18, 4000), DropReason::too_many_slots},
      {"first smaller than the rest", chain_of(2, 150), DropReason::first_size_smaller_than_rest},
      {"runt", {tx_req(1, 13)}, DropReason::runt},
      {"smallest frame", {tx_req(1, 14)}, std::nullopt},
      {"too many slots before first too small", chain_of(18, 100), DropReason::too_many_slots},
  };
  for (const auto& c : cases) {
    const TxChain chain = read(c.reqs);
    auto checked = check_tx_chain(chain, TxVifRules{});
    ASSERT_TRUE(checked) << c.name;
    EXPECT_EQ(tx_drop_reason(chain, *checked), c.want) << c.name;
  }
}

TEST(ClaimRequestIds, RepeatsAreRefusedAndUndone) {
  std::bitset<1u << 16> inflight;
  TxCompletion a;
  fill_tx_completion(read({tx_req(1, 3000, extra_info | more_data), tx_extra(et::gso), tx_req(2, 1000)}), a);
  ASSERT_EQ(a.slots.size(), 3u);
  EXPECT_TRUE(a.slots[1].extra);
  EXPECT_EQ(a.len, 3000u);
  EXPECT_TRUE(claim_request_ids(inflight, a));
  EXPECT_TRUE(inflight.test(1) && inflight.test(2));
  EXPECT_FALSE(inflight.test(0)) << "an extra's slot has no id";

  TxCompletion b;  // 3 is new, 2 is still in flight: nothing of b is claimed
  fill_tx_completion(read({tx_req(3, 1500, more_data), tx_req(2, 100)}), b);
  EXPECT_FALSE(claim_request_ids(inflight, b));
  EXPECT_FALSE(inflight.test(3));
  EXPECT_TRUE(inflight.test(2)) << "a's id stays claimed";

  TxCompletion c;  // a repeat within one packet
  fill_tx_completion(read({tx_req(5, 1500, more_data), tx_req(5, 100)}), c);
  EXPECT_FALSE(claim_request_ids(inflight, c));
  EXPECT_FALSE(inflight.test(5));
}

TEST(TxOverMtu, BoundsTheL3PacketOfNonGsoFrames) {
  TxPacket p;
  p.len = 1514;
  p.hdr.l2_len = 14;
  EXPECT_FALSE(tx_over_mtu(p, 1500));
  p.len = 1515;
  EXPECT_TRUE(tx_over_mtu(p, 1500));
  p.hdr.l2_len = 18;  // a VLAN tag
  EXPECT_FALSE(tx_over_mtu(p, 1500));
  p.hdr.l2_len = 0;  // unparsed: at least an Ethernet header
  EXPECT_TRUE(tx_over_mtu(p, 1500));
  p.len = 60000;
  p.gso = GsoInfo{netif::gso_type::tcpv4, 1448};
  EXPECT_FALSE(tx_over_mtu(p, 1500));
}

}  // namespace
}  // namespace pvnet::test
