#include "shared-ring/packet_headers.hpp"

#include <algorithm>

namespace pvnet {

const char* to_string(HeaderStatus status) {
  switch (status) {
    case HeaderStatus::kOk: return "ok";
    case HeaderStatus::kTruncatedEthernet: return "truncated Ethernet header (< 14 bytes)";
    case HeaderStatus::kTruncatedVlan: return "truncated VLAN tag";
    case HeaderStatus::kTooManyVlanTags: return "too many stacked VLAN tags";
    case HeaderStatus::kTruncatedIpv4: return "truncated IPv4 header";
    case HeaderStatus::kBadIpVersion: return "IP version does not match the ethertype";
    case HeaderStatus::kBadIhl: return "bad IPv4 IHL (< 5)";
    case HeaderStatus::kBadIpTotalLength: return "IPv4 total length shorter than its header";
    case HeaderStatus::kTruncatedIpv6: return "truncated IPv6 header";
    case HeaderStatus::kTruncatedExtHeader: return "truncated IPv6 extension header";
    case HeaderStatus::kExtHeaderChainTooLong: return "IPv6 extension header chain too long";
    case HeaderStatus::kHopByHopNotFirst: return "IPv6 hop-by-hop options not first";
    case HeaderStatus::kTruncatedL4: return "truncated L4 header";
    case HeaderStatus::kBadTcpDataOffset: return "bad TCP data offset (< 5)";
  }
  return "unknown header status";
}

namespace {

// All reads go through Bytes, and every caller checks `off + width <= size` (or <= a smaller limit) first.
struct Bytes {
  std::span<const std::byte> s;
  size_t size() const { return s.size(); }
  uint8_t u8(size_t off) const { return std::to_integer<uint8_t>(s[off]); }
  uint16_t be16(size_t off) const { return static_cast<uint16_t>(u8(off) << 8 | u8(off + 1)); }
};

bool is_vlan_tpid(uint16_t type) {
  return type == kEtherTypeVlan || type == kEtherTypeQinQ || type == kEtherTypeQinQOld;
}

bool is_ipv6_ext_header(uint8_t nh) {
  return nh == kIpProtoHopOpts || nh == kIpProtoRouting || nh == kIpProtoFragment || nh == kIpProtoDstOpts ||
         nh == kIpProtoAh;
}

HeaderInfo fail(HeaderInfo h, HeaderStatus status) {
  h.status = status;
  return h;
}

// `limit` is where the IP datagram ends inside the frame (Ethernet padding excluded), so an L4 header cannot
// borrow bytes from the padding or from past the frame.
HeaderInfo parse_l4(HeaderInfo h, const Bytes& b, size_t limit) {
  const size_t off = h.l4_off;
  size_t len = 0;
  switch (h.l4_proto) {
    case kIpProtoTcp: {
      if (limit < off + 20) return fail(h, HeaderStatus::kTruncatedL4);
      const size_t doff = static_cast<size_t>(b.u8(off + 12) >> 4) * 4;
      if (doff < 20) return fail(h, HeaderStatus::kBadTcpDataOffset);
      if (limit < off + doff) return fail(h, HeaderStatus::kTruncatedL4);
      h.tcp_flags = b.u8(off + 13);
      len = doff;
      break;
    }
    case kIpProtoUdp:
      len = 8;
      break;
    case kIpProtoIcmp:
      len = h.l3 == L3Proto::kIpv4 ? 8 : 0;
      break;
    case kIpProtoIcmpv6:
      len = h.l3 == L3Proto::kIpv6 ? 8 : 0;
      break;
    default:
      break;  // ESP, GRE, no-next-header ...: the headers we know end here
  }
  if (limit < off + len) return fail(h, HeaderStatus::kTruncatedL4);
  h.l4_len = static_cast<uint32_t>(len);
  h.header_len = static_cast<uint32_t>(off + len);
  return h;
}

HeaderInfo parse_ipv4(HeaderInfo h, const Bytes& b) {
  const size_t l3 = h.l3_off;
  if (b.size() < l3 + 20) return fail(h, HeaderStatus::kTruncatedIpv4);
  if (b.u8(l3) >> 4 != 4) return fail(h, HeaderStatus::kBadIpVersion);
  const size_t ihl = static_cast<size_t>(b.u8(l3) & 0x0f) * 4;
  if (ihl < 20) return fail(h, HeaderStatus::kBadIhl);
  if (b.size() < l3 + ihl) return fail(h, HeaderStatus::kTruncatedIpv4);
  const uint16_t tot_len = b.be16(l3 + 2);
  // tot_len 0 is what Linux puts in a BIG TCP GSO super-frame; otherwise it must cover the header.
  if (tot_len != 0 && tot_len < ihl) return fail(h, HeaderStatus::kBadIpTotalLength);
  h.ip_len = tot_len;
  const uint16_t frag = b.be16(l3 + 6);
  const bool more_fragments = (frag & 0x2000) != 0;
  const uint16_t frag_off = frag & 0x1fff;
  h.is_fragment = more_fragments || frag_off != 0;
  h.is_later_fragment = frag_off != 0;
  h.has_l4 = true;
  h.l4_proto = b.u8(l3 + 9);
  h.l4_off = static_cast<uint32_t>(l3 + ihl);
  h.header_len = h.l4_off;
  if (h.is_later_fragment) return h;
  const size_t limit = tot_len != 0 ? std::min(b.size(), l3 + tot_len) : b.size();
  return parse_l4(h, b, limit);
}

HeaderInfo parse_ipv6(HeaderInfo h, const Bytes& b) {
  const size_t l3 = h.l3_off;
  if (b.size() < l3 + 40) return fail(h, HeaderStatus::kTruncatedIpv6);
  if (b.u8(l3) >> 4 != 6) return fail(h, HeaderStatus::kBadIpVersion);
  const uint16_t payload_len = b.be16(l3 + 4);
  // payload_len 0: a jumbogram (RFC 2675) or a BIG TCP super-frame; the frame is the only bound then.
  h.ip_len = payload_len != 0 ? 40u + payload_len : 0u;
  const size_t limit = payload_len != 0 ? std::min(b.size(), l3 + 40 + payload_len) : b.size();
  uint8_t nh = b.u8(l3 + 6);
  size_t off = l3 + 40;
  h.header_len = static_cast<uint32_t>(off);
  while (is_ipv6_ext_header(nh)) {
    if (h.ipv6_ext_count == kMaxIpv6ExtHeaders) return fail(h, HeaderStatus::kExtHeaderChainTooLong);
    if (nh == kIpProtoHopOpts && h.ipv6_ext_count != 0) return fail(h, HeaderStatus::kHopByHopNotFirst);
    if (limit < off + 8) return fail(h, HeaderStatus::kTruncatedExtHeader);  // every extension header is >= 8
    size_t ext_len = 0;
    if (nh == kIpProtoFragment) {
      ext_len = 8;
    } else if (nh == kIpProtoAh) {
      ext_len = (static_cast<size_t>(b.u8(off + 1)) + 2) * 4;  // RFC 4302: in 4-octet units, minus 2
    } else {
      ext_len = (static_cast<size_t>(b.u8(off + 1)) + 1) * 8;  // RFC 8200: in 8-octet units, minus 1
    }
    if (limit < off + ext_len) return fail(h, HeaderStatus::kTruncatedExtHeader);
    bool later_fragment = false;
    if (nh == kIpProtoFragment) {
      h.is_fragment = true;
      later_fragment = (b.be16(off + 2) >> 3) != 0;
    }
    nh = b.u8(off);
    off += ext_len;
    ++h.ipv6_ext_count;
    h.header_len = static_cast<uint32_t>(off);
    if (later_fragment) {
      // The bytes after a non-first fragment's header are the fragmentable part at some offset: no L4 header.
      h.is_later_fragment = true;
      break;
    }
  }
  h.has_l4 = true;
  h.l4_proto = nh;
  h.l4_off = static_cast<uint32_t>(off);
  h.header_len = h.l4_off;
  if (h.is_later_fragment) return h;
  return parse_l4(h, b, limit);
}

}  // namespace

HeaderInfo parse_headers(std::span<const std::byte> frame) noexcept {
  const Bytes b{frame};
  HeaderInfo h;
  if (b.size() < kEthHdrLen) return fail(h, HeaderStatus::kTruncatedEthernet);
  uint16_t type = b.be16(12);
  size_t off = kEthHdrLen;
  h.l2_len = static_cast<uint32_t>(off);
  h.ethertype = type;
  h.header_len = h.l2_len;
  while (is_vlan_tpid(type)) {
    if (h.vlan_count == kMaxVlanTags) return fail(h, HeaderStatus::kTooManyVlanTags);
    if (b.size() < off + kVlanTagLen) return fail(h, HeaderStatus::kTruncatedVlan);
    h.vlan_tpid[h.vlan_count] = type;
    h.vlan_id[h.vlan_count] = b.be16(off) & 0x0fff;
    ++h.vlan_count;
    type = b.be16(off + 2);
    off += kVlanTagLen;
    h.l2_len = static_cast<uint32_t>(off);
    h.ethertype = type;
    h.header_len = h.l2_len;
  }
  if (type == kEtherTypeIpv4) {
    h.l3 = L3Proto::kIpv4;
    h.l3_off = h.l2_len;
    return parse_ipv4(h, b);
  }
  if (type == kEtherTypeIpv6) {
    h.l3 = L3Proto::kIpv6;
    h.l3_off = h.l2_len;
    return parse_ipv6(h, b);
  }
  return h;  // ARP, LLDP, 802.3 length field ...: only L2 is a header we know
}

}  // namespace pvnet
