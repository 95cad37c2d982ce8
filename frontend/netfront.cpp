// netfront's xenbus side: negotiation, header-slot registration over the control ring, teardown, and the grant
// bookkeeping every path shares. TX is in tx_path.cpp, RX in rx_path.cpp.
#include "frontend/netfront.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared-ring/negotiation/keys.hpp"
#include "shared-ring/negotiation/recall.hpp"

namespace pvnet {

const char* to_string(NetfrontState s) {
  switch (s) {
    case NetfrontState::kInitialising: return "Initialising";
    case NetfrontState::kConnecting: return "Connecting";
    case NetfrontState::kRegistering: return "Registering";
    case NetfrontState::kConnected: return "Connected";
    case NetfrontState::kClosing: return "Closing";
    case NetfrontState::kClosed: return "Closed";
    case NetfrontState::kFailed: return "Failed";
  }
  return "?";
}

const char* to_string(TxStatus s) {
  switch (s) {
    case TxStatus::kQueued: return "queued";
    case TxStatus::kBusy: return "busy";
    case TxStatus::kNotConnected: return "not-connected";
    case TxStatus::kInvalid: return "invalid";
  }
  return "?";
}

namespace {
constexpr const char* kRecallWatchToken = "netfront-recall";
constexpr const char* kWatchToken = "netfront-backend-state";
constexpr const char* kSelfWatchToken = "netfront-own-state";
}

Netfront::Netfront(Platform& platform, GuestPagePool& pool, std::string frontend_dir, NetfrontConfig config)
    : platform_(platform), pool_(pool), fe_dir_(std::move(frontend_dir)), config_(config) {
  config_.rx_buffers = std::min(config_.rx_buffers, netif::kRxRingSize);
  // Ids and frame records for the largest TX ring: the ring in use bounds what is in flight.
  tx_free_ids_.reserve(netif::kTxRingSizeMax);
  tx_free_frames_.reserve(netif::kTxRingSizeMax);
  for (uint32_t i = netif::kTxRingSizeMax; i-- > 0;) {
    tx_free_ids_.push_back(static_cast<uint16_t>(i));
    tx_free_frames_.push_back(static_cast<uint16_t>(i));
  }
  for (uint32_t i = netif::kRxRingSize; i-- > 0;) rx_free_ids_.push_back(static_cast<uint16_t>(i));

  Store& store = platform_.store();
  auto be = store.read_opt(netif::key_path(fe_dir_, netif::key::backend));
  auto be_id = store.read_int(netif::key_path(fe_dir_, netif::key::backend_id));
  if (!be || !be_id || *be_id < 0 || *be_id > 0xFFFF) {
    fail("no backend/backend-id under " + fe_dir_ + " (the toolstack creates them before the driver starts)");
    return;
  }
  be_dir_ = *be;
  be_id_ = DomId{static_cast<uint16_t>(*be_id)};
  if (!config.header_slots || !HeaderSlotGeometry::valid_slot_size(config_.slot_size)) config_.header_slots = false;
  if (auto w = store.watch(netif::key_path(be_dir_, netif::key::state), kWatchToken); !w) {
    fail("watch " + netif::key_path(be_dir_, netif::key::state) + ": " + w.error().reason);
    return;
  }
  watching_ = true;
  if (config_.reconnect) {
    if (auto w = store.watch(netif::key_path(fe_dir_, netif::key::state), kSelfWatchToken); !w) {
      fail("watch " + netif::key_path(fe_dir_, netif::key::state) + ": " + w.error().reason);
      return;
    }
    watching_self_ = true;
  }
}

Netfront::~Netfront() {
  if (state_ != NetfrontState::kClosed) release_all();
  // Pages of grants the backend still holds are never handed back to the pool: it could still read or write them.
  for (auto& k : kept_) {
    if (end_access_of(k.gref, k.reserved)) {
      if (k.page) pool_.free_page(*k.page);
    }
  }
  if (watching_) (void)platform_.store().unwatch(netif::key_path(be_dir_, netif::key::state), kWatchToken);
  if (watching_self_) (void)platform_.store().unwatch(netif::key_path(fe_dir_, netif::key::state), kSelfWatchToken);
}

int Netfront::event_fd() const { return platform_.evtchn().fd(); }
int Netfront::store_fd() const { return platform_.store().watch_fd(); }

void Netfront::fail(std::string reason) {
  error_ = std::move(reason);
  state_ = NetfrontState::kFailed;
}

void Netfront::notify(Port p) {
  if (platform_.evtchn().notify(p)) ++counters_.notifications_sent;
}

// ---- grants -----------------------------------------------------------------------------------------------------

Result<Netfront::GrantedPage> Netfront::alloc_granted_page(bool readonly) {
  auto pfn = pool_.alloc_page();
  if (!pfn) return make_error(ENOMEM, "guest page pool exhausted");
  std::memset(pool_.page(*pfn).data(), 0, kPageSize);
  auto gref = platform_.grant_table().grant_access(be_id_, *pfn, readonly);
  if (!gref) {
    pool_.free_page(*pfn);
    return gref.error();
  }
  ++counters_.grants_in_use;
  return GrantedPage{*pfn, *gref};
}

Result<void> Netfront::alloc_tx_ring(uint32_t order) {
  const uint32_t n = 1u << order;
  auto first = pool_.alloc_contiguous(n);
  if (!first) return make_error(ENOMEM, "no " + std::to_string(n) + " guest pages in a row for the TX ring");
  // The ring must be one run of memory as the guest sees it (true of a pool over one region of guest RAM).
  const std::span<std::byte> p0 = pool_.page(*first);
  bool in_a_row = true;
  for (uint32_t i = 1; i < n; ++i) in_a_row = in_a_row && pool_.page(Pfn{first->value + i}).data() == p0.data() + i * kPageSize;
  auto give_back = [&](uint32_t granted) {
    for (uint32_t i = 0; i < granted; ++i) (void)platform_.grant_table().end_access(tx_ring_pages_[i].gref);
    tx_ring_pages_.clear();
    for (uint32_t i = 0; i < n; ++i) pool_.free_page(Pfn{first->value + i});
  };
  if (!in_a_row) {
    give_back(0);
    return make_error(EINVAL, "the TX ring's pages are not contiguous in guest memory");
  }
  std::memset(p0.data(), 0, size_t{n} * kPageSize);
  auto ring = netif::TxFrontRing::init(std::span<std::byte>(p0.data(), size_t{n} * kPageSize));
  if (!ring) {
    give_back(0);
    return make_error(EINVAL, "ring init failed");
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto gref = platform_.grant_table().grant_access(be_id_, Pfn{first->value + i}, false);
    if (!gref) {
      give_back(i);
      return gref.error();
    }
    tx_ring_pages_.push_back(GrantedPage{Pfn{first->value + i}, *gref});
  }
  counters_.grants_in_use += n;
  tx_ = *ring;
  return {};
}

bool Netfront::end_access_of(GrantRef gref, bool reserved) {
  if (!reserved) return platform_.grant_table().end_access(gref).ok();
  if (!platform_.grant_table().end_access_ref(gref)) return false;
  // Back to the pool while a TX ring exists; after teardown straight back to the table.
  if (tx_) tx_gref_pool_.push_back(gref);
  else platform_.grant_table().unreserve(std::span<const GrantRef>(&gref, 1));
  return true;
}

bool Netfront::tx_grefs_ready(uint32_t n) {
  if (tx_gref_pool_.size() >= n) return true;
  if (!tx_gref_pool_ok_) return false;
  const uint32_t need = n - static_cast<uint32_t>(tx_gref_pool_.size());
  GrantTable& gt = platform_.grant_table();
  auto r = gt.reserve(std::max(need, kTxGrefBatch), tx_gref_pool_);
  if (!r && r.error().code == ENOTSUP) {
    tx_gref_pool_ok_ = false;
    return false;
  }
  if (!r) (void)gt.reserve(need, tx_gref_pool_);  // a nearly full table: just what this frame needs
  return tx_gref_pool_.size() >= n;
}

void Netfront::release_tx_gref_pool() {
  if (!tx_gref_pool_.empty()) platform_.grant_table().unreserve(tx_gref_pool_);
  tx_gref_pool_.clear();
}

void Netfront::end_grant(GrantRef gref, KeptGrant ctx) {
  if (end_access_of(gref, ctx.reserved)) {
    --counters_.grants_in_use;
    if (ctx.page) pool_.free_page(*ctx.page);
    if (ctx.tx_frame >= 0) tx_frame_grant_done(static_cast<uint16_t>(ctx.tx_frame));
    if (ctx.rx_id >= 0) rx_free_ids_.push_back(static_cast<uint16_t>(ctx.rx_id));
    return;
  }
  // gnttab_end_foreign_access semantics: the backend still has it mapped (or a copy in progress). The page must
  // not be reused until it lets go, so keep it and retry from poll().
  ++counters_.grants_busy_retries;
  ctx.gref = gref;
  kept_.push_back(ctx);
  counters_.grants_kept = kept_.size();
}

bool Netfront::retry_kept_grants() {
  if (kept_.empty()) return false;
  std::vector<KeptGrant> still;
  std::vector<KeptGrant> ended;
  for (auto& k : kept_) {
    if (end_access_of(k.gref, k.reserved)) {
      ended.push_back(k);
    } else {
      still.push_back(k);
    }
  }
  kept_ = std::move(still);
  counters_.grants_kept = kept_.size();
  for (auto& k : ended) {
    --counters_.grants_in_use;
    if (k.page) pool_.free_page(*k.page);
    if (k.tx_frame >= 0) tx_frame_grant_done(static_cast<uint16_t>(k.tx_frame));
    if (k.rx_id >= 0) rx_free_ids_.push_back(static_cast<uint16_t>(k.rx_id));
  }
  return !ended.empty();
}

// ---- poll -------------------------------------------------------------------------------------------------------

bool Netfront::poll() {
  bool progress = false;
  if (!platform_.store().read_watches().empty()) state_dirty_ = true;
  if (watching_ && state_dirty_) {
    state_dirty_ = false;
    const NetfrontState before = state_;
    on_backend_state(platform_.store().read_state(be_dir_));
    progress |= state_ != before;
  }
  // One fd for all of this domain's ports: drain and unmask them all. Whose port fired does not matter, the
  // rings are looked at below regardless.
  for (Port p : platform_.evtchn().pending()) platform_.evtchn().unmask(p);

  if (ctrl_) progress |= process_ctrl();
  if (ctrl_pending_ && Clock::now() >= ctrl_deadline_) {
    ctrl_pending_ = false;
    on_ctrl_response(netif::CtrlResponse{ctrl_pending_id_, ctrl_pending_type_, netif::ctrl_status::not_supported, 0},
                     /*timed_out=*/true);
    progress = true;
  }
  if (tx_) progress |= process_tx();
  if (rx_) progress |= process_rx();
  if (rx_ && (state_ == NetfrontState::kConnected || state_ == NetfrontState::kRegistering)) refill_rx();
  progress |= poll_recall();
  if (state_ == NetfrontState::kClosing && close_step_ == CloseStep::kWaitBackendClosed &&
      Clock::now() >= close_deadline_) {
    release_all();
    progress = true;
  }
  progress |= retry_kept_grants();

  if (!tx_done_queue_.empty()) {
    auto done = std::move(tx_done_queue_);
    tx_done_queue_.clear();
    for (auto& c : done)
      if (tx_done_) tx_done_(c);
    progress = true;
  }
  if (!rx_unused_queue_.empty()) {
    auto unused = std::move(rx_unused_queue_);
    rx_unused_queue_.clear();
    for (uint64_t c : unused)
      if (rx_unused_handler_) rx_unused_handler_(c);
    progress = true;
  }
  if (!rx_buffers_queue_.empty()) {
    auto frames = std::move(rx_buffers_queue_);
    rx_buffers_queue_.clear();
    for (auto& f : frames)
      if (rx_buffers_handler_) rx_buffers_handler_(std::move(f));
    progress = true;
  }
  if (!rx_deliver_queue_.empty()) {
    auto frames = std::move(rx_deliver_queue_);
    rx_deliver_queue_.clear();
    for (auto& f : frames)
      if (rx_handler_) rx_handler_(std::move(f));
    progress = true;
  }
  return progress;
}

// ---- xenbus -----------------------------------------------------------------------------------------------------

// A backend we were connected to (or connecting to) that is no longer there: it went Closed/Closing or its node
// vanished (the hypervisor closes a dead driver domain's devices), it is back at Initialising/InitWait (a new
// backend process, faster than we looked), or the toolstack reset our own state node for a new backend.
bool Netfront::backend_lost(XenbusState be) {
  if (!config_.reconnect) return false;
  switch (state_) {
    case NetfrontState::kConnecting:
      if (be != XenbusState::InitWait && be != XenbusState::Connected) return true;
      break;
    case NetfrontState::kRegistering:
    case NetfrontState::kConnected:
      if (be != XenbusState::Connected) return true;
      break;
    default:
      return false;
  }
  return platform_.store().read_state(fe_dir_) != XenbusState::Connected;
}

// xennet_disconnect_backend, then back to Initialising (what a frontend does when the toolstack re-plugs it): the
// grants of the old rings, slot pages and buffers end as soon as nobody maps them (the hypervisor released a dead
// backend's pins; a live one's are kept and retried, never reused while in use), frames it never answered are lost.
void Netfront::lose_backend() {
  // What the backend answered before it went is answered: it pushes a frame's RX responses only after copying it
  // in, and a forwarding backend answers the sender's TX request OK only after the destination's RX push. So a
  // frame still unread on our RX ring was counted delivered at its source; released with the ring below, it would
  // be lost with no count anywhere. A pushed response is whole (the producer index moves after the entries), and
  // the ring pages are ours: read them before they go. TX responses likewise complete as what they say.
  if (rx_) process_rx();
  if (tx_) process_tx();
  counters_.tx_lost_backend_gone += tx_frames_in_flight();
  ++counters_.reconnects;
  reconnecting_ = true;
  release_all(/*write_closed=*/false);
  slots_requested_ = false;
  state_ = NetfrontState::kInitialising;
  (void)platform_.store().switch_state(fe_dir_, XenbusState::Initialising);
}

void Netfront::on_backend_state(XenbusState be) {
  const bool be_gone = be == XenbusState::Closing || be == XenbusState::Closed;
  if (backend_lost(be)) lose_backend();
  switch (state_) {
    case NetfrontState::kInitialising:
      if (reconnecting_ && be != XenbusState::InitWait) return;  // wait for a backend to come (back)
      if (be == XenbusState::InitWait) {
        if (auto ok = connect(); !ok) {
          fail("connect: " + ok.error().reason);
          return;
        }
        (void)platform_.store().switch_state(fe_dir_, XenbusState::Connected);
        state_ = NetfrontState::kConnecting;
      } else if (be_gone) {
        (void)platform_.store().switch_state(fe_dir_, XenbusState::Closed);
        state_ = NetfrontState::kClosed;
      }
      return;
    case NetfrontState::kConnecting:
      if (be == XenbusState::Connected) {
        if (slots_requested_) {
          state_ = NetfrontState::kRegistering;
          send_ctrl(netif::ctrl_type::get_gref_mapping_size, 0, 0, 0);
        } else {
          state_ = NetfrontState::kConnected;
          reconnecting_ = false;
        }
      } else if (be_gone || be == XenbusState::Unknown) {
        begin_close(false);
      }
      return;
    case NetfrontState::kRegistering:
    case NetfrontState::kConnected:
      if (be_gone || be == XenbusState::Unknown) begin_close(false);
      return;
    case NetfrontState::kClosing:
      if (close_step_ == CloseStep::kWaitDel && be != XenbusState::Connected) {
        after_del();  // the backend is going away: it drops its kept mappings itself
      } else if (close_step_ == CloseStep::kWaitBackendClosed &&
                 (be == XenbusState::Closed || be == XenbusState::Unknown)) {
        release_all();
      }
      return;
    case NetfrontState::kClosed:
    case NetfrontState::kFailed:
      return;
  }
}

Result<void> Netfront::connect() {
  auto offer = netif::BackendFeatures::read(platform_.store(), be_dir_);
  if (!offer) return offer.error();
  take_offer(*offer);
  if (auto r = alloc_rings(); !r) return r;
  if (auto r = alloc_ports(); !r) return r;
  // Keys (docs/protocol.md section 2), then RX buffers, then Connected (by the caller).
  auto keys = own_keys();
  if (!keys) return keys.error();
  if (auto w = keys->write(platform_.store(), fe_dir_); !w) return w.error();
  refill_rx();
  return {};
}

void Netfront::take_offer(const netif::BackendFeatures& offer) {
  be_sg_ = offer.sg;
  be_gso_v4_ = offer.gso_tcpv4;
  be_gso_v6_ = offer.gso_tcpv6;
  be_split_ = offer.split_event_channels;
  be_ctrl_ = offer.ctrl_ring;
  be_slots_ = offer.header_slots;
  be_rx_extents_ = offer.rx_extents;
  be_tx_ring_order_ = offer.max_tx_ring_page_order;
  if (offer.mtu) mtu_ = *offer.mtu;
}

// Rings: SHARED_RING_INIT before granting. TX: 2^order pages if the backend offers it (docs/protocol.md 9) and the
// pool has them in a row, else one; RX and ctrl: one page each.
Result<void> Netfront::alloc_rings() {
  const uint32_t order = std::min({be_tx_ring_order_, config_.tx_ring_page_order, netif::kTxRingPageOrderMax});
  auto tx = alloc_tx_ring(order);
  if (!tx && order != 0) tx = alloc_tx_ring(0);  // no pages in a row: one page, as every netfront
  if (!tx) return tx.error();
  auto rx = alloc_granted_page(false);
  if (!rx) return rx.error();
  rx_page_ = *rx;
  auto rxr = netif::RxFrontRing::init(pool_.page(rx_page_->pfn));
  if (!rxr) return make_error(EINVAL, "ring init failed");
  rx_ = *rxr;
  if (be_ctrl_) {
    auto c = alloc_granted_page(false);
    if (!c) return c.error();
    ctrl_page_ = *c;
    auto cr = netif::CtrlFrontRing::init(pool_.page(ctrl_page_->pfn));
    if (!cr) return cr.error();
    ctrl_ = *cr;
  }
  return {};
}

Result<void> Netfront::alloc_ports() {
  EventChannel& ev = platform_.evtchn();
  auto p = ev.alloc_unbound(be_id_);
  if (!p) return p.error();
  tx_port_ = *p;
  rx_port_ = *p;
  if (config_.split_event_channels && be_split_) {
    auto prx = ev.alloc_unbound(be_id_);
    if (!prx) return prx.error();
    rx_port_ = *prx;
  }
  if (ctrl_) {
    auto pc = ev.alloc_unbound(be_id_);
    if (!pc) return pc.error();
    ctrl_port_ = *pc;
  }
  return {};
}

Result<netif::FrontendKeys> Netfront::own_keys() {
  netif::FrontendKeys k;
  for (const GrantedPage& gp : tx_ring_pages_) k.tx_ring_refs.push_back(gp.gref.value);
  k.rx_ring_ref = rx_page_->gref.value;
  k.split_event_channels = rx_port_ != tx_port_;
  k.tx_port = tx_port_->value;
  k.rx_port = rx_port_->value;
  k.sg = config_.feature_sg;
  // A super-frame comes with a partial checksum: no GSO for a frontend that wants complete checksums.
  k.gso_tcpv4 = config_.feature_gso_tcpv4 && config_.feature_rx_csum;
  k.gso_tcpv6 = config_.feature_gso_tcpv6 && config_.feature_rx_csum;
  k.no_csum_offload = !config_.feature_rx_csum;
  if (ctrl_) k.ctrl = netif::FrontendKeys::CtrlRing{ctrl_page_->gref.value, ctrl_port_->value};
  // A frontend that asks for header slots without a control ring is a protocol error: only with both.
  if (config_.header_slots && be_slots_ && ctrl_) {
    k.header_slot_size = config_.slot_size;
    slots_requested_ = true;
  }
  if (config_.rx_extents && be_rx_extents_ && config_.rx_headroom <= netif::kRxExtentHeadroomMax) {
    auto t = alloc_granted_page(/*readonly=*/true);  // the backend only reads extents
    if (!t) return t.error();
    rx_extents_page_ = *t;
    k.rx_extents = netif::FrontendKeys::RxExtents{rx_extents_page_->gref.value, config_.rx_headroom};
    rx_extents_active_ = true;
  }
  return k;
}

void Netfront::close() {
  reconnecting_ = false;
  switch (state_) {
    case NetfrontState::kClosing:
    case NetfrontState::kClosed:
      return;
    case NetfrontState::kInitialising:
    case NetfrontState::kFailed:
      release_all();
      return;
    default:
      begin_close(platform_.store().read_state(be_dir_) == XenbusState::Connected);
  }
}

void Netfront::begin_close(bool backend_alive) {
  state_ = NetfrontState::kClosing;
  close_deadline_ = Clock::now() + std::chrono::milliseconds(config_.close_timeout_ms);
  if (backend_alive && slots_active_ && ctrl_ && gref_table_ && !ctrl_pending_) {
    // DEL_GREF_MAPPING while the backend is still listening: only after its answer may the slot pages' grants
    // end (docs/protocol.md 5, registration step 3). The table still lists every registered page.
    auto* table = reinterpret_cast<netif::NetifGref*>(pool_.page(gref_table_->pfn).data());
    for (size_t i = 0; i < slot_pages_.size(); ++i)
      table[i] = netif::NetifGref{slot_pages_[i].gref, netif::ctrlf_gref::readonly, 0};
    close_step_ = CloseStep::kWaitDel;
    send_ctrl(netif::ctrl_type::del_gref_mapping, 0, gref_table_->gref.value,
              static_cast<uint32_t>(slot_pages_.size()));
    return;
  }
  after_del();
}

void Netfront::after_del() {
  slots_active_ = false;
  close_step_ = CloseStep::kWaitBackendClosed;
  close_deadline_ = Clock::now() + std::chrono::milliseconds(config_.close_timeout_ms);
  (void)platform_.store().switch_state(fe_dir_, XenbusState::Closing);
  if (platform_.store().read_state(be_dir_) == XenbusState::Closed) release_all();
}

// Ends foreign access to every page netfront granted; a grant still in use is kept (with its page) and retried by
// poll(). Frames still in flight complete as DROPPED once their grants are back.
void Netfront::release_all(bool write_closed) {
  tx_drop_in_flight();
  rx_release_buffers();
  drop_slot_pages();
  rx_extents_active_ = false;
  for (const GrantedPage& gp : tx_ring_pages_) end_grant(gp.gref, KeptGrant{GrantRef{}, gp.pfn});
  tx_ring_pages_.clear();
  for (auto* gp : {&rx_page_, &ctrl_page_, &rx_extents_page_}) {
    if (*gp) end_grant((*gp)->gref, KeptGrant{GrantRef{}, (*gp)->pfn});
    gp->reset();
  }
  tx_.reset();
  release_tx_gref_pool();  // after tx_drop_in_flight: the frames' ended references are in it
  rx_.reset();
  ctrl_.reset();
  ctrl_pending_ = false;
  EventChannel& ev = platform_.evtchn();
  if (rx_port_ && rx_port_ != tx_port_) (void)ev.unbind(*rx_port_);
  if (tx_port_) (void)ev.unbind(*tx_port_);
  if (ctrl_port_) (void)ev.unbind(*ctrl_port_);
  tx_port_.reset();
  rx_port_.reset();
  ctrl_port_.reset();
  close_step_ = CloseStep::kNone;
  if (write_closed && !be_dir_.empty()) (void)platform_.store().switch_state(fe_dir_, XenbusState::Closed);
  state_ = NetfrontState::kClosed;
}

// ---- recall (docs/protocol.md 8) --------------------------------------------------------------------------------

std::vector<GrantRef> Netfront::slot_page_grefs() const {
  std::vector<GrantRef> out;
  for (const auto& gp : slot_pages_) out.push_back(gp.gref);
  return out;
}

Result<void> Netfront::recall(std::span<const GrantRef> grefs, RecallHandler done, int timeout_ms) {
  if (recall_) return make_error(EBUSY, "a recall is already in progress");
  if (state_ != NetfrontState::kConnected) return make_error(ENOTCONN, "recall: not connected");
  if (grefs.empty() || grefs.size() > kPageSize / sizeof(uint32_t))
    return make_error(EINVAL, "recall: 1..1024 grefs");
  PendingRecall r;
  r.grefs.assign(grefs.begin(), grefs.end());
  r.done = std::move(done);
  r.timeout_ms = timeout_ms;
  if (auto s = send_recall(r); !s) return s;
  recall_ = std::move(r);
  return {};
}

Result<void> Netfront::recall_header_slots(RecallHandler done, int timeout_ms) {
  if (recall_) return make_error(EBUSY, "a recall is already in progress");
  if (state_ != NetfrontState::kConnected) return make_error(ENOTCONN, "recall: not connected");
  if (!slots_active_ || slot_pages_.empty()) return make_error(ENOENT, "recall: no header slots registered");
  // From now on frames go as plain netif; requests already on the ring still name their slots, and the backend
  // may only let the pages go once it has taken them (else a later request would name an unmapped slot).
  slots_active_ = false;
  PendingRecall r;
  r.grefs = slot_page_grefs();
  r.done = std::move(done);
  r.timeout_ms = timeout_ms;
  r.slots = true;
  r.deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);  // also bounds the wait for the ring
  recall_ = std::move(r);
  return {};
}

