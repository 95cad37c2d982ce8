#include "backend/backend.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <set>

#include "backend/connect_guards.hpp"
#include "backend/null_sink.hpp"
#include "backend/vif.hpp"

namespace pvnet {

Result<std::unique_ptr<Backend>> Backend::create(Platform& dom0, BackendOptions options) {
  auto payload = make_payload_policy(options.payload_policy, dom0, options.lazy_window_pages);
  if (!payload) return payload.error();
  return std::unique_ptr<Backend>(new Backend(dom0, options, std::move(payload).value()));
}

Backend::Backend(Platform& dom0, BackendOptions options, std::unique_ptr<PayloadPolicy> payload)
    : dom0_(dom0), options_(options), payload_(std::move(payload)), default_sink_(std::make_shared<NullSink>()),
      tx_scratch_(std::make_unique<TxScratch>()) {
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

Backend::~Backend() {
  if (timer_fd_ >= 0) ::close(timer_fd_);
  for (auto& [id, vif] : vifs_) {
    disconnect(*vif, "backend shutting down");
    (void)dom0_.store().unwatch(vif->paths.frontend, vif->token);
  }
  payload_->end_poll();
}

uint32_t Backend::tx_ring_page_order_offered(const Vif& vif) const {
  if (!dom0_.mapper().can_map_contiguous()) return 0;
  return std::min(vif.opts.max_tx_ring_page_order, netif::kTxRingPageOrderMax);
}

// What this backend offers the vif's frontend (netback_probe's keys): written at probe, and the measure of the
// frontend's keys at connect. Header slots need the control ring (registration) and a policy that models a backend
// with the extension; a frontend that asks anyway when they are not offered gets plain netif, as from a backend
// that never heard of them.
netif::BackendFeatures Backend::offered_features(const Vif& vif) const {
  netif::BackendFeatures f;
  f.ctrl_ring = vif.opts.offer_ctrl_ring;
  f.header_slots = vif.opts.offer_header_slots && vif.opts.offer_ctrl_ring && payload_->traits().offers_header_slots;
  f.max_tx_ring_page_order = tx_ring_page_order_offered(vif);
  f.mtu = vif.opts.mtu;
  return f;
}

Backend::Vif* Backend::find(VifId id) const {
  auto it = vifs_.find(id);
  return it == vifs_.end() ? nullptr : it->second.get();
}

Result<VifId> Backend::add_vif(DomId frontend, uint32_t handle, VifOptions options) {
  for (const auto& [id, v] : vifs_)
    if (v->fe_dom == frontend && v->handle == handle)
      return make_error(EEXIST, "vif" + std::to_string(frontend.value) + "." + std::to_string(handle) + " exists");
  auto paths = toolstack_create_vif(dom0_.store(), dom0_.self(), frontend, handle, options.mac);
  if (!paths) return paths.error();
  auto vif = std::make_unique<Vif>();
  vif->fe_dom = frontend;
  vif->handle = handle;
  vif->opts = std::move(options);
  vif->paths = std::move(paths).value();
  return probe(std::move(vif));
}

Result<VifId> Backend::adopt_vif(const VifPaths& paths, VifOptions options) {
  Store& store = dom0_.store();
  const std::string& be = paths.backend;
  // The directory's own name says whose it is (backend/vif/<F>/<N>); libxl's frontend-id and handle must agree.
  const auto name = backend_dir_name(be);
  if (!name) return make_error(EINVAL, be + " is not a backend/vif/<F>/<N> directory");
  auto at = [&](const char* key) { return netif::key_path(be, key); };
  auto fe_id = store.read_int(at(netif::key::frontend_id));
  auto handle = store.read_int(at(netif::key::handle));
  if (!fe_id || *fe_id <= 0 || *fe_id >= DOMID_FIRST_RESERVED || std::to_string(*fe_id) != name->frontend)
    return make_error(EINVAL, at(netif::key::frontend_id) + " does not name the directory's frontend domain");
  if (!handle || *handle < 0 || std::to_string(*handle) != name->handle)
    return make_error(EINVAL, at(netif::key::handle) + " does not match the directory's name");
  const DomId frontend{static_cast<uint16_t>(*fe_id)};
  for (const auto& [id, v] : vifs_)
    if (v->fe_dom == frontend && v->handle == static_cast<uint32_t>(*handle))
      return make_error(EEXIST, v->name + " exists");
  auto fe_path = store.read_opt(at(netif::key::frontend));
  if (!fe_path || *fe_path != paths.frontend)
    return make_error(EINVAL, at(netif::key::frontend) + " is not " + paths.frontend);
  if (auto mac = store.read_opt(at(netif::key::mac))) options.mac = *mac;
  if (auto mtu = store.read_int(at(netif::key::mtu)); mtu && *mtu >= 68 && *mtu <= 65535)
    options.mtu = static_cast<uint32_t>(*mtu);
  auto vif = std::make_unique<Vif>();
  vif->fe_dom = frontend;
  vif->handle = static_cast<uint32_t>(*handle);
  vif->opts = std::move(options);
  vif->paths = paths;
  vif->adopted = true;
  return probe(std::move(vif));
}

// netback_probe: advertise what this backend does, then InitWait, and follow the frontend from now on.
Result<VifId> Backend::probe(std::unique_ptr<Vif> vif) {
  Store& store = dom0_.store();
  vif->id = VifId{next_vif_++};
  if (!vif->opts.sink) vif->opts.sink = default_sink_;
  vif->credit.configure(vif->opts.credit, std::chrono::steady_clock::now());
  vif->rx_progress = std::chrono::steady_clock::now();
  vif->name = "vif" + std::to_string(vif->fe_dom.value) + "." + std::to_string(vif->handle);
  vif->token = "pvnet-backend:" + std::to_string(vif->id.value);

  const std::string& be = vif->paths.backend;
  if (auto r = offered_features(*vif).write(store, be); !r) return r.error();
  if (auto r = store.switch_state(be, XenbusState::InitWait); !r) return r.error();
  vif->be_state = XenbusState::InitWait;
  if (auto r = store.watch(vif->paths.frontend, vif->token); !r) return r.error();

  const VifId id = vif->id;
  vifs_.emplace(id, std::move(vif));
  return id;
}

Result<void> Backend::remove_vif(VifId id) {
  Vif* vif = find(id);
  if (!vif) return make_error(ENOENT, "no vif " + std::to_string(id.value));
  disconnect(*vif, "removed by the toolstack");
  Store& store = dom0_.store();
  (void)store.unwatch(vif->paths.frontend, vif->token);
  Result<void> r;
  if (!vif->adopted) {
    (void)store.switch_state(vif->paths.backend, XenbusState::Closed);
    r = toolstack_destroy_vif(store, vif->paths);
  } else if (vif->be_state != XenbusState::Closed &&
             store.read_opt(netif::key_path(vif->paths.backend, netif::key::state))) {
    r = store.switch_state(vif->paths.backend, XenbusState::Closed);
  }
  removed_ += vif->counters;
  vifs_.erase(id);
  return r;
}

Result<void> Backend::offline_vif(VifId id) {
  Vif* vif = find(id);
  if (!vif) return make_error(ENOENT, "no vif " + std::to_string(id.value));
  disconnect(*vif, "taken offline by the toolstack");
  vif->offline = true;
  if (vif->be_state == XenbusState::Closed) return {};
  vif->be_state = XenbusState::Closed;
  return dom0_.store().switch_state(vif->paths.backend, XenbusState::Closed);
}

Result<void> Backend::set_sink(VifId id, std::shared_ptr<Sink> sink) {
  Vif* vif = find(id);
  if (!vif) return make_error(ENOENT, "no vif " + std::to_string(id.value));
  vif->opts.sink = sink ? std::move(sink) : default_sink_;
  return {};
}

std::vector<int> Backend::fds() const {
  std::vector<int> fds{dom0_.evtchn().fd(), dom0_.store().watch_fd()};
  if (timer_fd_ >= 0) fds.push_back(timer_fd_);
  return fds;
}

size_t Backend::poll() {
  // The housekeeping (event channel ports, the timer, store watches, the RX stall clock) costs system calls: it
  // runs first in a poll that follows an idle one (the caller may have slept: whatever woke it is looked at
  // before the rings), and every kHousekeepingEvery polls while the data path stays busy (a busy vif must not
  // delay a watch or a stall for long, but a busy-polling backend must not pay three system calls a poll).
  size_t work = 0;
  if (last_poll_idle_ || ++polls_since_housekeeping_ >= kHousekeepingEvery) work += housekeeping();
  for (auto& [id, vif] : vifs_) work += ctrl_action(*vif);
  work += tx_action();
  work += rx_action();
  payload_->end_poll();
  std::vector<Sink*>& sinks = tx_scratch_->sinks;
  sinks.clear();
  for (auto& [id, vif] : vifs_)
    if (std::find(sinks.begin(), sinks.end(), vif->opts.sink.get()) == sinks.end()) sinks.push_back(vif->opts.sink.get());
  for (Sink* s : sinks) s->end_poll();
  work += publish_tx_responses();
  // After the RX phase (a queue that just moved is not stalled), when housekeeping ran or the caller may sleep
  // next (an idle poll): the timer must then be armed for whatever no event will announce (credit, stalls).
  if (check_stalls_ || work == 0) {
    check_stalls_ = false;
    check_rx_stalls();
    work += publish_tx_responses();  // a stalled queue was dropped: its senders are answered now
    arm_timer();
  }
  last_poll_idle_ = work == 0;
  return work;
}

size_t Backend::housekeeping() {
  polls_since_housekeeping_ = 0;
  // Every vif is looked at on every poll, so an event only has to wake us: drain and re-enable the ports.
  EventChannel& ev = dom0_.evtchn();
  for (Port p : ev.pending()) ev.unmask(p);
  if (timer_fd_ >= 0) {
    uint64_t expirations;
    while (::read(timer_fd_, &expirations, sizeof(expirations)) > 0) {
    }
  }
  check_stalls_ = true;
  return process_watches();
}

// Linux's rx_drain_timeout: a guest that leaves frames queued without posting buffers must not hold dom0's memory
// or its senders (who would be held back behind it). Its queue is dropped, answered and counted once per stall;
// frames to it are then dropped at admission until it posts buffers again.
void Backend::check_rx_stalls() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [id, vifp] : vifs_) {
    Vif& vif = *vifp;
    if (!vif.connected || vif.disabled) continue;
    vif.rx_queue_bytes = 0;
    for (const auto& f : vif.rx_queue) vif.rx_queue_bytes += f.len;
    vif.counters.rx_queue_bytes = vif.rx_queue_bytes;
    const bool buffers_posted = vif.rx && vif.rx->unconsumed_requests() != 0;
    if (vif.rx_stalled) {
      if (buffers_posted) {
        vif.rx_stalled = false;
        vif.rx_progress = now;
        std::cerr << "pvnet-backend: " << vif.name << ": RX buffers posted again; resuming\n";
      }
      continue;
    }
    // Progress: nothing waiting, or the guest has buffers (the next rx_action takes them).
    if (vif.rx_queue.empty() || buffers_posted || vif.opts.rx_stall_timeout_ms == 0) {
      vif.rx_progress = now;
      continue;
    }
    if (now - vif.rx_progress < std::chrono::milliseconds(vif.opts.rx_stall_timeout_ms)) continue;
    vif.rx_stalled = true;
    ++vif.counters.rx_stalls;
    std::cerr << "pvnet-backend: " << vif.name << ": no RX buffers for " << vif.opts.rx_stall_timeout_ms
              << " ms with " << vif.rx_queue.size() << " frames queued; dropping them (rx stalled)\n";
    drop_rx_queue(vif, DropReason::rx_stalled);
  }
}

