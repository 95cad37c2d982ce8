#include "tools/daemons/tap_frontend.hpp"

#include "tools/replay/guest_drop.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backend/tap_sink.hpp"
#include "shared-ring/packet_headers.hpp"

namespace pvnet::tools {
namespace {

constexpr size_t kVnetHdr = kVirtioNetHdrLegacyLen;  // open_vnet_tap: no num_buffers
constexpr uint32_t kEthHdr = 14;
constexpr uint32_t kMaxNetifPacket = 0xFFFF;  // netif_tx_request.size is 16 bits
constexpr size_t kMaxTapRead = 65536;           // a TCP super-frame (TUN_F_TSO*) is at most 64 KiB

Result<void> ifreq_ioctl(int sock, unsigned long req, ifreq& ifr, const char* what) {
  if (::ioctl(sock, req, &ifr) < 0)
    return make_error(errno, std::string(what) + " " + ifr.ifr_name + ": " + std::strerror(errno));
  return {};
}

// Address, MTU and up, with the classic ioctls: a busybox domU has no iproute2.
Result<void> configure(const std::string& ifname, const std::string& cidr, uint32_t mtu) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return make_error(errno, std::string("socket: ") + std::strerror(errno));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = static_cast<int>(mtu);
  if (auto r = ifreq_ioctl(sock.get(), SIOCSIFMTU, ifr, "SIOCSIFMTU"); !r) return r;
  if (!cidr.empty()) {
    const auto slash = cidr.find('/');
    const std::string ip = cidr.substr(0, slash);
    int prefix = 24;
    if (slash != std::string::npos) {
      try {
        prefix = std::stoi(cidr.substr(slash + 1));
      } catch (...) {
        prefix = -1;
      }
    }
    in_addr a{};
    if (::inet_pton(AF_INET, ip.c_str(), &a) != 1 || prefix < 1 || prefix > 32)
      return make_error(EINVAL, "--tap-addr '" + cidr + "' is not an IPv4 address/prefix");
    auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    sin->sin_addr = a;
    if (auto r = ifreq_ioctl(sock.get(), SIOCSIFADDR, ifr, "SIOCSIFADDR"); !r) return r;
    sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_netmask);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(prefix == 32 ? 0xFFFFFFFFu : ~((1u << (32 - prefix)) - 1));
    if (auto r = ifreq_ioctl(sock.get(), SIOCSIFNETMASK, ifr, "SIOCSIFNETMASK"); !r) return r;
  }
  if (auto r = ifreq_ioctl(sock.get(), SIOCGIFFLAGS, ifr, "SIOCGIFFLAGS"); !r) return r;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ifreq_ioctl(sock.get(), SIOCSIFFLAGS, ifr, "SIOCSIFFLAGS");
}

}  // namespace

void to_json(nlohmann::json& j, const TapFrontendCounters& c) {
  j = nlohmann::json::object();
  PVNET_TAP_FRONTEND_COUNTERS(PVNET_COUNTER_JSON)
  j["dropped"] = c.dropped;
}

Result<std::unique_ptr<TapFrontend>> TapFrontend::open(Netfront& front, GuestPagePool& pool,
                                                        const TapFrontendOptions& options) {
  if (options.mtu < 68 || options.mtu + kEthHdr > kMaxNetifPacket || options.max_pending == 0)
    return make_error(EINVAL, "--tap-mtu must be 68.." + std::to_string(kMaxNetifPacket - kEthHdr));
  auto fd = open_vnet_tap("", options.ifname);
  if (!fd) return fd.error();
  if (auto r = configure(options.ifname, options.addr, options.mtu); !r) return r.error();
  return std::make_unique<TapFrontend>(front, pool, std::move(fd).value(), options);
}

TapFrontend::TapFrontend(Netfront& front, GuestPagePool& pool, UniqueFd fd, TapFrontendOptions options)
    : front_(front), pool_(pool), fd_(std::move(fd)), opt_(std::move(options)),
      source_(front, [this](const TxDone& done) {
        c_.tx_completed++;
        if (done.status == netif::rsp::okay)
          c_.tx_completed_ok++;
        else
          count_drop(c_.dropped,
                     done.status == netif::rsp::dropped ? GuestDrop::backend_dropped : GuestDrop::backend_error);
      }) {
  buf_.resize(kVnetHdr + std::max<size_t>(kMaxTapRead, opt_.mtu + kEthHdr + 4 /* a VLAN tag */));
  front_.on_rx([this](ReceivedFrame&& f) { on_rx(std::move(f)); });
}