Result<void> Netfront::send_recall(PendingRecall& r) {
  Store& st = platform_.store();
  // A token no earlier request of any netfront on this device used: a stale recall-done cannot match it.
  r.seq = std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  const std::string done_key = netif::key_path(be_dir_, netif::key::recall_done);
  if (auto w = st.watch(done_key, kRecallWatchToken); !w) return w.error();
  const std::string line = netif::recall::format_request(netif::recall::Request{r.seq, r.grefs});
  if (auto w = st.write(netif::key_path(fe_dir_, netif::key::recall), line); !w) {
    (void)st.unwatch(done_key, kRecallWatchToken);
    return w.error();
  }
  r.sent = true;
  r.deadline = Clock::now() + std::chrono::milliseconds(r.timeout_ms);
  ++counters_.recalls_sent;
  return {};
}

bool Netfront::poll_recall() {
  if (!recall_) return false;
  PendingRecall& r = *recall_;
  if (state_ != NetfrontState::kConnected) {  // the connection went: everything is released with it
    finish_recall(false, false, "");
    return true;
  }
  if (!r.sent) {
    if (slots_ && slots_->in_use() != 0) {
      if (Clock::now() < r.deadline) return false;
      finish_recall(false, false, "");  // the ring never drained: nothing was asked
      return true;
    }
    if (auto s = send_recall(r); !s) {
      finish_recall(false, false, "");
      return true;
    }
    return true;
  }
  Store& st = platform_.store();
  const std::string done = st.read_opt(netif::key_path(be_dir_, netif::key::recall_done)).value_or("");
  const auto answer = netif::recall::parse_done(done);
  if (answer && !answer->error && answer->seq == r.seq) {
    finish_recall(true, false, st.read_opt(netif::key_path(be_dir_, netif::key::recall_refused)).value_or(""));
    return true;
  }
  if (answer && answer->error) {
    finish_recall(false, true, "");
    return true;
  }
  if (Clock::now() >= r.deadline) {
    ++counters_.recall_timeouts;
    finish_recall(false, false, "");
    return true;
  }
  return false;
}

