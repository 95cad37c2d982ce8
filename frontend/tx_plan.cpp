#include "frontend/tx_plan.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "shared-ring/packet_headers.hpp"

namespace pvnet {

uint32_t tx_slot_header_len(std::span<const TxSeg> segs, uint64_t total, uint32_t slot_size, uint32_t& gathered) {
  const uint32_t S = slot_size;
  if (total <= S) return static_cast<uint32_t>(total);  // the whole frame travels in its slot
  // Parse what fits in a slot; the usual frame has it all in its first piece. Headers longer than the slot (or a
  // frame the parser cannot finish within it) fill the slot; the rest goes as payload.
  std::array<std::byte, netif::kHeaderSlotSizeMax> gather;
  std::span<const std::byte> view;
  if (segs[0].len >= S) {
    view = {segs[0].data, S};
  } else {
    uint32_t got = 0;
    for (const TxSeg& s : segs) {
      const uint32_t n = std::min<uint32_t>(s.len, S - got);
      std::memcpy(gather.data() + got, s.data, n);
      got += n;
      if (got == S) break;
    }
    view = {gather.data(), S};
    gathered += S;  // a scattered header is gathered once to be parsed
  }
  const HeaderInfo info = parse_headers(view);
  return info.ok() && info.header_len > 0 ? info.header_len : S;
}

namespace {

// The payload pieces: the frame's pieces less the first `skip` bytes (the slot's).
void cut_payload(std::span<const TxSeg> segs, uint32_t skip, TxPlan& plan) {
  for (const TxSeg& s : segs) {
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    plan.payload.push_back(TxSeg{s.pfn, static_cast<uint16_t>(s.offset + skip), static_cast<uint16_t>(s.len - skip),
                                 s.data + skip});
    plan.payload_bytes += s.len - skip;
    skip = 0;
  }
}

}  // namespace

Result<void> plan_tx(std::span<const TxSeg> segs, uint8_t gso_type, uint16_t gso_size, const TxCaps& caps,
                     TxPlan& plan) {
  std::vector<TxSeg> keep = std::move(plan.payload);  // its capacity: no allocation per frame
  keep.clear();
  plan = TxPlan{};
  plan.payload = std::move(keep);
  uint64_t total = 0;
  for (const TxSeg& s : segs) total += s.len;
  if (total == 0 || total > netif::kMaxTxSize)
    return make_error(EINVAL, "frame of " + std::to_string(total) + " B: netif carries 1..65535");
  plan.total = static_cast<uint32_t>(total);
  plan.gso = gso_type != netif::gso_type::none;
  if (plan.gso) {
    const bool offered = (gso_type == netif::gso_type::tcpv4 && caps.gso_tcpv4) ||
                         (gso_type == netif::gso_type::tcpv6 && caps.gso_tcpv6);
    if (!offered || gso_size == 0) return make_error(EINVAL, "GSO type not offered by the backend, or MSS 0");
  }
  plan.use_slot = caps.header_slots;
  if (plan.use_slot) plan.hdr_len = tx_slot_header_len(segs, total, caps.slot_size, plan.gathered);

  // Without feature-sg the backend takes one request per packet: a frame of one page at most, linearised.
  const bool single_only = !caps.sg;
  if (single_only && plan.use_slot && total > caps.slot_size) plan.use_slot = false;
  if (single_only && total > kPageSize)
    return make_error(EINVAL, "backend lacks feature-sg: frames above one page cannot be sent");

  cut_payload(segs, plan.use_slot ? plan.hdr_len : 0, plan);
  const uint32_t slot = plan.use_slot ? 1 : 0;
  plan.n_data = slot + static_cast<uint32_t>(plan.payload.size());
  // Never more than XEN_NETIF_NR_SLOTS_MIN requests: a backend need not accept more (netback's fatal error).
  plan.linearise = plan.n_data > netif::kNrSlotsMin || (single_only && plan.n_data > 1);
  if (plan.linearise) {
    plan.n_linear = static_cast<uint32_t>((plan.payload_bytes + kPageSize - 1) / kPageSize);
    plan.n_data = slot + plan.n_linear;
  }
  plan.n_grants = plan.linearise ? plan.n_linear : static_cast<uint32_t>(plan.payload.size());
  plan.n_ring = plan.n_data + (plan.gso ? 1 : 0);
  return {};
}

}  // namespace pvnet