// One timer for everything that needs a poll no event would cause: credit coming back, an RX stall deadline.
void Backend::arm_timer() {
  if (timer_fd_ < 0) return;
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  std::optional<Clock::time_point> due;
  auto consider = [&](Clock::time_point t) {
    if (!due || t < *due) due = t;
  };
  for (auto& [id, vifp] : vifs_) {
    Vif& vif = *vifp;
    if (!vif.connected || vif.disabled) continue;
    if (vif.credit_stalled) consider(vif.credit.ready_at(now));
    if (!vif.rx_stalled && !vif.rx_queue.empty() && vif.opts.rx_stall_timeout_ms != 0)
      consider(vif.rx_progress + std::chrono::milliseconds(vif.opts.rx_stall_timeout_ms));
  }
  itimerspec its{};
  if (due) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*due - now).count();
    if (ns < 1000) ns = 1000;  // zero would disarm
    its.it_value.tv_sec = ns / 1'000'000'000;
    its.it_value.tv_nsec = ns % 1'000'000'000;
  }
  (void)::timerfd_settime(timer_fd_, 0, &its, nullptr);
}

size_t Backend::poll_until_idle(size_t max_rounds) {
  size_t total = 0;
  for (size_t i = 0; i < max_rounds; ++i) {
    const size_t w = poll();
    total += w;
    if (w == 0) break;
  }
  return total;
}

