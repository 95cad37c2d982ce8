// What a frame read from a TAP with offloads on becomes in netif (netif_offload_for), and which offloads a TAP is
// asked for (tap_offloads_for). The TAP sink's RX half and `pvnet frontend --tap` both read frames through it; the
// end-to-end check that the kernel's TSO reaches netif both ways is tests/tap_frontend/tap_frontend.sh.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/tap_sink.hpp"
#include "tests/frontend/frames.hpp"

namespace pvnet {
namespace {

constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kGsoTcpv4 = 1, kGsoUdp = 3, kGsoTcpv6 = 4, kGsoEcn = 0x80;

TapVnetHdr partial(uint16_t start, uint16_t offset) {
  TapVnetHdr vh;
  vh.flags = kNeedsCsum;
  vh.csum_start = start;
  vh.csum_offset = offset;
  return vh;
}

TapVnetHdr gso(uint8_t type, uint16_t l4_off, uint16_t mss) {
  TapVnetHdr vh = partial(l4_off, 16);
  vh.gso_type = type;
  vh.gso_size = mss;
  vh.hdr_len = static_cast<uint16_t>(l4_off + 20);
  return vh;
}

// RFC 1071 sum of [from, end) folded to 16 bits: 0xFFFF over a region whose checksum is right.
uint16_t folded_sum(const std::vector<std::byte>& f, size_t from) {
  uint32_t sum = 0;
  for (size_t i = from; i < f.size(); i += 2) {
    sum += std::to_integer<uint32_t>(f[i]) << 8;
    if (i + 1 < f.size()) sum += std::to_integer<uint32_t>(f[i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

TEST(NetifOffloadFor, PlainFrameCarriesNothing) {
  auto f = test::make_frame(600);
  const auto before = f;
  auto o = netif_offload_for(TapVnetHdr{}, f);
  ASSERT_TRUE(o) << o.error().reason;
  EXPECT_FALSE(o->csum_blank);
  EXPECT_EQ(o->gso_type, netif::gso_type::none);
  EXPECT_EQ(f, before);
}

TEST(NetifOffloadFor, PartialTcpAndUdpChecksumsAtTheirHeaderBecomeCsumBlank) {
  for (bool v6 : {false, true}) {
    const uint16_t l4 = v6 ? 54 : 34;
    auto tcp = test::make_frame(900, v6, false);
    const auto before = tcp;
    auto o = netif_offload_for(partial(l4, 16), tcp);
    ASSERT_TRUE(o) << o.error().reason;
    EXPECT_TRUE(o->csum_blank);
    EXPECT_EQ(o->gso_type, netif::gso_type::none);
    EXPECT_EQ(tcp, before) << "the other side finishes the checksum: the frame is not touched";

    auto udp = test::make_frame(300, v6, true);
    o = netif_offload_for(partial(l4, 6), udp);
    ASSERT_TRUE(o) << o.error().reason;
    EXPECT_TRUE(o->csum_blank);
  }
}

TEST(NetifOffloadFor, ChecksumNetifCannotDescribeIsFinishedInPlace) {
  // ICMP echo with a partial checksum (netif's csum_blank means TCP/UDP from the headers): finished here.
  for (size_t len : {98u, 99u}) {  // even and odd ICMP lengths
    auto f = test::make_frame(len);
    f[23] = std::byte{1};  // IPv4 protocol ICMP
    f[34] = std::byte{8};
    f[35] = std::byte{0};
    f[36] = f[37] = std::byte{0};  // checksum field: 0 (no pseudo-header in ICMPv4)
    auto o = netif_offload_for(partial(34, 2), f);
    ASSERT_TRUE(o) << o.error().reason;
    EXPECT_FALSE(o->csum_blank);
    EXPECT_EQ(folded_sum(f, 34), 0xFFFF) << "ICMP checksum of " << len << " B frame";
  }
  // A TCP frame whose checksum starts where netif would not put it (inside the payload): finished too.
  // The field holds the part of the sum the stack left there (a pseudo-header's; here none): it is summed in.
  auto f = test::make_frame(200);
  f[64] = f[65] = std::byte{0};
  auto o = netif_offload_for(partial(60, 4), f);
  ASSERT_TRUE(o) << o.error().reason;
  EXPECT_FALSE(o->csum_blank);
  EXPECT_EQ(folded_sum(f, 60), 0xFFFF);
}

TEST(NetifOffloadFor, TcpSuperFramesBecomeGsoExtras) {
  auto v4 = test::make_frame(60000, false);
  auto o = netif_offload_for(gso(kGsoTcpv4, 34, 1448), v4);
  ASSERT_TRUE(o) << o.error().reason;
  EXPECT_EQ(o->gso_type, netif::gso_type::tcpv4);
  EXPECT_EQ(o->gso_size, 1448);
  EXPECT_TRUE(o->csum_blank);

  auto v6 = test::make_frame(60000, true);
  o = netif_offload_for(gso(kGsoTcpv6, 54, 1428), v6);
  ASSERT_TRUE(o) << o.error().reason;
  EXPECT_EQ(o->gso_type, netif::gso_type::tcpv6);
  EXPECT_EQ(o->gso_size, 1428);
}

TEST(NetifOffloadFor, GsoNetifCannotCarryIsRefusedWithAReason) {
  auto v4 = test::make_frame(20000, false);
  auto v6 = test::make_frame(20000, true);
  auto udp = test::make_frame(20000, false, true);
  auto reason = [](const TapVnetHdr& vh, std::vector<std::byte>& f) {
    auto o = netif_offload_for(vh, f);
    return o ? std::string("accepted") : o.error().reason;
  };
  EXPECT_EQ(reason(gso(kGsoTcpv4, 54, 1428), v6), "tap_gso_unsupported");  // the type says v4, the frame is v6
  EXPECT_EQ(reason(gso(kGsoTcpv6, 34, 1448), v4), "tap_gso_unsupported");
  EXPECT_EQ(reason(gso(kGsoTcpv4 | kGsoEcn, 34, 1448), v4), "tap_gso_unsupported");  // netif has no ECN flag
  TapVnetHdr u = gso(kGsoUdp, 34, 1472);
  u.csum_offset = 6;
  EXPECT_EQ(reason(u, udp), "tap_gso_unsupported");  // UFO: netif carries TCP GSO only
  EXPECT_EQ(reason(gso(kGsoTcpv4, 34, 0), v4), "tap_bad_vnet_hdr");   // no MSS
  EXPECT_EQ(reason(gso(kGsoTcpv4, 40, 1448), v4), "tap_bad_vnet_hdr");  // checksum not at the TCP header
  TapVnetHdr no_csum = gso(kGsoTcpv4, 34, 1448);
  no_csum.flags = 0;
  EXPECT_EQ(reason(no_csum, v4), "tap_bad_vnet_hdr");  // GSO always has a partial checksum
}

TEST(NetifOffloadFor, ChecksumFieldOutsideTheFrameIsRefused) {
  auto f = test::make_frame(100);
  const auto before = f;
  for (auto vh : {partial(99, 0), partial(98, 2), partial(0xFFFF, 0xFFFF)}) {
    auto o = netif_offload_for(vh, f);
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().reason, "tap_bad_vnet_hdr");
  }
  EXPECT_EQ(f, before);
}

TEST(TapOffloadsFor, SegmentationOnlyWithPartialChecksums) {
  EXPECT_EQ(tap_offloads_for(false, true, true), TapOffloads{});
  EXPECT_EQ(tap_offloads_for(true, false, false), (TapOffloads{true, false, false}));
  EXPECT_EQ(tap_offloads_for(true, true, false), (TapOffloads{true, true, false}));
  EXPECT_EQ(tap_offloads_for(true, true, true), (TapOffloads{true, true, true}));
}

}  // namespace
}  // namespace pvnet
