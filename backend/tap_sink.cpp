#include "backend/tap_sink.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pvnet {

namespace {

constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;

constexpr size_t kVnetHdr = sizeof(TapVnetHdr);
constexpr size_t kMaxTapFrame = 65536;  // a GSO super-frame either way (at most the MTU without offloads)

// setns into the namespace for the TUNSETIFF only, then back: the fd stays bound to the device's namespace.
Result<UniqueFd> open_tap_here(const std::string& ifname) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return make_error(errno, std::string("open /dev/net/tun: ") + std::strerror(errno));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0)
    return make_error(errno, "TUNSETIFF " + ifname + ": " + std::strerror(errno));
  int hdr = static_cast<int>(kVnetHdr);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) < 0)
    return make_error(errno, std::string("TUNSETVNETHDRSZ: ") + std::strerror(errno));
  // No offloads towards us: MTU-sized frames, checksums complete.
  if (::ioctl(fd.get(), TUNSETOFFLOAD, 0u) < 0)
    return make_error(errno, std::string("TUNSETOFFLOAD: ") + std::strerror(errno));
  return fd;
}

}  // namespace

Result<UniqueFd> open_vnet_tap(const std::string& netns_path, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) return make_error(EINVAL, "bad TAP name '" + ifname + "'");
  Result<UniqueFd> fd = make_error(EINVAL, "unset");
  if (netns_path.empty()) {
    fd = open_tap_here(ifname);
  } else {
    UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!self) return make_error(errno, std::string("open /proc/self/ns/net: ") + std::strerror(errno));
    if (!target) return make_error(errno, "open " + netns_path + ": " + std::strerror(errno));
    if (::setns(target.get(), CLONE_NEWNET) < 0)
      return make_error(errno, "setns " + netns_path + ": " + std::strerror(errno));
    fd = open_tap_here(ifname);
    if (::setns(self.get(), CLONE_NEWNET) < 0)
      return make_error(errno, std::string("setns back: ") + std::strerror(errno));
  }
  return fd;
}

std::optional<TapVnetHdr> vnet_hdr_for(const HeaderInfo& h, bool csum_blank, uint8_t netif_gso_type,
                                         uint16_t gso_size) {
  TapVnetHdr vh{};
  const bool gso = netif_gso_type != netif::gso_type::none;
  if ((csum_blank || gso) && (h.is_tcp() || h.is_udp())) {
    vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh.csum_start = static_cast<uint16_t>(h.l4_off);
    vh.csum_offset = h.is_tcp() ? 16 : 6;
  }
  if (gso) {
    if (!h.is_tcp()) return std::nullopt;
    vh.gso_type = netif_gso_type == netif::gso_type::tcpv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    vh.gso_size = gso_size;
    vh.hdr_len = static_cast<uint16_t>(h.l4_off + h.l4_len);
  }
  return vh;
}

Result<void> set_tap_offloads(int tap_fd, const TapOffloads& o) {
  unsigned flags = 0;
  if (o.csum) flags |= TUN_F_CSUM;
  if (o.csum && o.tso4) flags |= TUN_F_TSO4;
  if (o.csum && o.tso6) flags |= TUN_F_TSO6;
  if (::ioctl(tap_fd, TUNSETOFFLOAD, flags) < 0)
    return make_error(errno, std::string("TUNSETOFFLOAD: ") + std::strerror(errno));
  return {};
}

TapOffloads tap_offloads_for(bool csum_blank, bool gso_tcpv4, bool gso_tcpv6) {
  TapOffloads o;
  o.csum = csum_blank;
  o.tso4 = csum_blank && gso_tcpv4;
  o.tso6 = csum_blank && gso_tcpv6;
  return o;
}

