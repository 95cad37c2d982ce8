// parse_headers on every frame of every real trace (invariants checked against the bytes independently), and on
// hand-built frames for each protocol and each way a frame can be malformed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/common/test_traces.hpp"
#include "tools/trace/pcap_io.hpp"
#include "shared-ring/packet_headers.hpp"

namespace pvnet {
namespace {

namespace fs = std::filesystem;

using pvnet::test_data::source_dir;
std::vector<fs::path> trace_files() { return pvnet::test_data::all_traces(); }

std::span<const std::byte> as_span(const std::vector<uint8_t>& v) { return std::as_bytes(std::span(v)); }
uint16_t be16(std::span<const std::byte> f, size_t off) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(f[off]) << 8 | std::to_integer<uint16_t>(f[off + 1]));
}
uint8_t u8(std::span<const std::byte> f, size_t off) { return std::to_integer<uint8_t>(f[off]); }

// One's-complement sum over bytes, folded; 0xffff (== -0) means the checksum in the data verifies.
uint32_t ones_sum(std::span<const std::byte> b, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += be16(b, i);
  if (b.size() % 2) sum += static_cast<uint32_t>(u8(b, b.size() - 1)) << 8;
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Coverage {
  int frames = 0, vlan = 0, qinq = 0, v4_first_frag = 0, v4_later_frag = 0, v6_first_frag = 0, v6_later_frag = 0;
  int v6_hbh = 0, v6_dstopts = 0, superframes = 0, jumbo = 0, tcpv4 = 0, tcpv6 = 0, udp = 0, icmp_verified = 0;
  int udp_len_verified = 0, non_ip = 0;
};

void check_real_frame(std::span<const std::byte> f, const std::string& where, Coverage& cov) {
  const HeaderInfo h = parse_headers(f);
  ++cov.frames;
  ASSERT_TRUE(h.ok()) << where << ": " << to_string(h.status);
  ASSERT_LE(h.header_len, f.size()) << where;
  // L2 against the raw TPIDs.
  const uint16_t outer = be16(f, 12);
  if (outer == 0x8100 || outer == 0x88A8) {
    const uint16_t inner = be16(f, 16);
    const bool two = inner == 0x8100 || inner == 0x88A8;
    EXPECT_EQ(h.l2_len, two ? 22u : 18u) << where;
    EXPECT_EQ(h.vlan_count, two ? 2 : 1) << where;
    EXPECT_EQ(h.vlan_id[0], be16(f, 14) & 0x0fff) << where;
    ++(two ? cov.qinq : cov.vlan);
  } else {
    EXPECT_EQ(h.l2_len, 14u) << where;
  }
  if (h.l3 == L3Proto::kNone) {
    ++cov.non_ip;
    EXPECT_EQ(h.header_len, h.l2_len) << where;
    return;
  }
  const size_t l3 = h.l3_off;
  ASSERT_EQ(l3, h.l2_len) << where;
  size_t ip_end = f.size();
  if (h.l3 == L3Proto::kIpv4) {
    const size_t ihl = (u8(f, l3) & 0xf) * 4u;
    EXPECT_EQ(h.l4_off, l3 + ihl) << where;
    const uint16_t frag_off = be16(f, l3 + 6) & 0x1fff;
    const bool mf = be16(f, l3 + 6) & 0x2000;
    EXPECT_EQ(h.is_fragment, mf || frag_off != 0) << where;
    EXPECT_EQ(h.is_later_fragment, frag_off != 0) << where;
    if (frag_off != 0) ++cov.v4_later_frag;
    else if (mf) ++cov.v4_first_frag;
    if (be16(f, l3 + 2) != 0) ip_end = std::min(ip_end, l3 + be16(f, l3 + 2));
  } else {
    if (be16(f, l3 + 4) != 0) ip_end = std::min(ip_end, l3 + 40 + be16(f, l3 + 4));
    const uint8_t first_nh = u8(f, l3 + 6);
    EXPECT_EQ(h.ipv6_ext_count == 0, first_nh != 0 && first_nh != 43 && first_nh != 44 && first_nh != 60 &&
                                         first_nh != 51) << where;
    if (first_nh == 0) ++cov.v6_hbh;
    // The header before l4_off is the last extension header; a fragment header is 8 bytes at l4_off - 8.
    if (h.is_fragment) {
      const uint16_t fo = be16(f, h.l4_off - 8 + 2) >> 3;
      EXPECT_EQ(h.is_later_fragment, fo != 0) << where;
      ++(fo != 0 ? cov.v6_later_frag : cov.v6_first_frag);
    }
    for (size_t off = l3 + 40, nh = first_nh, n = 0; n < h.ipv6_ext_count; ++n) {
      if (nh == 60) ++cov.v6_dstopts;
      const size_t len = nh == 44 ? 8 : nh == 51 ? (u8(f, off + 1) + 2u) * 4 : (u8(f, off + 1) + 1u) * 8;
      nh = u8(f, off);
      off += len;
      if (n + 1 == h.ipv6_ext_count) {
        EXPECT_EQ(off, h.l4_off) << where;
      }
    }
  }
  if (h.is_later_fragment) {
    EXPECT_EQ(h.l4_len, 0u) << where;
    EXPECT_EQ(h.header_len, h.l4_off) << where;
    return;
  }
  if (h.l4_proto == kIpProtoTcp) {
    const size_t doff = (u8(f, h.l4_off + 12) >> 4) * 4u;
    EXPECT_EQ(h.header_len, h.l4_off + doff) << where;
    EXPECT_EQ(h.tcp_flags, u8(f, h.l4_off + 13)) << where;
    EXPECT_TRUE(h.is_tcpv4() || h.is_tcpv6()) << where;
    ++(h.l3 == L3Proto::kIpv4 ? cov.tcpv4 : cov.tcpv6);
    if (f.size() > 14 + 1500 + 4u * h.vlan_count && f.size() <= 9014) ++cov.jumbo;
    if (h.l3 == L3Proto::kIpv4 && ip_end - l3 > 1500 && f.size() < 9000) ++cov.superframes;
    if (h.l3 == L3Proto::kIpv6 && f.size() > 1514) ++cov.superframes;
  } else if (h.l4_proto == kIpProtoUdp) {
    ++cov.udp;
    EXPECT_EQ(h.header_len, h.l4_off + 8) << where;
    if (!h.is_fragment) {
      // The UDP length field must span exactly from where we think UDP starts to the end of the datagram: a
      // wrongly skipped extension header or IPv4 option would break it.
      EXPECT_EQ(be16(f, h.l4_off + 4), ip_end - h.l4_off) << where;
      ++cov.udp_len_verified;
    }
  } else if (h.l4_proto == kIpProtoIcmp || h.l4_proto == kIpProtoIcmpv6) {
    EXPECT_EQ(h.header_len, h.l4_off + 8) << where;
    if (!h.is_fragment) {
      // The ICMP checksum verifies only over the right bytes (ICMPv6: with the pseudo-header).
      uint32_t sum = ones_sum(f.subspan(h.l4_off, ip_end - h.l4_off));
      if (h.l4_proto == kIpProtoIcmpv6) {
        sum = ones_sum(f.subspan(l3 + 8, 32), sum);  // source and destination
        sum += static_cast<uint32_t>(ip_end - h.l4_off) + kIpProtoIcmpv6;
      }
      EXPECT_EQ(fold(sum), 0xffff) << where;
      ++cov.icmp_verified;
    }
  } else {
    EXPECT_EQ(h.header_len, h.l4_off) << where;
  }
}

TEST(PacketHeadersTraces, EveryFrameOfEveryTraceKeepsTheInvariants) {
  const auto files = trace_files();
  ASSERT_FALSE(files.empty()) << "no traces under " << source_dir();
  Coverage cov;
  for (const auto& file : files) {
    auto frames = PcapReader::read_all(file.string());
    ASSERT_TRUE(frames.ok()) << frames.error().reason;
    for (const PcapFrame& fr : *frames) {
      check_real_frame(fr.data, file.filename().string() + " frame " + std::to_string(fr.number), cov);
      if (HasFatalFailure()) return;
    }
  }
  // The traces must actually contain what the invariants above are about, or the test proves nothing.
  EXPECT_GT(cov.vlan, 0);
  EXPECT_GT(cov.qinq, 0);
  EXPECT_GT(cov.v4_first_frag, 0);
  EXPECT_GT(cov.v4_later_frag, 0);
  EXPECT_GT(cov.v6_first_frag, 0);
  EXPECT_GT(cov.v6_later_frag, 0);
  EXPECT_GT(cov.v6_hbh, 0);
  EXPECT_GT(cov.v6_dstopts, 0);
  EXPECT_GT(cov.superframes, 0);
  EXPECT_GT(cov.jumbo, 0);
  EXPECT_GT(cov.tcpv6, 0);
  EXPECT_GT(cov.udp_len_verified, 0);
  EXPECT_GT(cov.icmp_verified, 0);
  RecordProperty("frames", cov.frames);
}

// ---------------------------------------------------------------------------------------------------------------
// Hand-built frames.

struct Frame {
  std::vector<uint8_t> b;
  Frame& u8(uint8_t v) { b.push_back(v); return *this; }
  Frame& u16(uint16_t v) { b.push_back(static_cast<uint8_t>(v >> 8)); b.push_back(static_cast<uint8_t>(v)); return *this; }
  Frame& u32(uint32_t v) { u16(static_cast<uint16_t>(v >> 16)); return u16(static_cast<uint16_t>(v)); }
  Frame& zeros(size_t n) { b.insert(b.end(), n, 0); return *this; }
  Frame& eth(uint16_t type) { zeros(6).u8(2).zeros(5); return u16(type); }  // dst 0, src 02:00.., type
  Frame& tag(uint16_t tci, uint16_t next_type) { return u16(tci).u16(next_type); }  // after eth(TPID)
  // IPv4 header, IHL in words, tot_len = header + payload_len unless forced.
  Frame& ipv4(uint8_t proto, size_t payload_len, uint8_t ihl = 5, uint16_t frag = 0, int tot_len = -1) {
    u8(static_cast<uint8_t>(0x40 | ihl)).u8(0);
    u16(static_cast<uint16_t>(tot_len >= 0 ? tot_len : ihl * 4 + static_cast<int>(payload_len)));
    u16(1).u16(frag).u8(64).u8(proto).u16(0).u32(0xC6120001).u32(0xC6120002);
    if (ihl > 5) zeros((ihl - 5) * 4u);
    return *this;
  }
  Frame& ipv6(uint8_t nh, uint16_t payload_len) {
    u32(0x60000000).u16(payload_len).u8(nh).u8(64);
    u32(0xfd000018).zeros(11).u8(1);
    return u32(0xfd000018).zeros(11).u8(2);
  }
  Frame& ext(uint8_t nh, uint8_t len_units) { u8(nh).u8(len_units); return zeros((len_units + 1u) * 8 - 2); }
  Frame& ah(uint8_t nh, uint8_t len_field) { u8(nh).u8(len_field); return zeros((len_field + 2u) * 4 - 2); }
  Frame& frag6(uint8_t nh, uint16_t offset_units, bool more) {
    return u8(nh).u8(0).u16(static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0))).u32(0x1234);
  }
  Frame& tcp(uint8_t doff_words, uint8_t flags) {
    u16(40000).u16(80).u32(1).u32(0).u8(static_cast<uint8_t>(doff_words << 4)).u8(flags).u16(65535).u16(0).u16(0);
    if (doff_words > 5) zeros((doff_words - 5) * 4u);
    return *this;
  }
  Frame& udp(uint16_t len) { return u16(5353).u16(53).u16(len).u16(0); }
  Frame& icmp() { return u8(8).u8(0).u16(0).u16(1).u16(1); }
  HeaderInfo parse() const { return parse_headers(as_span(b)); }
  size_t size() const { return b.size(); }
};