void Netfront::finish_recall(bool answered, bool rejected, const std::string& refused) {
  PendingRecall r = std::move(*recall_);
  recall_.reset();
  if (r.sent) (void)platform_.store().unwatch(netif::key_path(be_dir_, netif::key::recall_done), kRecallWatchToken);
  RecallResult res;
  res.answered = answered;
  res.rejected = rejected;
  // A malformed list names nothing: still_in_use below (the grant table's word) is what a caller must trust.
  res.refused = netif::recall::parse_grefs(refused).value_or(std::vector<GrantRef>{});
  if (r.slots && state_ == NetfrontState::kConnected && (!slots_ || slots_->in_use() == 0)) {
    // The slot pages leave the connection whatever the backend said: a grant still in use is kept (end_grant).
    for (GrantRef g : r.grefs)
      if (!platform_.grant_table().in_use(g)) res.ended.push_back(g);
    drop_slot_pages();
  } else if (r.slots && !r.sent) {
    slots_active_ = state_ == NetfrontState::kConnected && slots_.has_value();  // the ring never drained: keep them
  }
  for (GrantRef g : r.grefs)
    if (platform_.grant_table().in_use(g)) res.still_in_use.push_back(g);
  if (answered) ++counters_.recalls_answered;
  if (r.done) r.done(res);
}

