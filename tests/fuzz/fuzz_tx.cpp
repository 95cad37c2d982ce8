// libFuzzer target: the backend's TX request stream under a hostile frontend (docs/fuzzing.md, "fuzz_tx").
// The input (tests/fuzz/tx_actions.hpp) is a configuration and a sequence of actions of a scripted frontend on
// its TX ring, run against a real Backend on an in-process SimHypervisor next to a healthy peer vif.
// Asserted after every poll: each request the backend consumed got exactly one response, in ring order, carrying
// the id the request had when the backend read it (NULL for extra-info slots), unless the vif was disabled; the
// backend's counters agree with what the frontend saw and with each other; dom0's foreign mappings stay within
// rings + kept slot pages + lazy window. At the end the peer still sends and receives, and teardown unmaps all.
#include <array>
#include <cstring>

#include "tests/fuzz/backend_world.hpp"
#include "tests/fuzz/tx_actions.hpp"

namespace pvnet::fuzz {
namespace {

constexpr size_t kMaxActions = 200;
constexpr size_t kPayloadPalette = 8;
constexpr size_t kMaxFrameLen = 20000;
constexpr uint64_t kPageBudget = 3800;  // the scripted guest has 4096 pages and never frees one

class TxFuzzer {
 public:
  TxFuzzer(FuzzInput& in) : in_(in) {
    const uint8_t cfg = in_.u8();
    const uint8_t pages = in_.u8();
    const uint8_t mtu = in_.u8();
    WorldOptions o;
    o.guest_front.header_slots = cfg & tx::kCfgHeaderSlots;
    o.guest_front.ctrl_ring = cfg & tx::kCfgHeaderSlots;
    const uint32_t sz = (cfg >> 3) & 7;
    o.guest_front.slot_size = sz <= 5 ? 64u << sz : 128u;
    o.guest_front.split_evtchn = cfg & tx::kCfgSplitEvtchn;
    o.guest_front.gso = cfg & tx::kCfgGso;
    o.guest_front.sg = cfg & tx::kCfgSg;
    o.guest_slot_pages = 1 + pages % 4;
    constexpr uint32_t kMtus[] = {1500, 9000, 68, 576};
    o.guest_vif.mtu = kMtus[mtu % 4];
    constexpr PayloadPolicyKind kPolicies[] = {PayloadPolicyKind::slots, PayloadPolicyKind::copy,
                                               PayloadPolicyKind::map, PayloadPolicyKind::hdrcopy,
                                               PayloadPolicyKind::automatic};
    o.backend.payload_policy = kPolicies[(mtu >> 2) % 5];
    if ((cfg & tx::kCfgReadingSink) && payload_reads_possible()) o.guest_vif.sink = std::make_shared<ReadingSink>();
    slot_size_ = o.guest_front.slot_size;
    slot_pages_ = o.guest_slot_pages;
    world_.emplace(o);
    pages_used_ = 64;

    auto& g = world_->guest();
    for (size_t i = 0; i < kPayloadPalette; ++i) {
      Pfn p = g.alloc_page();
      const auto f = test::make_frame(kPageSize, 6, static_cast<uint8_t>(i));
      std::memcpy(g.page(p).data(), f.data(), kPageSize);
      palette_[i] = g.grant(p, true);
    }
    Pfn rw = g.alloc_page();
    rw_ref_ = g.grant(rw, false);
  }

  void run() {
    for (size_t n = 0; n < kMaxActions && !in_.empty(); ++n) step(static_cast<tx::Op>(in_.u8() % tx::kOps));
    observe();
    world_->be().poll_until_idle();
    verify("final poll");
    world_->check_counters(world_->guest_vif(), "end");
    world_->check_mappings("end");
    world_->check_peer_alive("end");
    world_->teardown_and_check();
  }

 private:
  test::ScriptedFrontend& guest() { return world_->guest(); }
  Backend& be() { return world_->be(); }
  bool slots() const { return world_->guest_slots(); }

  GrantRef gref_from(uint32_t v) {
    switch (v & 7) {
      case 0:
        if (slots()) return guest().slot_page_ref((v >> 3) % slot_pages_);
        return palette_[(v >> 3) % kPayloadPalette];
      case 1:
      case 2: return palette_[(v >> 3) % kPayloadPalette];
      case 3: return slots() ? guest().table_ref() : rw_ref_;
      case 4: return rw_ref_;
      case 5: return GrantRef{v >> 3};  // anything, mostly never granted
      case 6: return GrantRef{(v >> 3) % 4096};  // near the granted ones
      default: return GrantRef{0xffffffffu - (v >> 3)};
    }
  }