TEST(PacketHeaders, Ipv4TcpWithOptions) {
  Frame f;
  f.eth(0x0800).ipv4(6, 32 + 100).tcp(8, kTcpSyn | kTcpAck).zeros(100);
  const HeaderInfo h = f.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_EQ(h.l2_len, 14u);
  EXPECT_EQ(h.ethertype, 0x0800);
  EXPECT_EQ(h.l3, L3Proto::kIpv4);
  EXPECT_EQ(h.l4_off, 34u);
  EXPECT_EQ(h.l4_len, 32u);
  EXPECT_EQ(h.header_len, 66u);
  EXPECT_EQ(h.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_TRUE(h.is_tcpv4());
  EXPECT_FALSE(h.is_tcpv6());
  EXPECT_EQ(h.ip_len, 20u + 32 + 100);
}

TEST(PacketHeaders, Ipv4OptionsAndUdp) {
  Frame f;
  f.eth(0x0800).ipv4(17, 8 + 10, 7).udp(18).zeros(10);
  const HeaderInfo h = f.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_EQ(h.l4_off, 14u + 28);
  EXPECT_EQ(h.header_len, 14u + 28 + 8);
  EXPECT_TRUE(h.is_udp());
  EXPECT_FALSE(h.is_tcpv4());
}

TEST(PacketHeaders, Ipv4Icmp) {
  Frame f;
  f.eth(0x0800).ipv4(1, 8 + 56).icmp().zeros(56);
  const HeaderInfo h = f.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.l4_proto, kIpProtoIcmp);
  EXPECT_EQ(h.header_len, 14u + 20 + 8);
}

