// A test "QEMU": the vhost-user front-end (master) with a memfd guest RAM laid out as QEMU 7.2 sends it (two
// regions, the second starting above the VGA hole), plus a "Linux virtio_net driver" that builds split rings in
// that RAM: TX chains (virtio-net header + frame, optionally scattered) and RX buffers at odd offsets.
// Single-threaded: every request that needs an answer pumps the device (a callback) until the reply is there.
#pragma once
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "frontend/vhost_net_bridge.hpp"
#include "frontend/vhost_user.hpp"

namespace pvnet::test {

using namespace pvnet::vhost;

struct GuestRing {
  uint32_t num = 256;
  uint64_t desc = 0, avail = 0, used = 0;  // gpa
  uint16_t avail_idx = 0;
  uint16_t used_seen = 0;
  uint16_t next_free = 0;  // descriptors handed out round-robin (chains are short and retired in order)
  UniqueFd kick, call;
};

class FakeQemu {
 public:
  static constexpr uint64_t kRamBytes = 16ull << 20;
  static constexpr uint64_t kHoleStart = 0xa0000, kHoleEnd = 0xc0000;
  static constexpr uint64_t kUaddrBase = 0x7f0000000000ull;  // "QEMU's" virtual address of gpa 0

  // sealed: as QEMU's memory-backend-memfd with its default seal=on (F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL);
  // false: a front-end that keeps the right to truncate its RAM.
  explicit FakeQemu(std::function<void()> pump, bool sealed = true) : pump_(std::move(pump)) {
    ram_fd_.reset(::memfd_create("fake-qemu-ram", MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0)));
    EXPECT_EQ(::ftruncate(ram_fd_.get(), kRamBytes), 0);
    if (sealed) {
      EXPECT_EQ(::fcntl(ram_fd_.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), 0);
    }
    ram_ = static_cast<std::byte*>(::mmap(nullptr, kRamBytes, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd_.get(), 0));
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    chan_.emplace(UniqueFd{sv[0]});
    device_end_.reset(sv[1]);
    rings_[0].desc = 0x100000; rings_[0].avail = 0x101000; rings_[0].used = 0x102000;
    rings_[1].desc = 0x110000; rings_[1].avail = 0x111000; rings_[1].used = 0x112000;
  }
  ~FakeQemu() { ::munmap(ram_, kRamBytes); }

  UniqueFd take_device_end() { return std::move(device_end_); }
  int ram_fd() const { return ram_fd_.get(); }
  std::byte* gpa(uint64_t a) { return ram_ + a; }
  GuestRing& ring(int q) { return rings_[q]; }
  void close_socket() { chan_.reset(); }

  void send(uint32_t req, std::span<const std::byte> payload, std::span<const int> fds = {}, bool need_reply = false) {
    ASSERT_TRUE(chan_);
    auto r = chan_->send(req, kFlagVersion | (need_reply ? kFlagNeedReply : 0), payload, fds);
    ASSERT_TRUE(r) << r.error().reason;
  }
  template <class T>
  void send_val(uint32_t req, const T& v, std::span<const int> fds = {}, bool need_reply = false) {
    send(req, std::span<const std::byte>(reinterpret_cast<const std::byte*>(&v), sizeof v), fds, need_reply);
  }
  // Waits (pumping the device) for the reply to `req`; nullopt if the device hung up.
  std::optional<Message> reply(uint32_t req) {
    for (int i = 0; i < 2000 && chan_; ++i) {
      pump_();
      auto m = chan_->read_message();
      if (m) {
        EXPECT_EQ(m->hdr.request, req);
        EXPECT_TRUE(m->hdr.flags & kFlagReply);
        return std::move(*m);
      }
      if (m.error().code != EAGAIN) return std::nullopt;
    }
    return std::nullopt;
  }
  uint64_t reply_u64(uint32_t req) {
    auto m = reply(req);
    uint64_t v = ~0ull;
    if (m) {
      EXPECT_TRUE(m->get(&v));
    }
    return v;
  }

