// A scripted netfront for backend tests: plays the guest's side of docs/protocol.md with FrontRings in a domain of
// an in-process SimHypervisor, one request at a time, so a test can also misbehave on purpose (push_raw).
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "shared-ring/negotiation/features.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet::test {

struct FrontOptions {
  bool ctrl_ring = true;
  bool header_slots = true;
  uint32_t slot_size = 128;
  bool split_evtchn = true;
  bool rx_copy = true;
  bool sg = true;
  bool gso = true;
  // Multi-page TX ring (docs/protocol.md 9): 2^tx_ring_order pages; order_key >= 0 writes that value as
  // tx-ring-page-order instead (a lie); tx_ring_refs writes only that many tx-ring-refN keys.
  uint32_t tx_ring_order = 0;
  int32_t tx_ring_order_key = -1;
  uint32_t tx_ring_refs = UINT32_MAX;
  bool no_csum_offload = false;  // feature-no-csum-offload: complete checksums on RX, please
};

struct ReceivedFrame {
  std::vector<std::byte> data;
  uint16_t first_flags = 0;
  uint8_t gso_type = 0;
  uint16_t gso_size = 0;
  bool error = false;
};

// Ethernet + IPv4 + UDP (proto 17) or TCP (proto 6) frame of `len` bytes with a recognisable payload.
inline std::vector<std::byte> make_frame(size_t len, uint8_t proto = 17, uint8_t seed = 1) {
  std::vector<std::byte> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = std::byte(static_cast<uint8_t>(i * 7 + seed));
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  std::memcpy(f.data(), eth, 14);
  const size_t l4 = proto == 6 ? 20 : 8;
  const uint16_t ip_len = len - 14 > 65535 ? 0 : static_cast<uint16_t>(len - 14);
  uint8_t ip[20] = {0x45, 0, uint8_t(ip_len >> 8), uint8_t(ip_len), 0, 1, 0x40, 0, 64, proto, 0, 0,
                    10, 0, 0, 1, 10, 0, 0, 2};
  std::memcpy(f.data() + 14, ip, 20);
  uint8_t l4h[20] = {0x30, 0x39, 0x00, 0x50};
  if (proto == 6) l4h[12] = 0x50;  // data offset 5
  else { l4h[4] = uint8_t((len - 34) >> 8); l4h[5] = uint8_t(len - 34); }
  std::memcpy(f.data() + 34, l4h, l4);
  return f;
}

class ScriptedFrontend {
 public:
  ScriptedFrontend(SimHypervisor& hv, DomId dom, uint32_t handle = 0)
      : ScriptedFrontend(hv.create_domain(dom, 4096ull * kPageSize, 2048).value(), dom, handle) {}
  // A domain built by the test (e.g. adopted over memory of its own making).
  ScriptedFrontend(std::unique_ptr<Platform> platform, DomId dom, uint32_t handle = 0)
      : platform_(std::move(platform)), dom_(dom), handle_(handle) {
    dir_ = vif_frontend_dir(dom, handle);
  }
  Platform& platform() { return *platform_; }
  DomId dom() const { return dom_; }
  const std::string& dir() const { return dir_; }
  Store& store() { return platform_->store(); }

  Pfn alloc_page() { return Pfn{next_pfn_++}; }
  std::span<std::byte> page(Pfn pfn) { return platform_->memory().page(pfn); }
  GrantRef grant(Pfn pfn, bool readonly) {
    return platform_->grant_table().grant_access(kDom0, pfn, readonly).value();
  }

