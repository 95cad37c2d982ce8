// The TX path's judgement as pure stages, in the order and with the names of xen-netback's
// xenvif_tx_build_gops: read the packet's chain off the ring (xenvif_count_requests + xenvif_get_extras), check
// it whole (fatal or not), claim its request ids, and decide whether an odd but legal packet is dropped. None of
// them touches a hypervisor: they read private copies of the requests and the vif's negotiated state, so
// tests/stages/ drives them from plain memory. Backend::tx_action (tx_path.cpp) strings them together.
#pragma once
#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include <boost/container/static_vector.hpp>

#include "backend/drop_reason.hpp"
#include "backend/tx_packet.hpp"
#include "grant-sim/platform/grant_mapper.hpp"
#include "shared-ring/netif.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

// Linux xen-netback: a packet of more than XEN_NETBK_LEGACY_SLOTS_MAX (= XEN_NETIF_NR_SLOTS_MIN) slots is dropped
// with an error; one of fatal_skb_slots (20) or more is a protocol violation.
inline constexpr uint32_t kTxMaxSlotsPerPacket = netif::kNrSlotsMin;

// A header-slot page the frontend registered (ADD_GREF_MAPPING), mapped for the connection's life.
struct KeptMapping {
  const std::byte* addr = nullptr;
  MapHandle handle;
};
using KeptMappings = std::unordered_map<GrantRef, KeptMapping>;

// One packet's requests, copied out of the ring: the first, its extra-info slots, its following pieces.
struct TxChain {
  netif::TxRequest first{};
  std::array<netif::ExtraInfo, netif::extra_type::max - 1> extras{};  // by type - 1; type none: not present
  uint32_t n_extras = 0;
  boost::container::static_vector<netif::TxRequest, kTxFatalSlots - 1> pieces;

  uint32_t slots() const { return 1 + n_extras + static_cast<uint32_t>(pieces.size()); }
  const netif::ExtraInfo* extra(uint8_t type) const;  // nullptr if absent
  std::optional<GsoInfo> gso() const;                  // the GSO extra's type and size, if present
};

// The chain runs past req_prod after `slots` slots.
struct TxChainIncomplete {
  uint32_t slots = 0;
};
// The frontend broke the protocol: the vif is disabled (xenvif_fatal_tx_err).
struct Violation {
  std::string why;
};

// Reads the packet starting at `cons` with `avail` requests published. Every field is read once, from a private
// copy (RING_COPY_REQUEST). A bad extra type, a repeated one or fatal_skb_slots slots are violations.
std::variant<TxChain, TxChainIncomplete, Violation> read_tx_chain(const netif::TxBackRing& ring, ring::RingIdx cons,
                                                                 uint32_t avail);
// netfront publishes whole packets, so a chain past req_prod is a violation, as Linux's "Missing extra info" /
// "Asked for N slots but exceeds this limit".
Violation past_req_prod(const TxChainIncomplete& c, uint32_t avail);

// What the checks need to know of the vif: what it negotiated and the pages it keeps mapped.
struct TxVifRules {
  bool header_slots = false;
  uint32_t slot_size = netif::kHeaderSlotSizeDefault;
  const KeptMappings* kept = nullptr;
};

// A chain that passed the whole-chain checks, with what they worked out.
struct TxChecked {
  uint32_t first_len = 0;              // bytes of the first request's own piece (first.size - rest)
  bool first_too_small = false;        // first.size < rest: dropped, not fatal (buggy frontends do it)
  const KeptMapping* kept = nullptr;   // a header-slot packet: the kept page its header is in
};

// The whole-chain checks (docs/protocol.md 4 "Errors", 5 "Backend checks"): pieces inside their pages, a header
// slot that names a kept mapping at a slot boundary and fits the slot, a GSO extra of a known type and a non-zero
// size. A failure is a violation.
Result<TxChecked> check_tx_chain(const TxChain& chain, const TxVifRules& vif);

// An odd but legal packet the backend answers with an error and counts (xenvif_tx_err), the vif kept: too many
// slots, a first size smaller than the rest, a runt. nullopt: forward it. (A repeated id is claim_request_ids'.)
std::optional<DropReason> tx_drop_reason(const TxChain& chain, const TxChecked& checked);

// The MTU bounds the L3 packet of a non-GSO frame (pkt.hdr parsed); a GSO super-frame is bounded by the 16-bit size.
bool tx_over_mtu(const TxPacket& pkt, uint32_t mtu);

// The requests to answer for the packet, in ring order (extras answered NULL).
void fill_tx_completion(const TxChain& chain, TxCompletion& c);

// netif.h leaves ids to the frontend; one still in flight would make its two answers ambiguous to the guest. Sets
// the packet's ids in `inflight` (every id in flight, this packet's included as they are checked, so a repeat
// within the packet or of an older packet's id is found in one pass). false: an id repeats; the ones this packet
// set are cleared again and nothing is claimed.
bool claim_request_ids(std::bitset<1u << 16>& inflight, const TxCompletion& c);

}  // namespace pvnet
