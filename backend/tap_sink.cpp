#include "backend/tap_sink.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace pvnet {

namespace {

constexpr size_t kVnetHdr = kVirtioNetHdrLegacyLen;  // TUNSETVNETHDRSZ: no num_buffers
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

const char* tap_drop_reason(OffloadRefusal r) {
  switch (r) {
    case OffloadRefusal::kBadVnetHdr:
      return "tap_bad_vnet_hdr";
    case OffloadRefusal::kGsoUnsupported:
      return "tap_gso_unsupported";
  }
  return "tap_bad_vnet_hdr";
}

void to_json(nlohmann::json& j, const TapSinkCounters& c) {
  j = nlohmann::json::object();
  PVNET_TAP_SINK_COUNTERS(PVNET_COUNTER_JSON)
  nlohmann::json offload = nlohmann::json::object();
  for (auto r : {OffloadRefusal::kBadVnetHdr, OffloadRefusal::kGsoUnsupported})
    if (uint64_t n = c.frames_dropped_offload[static_cast<size_t>(r)]) offload[tap_drop_reason(r)] = n;
  j["frames_dropped_offload"] = offload;
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

Result<std::unique_ptr<TapSink>> TapSink::open(const std::string& netns_path, const std::string& ifname) {
  auto fd = open_vnet_tap(netns_path, ifname);
  if (!fd) return fd.error();
  return std::make_unique<TapSink>(std::move(fd).value(), ifname);
}

SinkResult TapSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  if (auto ok = payload.expose(pkt); !ok) return SinkResult::drop(netif::rsp::error, DropReason::payload_unavailable);
  frame_.assign(kVnetHdr + pkt.len, std::byte{0});
  NetifOffload o;
  o.csum_blank = (pkt.tx_flags & netif::txf::csum_blank) != 0;  // no DATA_VALID: the kernel checks the rest
  if (pkt.gso.present()) {
    o.gso_type = pkt.gso.type;
    o.gso_size = pkt.gso.size;
  }
  const auto vh = virtio_net_hdr_for(pkt.hdr, o);
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
    return SinkResult::drop(netif::rsp::dropped,
                            errno == EAGAIN ? DropReason::tap_queue_full : DropReason::tap_write_error);
  }
  c_.frames_to_host++;
  c_.bytes_to_host += pkt.len;
  return SinkResult::okay();
}

bool TapSink::rx_frame_from(std::span<std::byte> read, RxFrame* f) {
  VirtioNetHdr vh{};
  std::memcpy(reinterpret_cast<std::byte*>(&vh), read.data(), kVnetHdr);  // the first 10 bytes
  const std::span<std::byte> frame = read.subspan(kVnetHdr);
  const OffloadPlan off = netif_offload_from(vh, frame);  // may finish a checksum netif cannot say, in place
  if (!off) {
    c_.dropped_offload(*off.refused)++;
    return false;
  }
  f->local.assign(frame.begin(), frame.end());
  f->len = static_cast<uint32_t>(f->local.size());
  f->gso.type = off.offload.gso_type;
  f->gso.size = off.offload.gso_size;
  if (off.offload.csum_blank) f->rx_flags |= netif::rxf::csum_blank;
  if (off.offload.data_validated) f->rx_flags |= netif::rxf::data_validated;
  return true;
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
      c_.frames_dropped_no_guest++;
      continue;
    }
    RxFrame f;
    if (!rx_frame_from(std::span<std::byte>(buf.data(), static_cast<size_t>(n)), &f)) continue;
    const uint32_t len = f.len;
    const bool gso = f.gso.present();
    if (backend.queue_rx(vif, std::move(f)) == QueueRx::ok) {
      c_.frames_to_guest++;
      c_.bytes_to_guest += len;
      if (gso) c_.gso_frames_to_guest++;
    } else {
      c_.frames_dropped_no_guest++;
    }
  }
  return frames;
}

}  // namespace pvnet