TEST(PacketHeaders, Ipv4FirstAndLaterFragments) {
  Frame first;
  first.eth(0x0800).ipv4(17, 1480, 5, 0x2000).udp(3008).zeros(1472);
  HeaderInfo h = first.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.is_fragment);
  EXPECT_FALSE(h.is_later_fragment);
  EXPECT_EQ(h.header_len, 14u + 20 + 8);
  EXPECT_FALSE(h.is_tcpv4());

  Frame later;  // bytes that would look like a TCP header with a huge data offset must not be read as one
  later.eth(0x0800).ipv4(6, 100, 5, 185).u8(0xff).zeros(99);
  h = later.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.is_fragment);
  EXPECT_TRUE(h.is_later_fragment);
  EXPECT_EQ(h.l4_len, 0u);
  EXPECT_EQ(h.header_len, 34u);
  EXPECT_FALSE(h.is_tcp());
}

TEST(PacketHeaders, SingleTagQinQAndThreeTags) {
  Frame one;
  one.eth(0x8100).tag(0x2064, 0x0800).ipv4(17, 8).udp(8);  // TCI: PCP 1, vid 100
  HeaderInfo h = one.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_EQ(h.l2_len, 18u);
  EXPECT_EQ(h.vlan_count, 1);
  EXPECT_EQ(h.vlan_id[0], 100);
  EXPECT_EQ(h.ethertype, 0x0800);
  EXPECT_EQ(h.header_len, 18u + 20 + 8);

  Frame qinq;
  qinq.eth(0x88A8).u16(10).u16(0x8100).u16(20).u16(0x86DD).ipv6(6, 20).tcp(5, kTcpAck);
  h = qinq.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_EQ(h.l2_len, 22u);
  EXPECT_EQ(h.vlan_count, 2);
  EXPECT_EQ(h.vlan_tpid[0], 0x88A8);
  EXPECT_EQ(h.vlan_id[0], 10);
  EXPECT_EQ(h.vlan_id[1], 20);
  EXPECT_TRUE(h.is_tcpv6());
  EXPECT_EQ(h.header_len, 22u + 40 + 20);

  Frame three;
  three.eth(0x9100).u16(1).u16(0x88A8).u16(2).u16(0x8100).u16(3).u16(0x0806).zeros(28);  // ARP
  h = three.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.vlan_count, 3);
  EXPECT_EQ(h.l2_len, 26u);
  EXPECT_EQ(h.l3, L3Proto::kNone);
  EXPECT_EQ(h.header_len, 26u);
}