  // Writes the keys and goes Connected (the backend must be in InitWait).
  void connect(const FrontOptions& o = {}) {
    opts_ = o;
    const uint32_t n_tx = 1u << o.tx_ring_order;
    const Pfn txp = alloc_page();
    for (uint32_t i = 1; i < n_tx; ++i) (void)alloc_page();  // consecutive frames: one run of guest memory
    const Pfn rxp = alloc_page();
    tx_.emplace(netif::TxFrontRing::init(std::span<std::byte>(page(txp).data(), n_tx * kPageSize)).value());
    rx_.emplace(netif::RxFrontRing::init(page(rxp)).value());
    netif::FrontendKeys k;
    for (uint32_t i = 0; i < n_tx; ++i) k.tx_ring_refs.push_back(grant(Pfn{txp.value + i}, false).value);
    k.rx_ring_ref = grant(rxp, false).value;
    auto& ev = platform_->evtchn();
    tx_port_ = ev.alloc_unbound(kDom0).value();
    rx_port_ = o.split_evtchn ? ev.alloc_unbound(kDom0).value() : tx_port_;
    k.split_event_channels = o.split_evtchn;
    k.tx_port = tx_port_.value;
    k.rx_port = rx_port_.value;
    if (o.ctrl_ring) {
      Pfn cp = alloc_page();
      ctrl_.emplace(netif::CtrlFrontRing::init(page(cp)).value());
      const GrantRef ctrl_ref = grant(cp, false);
      ctrl_port_ = ev.alloc_unbound(kDom0).value();
      k.ctrl = netif::FrontendKeys::CtrlRing{ctrl_ref.value, ctrl_port_.value};
    }
    k.rx_copy = o.rx_copy;
    k.sg = o.sg;
    k.gso_tcpv4 = k.gso_tcpv6 = o.gso;
    k.no_csum_offload = o.no_csum_offload;
    if (o.header_slots) k.header_slot_size = o.slot_size;  // even without a control ring, when told to
    auto w = k.write(store(), dir_);
    ASSERT_TRUE(w) << "frontend cannot write its own keys: " << w.error().reason;
    tell_tx_ring_lies(o, k.tx_ring_refs);
    ASSERT_TRUE(store().switch_state(dir_, XenbusState::Connected).ok());
  }
  void set_state(XenbusState s) { ASSERT_TRUE(store().switch_state(dir_, s).ok()); }

  // The TX ring keys as FrontOptions' lies have them, written raw over the module's honest ones on purpose: a
  // tx-ring-page-order that is not the ring's, or fewer tx-ring-refN than the order says.
  void tell_tx_ring_lies(const FrontOptions& o, const std::vector<uint32_t>& refs) {
    const uint32_t n_tx = static_cast<uint32_t>(refs.size());
    if (o.tx_ring_order_key >= 0) {
      if (n_tx == 1) {  // a one-page ring named as tx-ring-ref0 under the lying order
        ASSERT_TRUE(store().remove(netif::key_path(dir_, netif::key::tx_ring_ref)).ok());
        put(netif::key::tx_ring_ref_n(0), refs[0]);
      }
      put(netif::key::tx_ring_page_order, uint32_t(o.tx_ring_order_key));
    }
    for (uint32_t i = o.tx_ring_refs; i < n_tx; ++i)
      ASSERT_TRUE(store().remove(netif::key_path(dir_, netif::key::tx_ring_ref_n(i))).ok());
  }

  netif::CtrlResponse ctrl_call(Backend& be, uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2) {
    netif::CtrlRequest req{next_ctrl_id_++, type, {d0, d1, d2}};
    ctrl_->produce_request(req);
    if (ctrl_->push_requests_and_check_notify()) (void)platform_->evtchn().notify(ctrl_port_);
    be.poll_until_idle();
    EXPECT_EQ(ctrl_->unconsumed_responses(), 1u);
    return ctrl_->consume_response();
  }

