// virtio_net_hdr <-> netif offloads: one header type and one set of rules for every place where a virtio-net
// header meets netif. The vhost-user bridge (frontend/vhost_net_bridge.cpp) reads a guest's TX header and writes
// its RX header; the TAP sink (backend/tap_sink.cpp) and `pvnet frontend --tap` (tools/tap_frontend.cpp) read and
// write the kernel's (IFF_VNET_HDR). docs/vhost-user.md, "Offloads", has the rules in a table.
//
// netif can say less than virtio-net: NETTXF_csum_blank / NETRXF_csum_blank mean "a TCP or UDP checksum at the
// L4 header the receiver parses"; netif has no csum_start. GSO is TCP over IPv4 or IPv6 only, without ECN. So:
//  - a partial checksum at the TCP/UDP header becomes csum_blank;
//  - a partial checksum anywhere else is finished by the reader (as skb_checksum_help does): finish_checksum on a
//    private copy of the frame (a device must not write a driver's TX buffers), and the frame goes as complete;
//  - GSO must be TCPv4/TCPv6 matching the frame, with its partial checksum at the TCP header and an MSS;
//  - ECN GSO is refused: netif has no flag for it, and segmenting it as plain TCP would set CWR on every segment
//    (it is never offered: no VIRTIO_NET_F_HOST_ECN, no TUN_F_TSO_ECN);
//  - UDP GSO (UFO, USO) is refused: netif carries TCP GSO only (never offered either).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "shared-ring/netif.hpp"
#include "shared-ring/packet_headers.hpp"

namespace pvnet {

// struct virtio_net_hdr_mrg_rxbuf (virtio 1.1 5.1.6; linux/virtio_net.h cannot be included from C++: a member is
// named `class`). Little-endian fields (virtio 1.x, and a TAP's default vnet-hdr byte order on x86). The header
// is 12 bytes with VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF, else its first 10 (no num_buffers): a TAP's.
#pragma pack(push, 1)
struct VirtioNetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = 0;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint16_t num_buffers = 0;
};
#pragma pack(pop)
static_assert(sizeof(VirtioNetHdr) == 12);
inline constexpr uint32_t kVirtioNetHdrLen = 12;        // with num_buffers
inline constexpr uint32_t kVirtioNetHdrLegacyLen = 10;  // without: legacy virtio, a TAP

namespace vnet {
inline constexpr uint8_t kFlagNeedsCsum = 1, kFlagDataValid = 2;
inline constexpr uint8_t kGsoNone = 0, kGsoTcpv4 = 1, kGsoUdp = 3, kGsoTcpv6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;
}  // namespace vnet

// A frame's offloads in netif's terms: what the NETTXF_/NETRXF_ flags and a GSO extra carry.
struct NetifOffload {
  bool csum_blank = false;      // the L4 checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL)
  bool data_validated = false;  // the checksum is known good (csum_blank implies it, as Linux netfront says)
  uint8_t gso_type = netif::gso_type::none;
  uint16_t gso_size = 0;
  bool operator==(const NetifOffload&) const = default;
};

// Why a virtio_net_hdr cannot go on as netif offloads. The frame is dropped and counted under to_string().
enum class OffloadRefusal : uint8_t {
  kBadVnetHdr,      // GSO without a partial checksum or an MSS, its checksum not at the TCP header, or a
                    // checksum field outside the frame
  kGsoUnsupported,  // UDP GSO, ECN, or a GSO type the frame's headers do not match
};
inline constexpr size_t kOffloadRefusals = 2;
const char* to_string(OffloadRefusal r);  // "bad_vnet_hdr", "gso_unsupported"

// What netif_offload_plan decided: the offloads, or a refusal; and whether a checksum must be finished first.
struct OffloadPlan {
  std::optional<OffloadRefusal> refused;
  NetifOffload offload;
  bool finish_csum = false;  // a partial checksum netif cannot say: finish_checksum(frame, csum_start, csum_field)
  uint32_t csum_start = 0, csum_field = 0;
  explicit operator bool() const { return !refused; }
};

// The rules above, from the header and the frame's parsed headers (parse_headers of at least its protocol
// headers) and its length. Reads nothing else of the frame: a caller with a scattered frame copies it only when
// finish_csum says so.
OffloadPlan netif_offload_plan(const VirtioNetHdr& vh, const HeaderInfo& h, size_t frame_len);

// The RFC 1071 checksum of frame[start..] into frame[field..field+2) (the field holds the part of the sum the
// sender left there, a pseudo-header's or 0, so it is summed in). Both inside the frame (the plan checked it).
void finish_checksum(std::span<std::byte> frame, uint32_t start, uint32_t field);

// The whole decode for a contiguous, private frame: plan, then finish the checksum in place when needed.
OffloadPlan netif_offload_from(const VirtioNetHdr& vh, std::span<std::byte> frame);

// The header that hands a netif frame to a virtio-net reader (a guest's driver, a TAP's kernel): a partial
// checksum (csum_blank, and always with GSO) is NEEDS_CSUM at the TCP/UDP header, hdr_len the end of the L4
// header; a validated one without it is DATA_VALID (pass data_validated = false for a reader that ignores it);
// GSO must be TCP of the frame's family. nullopt: GSO that does not match the headers (drop the frame).
// num_buffers is the caller's.
std::optional<VirtioNetHdr> virtio_net_hdr_for(const HeaderInfo& h, const NetifOffload& o);

}  // namespace pvnet
