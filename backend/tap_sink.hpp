// The TAP sink: dom0 -> host. A guest's TX frames are written to a TAP device; frames the host sends into the
// TAP are queued to that guest's RX (Backend::queue_rx, delivered by grant copy from dom0 memory). The TAP is
// opened inside a network namespace (setns around TUNSETIFF: a tun fd keeps the namespace its device was made
// in), so the host side of the link lives in that namespace only.
//
// The TAP speaks virtio_net_hdr (IFF_VNET_HDR) so a guest's GSO super-frame and its partial checksum
// (NETTXF_csum_blank) go to the kernel as they are and the kernel segments / finishes them, as xen-netback
// hands a GSO skb to the bridge. Offloads towards the guest follow what the guest's frontend takes on RX
// (Backend::rx_offloads, set with TUNSETOFFLOAD while it is connected): partial checksums become NETRXF_csum_blank
// and TCP super-frames a GSO extra, as xen-netback passes the bridge's skbs on; with none, the kernel gives us
// MTU-sized frames with complete checksums.
//
// Writing a frame to the kernel means reading its payload: the sink gathers it into a private buffer first
// (the payload policy's lazy pointers fault in user space, never inside write()).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <nlohmann/json_fwd.hpp>

#include "backend/backend.hpp"
#include "backend/sink.hpp"
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/counter_list.hpp"
#include "shared-ring/offload.hpp"

namespace pvnet {

// A TAP that speaks virtio_net_hdr (IFF_VNET_HDR, the 10-byte header: kVirtioNetHdrLegacyLen) with no offloads
// towards the reader (MTU-sized frames, complete checksums), non-blocking, made in the network namespace at
// `netns_path` (/run/netns/NAME; empty: ours). The TAP sink and `pvnet frontend --tap` (tools/tap_frontend.*) both
// open theirs here.
Result<UniqueFd> open_vnet_tap(const std::string& netns_path, const std::string& ifname);

// Offloads the kernel may use towards the TAP's reader (TUNSETOFFLOAD): partial checksums, TCP super-frames.
struct TapOffloads {
  bool csum = false;
  bool tso4 = false;  // need csum
  bool tso6 = false;
  bool operator==(const TapOffloads&) const = default;
};
Result<void> set_tap_offloads(int tap_fd, const TapOffloads& o);
// What to ask of the TAP given what netif may carry the other way (TCP GSO only with partial checksums).
TapOffloads tap_offloads_for(bool csum_blank, bool gso_tcpv4, bool gso_tcpv6);

// The drop reason under which a TAP reader counts a frame whose virtio_net_hdr netif cannot carry
// ("tap_bad_vnet_hdr", "tap_gso_unsupported"). The rules are shared-ring/offload.hpp's.
const char* tap_drop_reason(OffloadRefusal r);

// What the TAP sink moved, both ways. Bytes are of Ethernet frames (no virtio_net_hdr): a GSO frame towards the
// host counts once in frames_to_host but with all its bytes in bytes_to_host.
#define PVNET_TAP_SINK_COUNTERS(X)                                                                      \
  X(frames_to_host)                                                                                     \
  X(frames_to_guest)                                                                                    \
  X(bytes_to_host)                                                                                      \
  X(bytes_to_guest)                                                                                     \
  X(frames_dropped_no_guest) /* read while the vif was not connected, or its RX queue refused them */ \
  X(gso_frames_to_guest)

struct TapSinkCounters {
  PVNET_TAP_SINK_COUNTERS(PVNET_COUNTER_FIELD)
  // Frames read with a virtio_net_hdr netif cannot carry, by reason; never queued. JSON: an object keyed by
  // tap_drop_reason, with the reasons seen.
  std::array<uint64_t, kOffloadRefusals> frames_dropped_offload{};
  uint64_t& dropped_offload(OffloadRefusal r) { return frames_dropped_offload[static_cast<size_t>(r)]; }
};
void to_json(nlohmann::json& j, const TapSinkCounters& c);

class TapSink final : public Sink {
 public:
  // Opens (creates) TAP `ifname` in the network namespace at `netns_path` (/run/netns/NAME; empty: ours).
  // The device comes up without addresses: the caller configures the namespace's side (ip -n NAME ...).
  static Result<std::unique_ptr<TapSink>> open(const std::string& netns_path, const std::string& ifname);
  TapSink(UniqueFd fd, std::string ifname) : fd_(std::move(fd)), ifname_(std::move(ifname)) {}

  std::string name() const override { return "tap"; }
  bool reads_payload() const override { return true; }  // the kernel gets every byte
  SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) override;

  // The host -> guest half: reads what the TAP has and queues it to `vif`'s RX while the vif has room. Frames
  // read while the vif is not connected are dropped (counted). Returns frames read.
  size_t pump_rx(Backend& backend, VifId vif);
  int fd() const { return fd_.get(); }
  const std::string& ifname() const { return ifname_; }

  const TapSinkCounters& counters() const { return c_; }
  const TapOffloads& offloads() const { return offloads_; }  // asked of the kernel now

 private:
  UniqueFd fd_;
  std::string ifname_;
  std::vector<std::byte> frame_;   // reused: virtio_net_hdr + frame towards the host
  std::vector<std::byte> rx_buf_;  // reused: one read from the TAP
  // One TAP read (virtio_net_hdr + frame) as netif RX into *f; false: dropped, counted.
  bool rx_frame_from(std::span<std::byte> read, RxFrame* f);

  TapSinkCounters c_;
  TapOffloads offloads_;
};

}  // namespace pvnet
