// The RX path's judgement as stages, in the shape of xenvif_rx_action: whether a queued frame can go to this
// guest at all (rx_drop_reason), which of its posted buffers it takes (claim_rx_buffers: plain netif, a page
// each; RX extents, docs/protocol.md 7, each buffer's extent), and the grant copies and responses that fill them
// (plan_rx_copies, pure). None touches a hypervisor: the ring and the extents table are plain memory to them, so
// tests/stages/ drives them directly. Backend::rx_action (rx_path.cpp) strings them together.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "backend/drop_reason.hpp"
#include "backend/rx_extents.hpp"
#include "backend/tx_packet.hpp"
#include "grant-sim/platform/grant_mapper.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet {

// What the frontend takes on its RX ring (its feature keys).
struct RxVifCaps {
  bool sg = false;
  bool gso_tcpv4 = false;
  bool gso_tcpv6 = false;
};

// Data buffers a frame needs without extents (a page each, from offset 0).
uint32_t rx_pages_for(const RxFrame& f);

// A frame this guest can never take, known before any buffer is claimed: a bad length, several buffers
// without feature-sg, a GSO type it did not ask for, more buffers than its ring holds (plain netif only; with
// extents claim_rx_buffers finds that out).
std::optional<DropReason> rx_drop_reason(const RxFrame& f, const RxVifCaps& caps, bool extents, uint32_t ring_size);

// claim_rx_buffers' answer: the frame takes the first `take` buffers of ext.held (in ring order, the GSO extra's
// slot second), or waits for the guest to post more, or is dropped, or the guest broke the protocol (a bad
// extent: the vif is disabled).
struct RxClaim {
  enum class Kind : uint8_t { take, wait, drop, violation };
  Kind kind = Kind::wait;
  uint32_t take = 0;
  DropReason drop = DropReason::rx_too_many_slots;
};

// Consumes the guest's RX requests into ext.held (once each: with extents a buffer's size is known only after
// reading its extent) until they cover the frame.
RxClaim claim_rx_buffers(netif::RxBackRing& ring, RxExtents& ext, const RxFrame& f, const RxVifCaps& caps);

// The grant copies that put a frame into its buffers and the responses that answer them, in ring order.
struct RxCopyPlan {
  std::vector<CopyOp> ops;                // source chunks cut at the buffers' ends
  std::vector<netif::RxResponse> rsps;    // one per buffer; the GSO extra (if any) at extra_at, as raw bytes
  size_t extra_at = SIZE_MAX;
  uint32_t data_buffers = 0;
};

// `bufs` are the claimed buffers in ring order (the GSO extra's slot second, its contents unused); the frame's
// first byte goes `headroom` bytes into the first buffer's extent (0 without extents). Source chunks: the frame's
// local bytes, then its frags (copied ones from dom0 memory, the others gref to gref from the source guest).
RxCopyPlan plan_rx_copies(const RxFrame& f, std::span<const RxBuf> bufs, DomId dest, uint16_t headroom);

}  // namespace pvnet
