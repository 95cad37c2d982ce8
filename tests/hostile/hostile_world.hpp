// A backend serving a hostile guest next to a healthy pair of guests that forward frames to each other through it
// (vif sink both ways). Every test measures the healthy pair in the same run: each frame it sends must arrive
// byte for byte, in order, and be answered OKAY, while the hostile guest misbehaves.
#pragma once
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backend/null_sink.hpp"
#include "backend/vif_sink.hpp"
#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {

inline std::string first_diff(const std::vector<std::byte>& a, const std::vector<std::byte>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  std::string s = std::to_string(i) + ":";
  for (size_t k = i; k < i + 8 && k < a.size() && k < b.size(); ++k)
    s += " " + std::to_string(int(a[k])) + "/" + std::to_string(int(b[k]));
  return s;
}

class HealthyPair {
 public:
  HealthyPair(Host& h, DomId da, DomId db) : h_(h), a_(*h.hv, da), b_(*h.hv, db) {
    va_ = h.attach(a_);
    vb_ = h.attach(b_);
    EXPECT_TRUE(h.be->set_sink(va_, std::make_shared<VifSink>(*h.be, vb_)).ok());
    EXPECT_TRUE(h.be->set_sink(vb_, std::make_shared<VifSink>(*h.be, va_)).ok());
  }

  // Posts buffers on both sides and sends `n` frames each way (sizes vary, GSO-free). Call collect() afterwards
  // (after polls) to check them.
  void send(size_t n = 3) {
    a_.post_rx(n);
    b_.post_rx(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t len = 60 + (seed_ * 97) % 1450;
      auto fa = make_frame(len, 17, seed_++);
      auto fb = make_frame(len + 3 > 1514 ? 60 : len + 3, 17, seed_++);
      a_.send(fa, 42);
      b_.send(fb, 42);
      ab_.push_back(std::move(fa));
      ba_.push_back(std::move(fb));
    }
  }

  // Everything sent so far arrived identical, was answered OKAY, and nothing of the pair was dropped.
  void collect() {
    for (auto& f : b_.rx_frames()) got_ab_.push_back(std::move(f));
    for (auto& f : a_.rx_frames()) got_ba_.push_back(std::move(f));
    for (const auto& r : a_.tx_responses()) ok_ &= r.status == netif::rsp::okay, ++answered_;
    for (const auto& r : b_.tx_responses()) ok_ &= r.status == netif::rsp::okay, ++answered_;
  }

  void expect_unharmed(const char* when) {
    collect();
    ASSERT_EQ(got_ab_.size(), ab_.size()) << when;
    ASSERT_EQ(got_ba_.size(), ba_.size()) << when;
    for (size_t i = 0; i < ab_.size(); ++i) {
      EXPECT_FALSE(got_ab_[i].error) << when;
      EXPECT_TRUE(got_ab_[i].data == ab_[i]) << when << ": frame " << i << " A->B differs (" << got_ab_[i].data.size()
                                             << " bytes, sent " << ab_[i].size() << ", first diff at "
                                             << first_diff(got_ab_[i].data, ab_[i]) << ")";
    }
    for (size_t i = 0; i < ba_.size(); ++i) {
      EXPECT_FALSE(got_ba_[i].error) << when;
      EXPECT_TRUE(got_ba_[i].data == ba_[i]) << when << ": frame " << i << " B->A differs";
    }
    EXPECT_TRUE(ok_) << when << ": a healthy TX request was not answered OKAY";
    EXPECT_FALSE(h_.be->disabled(va_) || h_.be->disabled(vb_)) << when;
    EXPECT_EQ(h_.be->counters(va_).dropped_total() + h_.be->counters(vb_).dropped_total(), 0u) << when;
  }
  size_t frames() const { return got_ab_.size() + got_ba_.size(); }
  VifId va() const { return va_; }
  VifId vb() const { return vb_; }

 private:
  Host& h_;
  ScriptedFrontend a_, b_;
  VifId va_, vb_;
  uint8_t seed_ = 3;
  std::vector<std::vector<std::byte>> ab_, ba_;
  std::vector<ReceivedFrame> got_ab_, got_ba_;
  bool ok_ = true;
  size_t answered_ = 0;
};

// The world every hostile test starts from, attached in member order: one host, the guest under test (dom 1, its
// vif with `vo`), then the healthy pair (doms 2 and 3) it must not harm. A test names the parts it plays with:
//   Scene s;
//   auto& [h, bad, vbad, pair] = s;
struct Scene {
  explicit Scene(BackendOptions bo = {}, VifOptions vo = {})
      : h(bo), guest(*h.hv, DomId{1}), vguest(h.attach(guest, vo)), pair(h, DomId{2}, DomId{3}) {}
  Host h;
  ScriptedFrontend guest;
  VifId vguest;
  HealthyPair pair;
};

// Which way frames go between the guest under test and its peer (VifSink).
enum class Forward { to_peer, from_peer };

// Scene plus a peer guest (dom 4) attached right after the guest under test and joined to it by a VifSink, before
// the healthy pair:
//   PeerScene s;
//   auto& [h, bad, rcv, vbad, vrcv, pair] = s;
struct PeerScene {
  explicit PeerScene(Forward dir = Forward::to_peer, BackendOptions bo = {}, VifOptions vo = {})
      : h(bo),
        guest(*h.hv, DomId{1}),
        peer(*h.hv, DomId{4}),
        vguest(h.attach(guest, vo)),
        vpeer(attach_peer(dir)),
        pair(h, DomId{2}, DomId{3}) {}
  Host h;
  ScriptedFrontend guest, peer;
  VifId vguest, vpeer;
  HealthyPair pair;

 private:
  VifId attach_peer(Forward dir) {
    const VifId v = h.attach(peer);
    const VifId from = dir == Forward::to_peer ? vguest : v, to = dir == Forward::to_peer ? v : vguest;
    EXPECT_TRUE(h.be->set_sink(from, std::make_shared<VifSink>(*h.be, to)).ok());
    return v;
  }
};

// Waits on the backend's fds (event channel, store, timer) like a real netback thread, then polls.
inline size_t wait_and_poll(Backend& be, int timeout_ms, bool* timed_out = nullptr) {
  std::vector<pollfd> pfds;
  for (int fd : be.fds()) pfds.push_back(pollfd{fd, POLLIN, 0});
  const int n = ::poll(pfds.data(), pfds.size(), timeout_ms);
  if (timed_out) *timed_out = n == 0;
  return be.poll_until_idle();
}

inline Port port_of(ScriptedFrontend& fe, const char* key) {
  return Port{static_cast<uint32_t>(fe.store().read_int(netif::key_path(fe.dir(), key)).value())};
}

// Counts occurrences of `needle` in `hay`.
inline size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace pvnet::test
