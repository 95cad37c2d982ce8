// vhost-user device + virtqueue + bridge against a real Backend (in-process SimHypervisor) and a second guest with
// a plain Netfront: guest (virtio-net, the test "QEMU") -> dom0 -> guest B and back, byte for byte, with dom0's
// costs; and hostile drivers (loops, addresses outside RAM, oversized indirect tables, bad vring addresses, a
// runaway avail index), which must cost the misbehaving guest its chain or its connection and nothing else.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <functional>

#include "backend/backend.hpp"
#include "backend/vif_sink.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "shared-ring/packet_headers.hpp"
#include "tests/common/virtio_hdr_cases.hpp"
#include "tests/frontend/frames.hpp"
#include "tests/vhost_user/fake_qemu.hpp"

namespace pvnet::test {
namespace {

constexpr DomId kDomA{1}, kDomB{2};
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;
constexpr uint64_t kTxBufBase = 0x400000, kTxBufStride = 0x12000;  // room for a 64 KiB super-frame + header
constexpr uint64_t kRxBufBase = 0xA00000;
constexpr uint32_t kHdr = 12;

class VhostUserTest : public ::testing::Test {
 protected:
  void SetUp() override { build(BridgeSetup{}); }

  struct BridgeSetup {
    uint64_t features = VhostNetConfig::kDefaultFeatures;
  };

  void build(const BridgeSetup& s) {
    auto hv = SimHypervisor::create();
    ASSERT_TRUE(hv);
    hv_ = std::move(hv).value();
    auto d0 = hv_->attach(DomId{0});
    ASSERT_TRUE(d0);
    dom0_ = std::move(d0).value();
    BackendOptions bo;
    bo.payload_policy = PayloadPolicyKind::slots;
    auto be = Backend::create(*dom0_, bo);
    ASSERT_TRUE(be) << be.error().reason;
    backend_ = std::move(be).value();
    auto b = hv_->create_domain(kDomB, 32 << 20, 8192);
    ASSERT_TRUE(b);
    dom_b_ = std::move(b).value();
    pool_b_ = std::make_unique<MemoryPagePool>(dom_b_->memory());

    VhostNetConfig cfg;
    cfg.domid = kDomA;
    cfg.make_platform = [this](std::span<const GuestRamRegion> ram) { return hv_->adopt_ram(kDomA, ram, 8192); };
    bridge_ = std::make_unique<VhostNetBridge>(cfg);
    qemu_ = std::make_unique<FakeQemu>([this] { pump_once(); });
    bridge_->attach(qemu_->take_device_end());
    qemu_->negotiate(s.features);
    ASSERT_NE(bridge_->platform(), nullptr) << bridge_->error();

    VifOptions vo;
    vo.mtu = 9000;
    auto va = backend_->add_vif(kDomA, 0, vo);
    ASSERT_TRUE(va) << va.error().reason;
    vif_a_ = *va;
    auto vb = backend_->add_vif(kDomB, 0, vo);
    ASSERT_TRUE(vb);
    vif_b_ = *vb;
    ASSERT_TRUE(backend_->set_sink(vif_a_, std::make_shared<VifSink>(*backend_, vif_b_)));
    ASSERT_TRUE(backend_->set_sink(vif_b_, std::make_shared<VifSink>(*backend_, vif_a_)));
    front_b_ = std::make_unique<Netfront>(*dom_b_, *pool_b_, "/local/domain/2/device/vif/0");
    front_b_->on_rx([this](ReceivedFrame&& f) { got_b_.push_back(std::move(f)); });
    front_b_->on_tx_complete([this](const TxDone& d) { b_done_.push_back(d); });
    ASSERT_TRUE(pump_until([&] {
      return bridge_->running() && front_b_->connected() && bridge_->netfront()->using_header_slots() &&
             front_b_->using_header_slots();
    })) << "bridge " << bridge_->error();
  }

  // Tears the whole world down (in reverse order of building) and builds it again with `s`.
  void rebuild(const BridgeSetup& s) {
    front_b_.reset();
    bridge_.reset();
    qemu_.reset();
    backend_.reset();
    pool_b_.reset();
    dom_b_.reset();
    dom0_.reset();
    hv_.reset();
    build(s);
  }

  void pump_once() {
    if (bridge_) bridge_->poll();
    if (backend_) backend_->poll();
    if (front_b_) front_b_->poll();
  }
  template <class F>
  bool pump_until(F done, int rounds = 20000) {
    for (int i = 0; i < rounds; ++i) {
      if (done()) return true;
      pump_once();
      if (i % 64 == 63) usleep(100);  // ensure_netfront is time-throttled
    }
    return done();
  }