// ---- xenbus ---------------------------------------------------------------------------------------------------

size_t Backend::process_watches() {
  auto events = dom0_.store().read_watches();
  if (events.empty()) return 0;
  std::set<VifId> changed;
  for (const auto& ev : events)
    for (auto& [id, vif] : vifs_)
      if (ev.token == vif->token) changed.insert(id);
  for (VifId id : changed)
    if (Vif* vif = find(id)) frontend_changed(*vif);
  return events.size();
}

// netback's frontend_changed(): follow the frontend through the states of docs/protocol.md 2.
void Backend::frontend_changed(Vif& vif) {
  Store& store = dom0_.store();
  const std::string& be = vif.paths.backend;
  auto set_state = [&](XenbusState s) {
    if (vif.be_state == s) return;
    vif.be_state = s;
    // An adopted vif whose directory libxl removed (xl destroy, a forced detach): a write would re-create it.
    if (vif.adopted && !store.read_opt(netif::key_path(be, netif::key::state))) return;
    (void)store.switch_state(be, s);
  };
  const XenbusState fe = store.read_state(vif.paths.frontend);
  switch (fe) {
    case XenbusState::Initialising:
      // A frontend coming back after a Closed: offer the device again (netback's "prepare for reconnect").
      if (vif.be_state == XenbusState::Closed && !vif.offline) set_state(XenbusState::InitWait);
      break;
    case XenbusState::Initialised:
    case XenbusState::InitWait:
      break;
    case XenbusState::Connected:
      if (vif.be_state != XenbusState::InitWait) break;  // already connected, or closing
      if (auto ok = connect(vif); !ok) {
        // xenbus_dev_fatal: say why in the backend directory and close.
        std::cerr << "pvnet-backend: " << vif.name << ": connect failed: " << ok.error().reason << "\n";
        (void)store.write(netif::key_path(be, netif::key::error), ok.error().reason);
        set_state(XenbusState::Closing);
        set_state(XenbusState::Closed);
      } else {
        set_state(XenbusState::Connected);
      }
      break;
    case XenbusState::Closing:
      disconnect(vif, "frontend closing");
      set_state(XenbusState::Closing);
      set_state(XenbusState::Closed);
      break;
    case XenbusState::Closed:
    case XenbusState::Unknown:  // the frontend's directory disappeared (or holds garbage)
    case XenbusState::Reconfiguring:
    case XenbusState::Reconfigured:
      if (vif.be_state == XenbusState::Closed) break;
      disconnect(vif, fe == XenbusState::Unknown ? "frontend directory gone" : "frontend closed");
      if (vif.be_state != XenbusState::Closing) set_state(XenbusState::Closing);
      set_state(XenbusState::Closed);
      break;
  }
  if (vif.connected) handle_recall(vif);
}