TapFrontend::~TapFrontend() {
  front_.on_rx([](ReceivedFrame&&) {});
}

void TapFrontend::on_rx(ReceivedFrame&& f) {
  const HeaderInfo h = parse_headers(f.data);
  // No DATA_VALID: the kernel verifies what netif did not leave partial, as before.
  const auto vh = virtio_net_hdr_for(h, NetifOffload{f.csum_blank, false, f.gso_type, f.gso_size});
  if (!vh) {
    count_drop(c_.dropped, GuestDrop::rx_gso_not_tcp);
    return;
  }
  iovec iov[2] = {{const_cast<VirtioNetHdr*>(&*vh), kVnetHdr}, {f.data.data(), f.data.size()}};
  ssize_t n = ::writev(fd_.get(), iov, 2);
  if (n < 0) {
    // The kernel refused the frame (its backlog full, or a header it does not accept): the stack retransmits.
    count_drop(c_.dropped, errno == EAGAIN ? GuestDrop::tap_write_busy : GuestDrop::tap_write_error);
    return;
  }
  c_.to_tap_frames++;
  c_.to_tap_bytes += f.data.size();
}

void TapFrontend::update_offloads() {
  TapOffloads want;
  if (front_.connected()) {
    // Every netif backend takes NETTXF_csum_blank (netback finishes TCP/UDP checksums from the headers).
    const bool sg = front_.backend_sg();
    want = tap_offloads_for(true, sg && front_.backend_gso_tcpv4(), sg && front_.backend_gso_tcpv6());
  }
  if (want == offloads_) return;
  c_.offload_changes++;
  if (auto r = set_tap_offloads(fd_.get(), want); !r) {
    c_.offload_errors++;
    return;
  }
  offloads_ = want;
}

bool TapFrontend::transmit_front() {
  const Pending& p = pending_.front();
  auto p_or = place_frame(pool_, p.frame);
  if (!p_or) return false;  // pool short: completions give pages back
  std::optional<PlacedFrame> placed(std::move(p_or).value());
  TxOptions tx;
  tx.defer_push = true;
  tx.gso_type = p.offload.gso_type;
  tx.gso_size = p.offload.gso_size;
  tx.csum_blank = p.offload.csum_blank;
  tx.data_validated = p.offload.data_validated;  // csum_blank implies it, as Linux netfront flags CHECKSUM_PARTIAL
  switch (source_.transmit(placed, tx)) {
    case TxStatus::kQueued:
      c_.tx_queued++;
      break;
    case TxStatus::kBusy:
      return false;  // `placed` gives its pages back; the frame stays first in line
    case TxStatus::kNotConnected:
      count_drop(c_.dropped, GuestDrop::not_connected);
      break;
    case TxStatus::kInvalid:
      count_drop(c_.dropped, GuestDrop::frontend_refused);
      break;
  }
  pending_.pop_front();
  return true;
}

size_t TapFrontend::pump() {
  update_offloads();
  size_t work = 0;
  for (;;) {
    while (!pending_.empty() && transmit_front()) work++;
    if (!pending_.empty() || !wants_read()) break;
    ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
    if (n <= static_cast<ssize_t>(kVnetHdr + kEthHdr)) {
      if (n > 0) count_drop(c_.dropped, GuestDrop::tap_runt);
      if (n < 0 && errno != EAGAIN && errno != EINTR) count_drop(c_.dropped, GuestDrop::tap_read_error);
      if (n <= 0) break;
      continue;
    }
    work++;
    c_.from_tap_frames++;
    c_.from_tap_bytes += static_cast<uint64_t>(n) - kVnetHdr;
    VirtioNetHdr vh{};
    std::memcpy(reinterpret_cast<std::byte*>(&vh), buf_.data(), kVnetHdr);  // the first 10 bytes
    const std::span<std::byte> frame(buf_.data() + kVnetHdr, static_cast<size_t>(n) - kVnetHdr);
    const OffloadPlan off = netif_offload_from(vh, frame);  // may finish a checksum netif cannot say, in place
    if (!off) {
      c_.dropped[tap_drop_reason(*off.refused)]++;
      continue;
    }
    if (off.offload.gso_type != netif::gso_type::none) c_.from_tap_gso_frames++;
    if (off.offload.csum_blank) c_.from_tap_csum_blank++;
    pending_.push_back(Pending{std::vector<std::byte>(frame.begin(), frame.end()), off.offload});
    if (pending_.size() > c_.pending_max) c_.pending_max = pending_.size();
  }
  front_.flush();
  return work;
}

}  // namespace pvnet::tools
