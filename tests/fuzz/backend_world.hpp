// What the backend fuzz targets share: one simulated host (hypervisor, dom0, a real Backend) with two guests, a
// hostile one the fuzzer drives (dom1) and a well-behaved peer (dom2) whose traffic must keep flowing whatever
// dom1 does (docs/security.md). Each check aborts on violation so libFuzzer reports it with the input.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_mapper.hpp"
#include "tests/backend/scripted_frontend.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace pvnet::fuzz {

inline constexpr DomId kGuestDom{1};
inline constexpr DomId kPeerDom{2};
inline constexpr size_t kLazyWindowPages = 64;

// Whether a sink may read payload through the lazy window in this process (uffd: see init_process).
inline bool payload_reads_possible() {
  return sim::default_lazy_handler() == sim::LazyHandler::uffd && sim::uffd_lazy_supported();
}

// Once per process: the scripted frontend's gtest assertions must abort, not just print; the backend's one-line
// "disabling device" messages would drown libFuzzer's output (sanitizer reports go to fd 2 and still show); and
// payload faults go through userfaultfd when the kernel allows it (a SIGSEGV handler fights the sanitizers').
inline void init_process() {
  static bool done = false;
  if (done) return;
  done = true;
  GTEST_FLAG_SET(throw_on_failure, true);
  if (!std::getenv("PVNET_FUZZ_VERBOSE")) std::cerr.rdbuf(nullptr);
  setenv("PVNET_LAZY_HANDLER", "uffd", 0);
  if (!payload_reads_possible())
    std::fprintf(stderr, "pvnet fuzz: no userfaultfd lazy window here: payload-reading sinks are left out\n");
}

// A sink that reads every payload byte through the payload policy (a pcap sink's access pattern), so hostile
// grants reach the lazy window's fault path. Answers at once: OKAY, or a drop when a grant was bad.
class ReadingSink final : public Sink {
 public:
  std::string name() const override { return "fuzz-reader"; }
  SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) override {
    (void)src;
    if (pkt.frags.empty()) return SinkResult::okay();
    if (auto r = payload.expose(pkt); !r) return SinkResult::drop(netif::rsp::error, DropReason::payload_unavailable);
    uint32_t sum = 0;
    for (const auto& f : pkt.frags)
      for (uint16_t i = 0; i < f.len; ++i) sum += static_cast<uint8_t>(f.data[i]);
    checksum_ += sum;
    uint64_t touched = 0;
    if (auto r = payload.verify(pkt, &touched); !r) return SinkResult::drop(netif::rsp::error, DropReason::bad_payload_grant);
    return SinkResult::okay();
  }
  uint64_t checksum_ = 0;
};

struct WorldOptions {
  BackendOptions backend;
  VifOptions guest_vif;
  test::FrontOptions guest_front;
  uint32_t guest_slot_pages = 2;  // registered when the guest negotiated header slots (and register_guest_slots)
  bool register_guest_slots = true;
  bool guest_connects = true;     // false: the caller drives the guest's store keys itself (store target)
};

class World {
 public:
  explicit World(WorldOptions o) {
    init_process();
    hv_ = SimHypervisor::create().value();
    dom0_ = hv_->attach(kDom0).value();
    o.backend.lazy_window_pages = kLazyWindowPages;
    be_ = Backend::create(*dom0_, o.backend).value();
    guest_ = std::make_unique<test::ScriptedFrontend>(*hv_, kGuestDom);
    peer_ = std::make_unique<test::ScriptedFrontend>(*hv_, kPeerDom);

    peer_vif_ = be_->add_vif(kPeerDom, 0).value();
    guest_vif_ = be_->add_vif(kGuestDom, 0, o.guest_vif).value();
    be_->poll_until_idle();
    PVNET_FUZZ_CHECK(be_->state(peer_vif_) == XenbusState::InitWait, "peer vif not in InitWait");
    peer_->connect();
    be_->poll_until_idle();
    PVNET_FUZZ_CHECK(be_->connected(peer_vif_), "peer did not connect");
    if (be_->header_slots(peer_vif_))  // negotiated only under a policy that offers header slots
      PVNET_FUZZ_CHECK(peer_->register_slots(*be_, 2) == netif::ctrl_status::success, "peer slot registration");
    peer_->post_rx(16);
    be_->poll_until_idle();

    if (o.guest_connects) {
      guest_->connect(o.guest_front);
      be_->poll_until_idle();
      PVNET_FUZZ_CHECK(be_->connected(guest_vif_), "guest did not connect");
      if (o.register_guest_slots && be_->header_slots(guest_vif_)) {
        guest_slots_ = guest_->register_slots(*be_, o.guest_slot_pages) == netif::ctrl_status::success;
        PVNET_FUZZ_CHECK(guest_slots_, "guest slot registration failed");
      }
    }
  }
  ~World() = default;
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  Backend& be() { return *be_; }
  Platform& dom0() { return *dom0_; }
  SimHypervisor& hv() { return *hv_; }
  test::ScriptedFrontend& guest() { return *guest_; }
  test::ScriptedFrontend& peer() { return *peer_; }
  VifId guest_vif() const { return guest_vif_; }
  VifId peer_vif() const { return peer_vif_; }
  bool guest_slots() const { return guest_slots_; }