// connect(): read the frontend's keys against our offer, map the rings (kept for the connection), bind the event
// channels. Whatever a refusal leaves acquired, the guards give back.
Result<void> Backend::connect(Vif& vif) {
  const std::string& fe = vif.paths.frontend;
  auto keys = netif::FrontendKeys::read(dom0_.store(), fe, offered_features(vif));
  if (!keys) return keys.error();
  RingMappings maps(dom0_.mapper());
  if (auto r = maps.map(vif.fe_dom, *keys, fe); !r) return r;
  auto tx = netif::TxBackRing::attach(maps.tx_pages());
  auto rx = netif::RxBackRing::attach(maps.rx_page());
  if (!tx || !rx) return make_error(EINVAL, "ring attach failed");

  BoundPorts ports(dom0_.evtchn(), vif.fe_dom);
  const std::optional<Port> txp = ports.bind(keys->tx_port);
  const std::optional<Port> rxp = keys->split_event_channels ? ports.bind(keys->rx_port) : txp;
  const std::optional<Port> ctrlp = keys->ctrl ? ports.bind(keys->ctrl->port) : std::nullopt;
  if (!txp || !rxp || (keys->ctrl && !ctrlp))
    return make_error(EINVAL, "binding the event channels of " + fe + " failed");
  std::optional<netif::CtrlBackRing> ctrl;
  if (keys->ctrl) {
    auto c = netif::CtrlBackRing::attach(maps.ctrl_page());
    if (!c) return make_error(EINVAL, "control ring attach failed");
    ctrl.emplace(std::move(c).value());
    vif.ctrl_port = *ctrlp;
  }

  vif.tx.emplace(std::move(tx).value());
  vif.rx.emplace(std::move(rx).value());
  vif.ctrl = std::move(ctrl);
  vif.tx_port = *txp;
  vif.rx_port = *rxp;
  vif.split_evtchn = keys->split_event_channels;
  vif.rx_ext.reset();
  if (keys->rx_extents) {
    vif.rx_ext.active = true;
    vif.rx_ext.table = maps.extents_table();
    vif.rx_ext.headroom = static_cast<uint16_t>(keys->rx_extents->headroom);
  }
  vif.ring_handles.clear();
  vif.ring_grefs.clear();
  for (const MapOp& op : maps.release()) {
    vif.ring_handles.push_back(op.handle);
    vif.ring_grefs.push_back(op.ref);
  }
  vif.bound_ports = ports.release();
  start_connection(vif, *keys);
  return {};
}

