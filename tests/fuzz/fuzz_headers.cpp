// libFuzzer target: parse_headers() over any bytes (docs/fuzzing.md, "fuzz_headers"). The backend runs it on the
// copy it took out of a header slot, which the guest wrote, so it must be total and its answer self-consistent.
// Asserted: header_len <= size; the layer offsets are ordered and inside header_len; counts within their budgets;
// the answer is a pure function of the bytes; and for a frame that parses, its first header_len bytes alone (what
// a frontend puts in a header slot) parse to the same answer, so the backend sees what the frontend saw.
#include <cstring>
#include <vector>

#include "shared-ring/packet_headers.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace {

using pvnet::HeaderInfo;

bool same(const HeaderInfo& a, const HeaderInfo& b) {
  return a.status == b.status && a.header_len == b.header_len && a.l2_len == b.l2_len && a.ethertype == b.ethertype &&
         a.vlan_count == b.vlan_count && a.vlan_tpid == b.vlan_tpid && a.vlan_id == b.vlan_id && a.l3 == b.l3 &&
         a.l3_off == b.l3_off && a.ip_len == b.ip_len && a.ipv6_ext_count == b.ipv6_ext_count &&
         a.is_fragment == b.is_fragment && a.is_later_fragment == b.is_later_fragment && a.has_l4 == b.has_l4 &&
         a.l4_proto == b.l4_proto && a.l4_off == b.l4_off && a.l4_len == b.l4_len && a.tcp_flags == b.tcp_flags;
}

void check(const HeaderInfo& h, size_t size) {
  PVNET_FUZZ_CHECK(h.header_len <= size, "header_len %u > frame %zu", h.header_len, size);
  PVNET_FUZZ_CHECK(h.vlan_count <= pvnet::kMaxVlanTags, "vlan_count %u", h.vlan_count);
  PVNET_FUZZ_CHECK(h.ipv6_ext_count <= pvnet::kMaxIpv6ExtHeaders, "ipv6_ext_count %u", h.ipv6_ext_count);
  PVNET_FUZZ_CHECK(!h.is_later_fragment || h.is_fragment, "later fragment that is not a fragment");
  if (h.status == pvnet::HeaderStatus::kTruncatedEthernet) {
    PVNET_FUZZ_CHECK(size < pvnet::kEthHdrLen && h.header_len == 0, "truncated Ethernet with %zu bytes", size);
    return;
  }
  PVNET_FUZZ_CHECK(h.l2_len == uint32_t{pvnet::kEthHdrLen} + uint32_t{h.vlan_count} * pvnet::kVlanTagLen || !h.ok(),
                   "l2_len %u with %u tags", h.l2_len, h.vlan_count);
  PVNET_FUZZ_CHECK(h.l2_len <= h.header_len || !h.ok(), "l2_len %u > header_len %u", h.l2_len, h.header_len);
  if (h.l3 != pvnet::L3Proto::kNone)
    PVNET_FUZZ_CHECK(h.l3_off == h.l2_len, "l3_off %u != l2_len %u", h.l3_off, h.l2_len);
  if (h.has_l4) {
    PVNET_FUZZ_CHECK(h.l3 != pvnet::L3Proto::kNone, "L4 without L3");
    PVNET_FUZZ_CHECK(h.l4_off > h.l3_off, "l4_off %u <= l3_off %u", h.l4_off, h.l3_off);
    if (h.ok()) {
      PVNET_FUZZ_CHECK(h.l4_off + h.l4_len == h.header_len, "l4_off %u + l4_len %u != header_len %u", h.l4_off,
                       h.l4_len, h.header_len);
      PVNET_FUZZ_CHECK(!h.is_later_fragment || h.l4_len == 0, "later fragment with an L4 header");
    }
  }
  if (h.ok() && h.l3 == pvnet::L3Proto::kNone) PVNET_FUZZ_CHECK(h.header_len == h.l2_len, "L2-only header_len");
  if (h.is_tcp()) PVNET_FUZZ_CHECK(h.l4_len >= 20 && h.l4_len <= 60, "TCP header of %u bytes", h.l4_len);
  if (h.is_udp()) PVNET_FUZZ_CHECK(h.l4_len == 8, "UDP header of %u bytes", h.l4_len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so ASan sees a read one past the frame.
  std::vector<std::byte> frame(size);
  if (size != 0) std::memcpy(frame.data(), data, size);
  const HeaderInfo h = pvnet::parse_headers(frame);
  check(h, size);
  PVNET_FUZZ_CHECK(same(h, pvnet::parse_headers(frame)), "two parses of the same bytes differ");
  if (h.ok()) {
    std::vector<std::byte> head(frame.begin(), frame.begin() + h.header_len);
    const HeaderInfo again = pvnet::parse_headers(head);
    check(again, head.size());
    PVNET_FUZZ_CHECK(same(h, again), "the first header_len=%u bytes parse differently (status %s, header_len %u)",
                     h.header_len, pvnet::to_string(again.status), again.header_len);
  }
  return 0;
}