  // Guest TX: header + frame at a TX buffer; `cuts` splits the frame into that many descriptors (scattered in
  // guest memory, each piece at an odd offset). Returns the head.
  uint16_t guest_tx(std::span<const std::byte> frame, VirtioNetHdr h = {}, uint32_t cuts = 1, bool kick = true) {
    GuestRing& r = qemu_->ring(1);
    const uint64_t base = kTxBufBase + (tx_slot_++ % 32) * kTxBufStride + 0x36;  // not page aligned
    std::memcpy(qemu_->gpa(base), &h, kHdr);
    const uint16_t head = r.next_free;
    if (cuts <= 1) {
      // Linux pushes the header in front of the data: one descriptor.
      std::memcpy(qemu_->gpa(base + kHdr), frame.data(), frame.size());
      qemu_->write_desc(1, head, base, static_cast<uint32_t>(kHdr + frame.size()), 0, 0);
      r.next_free = static_cast<uint16_t>((r.next_free + 1) % r.num);
    } else {
      qemu_->write_desc(1, head, base, kHdr, kNext, static_cast<uint16_t>((head + 1) % r.num));
      uint64_t at = base + 0x80;
      size_t off = 0;
      for (uint32_t i = 0; i < cuts; ++i) {
        const size_t n = i + 1 == cuts ? frame.size() - off : frame.size() / cuts;
        std::memcpy(qemu_->gpa(at), frame.data() + off, n);
        const uint16_t idx = static_cast<uint16_t>((head + 1 + i) % r.num);
        qemu_->write_desc(1, idx, at, static_cast<uint32_t>(n), i + 1 == cuts ? 0 : kNext,
                          static_cast<uint16_t>((idx + 1) % r.num));
        off += n;
        at += n + 0x111;  // a gap: pieces are not adjacent
      }
      r.next_free = static_cast<uint16_t>((head + 1 + cuts) % r.num);
    }
    qemu_->publish(1, head, kick);
    return head;
  }

  // Guest RX: `n` buffers of `size` bytes at odd, non-page-aligned offsets (as page_frag would cut them).
  void post_rx(uint32_t n, uint32_t size = 1536) {
    GuestRing& r = qemu_->ring(0);
    for (uint32_t i = 0; i < n; ++i) {
      const uint16_t d = r.next_free;
      r.next_free = static_cast<uint16_t>((r.next_free + 1) % r.num);
      const uint64_t at = kRxBufBase + static_cast<uint64_t>(d) * 0x1000 * 17 / 4 + 0x40;  // spans pages at times
      rx_buf_at_[d] = {at, size};
      qemu_->write_desc(0, d, at, size, kWrite, 0);
      qemu_->publish(0, d, i + 1 == n);
    }
  }

