// A scripted netback for netfront's tests: plays the toolstack and dom0's backend with the real ring types, the
// dom0 Platform's mapper (map, grant copy) and the store, one step at a time, so each test decides what the
// backend says and checks exactly what netfront put on the wire.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/toolstack.hpp"
#include "grant-sim/platform/platform.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "shared-ring/negotiation/features.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet::test {

struct BackendFeatures {
  bool sg = true;
  bool gso = true;
  bool split = true;
  bool ctrl = true;
  bool slots = true;
  int mtu = 1500;
};

class ScriptedBackend {
 public:
  ScriptedBackend(SimHypervisor& hv, DomId fe, uint32_t handle = 0)
      : dom0_(hv.attach(kDom0).value()), fe_(fe), handle_(handle) {
    const VifPaths p = vif_paths(kDom0, fe, handle);
    fe_dir_ = p.frontend;
    be_dir_ = p.backend;
  }
  ~ScriptedBackend() { unmap_all(); }

  Platform& dom0() { return *dom0_; }
  Store& store() { return dom0_->store(); }
  const std::string& fe_dir() const { return fe_dir_; }
  const std::string& be_dir() const { return be_dir_; }
  std::optional<std::string> fe_key(const std::string& k) { return store().read_opt(netif::key_path(fe_dir_, k)); }
  XenbusState fe_state() { return store().read_state(fe_dir_); }
  void set_state(XenbusState s) { ASSERT_TRUE(store().switch_state(be_dir_, s)); }

  // The toolstack's part (docs/protocol.md section 1), with libxl's permissions: each end reads the other's dir.
  void toolstack() {
    auto p = toolstack_create_vif(store(), kDom0, fe_, handle_, "aa:bb:cc:dd:ee:01");
    ASSERT_TRUE(p) << p.error().reason;
    ASSERT_EQ(p->frontend, fe_dir_);
    ASSERT_EQ(p->backend, be_dir_);
  }

  // Backend keys (no RX extents, a one-page TX ring), then InitWait.
  void offer(const BackendFeatures& f) {
    offered_ = netif::BackendFeatures{};
    offered_.sg = f.sg;
    offered_.gso_tcpv4 = offered_.gso_tcpv6 = f.gso;
    offered_.split_event_channels = f.split;
    offered_.ctrl_ring = f.ctrl;
    offered_.header_slots = f.slots;
    offered_.rx_extents = false;
    offered_.max_tx_ring_page_order = 0;
    offered_.mtu = static_cast<uint32_t>(f.mtu);
    auto w = offered_.write(store(), be_dir_);
    ASSERT_TRUE(w) << w.error().reason;
    set_state(XenbusState::InitWait);
  }

  // Sees the frontend Connected: maps the rings, binds the channels, Connected.
  void connect() {
    ASSERT_EQ(fe_state(), XenbusState::Connected);
    auto keys = netif::FrontendKeys::read(store(), fe_dir_, offered_);
    ASSERT_TRUE(keys) << keys.error().reason;
    ASSERT_EQ(keys->tx_ring_refs.size(), 1u);
    tx_map_ = map_one(GrantRef{keys->tx_ring_refs[0]}, false);
    rx_map_ = map_one(GrantRef{keys->rx_ring_ref}, false);
    ASSERT_TRUE(tx_map_.addr && rx_map_.addr);
    tx_.emplace(*netif::TxBackRing::init({tx_map_.addr, kPageSize}));
    rx_.emplace(*netif::RxBackRing::init({rx_map_.addr, kPageSize}));
    if (keys->ctrl) {
      ctrl_map_ = map_one(GrantRef{keys->ctrl->ref}, false);
      ASSERT_TRUE(ctrl_map_.addr);
      ctrl_.emplace(*netif::CtrlBackRing::init({ctrl_map_.addr, kPageSize}));
      ctrl_port_ = bind(keys->ctrl->port);
    }
    tx_port_ = bind(keys->tx_port);
    rx_port_ = keys->split_event_channels ? bind(keys->rx_port) : tx_port_;
    set_state(XenbusState::Connected);
  }

