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
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/sink.hpp"
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/packet_headers.hpp"

namespace pvnet {

// struct virtio_net_hdr (virtio 1.x 5.1.6; linux/virtio_net.h cannot be included from C++: a member is named
// `class`). Little-endian fields: a TAP with the default vnet-hdr byte order on x86. Not named VirtioNetHdr:
// frontend/vhost_net_bridge.hpp has one (12 bytes, with num_buffers), and two such types would break the ODR.
struct TapVnetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = 0;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
};
static_assert(sizeof(TapVnetHdr) == 10);

// A TAP that speaks TapVnetHdr (IFF_VNET_HDR) with no offloads towards the reader (MTU-sized frames, complete
// checksums), non-blocking, made in the network namespace at `netns_path` (/run/netns/NAME; empty: ours). The
// TAP sink and `pvnet frontend --tap` (tools/tap_frontend.*) both open theirs here.
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

// A frame read from such a TAP, said in netif's terms (what NETTXF_/NETRXF_ flags and GSO extra carry it).
struct NetifOffload {
  bool csum_blank = false;  // the L4 checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL)
  uint8_t gso_type = netif::gso_type::none;
  uint16_t gso_size = 0;
};
// Reads the frame's virtio_net_hdr. A partial checksum netif cannot say (not at the TCP/UDP header: netif has
// no csum_start) is finished here, in `frame`; GSO must be TCP over IPv4/IPv6 at its L4 header, with an MSS and
// without ECN (never asked for). Errors name the reason a frame is dropped: "tap_gso_unsupported",
// "tap_bad_vnet_hdr".
Result<NetifOffload> netif_offload_for(const TapVnetHdr& vh, std::span<std::byte> frame);

// The header that hands a frame to the kernel: a partial checksum (netif csum_blank: the guest left the
// pseudo-header sum in the L4 checksum field) is CHECKSUM_PARTIAL, GSO always needs it. nullopt: GSO of a frame
// that is not TCP (netif carries only TCP GSO).
std::optional<TapVnetHdr> vnet_hdr_for(const HeaderInfo& h, bool csum_blank, uint8_t netif_gso_type,
                                         uint16_t gso_size);

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

  uint64_t frames_to_host() const { return to_host_; }
  uint64_t frames_to_guest() const { return to_guest_; }
  // Bytes of those frames (Ethernet frames, no virtio_net_hdr): a GSO frame towards the host counts once in
  // frames_to_host but with all its bytes here.
  uint64_t bytes_to_host() const { return to_host_bytes_; }
  uint64_t bytes_to_guest() const { return to_guest_bytes_; }
  uint64_t frames_dropped_no_guest() const { return dropped_no_guest_; }
  // Frames read with a virtio_net_hdr netif cannot carry, by netif_offload_for's reason; never queued.
  const std::map<std::string, uint64_t>& frames_dropped_offload() const { return dropped_offload_; }
  const TapOffloads& offloads() const { return offloads_; }  // asked of the kernel now
  uint64_t gso_frames_to_guest() const { return to_guest_gso_; }

 private:
  UniqueFd fd_;
  std::string ifname_;
  std::vector<std::byte> frame_;   // reused: virtio_net_hdr + frame towards the host
  std::vector<std::byte> rx_buf_;  // reused: one read from the TAP
  uint64_t to_host_ = 0, to_guest_ = 0, dropped_no_guest_ = 0, to_guest_gso_ = 0;
  std::map<std::string, uint64_t> dropped_offload_;
  TapOffloads offloads_;
  uint64_t to_host_bytes_ = 0, to_guest_bytes_ = 0;
};

}  // namespace pvnet
