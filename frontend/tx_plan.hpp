// netfront TX's judgement, pure: given a frame cut into page pieces and what the backend negotiated, how it goes on
// the ring (docs/protocol.md 4 and 5): how many header bytes go into a header slot, which pieces follow as granted
// payload, whether it must be linearised into fresh pages (more requests than a backend must accept, or several
// for a backend without feature-sg), and how many requests, ids and grants it needs. Netfront::transmit
// (tx_path.cpp) plans, reserves what the plan needs, then emits; tests/stages/ checks plans on plain memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shared-ring/ids.hpp"
#include "shared-ring/netif.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

// One page piece of a TX frame: `len` bytes at `offset` of guest page `pfn`, readable at `data`.
struct TxSeg {
  Pfn pfn;
  uint16_t offset = 0;
  uint16_t len = 0;
  const std::byte* data = nullptr;
};

// What the backend negotiated that shapes a packet.
struct TxCaps {
  bool header_slots = false;  // negotiated and set up: a slot can be had (if one is free)
  uint32_t slot_size = netif::kHeaderSlotSizeDefault;
  bool sg = false;            // feature-sg: more than one request per packet
  bool gso_tcpv4 = false;
  bool gso_tcpv6 = false;
};

struct TxPlan {
  uint32_t total = 0;           // frame bytes (the first request's size)
  bool gso = false;             // one GSO extra-info slot follows the first request
  bool use_slot = false;        // the first request is a header slot holding hdr_len bytes
  uint32_t hdr_len = 0;
  uint32_t gathered = 0;        // bytes gathered to parse a header scattered over pieces (frontend copies)
  std::vector<TxSeg> payload;   // what follows the slot, or the whole frame in plain netif
  uint64_t payload_bytes = 0;
  bool linearise = false;       // payload copied into n_linear fresh pages first
  uint32_t n_linear = 0;
  uint32_t n_data = 0;          // data requests (ids): slot + payload pieces (or linear pages)
  uint32_t n_grants = 0;        // payload grants
  uint32_t n_ring = 0;          // ring slots: n_data + the GSO extra
};

// Fills `plan` (its vectors keep their capacity from one frame to the next). An error: the protocol cannot carry
// the frame (a length outside 1..65535, a GSO type the backend did not offer or an MSS of 0, more than a page
// for a backend without feature-sg); plan.gathered is set even then.
Result<void> plan_tx(std::span<const TxSeg> segs, uint8_t gso_type, uint16_t gso_size, const TxCaps& caps,
                     TxPlan& plan);

// The header bytes a slot of `slot_size` holds for this frame: the whole frame if it fits, else the parsed headers
// (or the full slot when they are longer or do not parse). `gathered`: bytes copied to parse a scattered header.
uint32_t tx_slot_header_len(std::span<const TxSeg> segs, uint64_t total, uint32_t slot_size, uint32_t& gathered);

}  // namespace pvnet