  netif::TxRequest raw_request() {
    netif::TxRequest r{};
    r.gref = gref_from(in_.u32());
    r.offset = in_.u16();
    r.flags = in_.u16();
    r.id = in_.u16();
    r.size = in_.u16();
    return r;
  }

  void step(tx::Op op) {
    auto& g = guest();
    switch (op) {
      case tx::kFrame: frame(); break;
      case tx::kRaw: {
        std::vector<netif::TxRequest> reqs(1 + in_.u8() % 4);
        for (auto& r : reqs) r = raw_request();
        g.push_raw(reqs);
        break;
      }
      case tx::kExtra: {
        netif::ExtraInfo e{};
        e.type = in_.u8();
        e.flags = in_.u8();
        e.u.gso.size = in_.u16();
        e.u.gso.type = in_.u8();
        e.u.gso.features = in_.u8();
        g.push_raw({test::ScriptedFrontend::extra_req(e)});
        break;
      }
      case tx::kAdvance:
        g.tx().advance_req_prod_pvt(in_.u16());
        g.tx().push_requests();
        break;
      case tx::kRewrite: {
        const uint32_t back = in_.u8();
        auto raw = in_.bytes(sizeof(netif::TxRequest));
        raw.resize(sizeof(netif::TxRequest));
        std::memcpy(entry(g.tx().req_prod_pvt() - 1 - back), raw.data(), raw.size());
        break;
      }
      case tx::kScribble: {
        const uint8_t pg = in_.u8();
        const uint16_t off = in_.u16() % kPageSize;
        const size_t len = in_.u8();
        auto b = in_.bytes(std::min<size_t>(len, kPageSize - off));
        if (slots() && !b.empty()) std::memcpy(g.slot_page(pg % slot_pages_).data() + off, b.data(), b.size());
        break;
      }
      case tx::kNotify: g.push_raw({}); break;
      case tx::kPoll: {
        const uint8_t rounds = 1 + in_.u8() % 4;
        observe();
        for (uint8_t i = 0; i < rounds; ++i) be().poll();
        verify("poll");
        break;
      }
      case tx::kPeer:
        observe();
        world_->check_peer_alive("during");
        verify("peer traffic");
        break;
      case tx::kRevoke: {
        const uint8_t sel = in_.u8();
        GrantRef r = sel < 128 || !slots() ? palette_[sel % kPayloadPalette] : g.slot_page_ref(sel % slot_pages_);
        (void)g.platform().grant_table().end_access(r);  // fails (EAGAIN) while dom0 has it mapped
        break;
      }
      case tx::kSlotCtrl: {
        const uint8_t sel = in_.u8();
        if (!slots() || be().disabled(world_->guest_vif())) break;  // a disabled vif answers nothing
        observe();
        const uint16_t type = (sel & 1) ? netif::ctrl_type::add_gref_mapping : netif::ctrl_type::del_gref_mapping;
        auto rsp = g.ctrl_call(be(), type, 0, g.table_ref().value, slot_pages_);
        PVNET_FUZZ_CHECK(rsp.type == type, "control response type %u for request type %u", rsp.type, type);
        verify("slot ctrl");
        break;
      }
      case tx::kOps: break;
    }
    world_->check_counters(world_->guest_vif(), "step");
  }

