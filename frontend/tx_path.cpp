// netfront TX: a frame given as pieces of guest memory becomes one packet of netif requests (docs/protocol.md 4
// and 5): with header slots, the headers are copied into a slot and the rest is granted read-only page by page;
// without, the first request is the first page piece (Linux netfront's xennet_start_xmit).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "frontend/netfront.hpp"
#include "frontend/tx_plan.hpp"

namespace pvnet {

namespace {
// Worst of a packet's response statuses: ERROR over DROPPED over OKAY; anything unknown counts as ERROR.
int16_t worse(int16_t a, int16_t b) {
  auto rank = [](int16_t s) {
    if (s == netif::rsp::okay) return 0;
    if (s == netif::rsp::dropped) return 1;
    return 2;
  };
  if (rank(b) > rank(a)) return b == netif::rsp::dropped || b == netif::rsp::okay ? b : netif::rsp::error;
  return a;
}
}  // namespace

uint32_t Netfront::tx_free_requests() const { return tx_ ? tx_->free_requests() : 0; }

TxStatus Netfront::tx_refuse(TxStatus s, std::string reason) {
  last_error_ = std::move(reason);
  if (s == TxStatus::kBusy) ++counters_.tx_busy;
  if (s == TxStatus::kInvalid) ++counters_.tx_invalid;
  return s;
}

// xennet_start_xmit: cut the frame into page pieces, plan the packet (plan_tx, pure), reserve everything it needs
// so that nothing is ever half-posted, linearise and grant its payload, then emit its requests.
TxStatus Netfront::transmit(std::span<const TxPiece> pieces, const TxOptions& o) {
  if (state_ != NetfrontState::kConnected || !tx_) return tx_refuse(TxStatus::kNotConnected, "not connected");
  if (auto cut = tx_cut_pieces(pieces); !cut) return tx_refuse(TxStatus::kInvalid, cut.error().reason);
  const TxCaps caps{slots_active_ && slots_.has_value(), config_.slot_size, be_sg_, be_gso_v4_, be_gso_v6_};
  TxPlan& plan = tx_plan_;
  auto planned = plan_tx(segs_, o.gso_type, o.gso_size, caps, plan);
  counters_.frontend_copy_bytes += plan.gathered;
  if (!planned) return tx_refuse(TxStatus::kInvalid, planned.error().reason);
  auto pooled = tx_reserve(plan);
  if (!pooled) return tx_refuse(TxStatus::kBusy, pooled.error().reason);
  if (plan.linearise) tx_linearise(plan);
  if (auto granted = tx_grant_payload(plan, *pooled); !granted) return tx_refuse(TxStatus::kBusy, granted.error().reason);
  tx_emit(plan, o, *pooled);
  if (!o.defer_push) flush();
  return TxStatus::kQueued;
}

// The frame as page pieces (segs_): one request per page piece at most.
Result<void> Netfront::tx_cut_pieces(std::span<const TxPiece> pieces) {
  GuestMemory& mem = platform_.memory();
  segs_.clear();
  for (const TxPiece& p : pieces) {
    if (p.offset >= kPageSize) return make_error(EINVAL, "piece offset outside its page");
    uint64_t left = p.len;
    uint64_t pfn = p.pfn.value;
    uint32_t off = p.offset;
    while (left > 0) {
      auto page = mem.page(Pfn{pfn});
      if (page.empty()) return make_error(EINVAL, "piece outside guest memory");
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(left, kPageSize - off));
      segs_.push_back(Seg{Pfn{pfn}, static_cast<uint16_t>(off), static_cast<uint16_t>(n), page.data() + off});
      left -= n;
      off = 0;
      ++pfn;
    }
  }
  return {};
}

// Back-pressure: everything the plan needs, checked before anything is touched. The linearisation pages are
// taken here; the answer says whether the grants come from netfront's reserved references.
Result<bool> Netfront::tx_reserve(const TxPlan& plan) {
  if (tx_->free_requests() < plan.n_ring || tx_free_ids_.size() < plan.n_data || tx_free_frames_.empty())
    return make_error(EBUSY, "TX ring full");
  if (plan.use_slot && slots_->in_use() == slots_->capacity()) return make_error(EBUSY, "no free header slot");
  if (pool_.free_pages() < plan.n_linear) return make_error(EBUSY, "no pages to linearise into");
  const bool pooled = plan.n_grants > 0 && tx_grefs_ready(plan.n_grants);
  if (plan.n_grants > 0 && !pooled && (tx_gref_pool_ok_ || platform_.grant_table().free_count() < plan.n_grants))
    return make_error(EBUSY, "grant table full");
  linear_pages_.clear();
  for (uint32_t i = 0; i < plan.n_linear; ++i) linear_pages_.push_back(*pool_.alloc_page());
  return pooled;
}