TEST(PacketHeaders, TooManyVlanTags) {
  Frame f;
  f.eth(0x8100);
  for (uint32_t i = 0; i < kMaxVlanTags; ++i) f.u16(static_cast<uint16_t>(i + 1)).u16(0x8100);
  f.u16(99).u16(0x0800).ipv4(17, 8).udp(8);
  const HeaderInfo h = f.parse();
  EXPECT_EQ(h.status, HeaderStatus::kTooManyVlanTags);
  EXPECT_EQ(h.vlan_count, kMaxVlanTags);
  EXPECT_LE(h.header_len, f.size());
  EXPECT_EQ(h.header_len, 14u + 4 * kMaxVlanTags);
}

TEST(PacketHeaders, Ipv6ExtensionChain) {
  // HBH (8) -> routing (24) -> destination options (16) -> AH (len field 4: 24 bytes) -> UDP
  Frame f;
  f.eth(0x86DD).ipv6(0, 8 + 24 + 16 + 24 + 8 + 4);
  f.ext(43, 0).ext(60, 2).ext(51, 1).ah(17, 4).udp(12).zeros(4);
  const HeaderInfo h = f.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_EQ(h.ipv6_ext_count, 4);
  EXPECT_EQ(h.l4_proto, kIpProtoUdp);
  EXPECT_EQ(h.l4_off, 14u + 40 + 8 + 24 + 16 + 24);
  EXPECT_EQ(h.header_len, h.l4_off + 8);
  EXPECT_EQ(h.ip_len, 40u + 84);
}