  void frame() {
    auto& g = guest();
    const uint8_t mode = in_.u8();
    uint16_t header_len = in_.u16();
    const uint16_t mss = in_.u16();
    size_t len = in_.u16() % (kMaxFrameLen + 1);
    auto data = in_.bytes(len);
    const uint8_t nmut = in_.u8() % 4;
    if (len == 0) len = 1;  // the scripted frontend needs a byte to put somewhere
    if (data.size() < len) {  // pad with a valid frame's bytes
      const auto pad = test::make_frame(std::max<size_t>(len, 64), 17, static_cast<uint8_t>(len));
      data.insert(data.end(), pad.begin() + static_cast<std::ptrdiff_t>(data.size()),
                  pad.begin() + static_cast<std::ptrdiff_t>(len));
    }
    const uint16_t payload_off = static_cast<uint16_t>((mode >> 3) * 128);
    const uint64_t pages = (payload_off + len) / kPageSize + 2;
    if (pages_used_ + pages > kPageBudget || g.platform().grant_table().free_count() < pages + 16) {
      for (uint8_t i = 0; i < nmut; ++i) (void)in_.u8(), (void)in_.u8(), (void)in_.u32();
      return;
    }
    pages_used_ += pages;
    const bool use_slot = (mode & tx::kFrameSlot) && slots();
    header_len = static_cast<uint16_t>(std::min<uint32_t>(header_len, slot_size_));
    netif::ExtraInfo gso =
        test::ScriptedFrontend::gso_extra((mode & tx::kFrameGsoV6) ? netif::gso_type::tcpv6 : netif::gso_type::tcpv4,
                                          mss);
    auto reqs = g.build(data, use_slot, header_len, payload_off, (mode & tx::kFrameGso) ? &gso : nullptr);
    for (uint8_t i = 0; i < nmut; ++i) {
      auto& r = reqs[in_.u8() % reqs.size()];
      const uint8_t field = in_.u8();
      const uint32_t v = in_.u32();
      switch (field % 6) {
        case 0: r.gref = gref_from(v); break;
        case 1: r.offset = static_cast<uint16_t>(v); break;
        case 2: r.flags = static_cast<uint16_t>(v); break;
        case 3: r.id = static_cast<uint16_t>(v); break;
        case 4: r.size = static_cast<uint16_t>(v); break;
        default: r.flags ^= static_cast<uint16_t>(v); break;
      }
    }
    g.push_raw(reqs);
  }

  std::byte* entry(ring::RingIdx idx) {
    return guest().tx().memory().data() + netif::TxSharedRing::kHeaderBytes +
           static_cast<size_t>(idx & (netif::kTxRingSize - 1)) * netif::TxSharedRing::kEntryBytes;
  }

  // What the ring holds right before the backend polls: what it will read (nobody else writes meanwhile).
  void observe() {
    for (uint32_t i = 0; i < netif::kTxRingSize; ++i) std::memcpy(&snapshot_[i], entry(i), sizeof(snapshot_[i]));
  }

  void verify(const char* when) {
    auto& tx = guest().tx();
    while (tx.unconsumed_responses() != 0) {
      const ring::RingIdx k = rsp_seen_++;
      const netif::TxResponse r = tx.consume_response();
      const netif::TxRequest& q = snapshot_[k & (netif::kTxRingSize - 1)];
      PVNET_FUZZ_CHECK(r.status == netif::rsp::null || r.id == q.id,
                       "%s: response %u has id %u, the request in that slot had id %u (status %d)", when, k, r.id,
                       q.id, r.status);
      PVNET_FUZZ_CHECK(r.status == netif::rsp::okay || r.status == netif::rsp::error ||
                           r.status == netif::rsp::dropped || r.status == netif::rsp::null,
                       "%s: response %u has status %d", when, k, r.status);
    }
    const VifId v = world_->guest_vif();
    const BackendCounters c = be().counters(v);
    PVNET_FUZZ_CHECK(c.tx_responses == rsp_seen_, "%s: backend counts %llu responses, the frontend saw %u", when,
                     (unsigned long long)c.tx_responses, rsp_seen_);
    PVNET_FUZZ_CHECK(be().disabled(v) || c.tx_requests == c.tx_responses,
                     "%s: %llu requests consumed but %llu answered, and the vif is not disabled", when,
                     (unsigned long long)c.tx_requests, (unsigned long long)c.tx_responses);
    PVNET_FUZZ_CHECK(be().connected(v), "%s: the guest's vif disconnected without a store change", when);
    world_->check_counters(v, when);
    world_->check_mappings(when);
  }

  FuzzInput& in_;
  std::optional<World> world_;
  std::array<GrantRef, kPayloadPalette> palette_{};
  GrantRef rw_ref_;
  uint32_t slot_size_ = 128;
  uint32_t slot_pages_ = 1;
  uint64_t pages_used_ = 0;
  std::array<netif::TxRequest, netif::kTxRingSize> snapshot_{};
  ring::RingIdx rsp_seen_ = 0;
};

}  // namespace
}  // namespace pvnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pvnet::fuzz::FuzzInput in(data, size);
  pvnet::fuzz::TxFuzzer f(in);
  f.run();
  return 0;
}