  // What QEMU's vhost_net_start does once the guest driver set DRIVER_OK.
  void negotiate(uint64_t want_features) {
    negotiate_features(want_features);
    if (::testing::Test::HasFatalFailure()) return;
    set_mem_table();
    for (uint32_t q = 0; q < 2; ++q) setup_ring(q);
  }
  void set_mem_table() { EXPECT_EQ(try_set_mem_table(), 0u); }
  // The device's REPLY_ACK status (0 = accepted); ~0 if it hung up first. `extra` grows the last region.
  uint64_t try_set_mem_table(uint64_t extra = 0) {
    MemoryDesc md{};
    md.nregions = 2;
    md.regions[0] = {0, kHoleStart, kUaddrBase, 0};
    md.regions[1] = {kHoleEnd, kRamBytes - kHoleEnd + extra, kUaddrBase + kHoleEnd, kHoleEnd};
    const int fds[2] = {ram_fd_.get(), ram_fd_.get()};
    send(kSetMemTable,
         std::span<const std::byte>(reinterpret_cast<const std::byte*>(&md), 8 + 32 * md.nregions), fds, true);
    return reply_u64(kSetMemTable);
  }
  // The messages before SET_MEM_TABLE in negotiate().
  void negotiate_features(uint64_t want_features) {
    send(kGetFeatures, {});
    features_ = reply_u64(kGetFeatures) & want_features;
    send(kGetProtocolFeatures, {});
    ASSERT_TRUE(reply_u64(kGetProtocolFeatures) & kProtoReplyAck);
    send_val(kSetProtocolFeatures, uint64_t{kProtoReplyAck});
    send(kSetOwner, {});
    send_val(kSetFeatures, features_);
  }
  void setup_ring(uint32_t q, uint64_t desc_uaddr_override = 0) {
    GuestRing& r = rings_[q];
    std::memset(gpa(r.desc), 0, 16 * r.num);
    std::memset(gpa(r.avail), 0, 6 + 2 * r.num);
    std::memset(gpa(r.used), 0, 6 + 8 * r.num);
    send_val(kSetVringNum, VringState{q, r.num});
    send_val(kSetVringBase, VringState{q, 0});
    VringAddr a{q, 0, desc_uaddr_override ? desc_uaddr_override : kUaddrBase + r.desc, kUaddrBase + r.used,
                kUaddrBase + r.avail, 0};
    send_val(kSetVringAddr, a);
    r.kick.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    r.call.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    const int k = r.kick.get(), c = r.call.get();
    send_val(kSetVringCall, uint64_t{q}, std::span<const int>(&c, 1));
    send_val(kSetVringKick, uint64_t{q}, std::span<const int>(&k, 1));
    send_val(kSetVringEnable, VringState{q, 1}, {}, true);
    (void)reply_u64(kSetVringEnable);
  }
  uint64_t features() const { return features_; }

  // Driver side of the rings.
  void write_desc(int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    std::byte* d = gpa(rings_[q].desc) + 16ull * i;
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  void publish(int q, uint16_t head, bool kick = true) {
    GuestRing& r = rings_[q];
    std::memcpy(gpa(r.avail) + 4 + 2 * (r.avail_idx % r.num), &head, 2);
    ++r.avail_idx;
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(gpa(r.avail) + 2)).store(r.avail_idx,
                                                                                     std::memory_order_release);
    if (kick) {
      const uint64_t one = 1;
      EXPECT_EQ(::write(r.kick.get(), &one, 8), 8);
    }
  }
  void set_avail_idx(int q, uint16_t v) {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(gpa(rings_[q].avail) + 2)).store(v);
    const uint64_t one = 1;
    (void)::write(rings_[q].kick.get(), &one, 8);
  }
  uint16_t used_idx(int q) {
    return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(gpa(rings_[q].used) + 2))
        .load(std::memory_order_acquire);
  }
  // Next used element not yet seen: {id, len}.
  std::optional<std::pair<uint32_t, uint32_t>> take_used(int q) {
    GuestRing& r = rings_[q];
    if (used_idx(q) == r.used_seen) return std::nullopt;
    const std::byte* e = gpa(r.used) + 4 + 8ull * (r.used_seen % r.num);
    uint32_t id, len;
    std::memcpy(&id, e, 4);
    std::memcpy(&len, e + 4, 4);
    ++r.used_seen;
    return std::make_pair(id, len);
  }

 private:
  std::function<void()> pump_;
  UniqueFd ram_fd_;
  std::byte* ram_ = nullptr;
  std::optional<Channel> chan_;
  UniqueFd device_end_;
  GuestRing rings_[2];
  uint64_t features_ = 0;
};

}  // namespace pvnet::test