  // ---- control ring ----
  std::vector<netif::CtrlRequest> take_ctrl() {
    std::vector<netif::CtrlRequest> out;
    while (ctrl_ && ctrl_->unconsumed_requests()) out.push_back(ctrl_->consume_request());
    return out;
  }
  void ctrl_respond(const netif::CtrlRequest& req, uint32_t status, uint32_t data) {
    ctrl_->produce_response(netif::CtrlResponse{req.id, req.type, status, data});
    if (ctrl_->push_responses_and_check_notify()) (void)dom0_->evtchn().notify(*ctrl_port_);
  }
  // The table page of an ADD/DEL request, read entry by entry.
  std::vector<netif::NetifGref> read_table(const netif::CtrlRequest& req) {
    MapOp m = map_one(GrantRef{req.data[1]}, false);
    std::vector<netif::NetifGref> out(req.data[2]);
    if (m.addr) std::memcpy(out.data(), m.addr, out.size() * sizeof(netif::NetifGref));
    unmap_one(m);
    return out;
  }
  // netback's side of registration: GET answers `mapping_size`; ADD maps every listed page read-only and keeps
  // the mappings (or answers add_status without mapping); DEL unmaps them.
  void serve_ctrl(uint32_t mapping_size, uint32_t add_status = netif::ctrl_status::success) {
    for (const auto& req : take_ctrl()) {
      ctrl_log.push_back(req);
      if (req.type == netif::ctrl_type::get_gref_mapping_size) {
        ctrl_respond(req, mapping_size ? netif::ctrl_status::success : netif::ctrl_status::not_supported,
                     mapping_size);
      } else if (req.type == netif::ctrl_type::add_gref_mapping) {
        if (add_status != netif::ctrl_status::success) {
          ctrl_respond(req, add_status, 0);
          continue;
        }
        for (const auto& e : read_table(req)) {
          MapOp m = map_one(e.ref, true);
          ASSERT_EQ(m.status, GntSt::okay);
          kept_[e.ref.value] = m;
        }
        ctrl_respond(req, netif::ctrl_status::success, 0);
      } else if (req.type == netif::ctrl_type::del_gref_mapping) {
        uint32_t removed = 0;
        for (const auto& e : read_table(req)) {
          auto it = kept_.find(e.ref.value);
          if (it == kept_.end()) continue;
          unmap_one(it->second);
          kept_.erase(it);
          ++removed;
        }
        ctrl_respond(req, netif::ctrl_status::success, removed);
      } else {
        ctrl_respond(req, netif::ctrl_status::not_supported, 0);
      }
    }
  }
  size_t kept_mappings() const { return kept_.size(); }

  // ---- TX ----
  struct Packet {
    std::vector<netif::TxRequest> reqs;  // data requests, in ring order
    std::optional<netif::ExtraInfo> extra;
    std::vector<std::byte> bytes;        // reassembled: slot header (memcpy from the kept mapping) + grant copies
    uint32_t first_len = 0;              // first request's own length (header bytes when in a slot)
    bool slot() const { return reqs[0].flags & netif::txf::header_slot; }
  };
  std::vector<Packet> take_tx() {
    std::vector<Packet> out;
    while (tx_->unconsumed_requests()) {
      Packet p;
      netif::TxRequest r = tx_->consume_request();
      p.reqs.push_back(r);
      if (r.flags & netif::txf::extra_info) {
        netif::TxRequest raw = tx_->consume_request();
        netif::ExtraInfo e;
        std::memcpy(&e, &raw, sizeof(e));
        p.extra = e;
      }
      bool more = r.flags & netif::txf::more_data;
      while (more) {
        EXPECT_GT(tx_->unconsumed_requests(), 0u);
        netif::TxRequest n = tx_->consume_request();
        p.reqs.push_back(n);
        more = n.flags & netif::txf::more_data;
      }
      uint32_t rest = 0;
      for (size_t i = 1; i < p.reqs.size(); ++i) rest += p.reqs[i].size;
      EXPECT_GE(p.reqs[0].size, rest);
      p.first_len = p.reqs[0].size - rest;
      p.bytes.resize(p.reqs[0].size);
      uint32_t at = 0;
      for (size_t i = 0; i < p.reqs.size(); ++i) {
        const auto& q = p.reqs[i];
        const uint32_t len = i == 0 ? p.first_len : q.size;
        EXPECT_LE(q.offset + len, kPageSize);
        if (i == 0 && p.slot()) {
          auto it = kept_.find(q.gref.value);
          EXPECT_NE(it, kept_.end()) << "slot gref not registered";
          if (it != kept_.end()) std::memcpy(p.bytes.data(), it->second.addr + q.offset, len);
        } else if (len) {
          CopyOp c;
          c.src = CopySide::gref(fe_, q.gref, q.offset);
          c.dst = CopySide::local(p.bytes.data() + at);
          c.len = static_cast<uint16_t>(len);
          dom0_->mapper().copy(std::span(&c, 1));
          EXPECT_EQ(c.status, GntSt::okay);
        }
        at += len;
      }
      out.push_back(std::move(p));
    }
    return out;
  }
  void respond_tx(const Packet& p, int16_t status, bool push = true) {
    tx_->produce_response(netif::TxResponse{p.reqs[0].id, status});
    if (p.extra) tx_->produce_response(netif::TxResponse{0, netif::rsp::null});
    for (size_t i = 1; i < p.reqs.size(); ++i) tx_->produce_response(netif::TxResponse{p.reqs[i].id, status});
    if (push && tx_->push_responses_and_check_notify()) (void)dom0_->evtchn().notify(*tx_port_);
  }
  uint32_t tx_unconsumed() const { return tx_->unconsumed_requests(); }

