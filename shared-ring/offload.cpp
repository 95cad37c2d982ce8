// virtio_net_hdr <-> netif offloads (see offload.hpp).
#include "shared-ring/offload.hpp"

namespace pvnet {

namespace {
constexpr uint16_t kTcpCsumOffset = 16, kUdpCsumOffset = 6;

OffloadPlan refuse(OffloadRefusal r) {
  OffloadPlan p;
  p.refused = r;
  return p;
}

// The GSO type netif carries for this virtio type and these headers, or none.
uint8_t netif_gso_type(uint8_t vnet_type, const HeaderInfo& h) {
  if (vnet_type == vnet::kGsoTcpv4 && h.is_tcpv4()) return netif::gso_type::tcpv4;
  if (vnet_type == vnet::kGsoTcpv6 && h.is_tcpv6()) return netif::gso_type::tcpv6;
  return netif::gso_type::none;
}
}  // namespace

const char* to_string(OffloadRefusal r) {
  switch (r) {
    case OffloadRefusal::kBadVnetHdr:
      return "bad_vnet_hdr";
    case OffloadRefusal::kGsoUnsupported:
      return "gso_unsupported";
  }
  return "unknown";
}

OffloadPlan netif_offload_plan(const VirtioNetHdr& vh, const HeaderInfo& h, size_t frame_len) {
  OffloadPlan p;
  const bool gso = vh.gso_type != vnet::kGsoNone;
  if (!(vh.flags & vnet::kFlagNeedsCsum)) {
    if (gso) return refuse(OffloadRefusal::kBadVnetHdr);  // GSO always comes with a partial checksum
    p.offload.data_validated = (vh.flags & vnet::kFlagDataValid) != 0;
    return p;
  }
  const uint32_t start = vh.csum_start, field = uint32_t{vh.csum_start} + vh.csum_offset;
  if (size_t{field} + 2 > frame_len) return refuse(OffloadRefusal::kBadVnetHdr);
  const bool at_l4 = (h.is_tcp() || h.is_udp()) && start == h.l4_off &&
                     vh.csum_offset == (h.is_tcp() ? kTcpCsumOffset : kUdpCsumOffset);
  if (gso) {
    const uint8_t type = netif_gso_type(vh.gso_type, h);  // ECN, UDP and mismatches give none
    if (type == netif::gso_type::none) return refuse(OffloadRefusal::kGsoUnsupported);
    if (!at_l4 || vh.gso_size == 0) return refuse(OffloadRefusal::kBadVnetHdr);
    p.offload = NetifOffload{true, true, type, vh.gso_size};
    return p;
  }
  if (at_l4) {
    p.offload.csum_blank = p.offload.data_validated = true;  // the other side finishes it, from the headers
    return p;
  }
  p.finish_csum = true;  // netif cannot say where this checksum starts
  p.csum_start = start;
  p.csum_field = field;
  return p;
}

void finish_checksum(std::span<std::byte> frame, uint32_t start, uint32_t field) {
  uint32_t sum = 0;
  size_t i = start;
  for (; i + 1 < frame.size(); i += 2)
    sum += (std::to_integer<uint32_t>(frame[i]) << 8) | std::to_integer<uint32_t>(frame[i + 1]);
  if (i < frame.size()) sum += std::to_integer<uint32_t>(frame[i]) << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  const uint16_t csum = static_cast<uint16_t>(~sum);
  frame[field] = std::byte(csum >> 8);
  frame[field + 1] = std::byte(csum & 0xFF);
}

OffloadPlan netif_offload_from(const VirtioNetHdr& vh, std::span<std::byte> frame) {
  OffloadPlan p = netif_offload_plan(vh, parse_headers(frame), frame.size());
  if (p && p.finish_csum) finish_checksum(frame, p.csum_start, p.csum_field);
  return p;
}

std::optional<VirtioNetHdr> virtio_net_hdr_for(const HeaderInfo& h, const NetifOffload& o) {
  VirtioNetHdr vh{};
  const bool gso = o.gso_type != netif::gso_type::none;
  if ((o.csum_blank || gso) && (h.is_tcp() || h.is_udp())) {
    vh.flags = vnet::kFlagNeedsCsum;
    vh.csum_start = static_cast<uint16_t>(h.l4_off);
    vh.csum_offset = h.is_tcp() ? kTcpCsumOffset : kUdpCsumOffset;
    vh.hdr_len = static_cast<uint16_t>(h.l4_off + h.l4_len);
  } else if (o.data_validated) {
    vh.flags = vnet::kFlagDataValid;
  }
  if (gso) {
    if (o.gso_type == netif::gso_type::tcpv4 && h.is_tcpv4()) vh.gso_type = vnet::kGsoTcpv4;
    else if (o.gso_type == netif::gso_type::tcpv6 && h.is_tcpv6()) vh.gso_type = vnet::kGsoTcpv6;
    else return std::nullopt;
    vh.gso_size = o.gso_size;
  }
  return vh;
}

}  // namespace pvnet