  // One frame off the guest's RX used ring (mergeable buffers: num_buffers entries).
  std::optional<std::pair<VirtioNetHdr, std::vector<std::byte>>> guest_rx() {
    auto u = qemu_->take_used(0);
    if (!u) return std::nullopt;
    auto [at, size] = rx_buf_at_.at(static_cast<uint16_t>(u->first));
    VirtioNetHdr h;
    EXPECT_GE(u->second, kHdr);
    std::memcpy(&h, qemu_->gpa(at), kHdr);
    std::vector<std::byte> data(qemu_->gpa(at + kHdr), qemu_->gpa(at + u->second));
    last_rx_chains_ = 1;
    for (uint16_t i = 1; i < h.num_buffers; ++i) {
      std::optional<std::pair<uint32_t, uint32_t>> v;
      EXPECT_TRUE(pump_until([&] { return (v = qemu_->take_used(0)).has_value(); }));
      if (!v) break;
      auto [a2, s2] = rx_buf_at_.at(static_cast<uint16_t>(v->first));
      data.insert(data.end(), qemu_->gpa(a2), qemu_->gpa(a2 + v->second));
      ++last_rx_chains_;
    }
    return std::make_pair(h, std::move(data));
  }

  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<Platform> dom0_, dom_b_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<MemoryPagePool> pool_b_;
  std::unique_ptr<VhostNetBridge> bridge_;
  std::unique_ptr<FakeQemu> qemu_;
  std::unique_ptr<Netfront> front_b_;
  VifId vif_a_{}, vif_b_{};
  std::deque<ReceivedFrame> got_b_;
  std::vector<TxDone> b_done_;
  std::map<uint16_t, std::pair<uint64_t, uint32_t>> rx_buf_at_;
  uint32_t tx_slot_ = 0;
  uint16_t last_rx_chains_ = 0;
};

TEST_F(VhostUserTest, NegotiatesVersion1MergeableOffloadsAndAdoptsGuestRam) {
  const uint64_t f = bridge_->acked_features();
  EXPECT_TRUE(f & feat::kVersion1);
  EXPECT_TRUE(f & feat::kNetMrgRxbuf);
  EXPECT_TRUE(f & feat::kNetHostTso4);
  EXPECT_TRUE(f & feat::kRingEventIdx);
  // The guest's RAM is the domain's memory: a byte written by the "guest" is the domain's byte at that frame.
  std::memcpy(qemu_->gpa(0x123456), "pvnet", 5);
  auto page = bridge_->platform()->memory().page(Pfn{0x123456 / kPageSize});
  ASSERT_FALSE(page.empty());
  EXPECT_EQ(std::memcmp(page.data() + (0x123456 % kPageSize), "pvnet", 5), 0);
  // The VGA hole is not RAM; the driver region lies above the guest's RAM.
  EXPECT_TRUE(bridge_->platform()->memory().page(Pfn{0xa0000 / kPageSize}).empty());
  EXPECT_GE(bridge_->driver_region_first().value * kPageSize, FakeQemu::kRamBytes);
}

TEST_F(VhostUserTest, GuestToOtherGuestByteForByteWithoutPayloadCopies) {
  const GrantCounters g0 = backend_->total().grant;
  const BackendCounters b0 = backend_->total();
  const NetfrontCounters a0 = bridge_->netfront()->counters();
  std::vector<std::vector<std::byte>> sent;
  uint64_t slot_bound = 0;
  const size_t sizes[] = {60, 128, 300, 1514, 1514, 4000, 9014, 700};
  for (int round = 0; round < 40; ++round) {
    for (size_t k = 0; k < std::size(sizes); ++k) {
      auto fr = make_frame(sizes[k], k % 2 == 1, k % 3 == 0, static_cast<uint8_t>(round * 8 + k));
      const uint32_t cuts = (k % 4 == 3) ? 3 : 1;
      guest_tx(fr, {}, cuts);
      slot_bound += std::min<uint64_t>(fr.size(), bridge_->netfront()->slot_size());
      sent.push_back(std::move(fr));
    }
    ASSERT_TRUE(pump_until([&] { return got_b_.size() == sent.size(); })) << got_b_.size() << " of " << sent.size();
  }
  for (size_t i = 0; i < sent.size(); ++i) ASSERT_EQ(got_b_[i].data, sent[i]) << "frame " << i;
  // Every chain came back only after netfront's TxDone.
  ASSERT_TRUE(pump_until([&] { return bridge_->counters().tx_completed == sent.size(); }));
  EXPECT_EQ(qemu_->used_idx(1), static_cast<uint16_t>(sent.size()));
  const GrantCounters g1 = backend_->total().grant;
  const BackendCounters b1 = backend_->total();
  EXPECT_EQ(g1.pages_mapped - g0.pages_mapped, 0u);
  EXPECT_EQ(g1.faults - g0.faults, 0u);
  EXPECT_LE(b1.backend_memcpy_bytes - b0.backend_memcpy_bytes, b1.header_bytes - b0.header_bytes);
  EXPECT_LE(b1.backend_memcpy_bytes - b0.backend_memcpy_bytes, slot_bound);
  // The guest side copied no payload: the bridge copied nothing, netfront only headers into slots.
  EXPECT_EQ(bridge_->counters().tx_payload_copy_bytes, 0u);
  const NetfrontCounters a1 = bridge_->netfront()->counters();
  EXPECT_LE(a1.frontend_copy_bytes - a0.frontend_copy_bytes, slot_bound);
  EXPECT_GT(a1.tx_grants - a0.tx_grants, 0u);
  EXPECT_EQ(a1.tx_linearised - a0.tx_linearised, 0u);
}

TEST_F(VhostUserTest, TxChainReturnedOnlyAfterTxDone) {
  auto fr = make_frame(1514);
  guest_tx(fr);
  bridge_->poll();  // the bridge hands it to netfront; the backend has not answered
  EXPECT_EQ(bridge_->counters().tx_frames, 1u);
  EXPECT_EQ(qemu_->used_idx(1), 0);
  ASSERT_TRUE(pump_until([&] { return qemu_->used_idx(1) == 1; }));
  uint64_t calls = 0;
  EXPECT_EQ(::read(qemu_->ring(1).call.get(), &calls, 8), 8);  // the guest was interrupted
}

TEST_F(VhostUserTest, OtherGuestToGuestIntoUnalignedBuffersWithHeader) {
  ASSERT_TRUE(bridge_->netfront()->using_rx_extents());
  ASSERT_TRUE(bridge_->netfront()->rx_owner_mode());
  const GrantCounters g0 = backend_->total().grant;
  const NetfrontCounters a0 = bridge_->netfront()->counters();
  post_rx(200);
  std::vector<std::vector<std::byte>> sent;
  std::vector<PlacedFrame> placed;
  const size_t sizes[] = {60, 1514, 3000, 9014, 200};
  for (size_t k = 0; k < std::size(sizes); ++k) {
    auto fr = make_frame(sizes[k], false, k == 4, static_cast<uint8_t>(k + 40));
    auto p = place_frame(*pool_b_, fr);
    ASSERT_TRUE(p);
    TxOptions o;
    o.csum_blank = (k == 1);
    ASSERT_EQ(front_b_->transmit(p->pieces(), o), TxStatus::kQueued);
    placed.push_back(std::move(*p));
    sent.push_back(std::move(fr));
  }
  size_t n = 0;
  ASSERT_TRUE(pump_until([&] {
    while (n < sent.size()) {
      auto r = guest_rx();
      if (!r) return false;
      EXPECT_EQ(r->second, sent[n]) << "frame " << n;
      if (n == 1) {
        EXPECT_EQ(r->first.flags & vnet::kFlagNeedsCsum, vnet::kFlagNeedsCsum);
        EXPECT_EQ(r->first.csum_start, 34);
        EXPECT_EQ(r->first.csum_offset, 16);
      }
      // A buffer crossing a page boundary offers only its first page's part (one grant per netif buffer), so a
      // frame may take more chains than a whole-buffer copy would.
      EXPECT_GE(r->first.num_buffers, (sent[n].size() + kHdr + 1535) / 1536);
      EXPECT_EQ(r->first.num_buffers, last_rx_chains_);
      ++n;
    }
    return true;
  }));
  EXPECT_EQ(bridge_->counters().rx_frames, sent.size());
  uint64_t bytes = 0;
  for (auto& s : sent) bytes += s.size();
  // The backend's grant copy landed in the guest's buffers: nothing copied on the guest side but the headers.
  EXPECT_EQ(bridge_->counters().rx_bounce_bytes, 0u);
  EXPECT_EQ(bridge_->counters().rx_direct_bytes, bytes);
  EXPECT_EQ(bridge_->counters().rx_header_bytes, kHdr * sent.size());
  EXPECT_EQ(bridge_->netfront()->counters().rx_copy_bytes - a0.rx_copy_bytes, 0u);
  // dom0: grant copy into the guest's buffers (B's payload grants -> A's buffers), nothing mapped, no fault.
  const GrantCounters g1 = backend_->total().grant;
  EXPECT_EQ(g1.pages_mapped - g0.pages_mapped, 0u);
  EXPECT_EQ(g1.faults - g0.faults, 0u);
  EXPECT_GE(g1.grant_copy_bytes - g0.grant_copy_bytes, bytes);
}

TEST_F(VhostUserTest, ManyFramesLandDirectlyAndBuffersAreReused) {
  // Fewer guest buffers than frames: chains come back through the used ring and the guest posts them again.
  std::vector<std::vector<std::byte>> sent;
  size_t n = 0;
  uint64_t bytes = 0;
  for (int round = 0; round < 30; ++round) {
    post_rx(24);
    for (size_t k = 0; k < 4; ++k) {
      auto fr = make_frame(60 + (round * 397 + k * 1111) % 4000, k % 2 == 0, false, static_cast<uint8_t>(round + k));
      auto p = place_frame(*pool_b_, fr);
      ASSERT_TRUE(p);
      ASSERT_EQ(front_b_->transmit(p->pieces()), TxStatus::kQueued);
      ASSERT_TRUE(pump_until([&] { return !b_done_.empty(); }));
      b_done_.clear();
      bytes += fr.size();
      sent.push_back(std::move(fr));
    }
    ASSERT_TRUE(pump_until([&] {
      while (n < sent.size()) {
        auto r = guest_rx();
        if (!r) return false;
        EXPECT_EQ(r->second, sent[n]) << "frame " << n;
        ++n;
      }
      return true;
    })) << n << " of " << sent.size();
    // Unused chains of this round stay posted; drain what the guest got back.
    while (qemu_->take_used(0)) {
    }
  }
  EXPECT_EQ(bridge_->counters().rx_bounce_bytes, 0u);
  EXPECT_EQ(bridge_->counters().rx_direct_bytes, bytes);
  EXPECT_EQ(backend_->total().tx_fatal_errors, 0u);
}

// Without MRG_RXBUF a frame must fit one chain: netfront receives into its own pages and the bridge copies (the
// counted fallback).
TEST_F(VhostUserTest, WithoutMergeableBuffersRxIsBouncedAndCounted) {
  rebuild(BridgeSetup{VhostNetConfig::kDefaultFeatures & ~feat::kNetMrgRxbuf});
  ASSERT_FALSE(bridge_->acked_features() & feat::kNetMrgRxbuf);
  EXPECT_FALSE(bridge_->netfront()->rx_owner_mode());
  post_rx(8);
  auto fr = make_frame(1000, true, false, 5);
  auto p = place_frame(*pool_b_, fr);
  ASSERT_TRUE(p);
  ASSERT_EQ(front_b_->transmit(p->pieces()), TxStatus::kQueued);
  std::optional<std::pair<VirtioNetHdr, std::vector<std::byte>>> r;
  ASSERT_TRUE(pump_until([&] { return (r = guest_rx()).has_value(); }));
  EXPECT_EQ(r->second, fr);
  EXPECT_EQ(bridge_->counters().rx_bounce_bytes, fr.size());
  EXPECT_EQ(bridge_->counters().rx_direct_bytes, 0u);
}

// The bridge's netfront offers netif RX offloads only as far as the guest driver acked them, so a backend (a TAP
// sink asks its kernel for Backend::rx_offloads) never sends what the bridge would have to drop.
TEST_F(VhostUserTest, RxOffloadsOfferedAsFarAsTheGuestAcked) {
  EXPECT_EQ(backend_->rx_offloads(vif_a_), (RxOffloads{true, true, true}));
  rebuild(BridgeSetup{VhostNetConfig::kDefaultFeatures & ~feat::kNetGuestTso6});
  EXPECT_EQ(backend_->rx_offloads(vif_a_), (RxOffloads{true, true, false}));
  rebuild(BridgeSetup{VhostNetConfig::kDefaultFeatures & ~(feat::kNetGuestCsum | feat::kNetGuestTso4 |
                                                           feat::kNetGuestTso6)});
  EXPECT_EQ(backend_->rx_offloads(vif_a_), RxOffloads{});
  EXPECT_EQ(dom0_->store().read_opt(backend_->paths(vif_a_).frontend + "/feature-no-csum-offload"), "1");
}

TEST_F(VhostUserTest, GsoSuperFrameFromGuestArrivesAsGsoAtOtherGuest) {
  auto fr = make_frame(20000, false, false, 9);
  VirtioNetHdr h{};
  h.flags = vnet::kFlagNeedsCsum;
  h.gso_type = vnet::kGsoTcpv4;
  h.gso_size = 1448;
  h.hdr_len = 54;
  h.csum_start = 34;
  h.csum_offset = 16;
  guest_tx(fr, h, 4);
  ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
  EXPECT_EQ(got_b_[0].data, fr);
  EXPECT_EQ(got_b_[0].gso_type, netif::gso_type::tcpv4);
  EXPECT_EQ(got_b_[0].gso_size, 1448);
}

// The virtio header table the TAP readers run too (tests/common/virtio_hdr_cases.hpp), through the bridge's TX
// path: what the guest's header asks arrives at the other guest as netif offloads, a checksum netif cannot say
// arrives finished (from a private copy, the only payload the bridge copies, counted), a refused header costs the
// frame (counted) and gives the chain back.
TEST_F(VhostUserTest, SharedVirtioHeaderTableOnGuestTx) {
  uint16_t used = qemu_->used_idx(1);
  for (const VirtioHdrCase& c : virtio_hdr_cases()) {
    SCOPED_TRACE(c.name);
    const auto fr = c.frame();
    const VhostNetCounters before = bridge_->counters();
    got_b_.clear();
    guest_tx(fr, c.hdr, 3);
    ++used;
    ASSERT_TRUE(pump_until([&] { return qemu_->used_idx(1) == used; }));
    const VhostNetCounters& now = bridge_->counters();
    if (c.expect == HdrExpect::kRefused) {
      EXPECT_EQ(now.tx_dropped - before.tx_dropped, 1u);
      EXPECT_EQ(now.tx_frames, before.tx_frames);
      (void)pump_until([&] { return !got_b_.empty(); }, 200);
      EXPECT_TRUE(got_b_.empty());
      continue;
    }
    ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
    EXPECT_EQ(now.tx_dropped, before.tx_dropped);
    const ReceivedFrame& r = got_b_[0];
    if (c.expect == HdrExpect::kFinished) {
      EXPECT_EQ(folded_sum(r.data, c.sum_from), 0xFFFF);
      EXPECT_FALSE(r.csum_blank);
      EXPECT_EQ(now.tx_payload_copy_bytes - before.tx_payload_copy_bytes, fr.size());
      continue;
    }
    EXPECT_EQ(r.data, fr);
    EXPECT_EQ(r.csum_blank, c.offload.csum_blank);
    EXPECT_EQ(r.gso_type, c.offload.gso_type);
    EXPECT_EQ(r.gso_size, c.offload.gso_size);
    EXPECT_EQ(now.tx_payload_copy_bytes, before.tx_payload_copy_bytes);
  }
}

TEST_F(VhostUserTest, DescriptorLoopDropsTheChainOnly) {
  GuestRing& r = qemu_->ring(1);
  std::memcpy(qemu_->gpa(kTxBufBase), std::array<char, 12>{}.data(), 12);
  qemu_->write_desc(1, 10, kTxBufBase, 100, kNext, 11);
  qemu_->write_desc(1, 11, kTxBufBase, 100, kNext, 10);
  r.next_free = 12;
  qemu_->publish(1, 10);
  ASSERT_TRUE(pump_until([&] { return qemu_->used_idx(1) == 1; }));
  EXPECT_EQ(bridge_->tx_queue_counters().bad_chains, 1u);
  EXPECT_EQ(bridge_->counters().guest_disconnects, 0u);
  auto u = qemu_->take_used(1);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->first, 10u);
  EXPECT_EQ(u->second, 0u);
  // The guest goes on.
  auto fr = make_frame(1000);
  guest_tx(fr);
  ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
  EXPECT_EQ(got_b_[0].data, fr);
}

TEST_F(VhostUserTest, AddressOutsideRamAndHugeIndirectTableDropChains) {
  GuestRing& r = qemu_->ring(1);
  // Outside RAM; inside the VGA hole; wrapping.
  qemu_->write_desc(1, 20, 64ull << 30, 1500, 0, 0);
  qemu_->write_desc(1, 21, 0xa0000 + 16, 1500, 0, 0);
  qemu_->write_desc(1, 22, ~0ull - 10, 1500, 0, 0);
  qemu_->write_desc(1, 23, FakeQemu::kRamBytes - 100, 1500, 0, 0);  // runs off the end
  // An indirect table bigger than the queue.
  qemu_->write_desc(1, 24, 0x300000, 16 * (r.num + 1), kIndirect, 0);
  r.next_free = 25;
  for (uint16_t h = 20; h <= 24; ++h) qemu_->publish(1, h);
  ASSERT_TRUE(pump_until([&] { return qemu_->used_idx(1) == 5; }));
  EXPECT_EQ(bridge_->tx_queue_counters().bad_chains, 5u);
  EXPECT_EQ(bridge_->counters().guest_disconnects, 0u);
  EXPECT_TRUE(bridge_->running());
  auto fr = make_frame(1514);
  guest_tx(fr, {}, 2);
  ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
  EXPECT_EQ(got_b_[0].data, fr);
}

TEST_F(VhostUserTest, IndirectChainWorksWhenNegotiated) {
  auto fr = make_frame(2000, true);
  const uint64_t table = 0x300000, data = 0x305010;
  VirtioNetHdr h{};
  std::memcpy(qemu_->gpa(data), &h, kHdr);
  std::memcpy(qemu_->gpa(data + kHdr), fr.data(), fr.size());
  auto put = [&](int i, uint64_t a, uint32_t l, uint16_t fl, uint16_t nx) {
    std::byte* d = qemu_->gpa(table) + 16 * i;
    std::memcpy(d, &a, 8);
    std::memcpy(d + 8, &l, 4);
    std::memcpy(d + 12, &fl, 2);
    std::memcpy(d + 14, &nx, 2);
  };
  put(0, data, kHdr + 500, kNext, 1);
  put(1, data + kHdr + 500, static_cast<uint32_t>(fr.size() - 500), 0, 0);
  qemu_->write_desc(1, 30, table, 32, kIndirect, 0);
  qemu_->ring(1).next_free = 31;
  qemu_->publish(1, 30);
  ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
  EXPECT_EQ(got_b_[0].data, fr);
}

TEST_F(VhostUserTest, RunawayAvailIndexDisconnectsTheGuestOnly) {
  qemu_->set_avail_idx(1, 1000);
  ASSERT_TRUE(pump_until([&] { return bridge_->counters().guest_disconnects == 1; }));
  EXPECT_NE(bridge_->error().find("ahead"), std::string::npos) << bridge_->error();
  EXPECT_FALSE(bridge_->guest_connected());
  // dom0 and the other guest are unharmed: B still sends (A's RX is gone, so frames are dropped, counted).
  auto fr = make_frame(500);
  auto p = place_frame(*pool_b_, fr);
  ASSERT_TRUE(p);
  ASSERT_EQ(front_b_->transmit(p->pieces()), TxStatus::kQueued);
  // A's netfront posts only the guest's own buffers (RX extents): with the guest gone none are posted, so the
  // frame waits in A's RX queue as for any guest without buffers (bounded, dropped on A's stall timeout).
  (void)pump_until([&] { return !b_done_.empty(); }, 2000);
  EXPECT_TRUE(!b_done_.empty() || backend_->counters(vif_a_).rx_queued > 0);
  EXPECT_TRUE(front_b_->connected());
  EXPECT_FALSE(backend_->disabled(vif_b_));
}

TEST_F(VhostUserTest, BadVringAddressDisconnectsTheGuest) {
  // QEMU restarts the queue with a descriptor table outside guest RAM.
  qemu_->send_val(kGetVringBase, VringState{1, 0});
  auto base = qemu_->reply(kGetVringBase);
  ASSERT_TRUE(base);
  qemu_->setup_ring(1, FakeQemu::kUaddrBase + (1ull << 40));
  ASSERT_TRUE(pump_until([&] { return bridge_->counters().guest_disconnects == 1; }));
  EXPECT_NE(bridge_->error().find("outside guest RAM"), std::string::npos) << bridge_->error();
  EXPECT_TRUE(front_b_->connected());
}

TEST_F(VhostUserTest, GarbageMessagesDisconnectWithoutCrashing) {
  // A memory table with overlapping regions on a fresh connection.
  auto q2 = std::make_unique<FakeQemu>([this] { pump_once(); });
  bridge_->attach(q2->take_device_end());
  MemoryDesc md{};
  md.nregions = 9;  // more than the protocol allows
  q2->send(kSetMemTable, std::span<const std::byte>(reinterpret_cast<const std::byte*>(&md), 8));
  ASSERT_TRUE(pump_until([&] { return !bridge_->guest_connected(); }));
  EXPECT_GE(bridge_->counters().guest_disconnects, 2u);  // the first QEMU (replaced) and this one
}

// ---- A hostile front-end: its RAM and its fds ----------------------------------------------------------------

// A front-end whose RAM memfd is not sealed could cut it under dom0's mappings after the device runs (with
// --sink pcap dom0 died of SIGBUS under map/hdrcopy, and under slots retried the lazy fault for ever). The device
// refuses such memory at SET_MEM_TABLE with a reason that names the fix, before anything is adopted; the guests
// already connected keep their traffic.
TEST_F(VhostUserTest, UnsealedGuestRamIsRefusedAtSetMemTable) {
  // QEMU's memfd (seal=on, FakeQemu's default) cannot be cut at all.
  EXPECT_NE(::ftruncate(qemu_->ram_fd(), kPageSize), 0);
  EXPECT_EQ(errno, EPERM);
  VhostNetConfig cfg;
  cfg.domid = DomId{3};
  cfg.make_platform = [this](std::span<const GuestRamRegion> ram) { return hv_->adopt_ram(DomId{3}, ram, 8192); };
  VhostNetBridge c(cfg);
  FakeQemu q3([&] { c.poll(); pump_once(); }, /*sealed=*/false);
  c.attach(q3.take_device_end());
  q3.negotiate_features(VhostNetConfig::kDefaultFeatures);
  EXPECT_EQ(q3.try_set_mem_table(), 1u);  // REPLY_ACK: refused
  ASSERT_TRUE(pump_until([&] {
    c.poll();
    return !c.guest_connected();
  }));
  EXPECT_EQ(c.platform(), nullptr);  // nothing adopted
  EXPECT_EQ(c.counters().guest_disconnects, 1u);
  EXPECT_NE(c.error().find("F_SEAL_SHRINK"), std::string::npos) << c.error();
  EXPECT_NE(c.error().find("memory-backend-memfd"), std::string::npos) << c.error();
  auto fr = make_frame(1514);
  guest_tx(fr);
  ASSERT_TRUE(pump_until([&] { return got_b_.size() == 1; }));
  EXPECT_EQ(got_b_[0].data, fr);
}

// A sealed memfd shorter than the region the front-end claims would fault past its end: refused, with the sizes.
TEST_F(VhostUserTest, RegionPastTheEndOfItsMemfdIsRefused) {
  VhostNetConfig cfg;
  cfg.domid = DomId{3};
  cfg.make_platform = [this](std::span<const GuestRamRegion> ram) { return hv_->adopt_ram(DomId{3}, ram, 8192); };
  VhostNetBridge c(cfg);
  FakeQemu q3([&] { c.poll(); pump_once(); });
  c.attach(q3.take_device_end());
  q3.negotiate_features(VhostNetConfig::kDefaultFeatures);
  EXPECT_EQ(q3.try_set_mem_table(1 << 20), 1u);
  ASSERT_TRUE(pump_until([&] {
    c.poll();
    return !c.guest_connected();
  }));
  EXPECT_EQ(c.platform(), nullptr);
  EXPECT_NE(c.error().find("past the end of its memfd"), std::string::npos) << c.error();
}

// A kick fd must be an eventfd in counter mode: a regular file or a hung-up pipe or socket polls readable for ever
// (the device spun at 100% CPU), a semaphore eventfd gives one kick per read of a count the front-end chose. A call
// fd that is not an eventfd could block the device (a full pipe) or fill a disk. Each is refused with a reason;
// the other guest goes on.
TEST_F(VhostUserTest, KickOrCallFdThatIsNotAnEventfdIsRefused) {
  struct Case {
    const char* name;
    uint32_t request;
    std::function<UniqueFd()> make;
    const char* reason;
  };
  auto regular_file = [] {
    char path[] = "/tmp/pvnet-kick-XXXXXX";
    UniqueFd fd{::mkstemp(path)};
    ::unlink(path);
    const std::array<char, 64> junk{};
    EXPECT_EQ(::write(fd.get(), junk.data(), junk.size()), 64);
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    return fd;
  };
  auto hung_up_pipe = [] {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ::close(p[1]);
    return UniqueFd{p[0]};
  };
  auto full_pipe = [] {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    const std::array<char, 4096> junk{};
    while (::write(p[1], junk.data(), junk.size()) > 0) {
    }
    ::close(p[0]);  // nobody reads
    return UniqueFd{p[1]};
  };
  auto hung_up_socket = [] {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ::close(sv[1]);
    return UniqueFd{sv[0]};
  };
  auto semaphore = [] {
    UniqueFd fd{::eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE)};
    const uint64_t lots = 1ull << 40;
    EXPECT_EQ(::write(fd.get(), &lots, 8), 8);
    return fd;
  };
  const Case cases[] = {
      {"kick: regular file", kSetVringKick, regular_file, "not an eventfd"},
      {"kick: hung-up pipe", kSetVringKick, hung_up_pipe, "not an eventfd"},
      {"kick: hung-up socket", kSetVringKick, hung_up_socket, "not an eventfd"},
      {"kick: semaphore eventfd", kSetVringKick, semaphore, "semaphore"},
      {"call: regular file", kSetVringCall, regular_file, "not an eventfd"},
      {"call: full pipe", kSetVringCall, full_pipe, "not an eventfd"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    rebuild(BridgeSetup{});
    if (HasFatalFailure()) return;
    UniqueFd fd = c.make();
    const int raw = fd.get();
    qemu_->send_val(c.request, uint64_t{1}, std::span<const int>(&raw, 1));
    ASSERT_TRUE(pump_until([&] { return !bridge_->guest_connected(); }, 4000));
    EXPECT_NE(bridge_->error().find(c.reason), std::string::npos) << bridge_->error();
    EXPECT_NE(bridge_->error().find(c.request == kSetVringKick ? "kick fd of queue 1" : "call fd of queue 1"),
              std::string::npos)
        << bridge_->error();
    EXPECT_EQ(bridge_->counters().guest_disconnects, 1u);
    EXPECT_TRUE(front_b_->connected());
    EXPECT_FALSE(backend_->disabled(vif_b_));
  }
}

TEST(VirtqueueTest, StartRefusesBadGeometry) {
  vhost::SplitVirtqueue q;
  vhost::GuestMemoryTable empty;
  vhost::VirtqConfig c;
  c.num = 3;
  EXPECT_FALSE(q.start(empty, c));
  c.num = 256;
  c.desc_gpa = 0x1000;
  EXPECT_FALSE(q.start(empty, c));  // no RAM at all
}

}  // namespace
}  // namespace pvnet::test