// What the frontend asked for, and a fresh start for everything per connection.
void Backend::start_connection(Vif& vif, const netif::FrontendKeys& keys) {
  vif.header_slots = keys.header_slot_size.has_value();
  vif.slot_size = keys.header_slot_size.value_or(netif::kHeaderSlotSizeDefault);
  vif.fe_sg = keys.sg;
  vif.fe_gso_tcpv4 = keys.gso_tcpv4;
  vif.fe_gso_tcpv6 = keys.gso_tcpv6;
  vif.fe_no_csum_offload = keys.no_csum_offload;
  vif.connected = true;
  vif.disabled = false;
  vif.inflight = 0;
  vif.inflight_ids.reset();
  vif.credit_stalled = false;
  vif.rx_stalled = false;
  vif.rx_progress = std::chrono::steady_clock::now();
  vif.recall_seen.clear();
  ++vif.generation;
}

// Releases everything held for the frontend: its rings, kept slot mappings, event channels, queued frames (its own
// RX queue and its packets held in other vifs' queues). Lazy payload slots never outlive a poll.
void Backend::disconnect(Vif& vif, const char* why) {
  if (!vif.connected) return;
  drop_rx_queue(vif, DropReason::dest_gone);
  // Its packets waiting in other guests' RX queues: their grants are about to be ended by the frontend.
  for (auto& [id, other] : vifs_) {
    auto& q = other->rx_queue;
    for (auto it = q.begin(); it != q.end();) {
      if (it->has_completion && it->completion.src == vif.id && it->completion.generation == vif.generation) {
        vif.counters.dropped[DropReason::src_gone]++;
        other->rx_queue_bytes -= it->len;
        it = q.erase(it);
      } else {
        ++it;
      }
    }
    other->counters.rx_queued = q.size();
    other->counters.rx_queue_bytes = other->rx_queue_bytes;
  }
  EventChannel& ev = dom0_.evtchn();
  for (Port p : vif.bound_ports) (void)ev.unbind(p);
  vif.bound_ports.clear();
  std::vector<UnmapOp> unmaps;
  for (MapHandle h : vif.ring_handles) unmaps.push_back(unmap_op(h));
  for (const auto& [gref, k] : vif.kept) unmaps.push_back(unmap_op(k.handle));
  vif.tx.reset();
  vif.rx.reset();
  vif.ctrl.reset();
  if (!unmaps.empty()) dom0_.mapper().unmap(unmaps);
  vif.ring_handles.clear();
  vif.kept.clear();
  vif.counters.kept_pages = 0;
  vif.tx_shadow.clear();
  vif.rx_ext.reset();  // its table mapping was among ring_handles
  vif.header_slots = false;
  vif.connected = false;
  (void)why;
}

