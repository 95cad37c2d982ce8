// Where a frame's protocol headers end. The frontend uses it to decide how many bytes go into a header slot; the
// backend runs it again on the copy it took OUT of the slot, because the guest can write anything there. So every
// length field is checked against the span before it is followed, every chain (VLAN tags, IPv6 extension headers)
// has a fixed budget, nothing allocates, and any byte string gives an answer (a status, never a crash).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace pvnet {

inline constexpr uint32_t kMaxVlanTags = 4;          // 802.1Q, 802.1ad (QinQ) and a little more; more is refused
inline constexpr uint32_t kMaxIpv6ExtHeaders = 8;    // RFC 8200 has at most ~6 in a sane packet
inline constexpr uint16_t kEthHdrLen = 14;
inline constexpr uint16_t kVlanTagLen = 4;

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;     // 802.1Q C-tag
inline constexpr uint16_t kEtherTypeQinQ = 0x88A8;     // 802.1ad S-tag
inline constexpr uint16_t kEtherTypeQinQOld = 0x9100;  // pre-standard QinQ, still seen

inline constexpr uint8_t kIpProtoHopOpts = 0;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoRouting = 43;
inline constexpr uint8_t kIpProtoFragment = 44;
inline constexpr uint8_t kIpProtoEsp = 50;
inline constexpr uint8_t kIpProtoAh = 51;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;
inline constexpr uint8_t kIpProtoNoNext = 59;
inline constexpr uint8_t kIpProtoDstOpts = 60;

inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10,
                         kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;

enum class HeaderStatus : uint8_t {
  kOk,
  kTruncatedEthernet,      // fewer than 14 bytes
  kTruncatedVlan,          // a TPID says a tag follows, the frame ends inside it
  kTooManyVlanTags,        // more than kMaxVlanTags stacked tags
  kTruncatedIpv4,          // fewer than 20 bytes, or fewer than IHL*4
  kBadIpVersion,           // the ethertype and the version nibble disagree
  kBadIhl,                 // IHL < 5
  kBadIpTotalLength,       // IPv4 total length shorter than its own header
  kTruncatedIpv6,          // fewer than 40 bytes
  kTruncatedExtHeader,     // an IPv6 extension header runs past the frame or the payload length
  kExtHeaderChainTooLong,  // more than kMaxIpv6ExtHeaders extension headers
  kHopByHopNotFirst,       // RFC 8200 4.1: hop-by-hop options only directly after the IPv6 header
  kTruncatedL4,            // the TCP/UDP/ICMP header runs past the frame (or the IP length)
  kBadTcpDataOffset,       // TCP data offset < 5
};

const char* to_string(HeaderStatus status);

enum class L3Proto : uint8_t { kNone, kIpv4, kIpv6 };

struct HeaderInfo {
  HeaderStatus status = HeaderStatus::kOk;
  // Bytes of protocol headers at the front of the frame, never more than the frame. On a malformed frame, the
  // headers that were complete and checked before the fault (what a header slot may safely hold).
  uint32_t header_len = 0;

  // L2: Ethernet plus stacked tags. ethertype is the one after the last tag.
  uint32_t l2_len = 0;
  uint16_t ethertype = 0;
  uint8_t vlan_count = 0;
  std::array<uint16_t, kMaxVlanTags> vlan_tpid{};  // outermost first
  std::array<uint16_t, kMaxVlanTags> vlan_id{};    // 12-bit VID; PCP and DEI dropped

  // L3. l3_off == l2_len when l3 != kNone.
  L3Proto l3 = L3Proto::kNone;
  uint32_t l3_off = 0;
  uint32_t ip_len = 0;          // datagram length the IP header claims (IPv4 total length, 40 + IPv6 payload
                                // length); 0 for a GSO/jumbo frame that leaves it 0. Not checked against the frame.
  uint8_t ipv6_ext_count = 0;   // extension headers skipped
  bool is_fragment = false;     // IPv4 MF or offset != 0; IPv6 fragment header present
  bool is_later_fragment = false;  // fragment offset != 0: what follows L3 is payload, not an L4 header

  // L4. l4_proto is the IPv4 protocol or the last IPv6 next-header. l4_off is where L3 headers end. l4_len is the
  // L4 header (TCP data offset * 4, 8 for UDP/ICMP/ICMPv6, 0 for other protocols and later fragments).
  bool has_l4 = false;  // l4_proto/l4_off are meaningful (an IP header was parsed)
  uint8_t l4_proto = 0;
  uint32_t l4_off = 0;
  uint32_t l4_len = 0;
  uint8_t tcp_flags = 0;  // byte 13 of the TCP header (CWR..FIN), when l4_len != 0 and l4_proto == TCP

  bool ok() const { return status == HeaderStatus::kOk; }
  bool is_tcp() const { return ok() && has_l4 && l4_proto == kIpProtoTcp && l4_len != 0; }
  bool is_udp() const { return ok() && has_l4 && l4_proto == kIpProtoUdp && l4_len != 0; }
  // What GSO segmentation needs: a complete, unfragmented TCP header over IPv4 or IPv6.
  bool is_tcpv4() const { return is_tcp() && l3 == L3Proto::kIpv4 && !is_fragment; }
  bool is_tcpv6() const { return is_tcp() && l3 == L3Proto::kIpv6 && !is_fragment; }
};

// Never reads outside `frame`, never allocates, total for any input.
HeaderInfo parse_headers(std::span<const std::byte> frame) noexcept;

}  // namespace pvnet
