// virtio-net over vhost-user <-> netfront (see vhost_net_bridge.hpp).
#include "frontend/vhost_net_bridge.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "shared-ring/packet_headers.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"

namespace pvnet {

using namespace vhost;

namespace {
constexpr uint64_t kDriverRegionAlign = 1ull << 18;  // frames: the driver region starts on a 1 GiB boundary
constexpr uint32_t kRx = 0, kTx = 1;
constexpr uint32_t kMinFrame = 14;  // an Ethernet header

constexpr size_t kMaxHeaderPeek = 256;  // protocol headers read for the offload codec (not a payload copy)

// The virtio-net header for a received frame (virtio 1.1 5.1.6.4), by the codec's rules. nullopt: a super-frame
// the guest did not negotiate, or GSO the headers do not support (drop it).
std::optional<VirtioNetHdr> rx_virtio_header(std::span<const std::byte> head, const NetifOffload& o, uint64_t acked) {
  if (o.gso_type == netif::gso_type::tcpv4 && !(acked & feat::kNetGuestTso4)) return std::nullopt;
  if (o.gso_type == netif::gso_type::tcpv6 && !(acked & feat::kNetGuestTso6)) return std::nullopt;
  return virtio_net_hdr_for(parse_headers(head), o);
}

template <class Frame>
NetifOffload offload_of(const Frame& f) {
  return NetifOffload{f.csum_blank, f.data_validated, f.gso_type, f.gso_size};
}
}  // namespace

VhostNetBridge::VhostNetBridge(VhostNetConfig config) : cfg_(std::move(config)) {
  if (cfg_.device_dir.empty())
    cfg_.device_dir = vif_frontend_dir(cfg_.domid, 0);
}

VhostNetBridge::~VhostNetBridge() = default;

void to_json(nlohmann::json& j, const VhostNetCounters& c) {
  j = nlohmann::json::object();
  PVNET_VHOST_NET_COUNTERS(PVNET_COUNTER_JSON)
}

void VhostNetBridge::attach(UniqueFd conn) {
  if (chan_) drop_guest("a new vhost-user front-end connected");
  chan_.emplace(std::move(conn));
  acked_ = proto_acked_ = 0;
  setup_ = {};
}

std::vector<int> VhostNetBridge::fds() const {
  std::vector<int> v;
  if (chan_) v.push_back(chan_->fd());
  for (const auto& q : vq_)
    if (q.kick_fd() >= 0) v.push_back(q.kick_fd());
  if (front_) {
    v.push_back(front_->event_fd());
    v.push_back(front_->store_fd());
  }
  return v;
}

bool VhostNetBridge::queue_ready(uint32_t q) const {
  // Without VHOST_USER_F_PROTOCOL_FEATURES a ring runs once started; with it, only after SET_VRING_ENABLE(1).
  return vq_[q].started() && !vq_[q].broken() && (setup_[q].enabled || !(acked_ & feat::kProtocolFeatures));
}

bool VhostNetBridge::running() const { return queue_ready(kRx) && queue_ready(kTx) && netfront_connected(); }

uint32_t VhostNetBridge::hdr_len() const {
  return (acked_ & (feat::kVersion1 | feat::kNetMrgRxbuf)) ? 12 : 10;
}

void VhostNetBridge::drop_guest(std::string why) {
  error_ = std::move(why);
  ++counters_.guest_disconnects;
  chan_.reset();
  for (auto& q : vq_) {
    q.stop();
    q.set_kick_fd(UniqueFd{});
    q.set_call_fd(UniqueFd{});
  }
  ++tx_generation_;
  tx_stalled_.valid = false;
  rx_chains_.clear();
  revoke_rx_direct();
  counters_.rx_dropped_no_buffers += rx_backlog_.size();
  rx_backlog_.clear();
  setup_ = {};
}

bool VhostNetBridge::poll() {
  bool work = handle_messages();
  if (platform_ && !front_) work |= ensure_netfront();
  if (front_) work |= front_->poll();
  if (running()) {
    work |= process_tx();
    if (front_->rx_owner_mode()) work |= post_rx_direct();
    work |= deliver_rx();
  }
  for (uint32_t q = 0; q < 2; ++q) {
    if (vq_[q].broken() && chan_) {
      drop_guest(std::string(q == kRx ? "RX" : "TX") + " ring broken: " + vq_[q].broken_reason());
      work = true;
    }
  }
  return work;
}

bool VhostNetBridge::handle_messages() {
  bool work = false;
  while (chan_) {
    auto m = chan_->read_message();
    if (!m) {
      if (m.error().code != EAGAIN) drop_guest(m.error().reason);
      break;
    }
    work = true;
    ++counters_.messages;
    bool replied = false;
    Result<void> r = handle(*m, &replied);
    if (!chan_) break;
    if (!replied && (m->hdr.flags & kFlagNeedReply) && (proto_acked_ & kProtoReplyAck)) {
      const uint64_t status = r ? 0 : 1;
      if (auto s = chan_->reply(*m, status); !s) {
        drop_guest(s.error().reason);
        break;
      }
    }
    if (!r && r.error().code != ENOTSUP) {
      drop_guest(std::string(request_name(m->hdr.request)) + ": " + r.error().reason);
      break;
    }
  }
  return work;
}

Result<void> VhostNetBridge::handle(Message& m, bool* replied) {
  auto reply64 = [&](uint64_t v) -> Result<void> {
    *replied = true;
    return chan_->reply(m, v);
  };
  auto need = [&](size_t n) -> Result<void> {
    if (m.payload.size() < n) return make_error(EPROTO, "payload too short");
    return {};
  };
  switch (m.hdr.request) {
    case kGetFeatures:
      return reply64(cfg_.features);
    case kSetFeatures: {
      uint64_t f = 0;
      if (!m.get(&f)) return make_error(EPROTO, "payload too short");
      if (f & ~cfg_.features) return make_error(EPROTO, "front-end acked features we did not offer");
      acked_ = f;
      return {};
    }
    case kGetProtocolFeatures:
      return reply64(kProtoReplyAck);
    case kSetProtocolFeatures: {
      uint64_t f = 0;
      if (!m.get(&f)) return make_error(EPROTO, "payload too short");
      proto_acked_ = f & kProtoReplyAck;
      return {};
    }
    case kSetOwner:
      return {};
    case kResetOwner:
      for (auto& q : vq_) q.stop();
      revoke_rx_direct();
      ++tx_generation_;
      return {};
    case kGetQueueNum:
      return reply64(1);
    case kSetMemTable:
      return set_mem_table(m);
    case kSetVringNum:
    case kSetVringBase:
    case kSetVringEnable:
      return handle_vring_state(m);
    case kSetVringAddr: {
      VringAddr a;
      if (auto r = need(sizeof a); !r) return r;
      (void)m.get(&a);
      if (a.index > kTx) return make_error(EPROTO, "queue " + std::to_string(a.index));
      setup_[a.index].addr = a;
      setup_[a.index].have_addr = true;
      return {};
    }
    case kGetVringBase:
      return handle_get_vring_base(m, replied);
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr:
      return handle_vring_fd(m);
    default:
      ++counters_.unsupported;
      // A message expecting a reply we cannot give would hang the front-end: refuse the connection instead.
      if (m.hdr.request == kGetConfig || m.hdr.request == kGetMaxMemSlots || m.hdr.request == kGetStatus)
        return make_error(EPROTO, std::string(request_name(m.hdr.request)) + " without the protocol feature");
      return make_error(ENOTSUP, "unsupported");
  }
}

Result<void> VhostNetBridge::handle_vring_state(Message& m) {
  VringState s;
  if (m.payload.size() < sizeof s) return make_error(EPROTO, "payload too short");
  (void)m.get(&s);
  if (s.index > kTx) return make_error(EPROTO, "queue " + std::to_string(s.index) + " (MQ not offered)");
  if (m.hdr.request == kSetVringNum) setup_[s.index].num = s.num;
  else if (m.hdr.request == kSetVringBase) setup_[s.index].base = static_cast<uint16_t>(s.num);
  else setup_[s.index].enabled = s.num != 0;
  return {};
}

Result<void> VhostNetBridge::handle_get_vring_base(Message& m, bool* replied) {
  VringState s;
  if (m.payload.size() < sizeof s) return make_error(EPROTO, "payload too short");
  (void)m.get(&s);
  if (s.index > kTx) return make_error(EPROTO, "queue " + std::to_string(s.index));
  // The ring stops: everything before last_avail_idx counts as done; late TxDones are not written.
  s.num = vq_[s.index].last_avail_idx();
  vq_[s.index].stop();
  setup_[s.index].kick_set = false;
  if (s.index == kTx) {
    ++tx_generation_;
    tx_stalled_.valid = false;
  } else {
    rx_chains_.clear();
    revoke_rx_direct();
  }
  *replied = true;
  return chan_->reply(m, s);
}

Result<void> VhostNetBridge::handle_vring_fd(Message& m) {
  uint64_t u = 0;
  if (!m.get(&u)) return make_error(EPROTO, "payload too short");
  const uint32_t q = static_cast<uint32_t>(u & kVringIdxMask);
  if (q > kTx) return make_error(EPROTO, "queue " + std::to_string(q));
  UniqueFd fd;
  if (!(u & kVringNoFd)) {
    if (m.fds.empty()) return make_error(EPROTO, "no fd with the message");
    fd = std::move(m.fds[0]);
  }
  // Kick and call fds are read and written from the poll loop: an eventfd, non-blocking, or nothing.
  if (fd && m.hdr.request != kSetVringErr) {
    const std::string what =
        std::string(m.hdr.request == kSetVringKick ? "kick" : "call") + " fd of queue " + std::to_string(q);
    if (auto ok = check_eventfd(fd.get(), what); !ok) return ok;
    (void)::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  }
  if (m.hdr.request == kSetVringCall) {
    vq_[q].set_call_fd(std::move(fd));
  } else if (m.hdr.request == kSetVringKick) {
    if (!fd) return make_error(EPROTO, "polling mode (no kick fd) is not supported");
    vq_[q].set_kick_fd(std::move(fd));
    setup_[q].kick_set = true;
    try_start(q);  // vhost-user: the kick fd starts the ring
  }
  return {};
}

Result<void> VhostNetBridge::set_mem_table(Message& m) {
  MemoryDesc md;
  if (m.payload.size() < 8) return make_error(EPROTO, "payload too short");
  std::memcpy(&md, m.payload.data(), std::min(m.payload.size(), sizeof md));
  if (md.nregions == 0 || md.nregions > kMaxRegions || m.payload.size() < 8 + 32ull * md.nregions)
    return make_error(EPROTO, "bad region count");
  std::span<const MemRegionDesc> descs(md.regions, md.nregions);
  if (mem_ && platform_) {
    // The domain's memory is fixed once adopted; QEMU re-sends the same table on every vhost start.
    // Same layout AND the same memory objects (a new QEMU process has new memfds: that is another guest).
    bool same = mem_->same_layout(descs) && m.fds.size() == descs.size();
    for (size_t i = 0; same && i < descs.size(); ++i) {
      struct stat a {}, b {};
      same = ::fstat(m.fds[i].get(), &a) == 0 && ::fstat(mem_->regions()[i].fd.get(), &b) == 0 &&
             a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    }
    if (!same) return make_error(EPROTO, "guest memory changed (hot-plug or another QEMU: restart the frontend)");
    return {};
  }
  auto t = GuestMemoryTable::create(descs, std::move(m.fds));
  if (!t) return t.error();
  mem_.emplace(std::move(t).value());
  return make_domain();
}

Result<void> VhostNetBridge::make_domain() {
  if (!cfg_.make_platform) return make_error(EINVAL, "no platform factory");
  std::vector<GuestRamRegion> ram;
  uint64_t end_pfn = 0;
  for (const auto& r : mem_->regions()) {
    const uint64_t first = (r.gpa + kPageSize - 1) / kPageSize;
    const uint64_t end = (r.gpa + r.size) / kPageSize;
    if (end <= first) continue;
    const uint64_t off = r.mmap_offset + (first * kPageSize - r.gpa);
    if (off % kPageSize != 0) return make_error(EINVAL, "guest region not page-aligned in its memfd");
    ram.push_back(GuestRamRegion{r.fd.get(), Pfn{first}, end - first, off});
    end_pfn = std::max(end_pfn, end);
  }
  // The driver's own pages: a region of pvnet's above the guest's RAM (the guest never sees it).
  // Sealed: the hypervisor maps only memory nobody can shrink under it.
  auto drv = make_sealed_memfd("pvnet-d" + std::to_string(cfg_.domid.value) + "-driver",
                               uint64_t{cfg_.driver_pages} * kPageSize);
  if (!drv) return make_error(drv.error().code, "driver region: " + drv.error().reason);
  driver_first_ = Pfn{(end_pfn + kDriverRegionAlign - 1) / kDriverRegionAlign * kDriverRegionAlign};
  ram.push_back(GuestRamRegion{drv->get(), driver_first_, cfg_.driver_pages, 0});
  auto p = cfg_.make_platform(ram);  // keeps its own duplicates; `drv` closes here
  if (!p) return make_error(p.error().code, "adopting the guest's memory as domain " +
                                                std::to_string(cfg_.domid.value) + ": " + p.error().reason);
  platform_ = std::move(p).value();
  pool_ = std::make_unique<MemoryPagePool>(platform_->memory(), driver_first_, cfg_.driver_pages);
  return {};
}

void VhostNetBridge::try_start(uint32_t q) {
  QueueSetup& s = setup_[q];
  if (!mem_ || !s.have_addr || !s.kick_set) {
    if (chan_) drop_guest("queue " + std::to_string(q) + " kicked before its memory table or addresses");
    return;
  }
  VirtqConfig c;
  c.num = s.num;
  c.last_avail_idx = s.base;
  c.event_idx = (acked_ & feat::kRingEventIdx) != 0;
  c.indirect = (acked_ & feat::kRingIndirectDesc) != 0;
  const uint64_t n = s.num;
  if (!mem_->uaddr_to_gpa(s.addr.desc_user_addr, 16 * n, &c.desc_gpa) ||
      !mem_->uaddr_to_gpa(s.addr.avail_user_addr, 6 + 2 * n, &c.avail_gpa) ||
      !mem_->uaddr_to_gpa(s.addr.used_user_addr, 6 + 8 * n, &c.used_gpa)) {
    drop_guest("queue " + std::to_string(q) + ": vring address outside guest RAM");
    return;
  }
  if (auto r = vq_[q].start(*mem_, c); !r) {
    drop_guest("queue " + std::to_string(q) + ": " + r.error().reason);
    return;
  }
  if (q == kTx) ++tx_generation_;
}

bool VhostNetBridge::ensure_netfront() {
  using Clock = std::chrono::steady_clock;
  if (Clock::now() < next_dir_check_) return false;
  next_dir_check_ = Clock::now() + std::chrono::milliseconds(poll_interval_ms());
  // The toolstack (pvnet backend) writes the device directory when it sees the domain; "state" comes last.
  if (!platform_->store().read_opt(netif::key_path(cfg_.device_dir, netif::key::state))) return false;
  NetfrontConfig nc = cfg_.netfront;
  // netif RX offloads as far as the guest's driver takes them (VIRTIO_NET_F_GUEST_*): the backend then sends no
  // frame this bridge would have to drop (a TAP sink asks its kernel for exactly these).
  nc.feature_rx_csum = nc.feature_rx_csum && (acked_ & feat::kNetGuestCsum);
  nc.feature_gso_tcpv4 = nc.feature_gso_tcpv4 && (acked_ & feat::kNetGuestTso4);
  nc.feature_gso_tcpv6 = nc.feature_gso_tcpv6 && (acked_ & feat::kNetGuestTso6);
  // The guest's own buffers on the netif RX ring need mergeable buffers: a frame then spans as many chains as it
  // fills, each chain holding one extent. Without MRG_RXBUF a frame must fit one chain: the counted copy.
  if (cfg_.rx_direct && (acked_ & feat::kNetMrgRxbuf)) {
    nc.rx_extents = true;
    nc.rx_headroom = static_cast<uint16_t>(hdr_len());
    nc.rx_owner_buffers = true;
  }
  front_ = std::make_unique<Netfront>(*platform_, *pool_, cfg_.device_dir, nc);
  front_->on_tx_complete([this](const TxDone& d) { on_tx_done(d); });
  front_->on_rx_buffers([this](ReceivedBuffers&& f) { on_rx_buffers(std::move(f)); });
  front_->on_rx_buffer_unused([this](uint64_t cookie) {
    auto it = rx_posted_.find(cookie);
    if (it == rx_posted_.end()) return;  // revoked meanwhile
    rx_repost_.push_back(std::move(it->second));
    rx_posted_.erase(it);
  });
  front_->on_rx([this](ReceivedFrame&& f) {
    if (!queue_ready(kRx) || rx_backlog_.size() >= cfg_.rx_backlog) {
      ++counters_.rx_dropped_no_buffers;
      return;
    }
    rx_backlog_.push_back(std::move(f));
  });
  return true;
}

void VhostNetBridge::on_tx_done(const TxDone& d) {
  const uint32_t gen = static_cast<uint32_t>(d.cookie >> 16);
  const uint16_t head = static_cast<uint16_t>(d.cookie & 0xffff);
  if (d.status != netif::rsp::okay) ++counters_.tx_dropped;
  tx_copies_.erase(d.cookie);  // a private copy's pages go back to the driver region
  if (gen != tx_generation_ || !vq_[kTx].started()) return;  // the ring was stopped meanwhile
  vq_[kTx].push(head, 0);
  ++counters_.tx_completed;
}

// Reads the virtio-net header off the front of the chain into *h and puts the frame's pieces (the guest's own
// pages) in pieces_. False: a chain that cannot be a TX frame (short header, device-writable buffers).
bool VhostNetBridge::tx_split_chain(const Chain& c, VirtioNetHdr* h, uint64_t* len) {
  const uint32_t hl = hdr_len();
  uint32_t got = 0;
  size_t bi = 0;
  uint32_t skip = 0;  // bytes of readable[bi] that belong to the header
  while (got < hl && bi < c.readable.size()) {
    const uint32_t n = std::min(hl - got, c.readable[bi].len);
    std::memcpy(reinterpret_cast<std::byte*>(h) + got, c.readable[bi].host, n);
    got += n;
    if (n == c.readable[bi].len) {
      ++bi;
      skip = 0;
    } else {
      skip = n;
    }
  }
  counters_.tx_header_copy_bytes += got;
  if (got < hl || !c.writable.empty()) return false;
  pieces_.clear();
  *len = 0;
  for (size_t i = bi; i < c.readable.size(); ++i) {
    const ChainBuf& b = c.readable[i];
    const uint64_t gpa = b.gpa + (i == bi ? skip : 0);
    const uint32_t n = b.len - (i == bi ? skip : 0);
    if (n == 0) continue;
    // A piece must stay within one frame run of the domain: the buffer lies inside one region (checked by the
    // virtqueue), and a region's frames are consecutive in the domain's pfn space.
    pieces_.push_back(TxPiece{Pfn{gpa / kPageSize}, static_cast<uint32_t>(gpa % kPageSize), n});
    *len += n;
  }
  return true;
}

// The first `max` bytes of a frame in the guest's pages (a private copy).
std::vector<std::byte> VhostNetBridge::tx_gather(std::span<const TxPiece> pieces, size_t max) const {
  std::vector<std::byte> out;
  for (const TxPiece& p : pieces) {
    if (out.size() >= max) break;
    const size_t n = std::min<size_t>(p.len, max - out.size());
    const std::byte* src = mem_->gpa_to_host(p.pfn.value * kPageSize + p.offset, p.len);
    out.insert(out.end(), src, src + n);
  }
  return out;
}

// One TX chain -> one netfront transmit of the guest's own pages (or, for a checksum netif cannot say, of a
// private copy with the checksum finished). Returns false if netfront was busy (the chain is kept for the next
// round).
bool VhostNetBridge::tx_one(Chain& c) {
  auto drop = [&](uint64_t& counter) {
    ++counter;
    vq_[kTx].push(c.head, 0);
    return true;
  };
  VirtioNetHdr h{};
  uint64_t len = 0;
  if (!tx_split_chain(c, &h, &len)) return drop(counters_.tx_bad_chains);
  if (len < kMinFrame || len > netif::kMaxFrameBytes) return drop(counters_.tx_dropped);
  const std::vector<std::byte> head = tx_gather(pieces_, kMaxHeaderPeek);
  const OffloadPlan plan = netif_offload_plan(h, parse_headers(head), len);
  if (!plan) return drop(counters_.tx_dropped);  // netif cannot carry it (shared-ring/offload.hpp)
  std::vector<std::byte> copy;
  std::optional<PlacedFrame> placed;
  if (plan.finish_csum) {
    copy = tx_gather(pieces_, len);
    finish_checksum(copy, plan.csum_start, plan.csum_field);
    auto p = place_frame(*pool_, copy);
    if (!p) {
      ++counters_.tx_busy;  // the driver region is short: TxDones give pages back
      return false;
    }
    placed.emplace(std::move(p).value());
  }
  TxOptions o;
  o.cookie = (static_cast<uint64_t>(tx_generation_) << 16) | c.head;
  o.defer_push = true;
  o.csum_blank = plan.offload.csum_blank;
  o.data_validated = plan.offload.data_validated;
  o.gso_type = plan.offload.gso_type;
  o.gso_size = plan.offload.gso_size;
  const TxStatus st = front_->transmit(placed ? placed->pieces() : std::span<const TxPiece>(pieces_), o);
  if (st == TxStatus::kBusy) {
    ++counters_.tx_busy;
    return false;
  }
  if (st != TxStatus::kQueued) return drop(counters_.tx_dropped);
  ++counters_.tx_frames;
  counters_.tx_bytes += len;
  if (placed) {
    counters_.tx_payload_copy_bytes += len;
    tx_copies_.insert_or_assign(o.cookie, std::move(*placed));
  }
  if (cfg_.on_frame) cfg_.on_frame(FrameDir::kFromGuest, placed ? copy : tx_gather(pieces_, len));
  return true;
}

bool VhostNetBridge::process_tx() {
  SplitVirtqueue& q = vq_[kTx];
  bool work = q.drain_kick();
  bool sent = false;
  for (;;) {
    if (!tx_stalled_.valid) {
      const auto r = q.pop(tx_stalled_.chain);
      if (r == SplitVirtqueue::Pop::kBadChain) {
        ++counters_.tx_bad_chains;
        work = true;
        continue;
      }
      if (r != SplitVirtqueue::Pop::kChain) {
        if (r == SplitVirtqueue::Pop::kEmpty && q.enable_kicks()) continue;
        break;
      }
      tx_stalled_.valid = true;
    }
    work = true;
    if (!tx_one(tx_stalled_.chain)) break;  // busy: retried after netfront's next poll
    tx_stalled_.valid = false;
    sent = true;
  }
  if (sent) front_->flush();
  if (work) q.call();  // dropped chains and TxDones from netfront's poll
  return work;
}

bool VhostNetBridge::deliver_rx() {
  SplitVirtqueue& q = vq_[kRx];
  bool work = q.drain_kick();
  const bool mrg = (acked_ & feat::kNetMrgRxbuf) != 0;
  bool pushed = false;
  while (!rx_backlog_.empty()) {
    ReceivedFrame& f = rx_backlog_.front();
    const RxFill fill = fill_rx_chains(hdr_len() + f.data.size(), mrg, &pushed);
    if (fill == RxFill::kStarved) break;
    work = true;
    auto hdr = fill == RxFill::kFilled ? rx_virtio_header(f.data, offload_of(f), acked_) : std::nullopt;
    if (!hdr) {
      // Too big for one chain (without mergeable buffers a frame must fit one: Linux posts "big" chains with
      // GUEST_TSO; the chain stays for the next frame), or a super-frame the guest cannot take.
      ++counters_.rx_dropped_too_big;
      rx_backlog_.pop_front();
      continue;
    }
    scatter_rx(*hdr, f.data);
    pushed = true;
    ++counters_.rx_frames;
    counters_.rx_bytes += f.data.size();
    if (cfg_.on_frame) cfg_.on_frame(FrameDir::kToGuest, f.data);
    rx_backlog_.pop_front();
  }
  if (pushed) q.call();
  return work;
}

// Pops RX chains until they hold `need` bytes (with mergeable buffers), or one chain (without). Bad chains are
// returned unused (*pushed).
VhostNetBridge::RxFill VhostNetBridge::fill_rx_chains(uint64_t need, bool mrg, bool* pushed) {
  SplitVirtqueue& q = vq_[kRx];
  const uint32_t hl = hdr_len();
  uint64_t have = 0;
  for (const auto& c : rx_chains_) have += c.write_bytes;
  while (have < need && (mrg || rx_chains_.empty())) {
    Chain c;
    const auto r = q.pop(c);
    if (r == SplitVirtqueue::Pop::kBadChain) {
      ++counters_.rx_bad_chains;
      continue;
    }
    if (r != SplitVirtqueue::Pop::kChain) {
      if (r == SplitVirtqueue::Pop::kEmpty && q.enable_kicks()) continue;
      return RxFill::kStarved;
    }
    if (!c.readable.empty() || c.write_bytes < (rx_chains_.empty() ? hl : 1)) {
      ++counters_.rx_bad_chains;
      q.push(c.head, 0);
      *pushed = true;
      continue;
    }
    have += c.write_bytes;
    rx_chains_.push_back(std::move(c));
  }
  return have < need ? RxFill::kTooBig : RxFill::kFilled;
}

// Copies header + frame over the held chains (num_buffers = the chains it takes) and returns them used.
void VhostNetBridge::scatter_rx(VirtioNetHdr h, std::span<const std::byte> data) {
  const uint32_t hl = hdr_len();
  const uint64_t need = hl + data.size();
  uint64_t cap = 0;
  uint16_t nb = 0;
  while (cap < need) cap += rx_chains_[nb++].write_bytes;
  h.num_buffers = nb;
  std::vector<uint32_t> used(rx_chains_.size(), 0);
  const std::byte* hsrc = reinterpret_cast<const std::byte*>(&h);
  uint64_t pos = 0;  // over header then data
  size_t ci = 0;
  for (; ci < rx_chains_.size() && pos < need; ++ci) {
    for (const ChainBuf& b : rx_chains_[ci].writable) {
      uint32_t off = 0;
      while (off < b.len && pos < need) {
        uint64_t n;
        if (pos < hl) {
          n = std::min<uint64_t>(hl - pos, b.len - off);
          std::memcpy(b.host + off, hsrc + pos, n);
        } else {
          n = std::min<uint64_t>(need - pos, b.len - off);
          std::memcpy(b.host + off, data.data() + (pos - hl), n);
          counters_.rx_bounce_bytes += n;
        }
        off += static_cast<uint32_t>(n);
        pos += n;
        used[ci] += static_cast<uint32_t>(n);
      }
      if (pos >= need) break;
    }
  }
  for (size_t i = 0; i < ci; ++i) vq_[kRx].push(rx_chains_[i].head, used[i]);
  rx_chains_.erase(rx_chains_.begin(), rx_chains_.begin() + static_cast<ptrdiff_t>(ci));
}

// Direct RX: the guest's RX chains go onto the netif RX ring, each as the extent of its first buffer that lies in
// one page (a buffer crossing a page boundary offers only its first page's part: a netif buffer is one grant).
bool VhostNetBridge::post_rx_direct() {
  SplitVirtqueue& q = vq_[kRx];
  bool work = q.drain_kick();
  const uint32_t hl = hdr_len();
  bool posted = false, pushed = false;
  while (front_->rx_free_slots() > 0) {
    Chain c;
    if (!rx_repost_.empty()) {
      c = std::move(rx_repost_.front());
      rx_repost_.pop_front();
    } else {
      const auto r = q.pop(c);
      if (r == SplitVirtqueue::Pop::kBadChain) {
        ++counters_.rx_bad_chains;
        work = true;
        continue;
      }
      if (r != SplitVirtqueue::Pop::kChain) {
        if (r == SplitVirtqueue::Pop::kEmpty && q.enable_kicks()) continue;
        break;
      }
      work = true;
      if (!c.readable.empty() || c.writable.empty()) {
        ++counters_.rx_bad_chains;
        q.push(c.head, 0);
        pushed = true;
        continue;
      }
    }
    const ChainBuf& b0 = c.writable[0];
    const uint32_t off = static_cast<uint32_t>(b0.gpa % kPageSize);
    const uint32_t piece = static_cast<uint32_t>(std::min<uint64_t>(b0.len, kPageSize - off));
    if (piece <= hl) {  // cannot hold the header and a byte: the guest gets it back unused
      ++counters_.rx_short_chains;
      q.push(c.head, 0);
      pushed = true;
      continue;
    }
    const uint64_t cookie = rx_next_cookie_++;
    const RxOwnerBuffer ob{Pfn{b0.gpa / kPageSize}, static_cast<uint16_t>(off), static_cast<uint16_t>(piece), cookie};
    if (!front_->post_rx_buffer(ob)) {
      rx_repost_.push_front(std::move(c));
      break;
    }
    rx_posted_.emplace(cookie, std::move(c));
    ++counters_.rx_buffers_posted;
    posted = true;
  }
  if (posted) front_->push_rx_buffers();
  if (pushed) q.call();
  return work || posted;
}

// A frame the backend copied into the guest's chains: only the virtio-net header is written here.
void VhostNetBridge::on_rx_buffers(ReceivedBuffers&& f) {
  std::vector<Chain> chains;
  chains.reserve(f.bufs.size());
  for (const auto& u : f.bufs) {
    auto it = rx_posted_.find(u.cookie);
    if (it == rx_posted_.end()) break;
    chains.push_back(std::move(it->second));
    rx_posted_.erase(it);
  }
  SplitVirtqueue& q = vq_[kRx];
  if (chains.size() != f.bufs.size() || !queue_ready(kRx)) {  // the queue was stopped meanwhile
    ++counters_.rx_dropped_no_buffers;
    return;
  }
  const uint32_t hl = hdr_len();
  auto data_at = [&](size_t i) {  // where buffer i's data lies (netfront checked it is inside the extent)
    const ChainBuf& b = chains[i].writable[0];
    return b.host + (f.bufs[i].offset - b.gpa % kPageSize);
  };
  // The headers for parse_headers: read in place when the first buffer holds them, else gathered (a read of
  // at most 256 bytes of headers, not a payload copy).
  std::array<std::byte, kMaxHeaderPeek> head{};
  size_t hn = 0;
  for (size_t i = 0; i < chains.size() && hn < head.size(); ++i) {
    const size_t n = std::min<size_t>(f.bufs[i].len, head.size() - hn);
    std::memcpy(head.data() + hn, data_at(i), n);
    hn += n;
  }
  auto hdr = rx_virtio_header(std::span<const std::byte>(head.data(), hn), offload_of(f), acked_);
  const bool mrg = (acked_ & feat::kNetMrgRxbuf) != 0;
  if (!hdr || (!mrg && chains.size() > 1)) {
    ++counters_.rx_dropped_too_big;  // a super-frame the guest cannot take, or a frame beyond one chain
    for (auto& c : chains) rx_repost_.push_back(std::move(c));
    return;
  }
  hdr->num_buffers = static_cast<uint16_t>(chains.size());
  std::memcpy(chains[0].writable[0].host, &*hdr, hl);
  counters_.rx_header_bytes += hl;
  for (size_t i = 0; i < chains.size(); ++i) q.push(chains[i].head, (i == 0 ? hl : 0) + f.bufs[i].len);
  q.call();
  ++counters_.rx_frames;
  counters_.rx_bytes += f.len;
  counters_.rx_direct_bytes += f.len;
  if (cfg_.on_frame) {
    std::vector<std::byte> frame;
    frame.reserve(f.len);
    for (size_t i = 0; i < chains.size(); ++i) frame.insert(frame.end(), data_at(i), data_at(i) + f.bufs[i].len);
    cfg_.on_frame(FrameDir::kToGuest, frame);
  }
}

void VhostNetBridge::revoke_rx_direct() {
  if (front_) front_->revoke_rx_buffers();
  rx_posted_.clear();
  rx_repost_.clear();
}

void VhostNetBridge::close() {
  if (front_) front_->close();
}

}  // namespace pvnet