void Backend::fatal_protocol_error(Vif& vif, ProtocolRing ring, const std::string& why) {
  if (vif.disabled) return;
  vif.disabled = true;
  // Every ring's violation counts here (the JSON key predates the RX and control rings' checks).
  ++vif.counters.tx_fatal_errors;
  const char* name = ring == ProtocolRing::tx ? "TX" : ring == ProtocolRing::rx ? "RX" : "control ring";
  // Logged once, naming the interface, as xenvif_fatal_tx_err does ("fatal error; disabling device").
  std::cerr << "pvnet-backend: " << vif.name << ": " << name << ": " << why << "; fatal error; disabling device\n";
  drop_rx_queue(vif, DropReason::dest_disabled);
}

void Backend::drop_rx_queue(Vif& vif, DropReason reason) {
  while (!vif.rx_queue.empty()) {
    RxFrame f = std::move(vif.rx_queue.front());
    vif.rx_queue.pop_front();
    drop_rx_frame(vif, f, netif::rsp::dropped, reason);
  }
  vif.counters.rx_queued = 0;
  vif.rx_queue_bytes = 0;
  vif.counters.rx_queue_bytes = 0;
}

// Counted once (docs/fuzzing.md, "counters"): a forwarded frame is one of its source's TX packets, answered with
// `status` and counted dropped there, as a refusal at admission is (dest_rx_full); the destination shows its side in
// its RX counters (rx_stalls, rx_copy_errors), not in `dropped`. A local frame (dom0's own) is counted on `dest`.
void Backend::drop_rx_frame(Vif& dest, const RxFrame& f, int16_t status, DropReason reason) {
  if (!f.has_completion || !complete_tx(f.completion, status, reason)) dest.counters.dropped[reason]++;
}

uint32_t Backend::kept_pages_of(DomId dom) const {
  uint32_t n = 0;
  for (const auto& [id, v] : vifs_)
    if (v->fe_dom == dom) n += static_cast<uint32_t>(v->kept.size());
  return n;
}

// ---- TX completion ---------------------------------------------------------------------------------------------

// The answers for one packet go to its vif's shadow list; publish_tx_responses() pushes them once per poll.
bool Backend::complete_tx(const TxCompletion& c, int16_t status, std::optional<DropReason> reason) {
  Vif* vif = find(c.src);
  return vif && complete_tx(*vif, c, status, reason);
}

bool Backend::complete_tx(Vif& vif, const TxCompletion& c, int16_t status, std::optional<DropReason> reason) {
  if (!vif.connected || vif.generation != c.generation) return false;  // that ring is gone
  if (c.tracked) {
    if (vif.inflight != 0) --vif.inflight;
    for (const auto& s : c.slots)
      if (!s.extra) vif.inflight_ids.reset(s.id);
  }
  if (status == netif::rsp::okay) {
    ++vif.counters.packets_out;
    vif.counters.bytes_out += c.len;
  } else if (reason) {
    vif.counters.dropped[*reason]++;
  }
  for (const auto& s : c.slots)
    vif.tx_shadow.push_back(netif::TxResponse{s.id, s.extra ? netif::rsp::null : status});
  return true;
}

size_t Backend::publish_tx_responses() {
  size_t work = 0;
  for (auto& [id, vif] : vifs_) {
    if (!vif->connected || vif->tx_shadow.empty()) continue;
    for (const auto& r : vif->tx_shadow) vif->tx->produce_response(r);
    work += vif->tx_shadow.size();
    vif->counters.tx_responses += vif->tx_shadow.size();
    vif->tx_shadow.clear();
    if (vif->tx->push_responses_and_check_notify()) (void)dom0_.evtchn().notify(vif->tx_port);
  }
  return work;
}

// ---- accessors --------------------------------------------------------------------------------------------------