// ---- control ring -----------------------------------------------------------------------------------------------

void Netfront::send_ctrl(uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2) {
  if (!ctrl_ || ctrl_->full()) {
    on_ctrl_response(netif::CtrlResponse{0, type, netif::ctrl_status::not_supported, 0}, true);
    return;
  }
  ctrl_pending_ = true;
  ctrl_pending_id_ = ctrl_next_id_++;
  ctrl_pending_type_ = type;
  ctrl_deadline_ = Clock::now() + std::chrono::milliseconds(config_.ctrl_timeout_ms);
  ctrl_->produce_request(netif::CtrlRequest{ctrl_pending_id_, type, {d0, d1, d2}});
  ++counters_.ctrl_requests;
  if (ctrl_->push_requests_and_check_notify()) notify(*ctrl_port_);
}

bool Netfront::process_ctrl() {
  bool progress = false;
  do {
    const ring::RingIdx prod = ctrl_->rsp_prod();
    if (ctrl_->response_prod_overflow(prod)) {
      ++counters_.bad_responses;
      return progress;
    }
    while (ctrl_ && ctrl_->rsp_cons() != prod) {
      const netif::CtrlResponse rsp = ctrl_->consume_response();
      progress = true;
      if (!ctrl_pending_ || rsp.id != ctrl_pending_id_ || rsp.type != ctrl_pending_type_) {
        ++counters_.bad_responses;  // late (after a timeout) or bogus
        continue;
      }
      ctrl_pending_ = false;
      on_ctrl_response(rsp, false);
    }
  } while (ctrl_ && ctrl_->final_check_for_responses());
  return progress;
}

