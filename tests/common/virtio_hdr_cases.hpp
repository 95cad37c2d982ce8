// One table of virtio_net_hdr cases, run by both readers of a virtio-net header that hand frames to netif: the
// codec as the TAP sink and `pvnet frontend --tap` use it (tests/backend/tap_offload_test.cpp) and the vhost-user
// bridge's TX path end to end, guest -> dom0 -> other guest (tests/vhost_user/vhost_user_test.cpp). Each case says
// what netif must carry, that the reader finishes the checksum, or why the frame is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shared-ring/offload.hpp"
#include "tests/frontend/frames.hpp"

namespace pvnet::test {

enum class HdrExpect : uint8_t { kOffload, kFinished, kRefused };

struct VirtioHdrCase {
  std::string name;
  std::function<std::vector<std::byte>()> frame;
  VirtioNetHdr hdr;
  HdrExpect expect = HdrExpect::kOffload;
  NetifOffload offload{};                             // kOffload
  OffloadRefusal refusal = OffloadRefusal::kBadVnetHdr;  // kRefused
  uint32_t sum_from = 0;                              // kFinished: the region whose checksum is now right
};

inline VirtioNetHdr vnet_partial(uint16_t start, uint16_t offset) {
  VirtioNetHdr vh{};
  vh.flags = vnet::kFlagNeedsCsum;
  vh.csum_start = start;
  vh.csum_offset = offset;
  return vh;
}

inline VirtioNetHdr vnet_gso(uint8_t type, uint16_t l4_off, uint16_t mss) {
  VirtioNetHdr vh = vnet_partial(l4_off, 16);
  vh.gso_type = type;
  vh.gso_size = mss;
  vh.hdr_len = static_cast<uint16_t>(l4_off + 20);
  return vh;
}

// RFC 1071 sum of [from, end) folded to 16 bits: 0xFFFF over a region whose checksum is right.
inline uint16_t folded_sum(const std::vector<std::byte>& f, size_t from) {
  uint32_t sum = 0;
  for (size_t i = from; i < f.size(); i += 2) {
    sum += std::to_integer<uint32_t>(f[i]) << 8;
    if (i + 1 < f.size()) sum += std::to_integer<uint32_t>(f[i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// ICMP echo with a zero checksum field (no pseudo-header in ICMPv4): netif's csum_blank cannot say it.
inline std::vector<std::byte> icmp_frame(size_t len) {
  auto f = make_frame(len);
  f[23] = std::byte{1};  // IPv4 protocol ICMP
  f[34] = std::byte{8};
  f[35] = std::byte{0};
  f[36] = f[37] = std::byte{0};
  return f;
}

inline std::vector<VirtioHdrCase> virtio_hdr_cases() {
  using E = HdrExpect;
  using R = OffloadRefusal;
  const NetifOffload blank{true, true, netif::gso_type::none, 0};
  auto frame = [](size_t len, bool v6 = false, bool udp = false) {
    return [=] { return make_frame(len, v6, udp); };
  };
  VirtioNetHdr data_valid{};
  data_valid.flags = vnet::kFlagDataValid;
  VirtioNetHdr no_csum = vnet_gso(vnet::kGsoTcpv4, 34, 1448);
  no_csum.flags = 0;
  VirtioNetHdr ufo = vnet_gso(vnet::kGsoUdp, 34, 1472);
  ufo.csum_offset = 6;
  std::vector<VirtioHdrCase> c = {
      {"plain frame carries nothing", frame(600), {}, E::kOffload, {}, {}, 0},
      {"DATA_VALID is data_validated", frame(600), data_valid, E::kOffload, {false, true, 0, 0}, {}, 0},
      {"partial TCPv4 at its header", frame(900), vnet_partial(34, 16), E::kOffload, blank, {}, 0},
      {"partial TCPv6 at its header", frame(900, true), vnet_partial(54, 16), E::kOffload, blank, {}, 0},
      {"partial UDPv4 at its header", frame(300, false, true), vnet_partial(34, 6), E::kOffload, blank, {}, 0},
      {"partial UDPv6 at its header", frame(300, true, true), vnet_partial(54, 6), E::kOffload, blank, {}, 0},
      {"ICMP partial checksum, even length, finished", [] { return icmp_frame(98); }, vnet_partial(34, 2),
       E::kFinished, {}, {}, 34},
      {"ICMP partial checksum, odd length, finished", [] { return icmp_frame(99); }, vnet_partial(34, 2),
       E::kFinished, {}, {}, 34},
      // The field holds the part of the sum the stack left there (a pseudo-header's; here none): summed in.
      {"TCP checksum inside the payload, finished",
       [] {
         auto f = make_frame(200);
         f[64] = f[65] = std::byte{0};
         return f;
       },
       vnet_partial(60, 4), E::kFinished, {}, {}, 60},
      {"TCPv4 super-frame", frame(60000), vnet_gso(vnet::kGsoTcpv4, 34, 1448), E::kOffload,
       {true, true, netif::gso_type::tcpv4, 1448}, {}, 0},
      {"TCPv6 super-frame", frame(60000, true), vnet_gso(vnet::kGsoTcpv6, 54, 1428), E::kOffload,
       {true, true, netif::gso_type::tcpv6, 1428}, {}, 0},
      {"GSO type v4, frame v6", frame(20000, true), vnet_gso(vnet::kGsoTcpv4, 54, 1428), E::kRefused, {},
       R::kGsoUnsupported, 0},
      {"GSO type v6, frame v4", frame(20000), vnet_gso(vnet::kGsoTcpv6, 34, 1448), E::kRefused, {},
       R::kGsoUnsupported, 0},
      {"ECN GSO (netif has no ECN flag)", frame(20000), vnet_gso(vnet::kGsoTcpv4 | vnet::kGsoEcn, 34, 1448),
       E::kRefused, {}, R::kGsoUnsupported, 0},
      {"UDP GSO (netif carries TCP GSO only)", frame(20000, false, true), ufo, E::kRefused, {},
       R::kGsoUnsupported, 0},
      {"GSO without an MSS", frame(20000), vnet_gso(vnet::kGsoTcpv4, 34, 0), E::kRefused, {}, R::kBadVnetHdr, 0},
      {"GSO checksum not at the TCP header", frame(20000), vnet_gso(vnet::kGsoTcpv4, 40, 1448), E::kRefused, {},
       R::kBadVnetHdr, 0},
      {"GSO without a partial checksum", frame(20000), no_csum, E::kRefused, {}, R::kBadVnetHdr, 0},
      {"checksum field past the end (99+0)", frame(100), vnet_partial(99, 0), E::kRefused, {}, R::kBadVnetHdr, 0},
      {"checksum field past the end (98+2)", frame(100), vnet_partial(98, 2), E::kRefused, {}, R::kBadVnetHdr, 0},
      {"checksum field far outside", frame(100), vnet_partial(0xFFFF, 0xFFFF), E::kRefused, {}, R::kBadVnetHdr,
       0},
  };
  return c;
}

}  // namespace pvnet::test