TEST(PacketHeaders, Ipv6FirstAndLaterFragments) {
  Frame first;
  first.eth(0x86DD).ipv6(44, 8 + 20 + 100).frag6(6, 0, true).tcp(5, kTcpAck).zeros(100);
  HeaderInfo h = first.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_TRUE(h.is_fragment);
  EXPECT_FALSE(h.is_later_fragment);
  EXPECT_EQ(h.header_len, 14u + 40 + 8 + 20);
  EXPECT_FALSE(h.is_tcpv6());  // GSO does not apply to a fragment

  Frame later;  // after a later fragment's header: payload bytes, even if they look like another ext header
  later.eth(0x86DD).ipv6(44, 8 + 64).frag6(60, 181, false).u8(0).u8(0xff).zeros(62);
  h = later.parse();
  ASSERT_TRUE(h.ok()) << to_string(h.status);
  EXPECT_TRUE(h.is_later_fragment);
  EXPECT_EQ(h.l4_proto, kIpProtoDstOpts);
  EXPECT_EQ(h.l4_len, 0u);
  EXPECT_EQ(h.header_len, 14u + 40 + 8);
}

TEST(PacketHeaders, Ipv6IcmpEspAndNoNextHeader) {
  Frame icmp;
  icmp.eth(0x86DD).ipv6(58, 8).u8(128).u8(0).u16(0).u32(1);
  EXPECT_EQ(icmp.parse().header_len, 14u + 40 + 8);
  Frame esp;
  esp.eth(0x86DD).ipv6(50, 32).zeros(32);
  HeaderInfo h = esp.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.l4_proto, kIpProtoEsp);
  EXPECT_EQ(h.header_len, 54u);
  Frame none;
  none.eth(0x86DD).ipv6(60, 8).ext(59, 0);
  h = none.parse();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.l4_proto, kIpProtoNoNext);
  EXPECT_EQ(h.header_len, 14u + 48);
}

struct Malformed {
  const char* name;
  Frame frame;
  HeaderStatus status;
  uint32_t header_len;  // what may still be trusted
};