// The payload copied into the reserved pages, which become the payload pieces.
void Netfront::tx_linearise(TxPlan& plan) {
  uint64_t at = 0;
  for (const Seg& s : plan.payload) {
    for (uint32_t done = 0; done < s.len;) {
      const uint32_t in_page = static_cast<uint32_t>(at % kPageSize);
      const uint32_t n = std::min<uint32_t>(s.len - done, kPageSize - in_page);
      std::memcpy(pool_.page(linear_pages_[at / kPageSize]).data() + in_page, s.data + done, n);
      done += n;
      at += n;
    }
  }
  plan.payload.clear();
  for (uint32_t i = 0; i < plan.n_linear; ++i) {
    const uint64_t len = std::min<uint64_t>(kPageSize, plan.payload_bytes - uint64_t{i} * kPageSize);
    plan.payload.push_back(Seg{linear_pages_[i], 0, static_cast<uint16_t>(len), nullptr});
  }
  ++counters_.tx_linearised;
  counters_.tx_linearised_bytes += plan.payload_bytes;
  counters_.frontend_copy_bytes += plan.payload_bytes;
}

// Every payload piece granted read-only (new_grants_). A failure here (table full after all) rolls everything back.
Result<void> Netfront::tx_grant_payload(const TxPlan& plan, bool pooled) {
  new_grants_.clear();
  for (const Seg& s : plan.payload) {
    if (pooled) {
      const GrantRef r = tx_gref_pool_.back();
      tx_gref_pool_.pop_back();
      platform_.grant_table().grant_access_ref(r, be_id_, s.pfn, /*readonly=*/true);
      new_grants_.push_back(r);
      continue;
    }
    auto g = platform_.grant_table().grant_access(be_id_, s.pfn, /*readonly=*/true);
    if (!g) {
      for (GrantRef r : new_grants_) (void)platform_.grant_table().end_access(r);
      for (Pfn p : linear_pages_) pool_.free_page(p);
      return make_error(g.error().code, "grant_access: " + g.error().reason);
    }
    new_grants_.push_back(*g);
  }
  return {};
}

// The packet's requests on the ring (not yet pushed): the first (a header slot or the first payload piece), the
// GSO extra, the following pieces; each data request takes an id that remembers what to release on its response.
void Netfront::tx_emit(const TxPlan& plan, const TxOptions& o, bool pooled) {
  const uint16_t frame = tx_free_frames_.back();
  tx_free_frames_.pop_back();
  tx_frames_[frame] = TxFrameState{o.cookie, plan.total, static_cast<uint16_t>(plan.n_data),
                                   static_cast<uint16_t>(plan.n_grants), netif::rsp::okay};
  counters_.grants_in_use += plan.n_grants;
  counters_.tx_grants += plan.n_grants;
  const size_t next_payload = tx_emit_first(plan, o, frame, pooled);
  if (plan.gso) {
    netif::ExtraInfo extra{};
    extra.type = netif::extra_type::gso;
    extra.u.gso.size = o.gso_size;
    extra.u.gso.type = o.gso_type;
    netif::TxRequest slot{};
    static_assert(sizeof(extra) <= sizeof(slot));
    std::memcpy(static_cast<void*>(&slot), &extra, sizeof(extra));
    tx_->produce_request(slot);
    ++counters_.tx_gso_packets;
  }
  for (size_t i = next_payload; i < plan.payload.size(); ++i) {
    const Seg& s = plan.payload[i];
    const uint16_t id = tx_take_id(frame);
    tx_req_[id].grant = TxReqState::Grant{new_grants_[i], pooled};
    if (plan.linearise) tx_req_[id].linear = s.pfn;
    netif::TxRequest r{};
    r.gref = new_grants_[i];
    r.offset = s.offset;
    r.flags = i + 1 < plan.payload.size() ? netif::txf::more_data : 0;
    r.id = id;
    r.size = s.len;
    tx_->produce_request(r);
  }
  ++counters_.tx_packets;
  counters_.tx_bytes += plan.total;
  counters_.tx_requests += plan.n_data;
}

uint16_t Netfront::tx_take_id(uint16_t frame) {
  const uint16_t id = tx_free_ids_.back();
  tx_free_ids_.pop_back();
  tx_req_[id] = TxReqState{};
  tx_req_[id].in_flight = true;
  tx_req_[id].frame = frame;
  return id;
}