  // ---- RX ----
  size_t rx_available() {
    while (rx_->unconsumed_requests()) rx_reqs_.push_back(rx_->consume_request());
    return rx_reqs_.size();
  }
  // Delivers `frame` in buffers of `chunk` bytes. With gso, the second response slot is a GSO extra (consuming the
  // request at its own index). With shuffle, the data buffers are used (and their ids answered) in reverse order
  // of posting: responses come in an order of id unrelated to their position.
  void send_rx(const std::vector<std::byte>& frame, uint32_t chunk, std::optional<netif::ExtraInfo> gso = {},
               bool shuffle = false, uint16_t first_flags = 0) {
    const size_t chunks = (frame.size() + chunk - 1) / chunk;
    const size_t n = chunks + (gso ? 1 : 0);
    ASSERT_GE(rx_available(), n);
    std::vector<netif::RxRequest> reqs(rx_reqs_.begin(), rx_reqs_.begin() + static_cast<long>(n));
    rx_reqs_.erase(rx_reqs_.begin(), rx_reqs_.begin() + static_cast<long>(n));
    std::vector<netif::RxRequest> data;
    for (size_t i = 0; i < n; ++i)
      if (!(gso && i == 1)) data.push_back(reqs[i]);
    if (shuffle) std::reverse(data.begin(), data.end());
    for (size_t i = 0; i < chunks; ++i) {
      const uint32_t len = static_cast<uint32_t>(std::min<size_t>(chunk, frame.size() - i * chunk));
      CopyOp c;
      c.src = CopySide::local(const_cast<std::byte*>(frame.data() + i * chunk));
      c.dst = CopySide::gref(fe_, data[i].gref, 0);
      c.len = static_cast<uint16_t>(len);
      dom0_->mapper().copy(std::span(&c, 1));
      ASSERT_EQ(c.status, GntSt::okay);
      uint16_t flags = i + 1 < chunks ? netif::rxf::more_data : 0;
      if (i == 0) flags |= first_flags | (gso ? netif::rxf::extra_info : 0);
      rx_->produce_response(netif::RxResponse{data[i].id, 0, flags, static_cast<int16_t>(len)});
      if (i == 0 && gso) {
        netif::RxResponse raw{};
        std::memcpy(&raw, &*gso, sizeof(*gso));
        rx_->produce_response(raw);
      }
    }
    if (rx_->push_responses_and_check_notify()) (void)dom0_->evtchn().notify(*rx_port_);
  }
  void send_rx_error() {
    ASSERT_GE(rx_available(), 1u);
    auto req = rx_reqs_.front();
    rx_reqs_.pop_front();
    rx_->produce_response(netif::RxResponse{req.id, 0, 0, netif::rsp::error});
    if (rx_->push_responses_and_check_notify()) (void)dom0_->evtchn().notify(*rx_port_);
  }

  // ---- teardown ----
  // netback on the frontend's Closing: unmap everything of the frontend (kept mappings unless told to keep them),
  // Closing, Closed.
  void close(bool release_kept = true) {
    if (release_kept) {
      for (auto& [ref, m] : kept_) unmap_one(m);
      kept_.clear();
    }
    unmap_rings();
    set_state(XenbusState::Closing);
    set_state(XenbusState::Closed);
  }
  void release_kept() {
    for (auto& [ref, m] : kept_) unmap_one(m);
    kept_.clear();
  }

  std::vector<netif::CtrlRequest> ctrl_log;

 private:
  MapOp map_one(GrantRef ref, bool readonly) {
    MapOp m;
    m.dom = fe_;
    m.ref = ref;
    m.readonly = readonly;
    dom0_->mapper().map(std::span(&m, 1));
    if (m.status != GntSt::okay) m.addr = nullptr;
    return m;
  }
  void unmap_one(MapOp& m) {
    if (!m.addr) return;
    UnmapOp u;
    u.handle = m.handle;
    dom0_->mapper().unmap(std::span(&u, 1));
    m.addr = nullptr;
  }
  Port bind(uint32_t remote) {
    auto local = dom0_->evtchn().bind_interdomain(fe_, Port{remote});
    EXPECT_TRUE(local.ok()) << "port " << remote;
    return local.ok() ? *local : Port{};
  }
  void unmap_rings() {
    tx_.reset();
    rx_.reset();
    ctrl_.reset();
    unmap_one(tx_map_);
    unmap_one(rx_map_);
    unmap_one(ctrl_map_);
  }
  void unmap_all() {
    release_kept();
    unmap_rings();
  }

  std::unique_ptr<Platform> dom0_;
  DomId fe_;
  uint32_t handle_;
  std::string fe_dir_, be_dir_;
  netif::BackendFeatures offered_;
  MapOp tx_map_, rx_map_, ctrl_map_;
  std::optional<netif::TxBackRing> tx_;
  std::optional<netif::RxBackRing> rx_;
  std::optional<netif::CtrlBackRing> ctrl_;
  std::optional<Port> tx_port_, rx_port_, ctrl_port_;
  std::map<uint32_t, MapOp> kept_;
  std::deque<netif::RxRequest> rx_reqs_;
};

}  // namespace pvnet::test