void Netfront::on_ctrl_response(const netif::CtrlResponse& rsp, bool timed_out) {
  const bool ok = !timed_out && rsp.status == netif::ctrl_status::success;
  switch (rsp.type) {
    case netif::ctrl_type::get_gref_mapping_size:
      if (state_ != NetfrontState::kRegistering) return;
      if (ok && rsp.data > 0) {
        register_slot_pages(rsp.data);
      } else {
        registration_done();  // plain netif
      }
      return;
    case netif::ctrl_type::add_gref_mapping:
      if (state_ != NetfrontState::kRegistering) return;
      if (ok) {
        slots_active_ = true;
      } else {
        // On failure the backend mapped none of them (netif.h): the pages can go. On a timeout it may yet map
        // them; end_grant keeps any it holds.
        drop_slot_pages();
      }
      registration_done();
      return;
    case netif::ctrl_type::del_gref_mapping:
      if (state_ == NetfrontState::kClosing && close_step_ == CloseStep::kWaitDel) after_del();
      return;
    default:
      return;
  }
}

void Netfront::register_slot_pages(uint32_t max_pages) {
  auto geo = HeaderSlotGeometry::negotiate(config_.slot_size, config_.slot_pages, max_pages);
  if (!geo) {  // no pages on one side
    registration_done();
    return;
  }
  const uint32_t n = geo->nr_pages();
  for (uint32_t i = 0; i < n; ++i) {
    auto gp = alloc_granted_page(true);  // the backend only reads slots
    if (!gp) {
      drop_slot_pages();
      registration_done();
      return;
    }
    slot_pages_.push_back(*gp);
  }
  // The table page is r/w: DEL_GREF_MAPPING writes each entry's status back (netif.h).
  auto table = alloc_granted_page(false);
  if (!table) {
    drop_slot_pages();
    registration_done();
    return;
  }
  gref_table_ = *table;
  auto* entries = reinterpret_cast<netif::NetifGref*>(pool_.page(gref_table_->pfn).data());
  for (uint32_t i = 0; i < n; ++i) entries[i] = netif::NetifGref{slot_pages_[i].gref, netif::ctrlf_gref::readonly, 0};
  geometry_ = *geo;
  send_ctrl(netif::ctrl_type::add_gref_mapping, 0, gref_table_->gref.value, n);
}

void Netfront::drop_slot_pages() {
  slots_active_ = false;
  for (auto& gp : slot_pages_) end_grant(gp.gref, KeptGrant{GrantRef{}, gp.pfn});
  slot_pages_.clear();
  if (gref_table_) end_grant(gref_table_->gref, KeptGrant{GrantRef{}, gref_table_->pfn});
  gref_table_.reset();
  geometry_.reset();
  slots_.reset();
  counters_.slots_total = 0;
  counters_.slots_in_use = 0;
}

void Netfront::registration_done() {
  if (slots_active_ && geometry_) {
    slots_.emplace(geometry_->nr_slots());
    counters_.slots_total = geometry_->nr_slots();
  }
  state_ = NetfrontState::kConnected;
  reconnecting_ = false;
}

}  // namespace pvnet