  // Foreign mappings dom0 holds right now, against what it may hold: the rings of connected vifs (tx, rx, ctrl),
  // the kept header-slot pages and the lazy window (released at the end of every poll, so 0 between polls).
  void check_mappings(const char* when) {
    const GrantCounters g = dom0_->mapper().counters();
    PVNET_FUZZ_CHECK(g.pages_mapped >= g.pages_unmapped, "%s: unmapped %llu > mapped %llu", when,
                     (unsigned long long)g.pages_unmapped, (unsigned long long)g.pages_mapped);
    uint64_t bound = kLazyWindowPages;
    for (VifId v : be_->vifs()) {
      bound += be_->kept_mappings(v);
      if (be_->connected(v)) bound += 3;
      PVNET_FUZZ_CHECK(be_->kept_mappings(v) <= BackendOptions{}.max_kept_pages_per_domain,
                       "%s: vif %u keeps %zu pages, over the per-domain limit", when, v.value, be_->kept_mappings(v));
    }
    const uint64_t held = g.pages_mapped - g.pages_unmapped;
    PVNET_FUZZ_CHECK(held <= bound, "%s: dom0 holds %llu foreign pages, bound %llu", when, (unsigned long long)held,
                     (unsigned long long)bound);
  }

  // Counter identities that hold for a vif whose sink answers at once.
  void check_counters(VifId v, const char* when) {
    const BackendCounters c = be_->counters(v);
    PVNET_FUZZ_CHECK(c.tx_responses <= c.tx_requests, "%s: vif %u tx_responses %llu > tx_requests %llu", when,
                     v.value, (unsigned long long)c.tx_responses, (unsigned long long)c.tx_requests);
    PVNET_FUZZ_CHECK(c.packets_in == c.packets_out + c.dropped_total(),
                     "%s: vif %u packets_in %llu != packets_out %llu + dropped %llu", when, v.value,
                     (unsigned long long)c.packets_in, (unsigned long long)c.packets_out,
                     (unsigned long long)c.dropped_total());
    PVNET_FUZZ_CHECK(c.packets_out <= c.packets_in, "%s: packets_out > packets_in", when);
  }

  // The peer sends one frame (answered OKAY, every request exactly once) and receives one from dom0.
  void check_peer_alive(const char* when) {
    PVNET_FUZZ_CHECK(be_->connected(peer_vif_) && !be_->disabled(peer_vif_), "%s: peer vif lost its connection",
                     when);
    const BackendCounters before = be_->counters(peer_vif_);
    ++peer_seq_;
    const auto frame = test::make_frame(64 + peer_seq_ % 900, (peer_seq_ & 1) ? 17 : 6, static_cast<uint8_t>(peer_seq_));
    const size_t nreq = peer_->send(frame);
    be_->poll_until_idle();
    const auto rsps = peer_->tx_responses();
    PVNET_FUZZ_CHECK(rsps.size() == nreq, "%s: peer pushed %zu requests, got %zu responses", when, nreq,
                     rsps.size());
    for (const auto& r : rsps)
      PVNET_FUZZ_CHECK(r.status == netif::rsp::okay, "%s: peer request %u answered %d", when, r.id, r.status);
    const BackendCounters after = be_->counters(peer_vif_);
    PVNET_FUZZ_CHECK(after.packets_out == before.packets_out + 1, "%s: peer frame not delivered to its sink", when);

    RxFrame rx;
    rx.local = frame;
    rx.len = static_cast<uint32_t>(frame.size());
    PVNET_FUZZ_CHECK(be_->queue_rx(peer_vif_, std::move(rx)) == QueueRx::ok, "%s: queue_rx to the peer refused", when);
    be_->poll_until_idle();
    const auto got = peer_->rx_frames();
    PVNET_FUZZ_CHECK(got.size() == 1 && !got[0].error && got[0].data == frame,
                     "%s: peer received %zu frames (want the one queued, intact)", when, got.size());
    peer_->post_rx(1);
    check_counters(peer_vif_, when);
  }

  // Both vifs removed, the backend gone: dom0 holds no foreign page any more.
  void teardown_and_check() {
    for (VifId v : be_->vifs()) PVNET_FUZZ_CHECK(be_->remove_vif(v).ok(), "remove_vif %u failed", v.value);
    be_.reset();
    const GrantCounters g = dom0_->mapper().counters();
    PVNET_FUZZ_CHECK(g.pages_mapped == g.pages_unmapped, "after teardown dom0 still holds %lld foreign pages",
                     (long long)(g.pages_mapped - g.pages_unmapped));
    PVNET_FUZZ_CHECK(guest_->platform().grant_table().capacity() != 0, "guest grant table gone");
  }

 private:
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<Platform> dom0_;
  std::unique_ptr<test::ScriptedFrontend> guest_, peer_;
  std::unique_ptr<Backend> be_;  // after the guests: it goes first, as a dom0 backend dies before its guests
  VifId guest_vif_, peer_vif_;
  bool guest_slots_ = false;
  uint32_t peer_seq_ = 0;
};

}  // namespace pvnet::fuzz