Result<NetifOffload> netif_offload_for(const TapVnetHdr& vh, std::span<std::byte> frame) {
  NetifOffload o;
  const bool gso = vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
  if (!(vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
    if (gso) return make_error(EINVAL, "tap_bad_vnet_hdr");  // GSO always comes with a partial checksum
    return o;
  }
  const size_t start = vh.csum_start, field = size_t{vh.csum_start} + vh.csum_offset;
  if (field + 2 > frame.size()) return make_error(EINVAL, "tap_bad_vnet_hdr");
  const HeaderInfo h = parse_headers(frame);
  const bool at_l4 = (h.is_tcp() || h.is_udp()) && start == h.l4_off && vh.csum_offset == (h.is_tcp() ? 16 : 6);
  if (gso) {
    if ((vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && h.is_tcpv4()) ||
        (vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV6 && h.is_tcpv6())) {
      if (!at_l4 || vh.gso_size == 0) return make_error(EINVAL, "tap_bad_vnet_hdr");
      o.gso_type = vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 ? netif::gso_type::tcpv4 : netif::gso_type::tcpv6;
      o.gso_size = vh.gso_size;
      o.csum_blank = true;
      return o;
    }
    return make_error(EINVAL, "tap_gso_unsupported");  // UDP, ECN, or a type the headers do not match
  }
  if (at_l4) {
    o.csum_blank = true;  // the backend / the kernel on the other side finishes it, from the headers
    return o;
  }
  // netif cannot say where this checksum starts: finish it here, as skb_checksum_help does (the field holds the
  // pseudo-header part already, so it is part of the sum).
  uint32_t sum = 0;
  for (size_t i = start; i + 1 < frame.size(); i += 2)
    sum += (std::to_integer<uint32_t>(frame[i]) << 8) | std::to_integer<uint32_t>(frame[i + 1]);
  if ((frame.size() - start) & 1) sum += std::to_integer<uint32_t>(frame[frame.size() - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  const uint16_t csum = static_cast<uint16_t>(~sum);
  frame[field] = std::byte(csum >> 8);
  frame[field + 1] = std::byte(csum & 0xFF);
  return o;
}

Result<std::unique_ptr<TapSink>> TapSink::open(const std::string& netns_path, const std::string& ifname) {
  auto fd = open_vnet_tap(netns_path, ifname);
  if (!fd) return fd.error();
  return std::make_unique<TapSink>(std::move(fd).value(), ifname);
}

SinkResult TapSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  if (auto ok = payload.expose(pkt); !ok) return SinkResult::drop(netif::rsp::error, DropReason::payload_unavailable);
  frame_.assign(kVnetHdr + pkt.len, std::byte{0});
  const auto vh = vnet_hdr_for(pkt.hdr, (pkt.tx_flags & netif::txf::csum_blank) != 0,
                               pkt.gso.present() ? pkt.gso.type : netif::gso_type::none, pkt.gso.size);
  if (!vh) return SinkResult::drop(netif::rsp::error, DropReason::tap_gso_not_tcp);
  std::memcpy(frame_.data(), &*vh, kVnetHdr);
  std::memcpy(frame_.data() + kVnetHdr, pkt.header.data(), pkt.header.size());
  size_t at = kVnetHdr + pkt.header.size();
  for (const auto& f : pkt.frags) {
    std::memcpy(frame_.data() + at, f.data, f.len);  // the read that faults the page in (slots)
    at += f.len;
  }
  src.backend_memcpy_bytes += pkt.payload_len();
  uint64_t touched = 0;
  auto verified = payload.verify(pkt, &touched);
  src.payload_pages_touched += touched;
  if (!verified) return SinkResult::drop(netif::rsp::error, DropReason::bad_payload_grant);
  ssize_t n = ::write(fd_.get(), frame_.data(), frame_.size());
  if (n < 0) {
    // A full TAP queue drops, as a congested bridge port does.
    return SinkResult::drop(netif::rsp::dropped, errno == EAGAIN ? DropReason::tap_queue_full : DropReason::tap_write_error);
  }
  to_host_++;
  to_host_bytes_ += pkt.len;
  return SinkResult::okay();
}

size_t TapSink::pump_rx(Backend& backend, VifId vif) {
  // Ask the kernel for what this guest's frontend takes now (nothing while it is away). Frames the kernel queued
  // under the old setting still come as they were: a GSO one the frontend no longer takes is the RX path's
  // rx_no_gso drop.
  const RxOffloads fe = backend.rx_offloads(vif);
  const TapOffloads want = tap_offloads_for(fe.csum_blank, fe.gso_tcpv4, fe.gso_tcpv6);
  if (want != offloads_ && set_tap_offloads(fd_.get(), want)) offloads_ = want;
  size_t frames = 0;
  std::vector<std::byte>& buf = rx_buf_;
  buf.resize(kVnetHdr + kMaxTapFrame);
  while (!backend.rx_connected(vif) || backend.rx_has_room(vif)) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n <= static_cast<ssize_t>(kVnetHdr)) break;  // EAGAIN (or a runt): nothing more now
    frames++;
    if (!backend.rx_connected(vif)) {
      dropped_no_guest_++;
      continue;
    }
    TapVnetHdr vh;
    std::memcpy(&vh, buf.data(), kVnetHdr);
    const std::span<std::byte> frame(buf.data() + kVnetHdr, static_cast<size_t>(n) - kVnetHdr);
    auto off = netif_offload_for(vh, frame);
    if (!off) {
      dropped_offload_[off.error().reason]++;
      continue;
    }
    RxFrame f;
    f.local.assign(frame.begin(), frame.end());
    f.len = static_cast<uint32_t>(f.local.size());
    f.gso.type = off->gso_type;
    f.gso.size = off->gso_size;
    if (off->csum_blank) f.rx_flags = netif::rxf::csum_blank | netif::rxf::data_validated;
    const uint32_t len = f.len;
    const bool gso = f.gso.present();
    if (backend.queue_rx(vif, std::move(f)) == QueueRx::ok) {
      to_guest_++;
      to_guest_bytes_ += len;
      if (gso) to_guest_gso_++;
    } else {
      dropped_no_guest_++;
    }
  }
  return frames;
}

}  // namespace pvnet