std::vector<Malformed> malformed_cases() {
  std::vector<Malformed> v;
  auto add = [&](const char* name, Frame f, HeaderStatus s, uint32_t len) { v.push_back({name, std::move(f), s, len}); };
  add("13 bytes", Frame{}.zeros(13), HeaderStatus::kTruncatedEthernet, 0);
  add("empty", Frame{}, HeaderStatus::kTruncatedEthernet, 0);
  add("tag cut", Frame{}.eth(0x8100).u16(5), HeaderStatus::kTruncatedVlan, 14);
  add("second tag cut", Frame{}.eth(0x88A8).u16(5).u16(0x8100).u8(1), HeaderStatus::kTruncatedVlan, 18);
  add("ipv4 19 bytes", Frame{}.eth(0x0800).u8(0x45).zeros(18), HeaderStatus::kTruncatedIpv4, 14);
  add("ipv4 version 6", Frame{}.eth(0x0800).u8(0x65).zeros(39), HeaderStatus::kBadIpVersion, 14);
  add("ipv6 version 4", Frame{}.eth(0x86DD).u8(0x45).zeros(59), HeaderStatus::kBadIpVersion, 14);
  add("ihl 4", Frame{}.eth(0x0800).ipv4(17, 8, 4).zeros(24), HeaderStatus::kBadIhl, 14);
  add("ihl 0", Frame{}.eth(0x0800).ipv4(17, 8, 0).zeros(24), HeaderStatus::kBadIhl, 14);
  Frame ihl15;  // IHL 15 says 60 bytes of IPv4 header; the frame has 40
  ihl15.eth(0x0800).ipv4(17, 8, 15);
  ihl15.b.resize(14 + 40);
  add("ihl 15, 40 bytes", ihl15, HeaderStatus::kTruncatedIpv4, 14);
  add("tot_len < ihl", Frame{}.eth(0x0800).ipv4(17, 8, 5, 0, 19).udp(8), HeaderStatus::kBadIpTotalLength, 14);
  add("ipv6 39 bytes", Frame{}.eth(0x86DD).u8(0x60).zeros(38), HeaderStatus::kTruncatedIpv6, 14);
  add("ext past frame", Frame{}.eth(0x86DD).ipv6(60, 64).u8(17).u8(7).zeros(6),
      HeaderStatus::kTruncatedExtHeader, 54);
  add("ext past payload_len", Frame{}.eth(0x86DD).ipv6(60, 8).ext(43, 0).ext(17, 0).udp(8),
      HeaderStatus::kTruncatedExtHeader, 62);
  add("ext 7 bytes", Frame{}.eth(0x86DD).ipv6(0, 7).zeros(7), HeaderStatus::kTruncatedExtHeader, 54);
  add("ah past frame", Frame{}.eth(0x86DD).ipv6(51, 200).u8(17).u8(10).zeros(10),
      HeaderStatus::kTruncatedExtHeader, 54);
  add("hbh second", Frame{}.eth(0x86DD).ipv6(60, 24).ext(0, 0).ext(17, 0).udp(8),
      HeaderStatus::kHopByHopNotFirst, 62);
  add("tcp doff 4", Frame{}.eth(0x0800).ipv4(6, 20).tcp(4, 0).zeros(4), HeaderStatus::kBadTcpDataOffset, 34);
  add("tcp doff 0", Frame{}.eth(0x0800).ipv4(6, 20).tcp(0, 0).zeros(20), HeaderStatus::kBadTcpDataOffset, 34);
  add("tcp 19 bytes", Frame{}.eth(0x0800).ipv4(6, 19).zeros(19), HeaderStatus::kTruncatedL4, 34);
  Frame cut_options;  // data offset 10 (40 bytes), the frame ends 10 bytes into the options
  cut_options.eth(0x0800).ipv4(6, 40).tcp(10, 0);
  cut_options.b.resize(14 + 20 + 30);
  add("tcp options cut", cut_options, HeaderStatus::kTruncatedL4, 34);
  // The TCP header fits in the frame only by borrowing Ethernet padding past the IPv4 total length.
  add("tcp in padding", Frame{}.eth(0x0800).ipv4(6, 10).tcp(5, 0), HeaderStatus::kTruncatedL4, 34);
  add("udp 7 bytes", Frame{}.eth(0x0800).ipv4(17, 7).zeros(7), HeaderStatus::kTruncatedL4, 34);
  add("icmpv6 4 bytes", Frame{}.eth(0x86DD).ipv6(58, 4).zeros(4), HeaderStatus::kTruncatedL4, 54);
  Frame chain;
  chain.eth(0x86DD).ipv6(60, static_cast<uint16_t>(8 * (kMaxIpv6ExtHeaders + 1) + 8));
  for (uint32_t i = 0; i < kMaxIpv6ExtHeaders + 1; ++i) chain.ext(i == kMaxIpv6ExtHeaders ? 17 : 60, 0);
  chain.udp(8);
  add("chain too long", chain, HeaderStatus::kExtHeaderChainTooLong, 54 + 8 * kMaxIpv6ExtHeaders);
  return v;
}