  // GET_GREF_MAPPING_SIZE then ADD_GREF_MAPPING of `pages` read-only slot pages. Returns the ADD status.
  uint32_t register_slots(Backend& be, uint32_t pages, uint32_t* limit = nullptr) {
    auto size = ctrl_call(be, netif::ctrl_type::get_gref_mapping_size, 0, 0, 0);
    if (limit) *limit = size.data;
    if (size.status != netif::ctrl_status::success) return size.status;
    std::vector<netif::NetifGref> table;
    slot_pages_.clear();
    for (uint32_t i = 0; i < pages; ++i) {
      Pfn p = alloc_page();
      GrantRef r = grant(p, true);
      slot_pages_.push_back({p, r});
      table.push_back(netif::NetifGref{r, netif::ctrlf_gref::readonly, 0});
    }
    Pfn tp = alloc_page();
    std::memcpy(page(tp).data(), table.data(), table.size() * sizeof(table[0]));
    table_ref_ = grant(tp, false);
    table_pfn_ = tp;
    auto add = ctrl_call(be, netif::ctrl_type::add_gref_mapping, 0, table_ref_.value, pages);
    slots_ok_ = add.status == netif::ctrl_status::success;
    return add.status;
  }
  GrantRef slot_page_ref(size_t i) const { return slot_pages_.at(i).second; }
  std::span<std::byte> slot_page(size_t i) { return page(slot_pages_.at(i).first); }
  std::span<std::byte> table_page() { return page(table_pfn_); }
  GrantRef table_ref() const { return table_ref_; }

  // Raw requests, pushed together (a misbehaving frontend writes what it likes).
  void push_raw(const std::vector<netif::TxRequest>& reqs) {
    for (const auto& r : reqs) tx_->produce_request(r);
    if (tx_->push_requests_and_check_notify()) (void)platform_->evtchn().notify(tx_port_);
  }
  static netif::TxRequest extra_req(const netif::ExtraInfo& e) {
    netif::TxRequest r{};
    std::memcpy(static_cast<void*>(&r), &e, sizeof(e));
    return r;
  }
  static netif::ExtraInfo gso_extra(uint8_t type, uint16_t mss) {
    netif::ExtraInfo e{};
    e.type = netif::extra_type::gso;
    e.u.gso.size = mss;
    e.u.gso.type = type;
    return e;
  }
  netif::TxFrontRing& tx() { return *tx_; }

  // Builds a packet's requests: header in a slot (header_len bytes) when use_slot, else plain netif; the payload
  // copied into fresh pages from `payload_offset`, one piece per page. Returns the requests (not yet pushed).
  std::vector<netif::TxRequest> build(const std::vector<std::byte>& frame, bool use_slot, uint32_t header_len,
                                      uint16_t payload_offset = 0, const netif::ExtraInfo* gso = nullptr) {
    std::vector<netif::TxRequest> reqs;
    netif::TxRequest first{};
    first.id = next_id_++;
    first.size = static_cast<uint16_t>(frame.size());
    size_t at = 0;
    if (use_slot) {
      const uint32_t per_page = kPageSize / opts_.slot_size;
      const uint32_t slot = next_slot_++ % (per_page * static_cast<uint32_t>(slot_pages_.size()));
      const size_t pg = slot / per_page;
      const uint16_t off = static_cast<uint16_t>((slot % per_page) * opts_.slot_size);
      header_len = std::min<uint32_t>(header_len, static_cast<uint32_t>(frame.size()));
      std::memcpy(slot_page(pg).data() + off, frame.data(), header_len);
      first.gref = slot_page_ref(pg);
      first.offset = off;
      first.flags = netif::txf::header_slot;
      at = header_len;
    }
    std::vector<netif::TxRequest> pieces;
    uint16_t off = payload_offset;
    while (at < frame.size()) {
      Pfn p = alloc_page();
      const size_t n = std::min<size_t>(frame.size() - at, kPageSize - off);
      std::memcpy(page(p).data() + off, frame.data() + at, n);
      netif::TxRequest r{};
      r.gref = grant(p, true);
      r.offset = off;
      r.size = static_cast<uint16_t>(n);
      r.id = next_id_++;
      pieces.push_back(r);
      at += n;
      off = 0;
    }
    if (!use_slot) {  // the first piece is the first request
      first.gref = pieces.front().gref;
      first.offset = pieces.front().offset;
      first.id = pieces.front().id;
      pieces.erase(pieces.begin());
    }
    if (!pieces.empty()) first.flags |= netif::txf::more_data;
    for (size_t i = 0; i + 1 < pieces.size(); ++i) pieces[i].flags |= netif::txf::more_data;
    if (gso) first.flags |= netif::txf::extra_info | netif::txf::csum_blank;
    reqs.push_back(first);
    if (gso) reqs.push_back(extra_req(*gso));
    reqs.insert(reqs.end(), pieces.begin(), pieces.end());
    return reqs;
  }
  size_t send(const std::vector<std::byte>& frame, uint32_t header_len = 42, const netif::ExtraInfo* gso = nullptr,
              uint16_t payload_offset = 0) {
    auto reqs = build(frame, slots_ok_, header_len, payload_offset, gso);
    push_raw(reqs);
    return reqs.size();
  }