QueueRx Backend::queue_rx(VifId id, RxFrame frame) {
  Vif* vif = find(id);
  if (!vif || !vif->connected || vif->disabled) return QueueRx::not_connected;
  // Admission is where dom0's memory for this guest is bounded (XSA-392): a full or stalled queue refuses, and
  // the refusal is counted: a forwarded packet's on its source (answered by the sink), a local frame's here.
  if (vif->rx_stalled) {
    if (!frame.has_completion) vif->counters.dropped[DropReason::rx_stalled]++;
    return QueueRx::stalled;
  }
  // A forwarded packet passed rx_has_room() when its poll began, and one poll's packets are judged before any is
  // queued: it may overshoot by a poll's budget, so it meets the hard cap at twice the bound.
  const size_t slack = frame.has_completion ? 2 : 1;
  if (vif->rx_queue.size() >= slack * vif->opts.rx_queue_max ||
      vif->rx_queue_bytes >= slack * vif->opts.rx_queue_max_bytes) {
    ++vif->counters.rx_queue_full;
    if (!frame.has_completion) vif->counters.dropped[DropReason::rx_queue_full]++;
    return QueueRx::full;
  }
  vif->rx_queue_bytes += frame.len;
  vif->rx_queue.push_back(std::move(frame));
  vif->counters.rx_queued = vif->rx_queue.size();
  vif->counters.rx_queue_bytes = vif->rx_queue_bytes;
  return QueueRx::ok;
}

bool Backend::rx_has_room(VifId id) const {
  const Vif* vif = find(id);
  if (!vif) return true;  // the sink will find it gone and drop (counted)
  if (vif->rx_stalled) return true;  // its frames are dropped at once: do not hold senders behind it
  return vif->rx_queue.size() < vif->opts.rx_queue_max && vif->rx_queue_bytes < vif->opts.rx_queue_max_bytes;
}

bool Backend::rx_stalled(VifId id) const {
  const Vif* vif = find(id);
  return vif && vif->rx_stalled;
}

size_t Backend::rx_queue_bytes(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->rx_queue_bytes : 0;
}

bool Backend::rx_connected(VifId id) const {
  const Vif* vif = find(id);
  return vif && vif->connected && !vif->disabled;
}

RxOffloads Backend::rx_offloads(VifId id) const {
  const Vif* vif = find(id);
  if (!vif || !vif->connected || vif->disabled) return {};
  RxOffloads o;
  o.csum_blank = !vif->fe_no_csum_offload;
  // A GSO frame spans pages: without feature-sg (or RX extents) the RX path could not deliver it.
  const bool multi = vif->fe_sg || vif->rx_ext.active;
  o.gso_tcpv4 = o.csum_blank && multi && vif->fe_gso_tcpv4;
  o.gso_tcpv6 = o.csum_blank && multi && vif->fe_gso_tcpv6;
  return o;
}

BackendCounters Backend::counters(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->counters : BackendCounters{};
}

BackendCounters Backend::total() const {
  BackendCounters t = removed_;
  for (const auto& [id, vif] : vifs_) t += vif->counters;
  t.grant = dom0_.mapper().counters();
  return t;
}

XenbusState Backend::state(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->be_state : XenbusState::Unknown;
}
bool Backend::connected(VifId id) const {
  const Vif* vif = find(id);
  return vif && vif->connected;
}
bool Backend::disabled(VifId id) const {
  const Vif* vif = find(id);
  return vif && vif->disabled;
}
bool Backend::header_slots(VifId id) const {
  const Vif* vif = find(id);
  return vif && vif->header_slots;
}
uint32_t Backend::header_slot_size(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->slot_size : 0;
}
size_t Backend::kept_mappings(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->kept.size() : 0;
}
std::string Backend::name(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->name : std::string();
}
DomId Backend::frontend_domain(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->fe_dom : DomId{};
}
uint32_t Backend::handle(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->handle : 0;
}
VifPaths Backend::paths(VifId id) const {
  const Vif* vif = find(id);
  return vif ? vif->paths : VifPaths{};
}
std::vector<VifId> Backend::vifs() const {
  std::vector<VifId> ids;
  for (const auto& [id, v] : vifs_) ids.push_back(id);
  return ids;
}

}  // namespace pvnet