// The first request: the headers copied into a free slot, or the first payload piece. Returns the payload pieces
// it used (0 or 1).
size_t Netfront::tx_emit_first(const TxPlan& plan, const TxOptions& o, uint16_t frame, bool pooled) {
  uint16_t flags = 0;
  if (plan.n_data > 1) flags |= netif::txf::more_data;
  if (plan.gso) flags |= netif::txf::extra_info | netif::txf::csum_blank | netif::txf::data_validated;
  if (o.csum_blank) flags |= netif::txf::csum_blank;
  if (o.data_validated) flags |= netif::txf::data_validated;
  netif::TxRequest first{};
  const uint16_t id = tx_take_id(frame);
  first.id = id;
  first.size = static_cast<uint16_t>(plan.total);
  size_t used = 0;
  if (plan.use_slot) {
    const SlotIndex slot = *slots_->alloc();
    const SlotLocation loc = geometry_->locate(slot);
    std::byte* dst = pool_.page(slot_pages_[loc.page_index].pfn).data() + loc.offset;
    uint32_t got = 0;
    for (const Seg& s : segs_) {
      const uint32_t n = std::min<uint32_t>(s.len, plan.hdr_len - got);
      std::memcpy(dst + got, s.data, n);
      got += n;
      if (got == plan.hdr_len) break;
    }
    counters_.frontend_copy_bytes += plan.hdr_len;
    counters_.slots_in_use = slots_->in_use();
    tx_req_[id].slot = slot;
    first.gref = slot_pages_[loc.page_index].gref;
    first.offset = loc.offset;
    first.flags = flags | netif::txf::header_slot;
    ++counters_.tx_slot_packets;
    if (plan.n_data == 1) ++counters_.tx_whole_in_slot;
  } else {
    const Seg& s = plan.payload[0];
    tx_req_[id].grant = TxReqState::Grant{new_grants_[0], pooled};
    if (plan.linearise) tx_req_[id].linear = s.pfn;
    first.gref = new_grants_[0];
    first.offset = s.offset;
    first.flags = flags;
    used = 1;
    ++counters_.tx_plain_packets;
  }
  tx_->produce_request(first);
  return used;
}

void Netfront::flush() {
  if (tx_ && tx_->push_requests_and_check_notify() && tx_port_) notify(*tx_port_);
}

bool Netfront::process_tx() {
  bool progress = false;
  do {
    const ring::RingIdx prod = tx_->rsp_prod();
    if (tx_->response_prod_overflow(prod)) {
      ++counters_.bad_responses;  // a broken backend: stop looking at this ring
      return progress;
    }
    while (tx_->rsp_cons() != prod) {
      const netif::TxResponse rsp = tx_->consume_response();
      progress = true;
      if (rsp.status == netif::rsp::null) continue;  // the slot of an extra-info
      if (rsp.id >= netif::kTxRingSizeMax || !tx_req_[rsp.id].in_flight) {
        ++counters_.bad_responses;
        continue;
      }
      tx_request_done(rsp.id, rsp.status);
    }
  } while (tx_->final_check_for_responses());
  return progress;
}

void Netfront::tx_frame_grant_done(uint16_t frame) {
  --tx_frames_[frame].grants_pending;
  maybe_complete_tx_frame(frame);
}

void Netfront::maybe_complete_tx_frame(uint16_t frame) {
  TxFrameState& f = tx_frames_[frame];
  if (f.responses_pending != 0 || f.grants_pending != 0) return;
  ++counters_.tx_completed;
  if (f.status == netif::rsp::dropped) ++counters_.tx_dropped;
  else if (f.status != netif::rsp::okay) ++counters_.tx_errors;
  tx_done_queue_.push_back(TxDone{f.cookie, f.status, f.bytes});
  tx_free_frames_.push_back(frame);
}

// Teardown with requests still on the ring: they will get no response; the frames complete as DROPPED once the
// backend lets go of their grants.
void Netfront::tx_drop_in_flight() {
  for (uint16_t id = 0; id < netif::kTxRingSizeMax; ++id)
    if (tx_req_[id].in_flight) tx_request_done(id, netif::rsp::dropped);
}

// A TX request is done, answered with `status` or dropped at teardown: its id and slot go back at once, its grant
// once the backend no longer uses it; the frame completes with its last request and grant.
void Netfront::tx_request_done(uint16_t id, int16_t status) {
  const TxReqState st = tx_req_[id];
  tx_req_[id].in_flight = false;
  tx_free_ids_.push_back(id);
  TxFrameState& f = tx_frames_[st.frame];
  f.status = worse(f.status, status);
  if (st.slot && slots_) {
    (void)slots_->free(*st.slot);
    counters_.slots_in_use = slots_->in_use();
  }
  --f.responses_pending;
  if (st.grant) {
    end_grant(st.grant->gref, KeptGrant{GrantRef{}, st.linear, st.frame, -1, st.grant->reserved});
  } else {
    maybe_complete_tx_frame(st.frame);
  }
}

}  // namespace pvnet