TEST(PacketHeaders, EachMalformedCaseHasItsReasonAndASafeLength) {
  for (const auto& c : malformed_cases()) {
    const HeaderInfo h = c.frame.parse();
    EXPECT_EQ(h.status, c.status) << c.name << ": got " << to_string(h.status);
    EXPECT_EQ(h.header_len, c.header_len) << c.name;
    EXPECT_LE(h.header_len, c.frame.size()) << c.name;
    EXPECT_FALSE(h.is_tcpv4() || h.is_tcpv6() || h.is_udp()) << c.name;
    EXPECT_STRNE(to_string(h.status), "ok") << c.name;
  }
}

TEST(PacketHeaders, EveryPrefixOfAValidFrameIsSafeAndTruncationIsNeverOk) {
  std::vector<Frame> frames(4);
  frames[0].eth(0x88A8).u16(10).u16(0x8100).u16(20).u16(0x0800).ipv4(6, 40, 6).tcp(10, kTcpAck);
  frames[1].eth(0x86DD).ipv6(0, 8 + 16 + 8 + 8).ext(60, 0).ext(44, 1).frag6(17, 0, true).udp(8);
  frames[2].eth(0x86DD).ipv6(51, 16 + 20).ah(6, 2).tcp(5, kTcpFin);
  frames[3].eth(0x8100).u16(7).u16(0x0800).ipv4(1, 8).icmp();
  for (const Frame& full : frames) {
    const HeaderInfo whole = full.parse();
    ASSERT_TRUE(whole.ok()) << to_string(whole.status);
    ASSERT_EQ(whole.header_len, full.size());  // each frame is all headers
    for (size_t n = 0; n < full.size(); ++n) {
      // Copy to an exactly-sized heap buffer so ASan sees any read past the prefix.
      std::vector<uint8_t> prefix(full.b.begin(), full.b.begin() + static_cast<ptrdiff_t>(n));
      const HeaderInfo h = parse_headers(as_span(prefix));
      EXPECT_FALSE(h.ok()) << "prefix " << n << " of " << full.size();
      EXPECT_LE(h.header_len, n);
    }
  }
}

TEST(PacketHeaders, RandomMutationsNeverReadOutOfBoundsOrOverclaim) {
  // A poor man's fuzzer until the real one: flip bytes of valid frames, cut them, and check the output is sane.
  std::vector<Frame> seeds(3);
  seeds[0].eth(0x8100).u16(7).u16(0x86DD).ipv6(0, 8 + 8 + 24).ext(44, 0).frag6(6, 0, true).tcp(6, 0);
  seeds[1].eth(0x0800).ipv4(6, 60, 15).tcp(15, 0);
  seeds[2].eth(0x86DD).ipv6(60, 16 + 12 + 8).ext(51, 1).ah(17, 1).udp(8);
  std::mt19937 rng(12345);
  int ok = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    const Frame& seed = seeds[static_cast<size_t>(iter) % seeds.size()];
    std::vector<uint8_t> b = seed.b;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    b.resize(rng() % (b.size() + 1));
    const HeaderInfo h = parse_headers(as_span(b));
    ASSERT_LE(h.header_len, b.size());
    if (h.ok()) {
      ++ok;
      ASSERT_LE(h.l4_off + h.l4_len, h.header_len);
      ASSERT_GE(h.header_len, h.l2_len);
    }
  }
  EXPECT_GT(ok, 0);  // mutations are not all rejected: the checks above ran on accepted frames too
}

}  // namespace
}  // namespace pvnet
