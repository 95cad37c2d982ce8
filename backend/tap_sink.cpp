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
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;

constexpr size_t kVnetHdr = sizeof(TapVnetHdr);
constexpr size_t kMaxTapFrame = 65536;  // a GSO super-frame towards the host; the TAP gives us at most its MTU

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

Result<std::unique_ptr<TapSink>> TapSink::open(const std::string& netns_path, const std::string& ifname) {
  auto fd = open_vnet_tap(netns_path, ifname);
  if (!fd) return fd.error();
  return std::make_unique<TapSink>(std::move(fd).value(), ifname);
}

SinkResult TapSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  if (auto ok = payload.expose(pkt); !ok) return SinkResult::drop(netif::rsp::error, "payload_unavailable");
  frame_.assign(kVnetHdr + pkt.len, std::byte{0});
  const auto vh = vnet_hdr_for(pkt.hdr, (pkt.tx_flags & netif::txf::csum_blank) != 0,
                               pkt.gso.present() ? pkt.gso.type : netif::gso_type::none, pkt.gso.size);
  if (!vh) return SinkResult::drop(netif::rsp::error, "tap_gso_not_tcp");
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
  if (!verified) return SinkResult::drop(netif::rsp::error, "bad_payload_grant");
  ssize_t n = ::write(fd_.get(), frame_.data(), frame_.size());
  if (n < 0) {
    // A full TAP queue drops, as a congested bridge port does.
    return SinkResult::drop(netif::rsp::dropped, errno == EAGAIN ? "tap_queue_full" : "tap_write_error");
  }
  to_host_++;
  to_host_bytes_ += pkt.len;
  return SinkResult::okay();
}

size_t TapSink::pump_rx(Backend& backend, VifId vif) {
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
    RxFrame f;
    f.local.assign(buf.begin() + kVnetHdr, buf.begin() + n);
    f.len = static_cast<uint32_t>(f.local.size());
    const uint32_t len = f.len;
    if (backend.queue_rx(vif, std::move(f))) {
      to_guest_++;
      to_guest_bytes_ += len;
    } else {
      dropped_no_guest_++;
    }
  }
  return frames;
}

}  // namespace pvnet
