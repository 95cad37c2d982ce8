// What a frame read from a TAP with offloads on becomes in netif (the codec's netif_offload_from, which the TAP
// sink's RX half and `pvnet frontend --tap` both call), the drop reasons they count, the header they write
// (virtio_net_hdr_for), and which offloads a TAP is asked for (tap_offloads_for). The virtio header cases are the
// table the vhost-user bridge runs too (tests/common/virtio_hdr_cases.hpp); the end-to-end check that the
// kernel's TSO reaches netif both ways is tests/tap_frontend/tap_frontend.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "backend/tap_sink.hpp"
#include "tests/common/virtio_hdr_cases.hpp"

namespace pvnet {
namespace {

using test::HdrExpect;

TEST(NetifOffloadFrom, SharedVirtioHeaderTable) {
  for (const test::VirtioHdrCase& c : test::virtio_hdr_cases()) {
    SCOPED_TRACE(c.name);
    auto f = c.frame();
    const auto before = f;
    const OffloadPlan o = netif_offload_from(c.hdr, f);
    switch (c.expect) {
      case HdrExpect::kOffload:
        ASSERT_TRUE(o) << to_string(*o.refused);
        EXPECT_EQ(o.offload, c.offload);
        EXPECT_FALSE(o.finish_csum);
        EXPECT_EQ(f, before) << "the other side finishes the checksum: the frame is not touched";
        break;
      case HdrExpect::kFinished:
        ASSERT_TRUE(o) << to_string(*o.refused);
        EXPECT_TRUE(o.finish_csum);
        EXPECT_FALSE(o.offload.csum_blank);
        EXPECT_EQ(test::folded_sum(f, c.sum_from), 0xFFFF);
        break;
      case HdrExpect::kRefused:
        ASSERT_FALSE(o);
        EXPECT_EQ(*o.refused, c.refusal);
        EXPECT_EQ(f, before);
        break;
    }
  }
}

TEST(NetifOffloadFrom, RefusalsAreCountedUnderTheTapReasons) {
  EXPECT_STREQ(tap_drop_reason(OffloadRefusal::kGsoUnsupported), "tap_gso_unsupported");
  EXPECT_STREQ(tap_drop_reason(OffloadRefusal::kBadVnetHdr), "tap_bad_vnet_hdr");
  TapSinkCounters c;
  c.dropped_offload(OffloadRefusal::kGsoUnsupported) += 2;
  nlohmann::json j = c;
  EXPECT_EQ(j["frames_dropped_offload"], (nlohmann::json{{"tap_gso_unsupported", 2}}));
  EXPECT_EQ(j["frames_to_host"], 0);
}

TEST(VirtioNetHdrFor, PartialChecksumsAndTcpGsoFromNetif) {
  auto v4 = test::make_frame(20000);
  auto vh = virtio_net_hdr_for(parse_headers(v4), NetifOffload{false, false, netif::gso_type::tcpv4, 1448});
  ASSERT_TRUE(vh);
  EXPECT_EQ(vh->flags, vnet::kFlagNeedsCsum);  // GSO always has a partial checksum
  EXPECT_EQ(vh->gso_type, vnet::kGsoTcpv4);
  EXPECT_EQ(vh->gso_size, 1448);
  EXPECT_EQ(vh->csum_start, 34);
  EXPECT_EQ(vh->csum_offset, 16);
  EXPECT_EQ(vh->hdr_len, 54);
  auto udp6 = test::make_frame(300, true, true);
  vh = virtio_net_hdr_for(parse_headers(udp6), NetifOffload{true, true, netif::gso_type::none, 0});
  ASSERT_TRUE(vh);
  EXPECT_EQ(vh->csum_start, 54);
  EXPECT_EQ(vh->csum_offset, 6);
  EXPECT_EQ(vh->gso_type, vnet::kGsoNone);
  // Validated only: DATA_VALID; nothing: no flags.
  vh = virtio_net_hdr_for(parse_headers(udp6), NetifOffload{false, true, netif::gso_type::none, 0});
  ASSERT_TRUE(vh);
  EXPECT_EQ(vh->flags, vnet::kFlagDataValid);
  EXPECT_EQ(virtio_net_hdr_for(parse_headers(udp6), NetifOffload{})->flags, 0);
  // GSO the headers do not support: UDP, or the other IP version.
  EXPECT_FALSE(virtio_net_hdr_for(parse_headers(udp6), NetifOffload{true, true, netif::gso_type::tcpv6, 1400}));
  EXPECT_FALSE(virtio_net_hdr_for(parse_headers(v4), NetifOffload{true, true, netif::gso_type::tcpv6, 1400}));
}

TEST(TapOffloadsFor, SegmentationOnlyWithPartialChecksums) {
  EXPECT_EQ(tap_offloads_for(false, true, true), TapOffloads{});
  EXPECT_EQ(tap_offloads_for(true, false, false), (TapOffloads{true, false, false}));
  EXPECT_EQ(tap_offloads_for(true, true, false), (TapOffloads{true, true, false}));
  EXPECT_EQ(tap_offloads_for(true, true, true), (TapOffloads{true, true, true}));
}

}  // namespace
}  // namespace pvnet