  std::vector<netif::TxResponse> tx_responses() {
    std::vector<netif::TxResponse> out;
    while (tx_->unconsumed_responses() != 0) out.push_back(tx_->consume_response());
    return out;
  }

  void post_rx(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      Pfn p = alloc_page();
      const uint16_t id = static_cast<uint16_t>(rx_->req_prod_pvt() & (netif::kRxRingSize - 1));
      rx_pages_[id] = p;
      rx_->produce_request(netif::RxRequest{id, 0, grant(p, false)});
    }
    if (rx_->push_requests_and_check_notify()) (void)platform_->evtchn().notify(rx_port_);
  }

  std::vector<ReceivedFrame> rx_frames() {
    std::vector<ReceivedFrame> out;
    while (rx_->unconsumed_responses() != 0) {
      ReceivedFrame f;
      netif::RxResponse r = rx_->consume_response();
      f.first_flags = r.flags;
      bool more = true;
      bool extra = r.flags & netif::rxf::extra_info;
      for (;;) {
        if (r.status < 0) f.error = true;
        else {
          auto pg = page(rx_pages_.at(r.id));
          f.data.insert(f.data.end(), pg.begin() + r.offset, pg.begin() + r.offset + r.status);
        }
        more = r.flags & netif::rxf::more_data;
        if (extra) {
          netif::RxResponse raw = rx_->consume_response();
          netif::ExtraInfo e;
          std::memcpy(&e, &raw, sizeof(e));
          f.gso_type = e.u.gso.type;
          f.gso_size = e.u.gso.size;
          extra = false;
        }
        if (!more) break;
        r = rx_->consume_response();
      }
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  template <class V>
  void put(const std::string& key, V v) {
    std::string s;
    if constexpr (std::is_arithmetic_v<V>) s = std::to_string(v);
    else s = v;
    ASSERT_TRUE(store().write(netif::key_path(dir_, key), s).ok()) << "frontend cannot write its own " << key;
  }

  std::unique_ptr<Platform> platform_;
  DomId dom_;
  uint32_t handle_;
  std::string dir_;
  FrontOptions opts_;
  uint64_t next_pfn_ = 0;
  std::optional<netif::TxFrontRing> tx_;
  std::optional<netif::RxFrontRing> rx_;
  std::optional<netif::CtrlFrontRing> ctrl_;
  Port tx_port_, rx_port_, ctrl_port_;
  uint16_t next_id_ = 0;
  uint16_t next_ctrl_id_ = 0;
  uint32_t next_slot_ = 0;
  std::vector<std::pair<Pfn, GrantRef>> slot_pages_;
  GrantRef table_ref_;
  Pfn table_pfn_;
  bool slots_ok_ = false;
  std::map<uint16_t, Pfn> rx_pages_;
};

// One TX request exactly as a misbehaving frontend writes it.
inline netif::TxRequest tx_request(GrantRef g, uint16_t off, uint16_t size, uint16_t flags, uint16_t id) {
  netif::TxRequest r{};
  r.gref = g;
  r.offset = off;
  r.size = size;
  r.flags = flags;
  r.id = id;
  return r;
}

// `n` requests of `size` bytes on page `g`, chained by more_data, ids from `first_id`; the first announces the
// whole packet (n * size bytes).
inline std::vector<netif::TxRequest> piece_chain(GrantRef g, uint16_t n, uint16_t size, uint16_t first_id = 0) {
  std::vector<netif::TxRequest> r;
  for (uint16_t i = 0; i < n; ++i)
    r.push_back(tx_request(g, 0, size, i + 1 < n ? netif::txf::more_data : 0, static_cast<uint16_t>(first_id + i)));
  r[0].size = static_cast<uint16_t>(n * size);
  return r;
}

// A protocol violation (docs/protocol.md 4/5) a scripted frontend commits on purpose.
struct Violation {
  const char* name;
  // Returns the requests to push; may touch the ring directly (req_prod overflow) and return nothing.
  std::function<std::vector<netif::TxRequest>(ScriptedFrontend&)> make;
};

// The violations both the backend's and the hostile tests commit, each test with its own numbers.
namespace violation {
using Make = decltype(Violation::make);

inline Make req_prod_past_ring(uint32_t beyond) {
  return [beyond](ScriptedFrontend& fe) {
    fe.tx().advance_req_prod_pvt(netif::kTxRingSize + beyond);
    fe.tx().push_requests();
    return std::vector<netif::TxRequest>{};
  };
}
// The first payload piece of a `frame_len` frame starts at `offset`, so it runs past its page.
inline Make piece_crosses_page(size_t frame_len, uint16_t offset) {
  return [=](ScriptedFrontend& fe) {
    auto r = fe.build(make_frame(frame_len), true, 42);
    r[1].offset = offset;
    return r;
  };
}
// `n` chained pieces: at kTxFatalSlots or more (netback's fatal_skb_slots) a protocol violation.
inline Make too_many_pieces(uint16_t n, uint16_t size) {
  return [=](ScriptedFrontend& fe) { return piece_chain(fe.grant(fe.alloc_page(), true), n, size); };
}
inline Make gso_size_zero(size_t frame_len) {
  return [=](ScriptedFrontend& fe) {
    auto gso = ScriptedFrontend::gso_extra(netif::gso_type::tcpv4, 0);
    return fe.build(make_frame(frame_len, 6), true, 54, 0, &gso);
  };
}
// Only the first `published` requests of a packet are pushed: more_data is set on the last, the rest never comes.
inline Make chain_cut(size_t frame_len, size_t published) {
  return [=](ScriptedFrontend& fe) {
    auto r = fe.build(make_frame(frame_len), true, 42);
    r.resize(published);
    return r;
  };
}
}  // namespace violation

// One simulated host: hypervisor, dom0's platform and a backend.
struct Host {
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<Platform> dom0 = hv->attach(kDom0).value();
  std::unique_ptr<Backend> be;
  explicit Host(BackendOptions o = {}) : be(Backend::create(*dom0, o).value()) {}
  GrantCounters grants() const { return dom0->mapper().counters(); }

  // add_vif + frontend connect (+ slot registration when the frontend asks for slots).
  VifId attach(ScriptedFrontend& fe, VifOptions vo = {}, FrontOptions fo = {}, uint32_t slot_pages = 2) {
    VifId id = be->add_vif(fe.dom(), 0, std::move(vo)).value();
    be->poll_until_idle();
    EXPECT_EQ(be->state(id), XenbusState::InitWait);
    fe.connect(fo);
    be->poll_until_idle();
    EXPECT_EQ(be->state(id), XenbusState::Connected);
    if (fo.header_slots && fo.ctrl_ring) {
      EXPECT_EQ(fe.register_slots(*be, slot_pages), netif::ctrl_status::success);
    }
    return id;
  }
};

}  // namespace pvnet::test
