// netfront TX: a frame given as pieces of guest memory becomes one packet of netif requests (docs/protocol.md 4
// and 5): with header slots, the headers are copied into a slot and the rest is granted read-only page by page;
// without, the first request is the first page piece (Linux netfront's xennet_start_xmit).
#include <algorithm>
#include <cstring>
#include <string>

#include "frontend/netfront.hpp"
#include "shared-ring/packet_headers.hpp"

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

TxStatus Netfront::transmit(std::span<const TxPiece> pieces, const TxOptions& o) {
  if (state_ != NetfrontState::kConnected || !tx_) return tx_refuse(TxStatus::kNotConnected, "not connected");

  // Cut the frame at page boundaries: one request per page piece.
  GuestMemory& mem = platform_.memory();
  segs_.clear();
  uint64_t total = 0;
  for (const TxPiece& p : pieces) {
    if (p.offset >= kPageSize) return tx_refuse(TxStatus::kInvalid, "piece offset outside its page");
    uint64_t left = p.len;
    uint64_t pfn = p.pfn.value;
    uint32_t off = p.offset;
    while (left > 0) {
      auto page = mem.page(Pfn{pfn});
      if (page.empty()) return tx_refuse(TxStatus::kInvalid, "piece outside guest memory");
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(left, kPageSize - off));
      segs_.push_back(Seg{Pfn{pfn}, static_cast<uint16_t>(off), static_cast<uint16_t>(n), page.data() + off});
      left -= n;
      total += n;
      off = 0;
      ++pfn;
    }
  }
  if (total == 0 || total > netif::kMaxTxSize)
    return tx_refuse(TxStatus::kInvalid, "frame of " + std::to_string(total) + " B: netif carries 1..65535");
  const bool gso = o.gso_type != netif::gso_type::none;
  if (gso) {
    const bool offered = (o.gso_type == netif::gso_type::tcpv4 && be_gso_v4_) ||
                         (o.gso_type == netif::gso_type::tcpv6 && be_gso_v6_);
    if (!offered || o.gso_size == 0)
      return tx_refuse(TxStatus::kInvalid, "GSO type not offered by the backend, or MSS 0");
  }

  // Header slot: how many header bytes go into it.
  bool use_slot = slots_active_ && slots_.has_value();
  const uint32_t S = config_.slot_size;
  uint32_t hdr_len = 0;
  if (use_slot) {
    if (total <= S) {
      hdr_len = static_cast<uint32_t>(total);  // the whole frame travels in its slot
    } else {
      // Parse what fits in a slot; the usual frame has it all in its first piece. Headers longer than the slot
      // (or a frame the parser cannot finish within it) fill the slot; the rest goes as payload.
      std::array<std::byte, netif::kHeaderSlotSizeMax> gather;
      std::span<const std::byte> view;
      if (segs_[0].len >= S) {
        view = {segs_[0].data, S};
      } else {
        uint32_t got = 0;
        for (const Seg& s : segs_) {
          const uint32_t n = std::min<uint32_t>(s.len, S - got);
          std::memcpy(gather.data() + got, s.data, n);
          got += n;
          if (got == S) break;
        }
        view = {gather.data(), S};
        counters_.frontend_copy_bytes += S;  // a scattered header is gathered once to be parsed
      }
      const HeaderInfo info = parse_headers(view);
      hdr_len = info.ok() && info.header_len > 0 ? info.header_len : S;
    }
  }

  // Without feature-sg the backend takes one request per packet: a frame of one page at most, linearised.
  bool single_only = !be_sg_;
  if (single_only && use_slot && total > S) use_slot = false;
  if (single_only && total > kPageSize)
    return tx_refuse(TxStatus::kInvalid, "backend lacks feature-sg: frames above one page cannot be sent");

  // Payload page pieces: what follows the slot, or the whole frame in plain netif.
  payload_segs_.clear();
  {
    uint32_t skip = use_slot ? hdr_len : 0;
    for (const Seg& s : segs_) {
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      payload_segs_.push_back(Seg{s.pfn, static_cast<uint16_t>(s.offset + skip), static_cast<uint16_t>(s.len - skip),
                                  s.data + skip});
      skip = 0;
    }
  }
  uint64_t payload_bytes = 0;
  for (const Seg& s : payload_segs_) payload_bytes += s.len;
  uint32_t n_data = (use_slot ? 1 : 0) + static_cast<uint32_t>(payload_segs_.size());
  // Never more than XEN_NETIF_NR_SLOTS_MIN requests: a backend need not accept more (netback's fatal_tx_err).
  const bool linearise = n_data > netif::kNrSlotsMin || (single_only && n_data > 1);
  uint32_t n_linear = 0;
  if (linearise) {
    n_linear = static_cast<uint32_t>((payload_bytes + kPageSize - 1) / kPageSize);
    n_data = (use_slot ? 1 : 0) + n_linear;
  }
  const uint32_t n_grants = linearise ? n_linear : static_cast<uint32_t>(payload_segs_.size());
  const uint32_t n_ring = n_data + (gso ? 1 : 0);

  // Back-pressure: check everything before touching anything, so nothing is ever half-posted.
  if (tx_->free_requests() < n_ring || tx_free_ids_.size() < n_data || tx_free_frames_.empty())
    return tx_refuse(TxStatus::kBusy, "TX ring full");
  if (use_slot && slots_->in_use() == slots_->capacity()) return tx_refuse(TxStatus::kBusy, "no free header slot");
  if (pool_.free_pages() < n_linear) return tx_refuse(TxStatus::kBusy, "no pages to linearise into");
  const bool pooled = n_grants > 0 && tx_grefs_ready(n_grants);
  if (n_grants > 0 && !pooled && (tx_gref_pool_ok_ || platform_.grant_table().free_count() < n_grants))
    return tx_refuse(TxStatus::kBusy, "grant table full");

  linear_pages_.clear();
  for (uint32_t i = 0; i < n_linear; ++i) linear_pages_.push_back(*pool_.alloc_page());
  if (linearise) {
    uint64_t at = 0;
    for (const Seg& s : payload_segs_) {
      for (uint32_t done = 0; done < s.len;) {
        const uint32_t in_page = static_cast<uint32_t>(at % kPageSize);
        const uint32_t n = std::min<uint32_t>(s.len - done, kPageSize - in_page);
        std::memcpy(pool_.page(linear_pages_[at / kPageSize]).data() + in_page, s.data + done, n);
        done += n;
        at += n;
      }
    }
    payload_segs_.clear();
    for (uint32_t i = 0; i < n_linear; ++i) {
      const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kPageSize, payload_bytes - uint64_t{i} * kPageSize));
      payload_segs_.push_back(Seg{linear_pages_[i], 0, static_cast<uint16_t>(len), nullptr});
    }
    ++counters_.tx_linearised;
    counters_.tx_linearised_bytes += payload_bytes;
    counters_.frontend_copy_bytes += payload_bytes;
  }

  // Grant every payload piece read-only. A failure here (table full after all) rolls everything back.
  new_grants_.clear();
  for (const Seg& s : payload_segs_) {
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
      return tx_refuse(TxStatus::kBusy, "grant_access: " + g.error().reason);
    }
    new_grants_.push_back(*g);
  }

  const uint16_t frame = tx_free_frames_.back();
  tx_free_frames_.pop_back();
  tx_frames_[frame] = TxFrameState{o.cookie, static_cast<uint32_t>(total), static_cast<uint16_t>(n_data),
                                   static_cast<uint16_t>(n_grants), netif::rsp::okay};
  counters_.grants_in_use += n_grants;
  counters_.tx_grants += n_grants;

  auto take_id = [&]() {
    const uint16_t id = tx_free_ids_.back();
    tx_free_ids_.pop_back();
    tx_req_[id] = TxReqState{};
    tx_req_[id].in_flight = true;
    tx_req_[id].frame = frame;
    return id;
  };

  uint16_t first_flags = 0;
  if (n_data > 1) first_flags |= netif::txf::more_data;
  if (gso) first_flags |= netif::txf::extra_info | netif::txf::csum_blank | netif::txf::data_validated;
  if (o.csum_blank) first_flags |= netif::txf::csum_blank;
  if (o.data_validated) first_flags |= netif::txf::data_validated;

  size_t next_payload = 0;
  {
    netif::TxRequest first{};
    const uint16_t id = take_id();
    first.id = id;
    first.size = static_cast<uint16_t>(total);
    if (use_slot) {
      const SlotIndex slot = *slots_->alloc();
      const SlotLocation loc = geometry_->locate(slot);
      std::byte* dst = pool_.page(slot_pages_[loc.page_index].pfn).data() + loc.offset;
      uint32_t got = 0;
      for (const Seg& s : segs_) {
        const uint32_t n = std::min<uint32_t>(s.len, hdr_len - got);
        std::memcpy(dst + got, s.data, n);
        got += n;
        if (got == hdr_len) break;
      }
      counters_.frontend_copy_bytes += hdr_len;
      counters_.slots_in_use = slots_->in_use();
      tx_req_[id].has_slot = true;
      tx_req_[id].slot = slot;
      first.gref = slot_pages_[loc.page_index].gref;
      first.offset = loc.offset;
      first.flags = first_flags | netif::txf::header_slot;
      ++counters_.tx_slot_packets;
      if (n_data == 1) ++counters_.tx_whole_in_slot;
    } else {
      const Seg& s = payload_segs_[0];
      tx_req_[id].has_grant = true;
      tx_req_[id].reserved_gref = pooled;
      tx_req_[id].gref = new_grants_[0];
      if (linearise) {
        tx_req_[id].has_linear = true;
        tx_req_[id].linear = s.pfn;
      }
      first.gref = new_grants_[0];
      first.offset = s.offset;
      first.flags = first_flags;
      next_payload = 1;
      ++counters_.tx_plain_packets;
    }
    tx_->produce_request(first);
  }
  if (gso) {
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
  for (size_t i = next_payload; i < payload_segs_.size(); ++i) {
    const Seg& s = payload_segs_[i];
    const uint16_t id = take_id();
    tx_req_[id].has_grant = true;
    tx_req_[id].reserved_gref = pooled;
    tx_req_[id].gref = new_grants_[i];
    if (linearise) {
      tx_req_[id].has_linear = true;
      tx_req_[id].linear = s.pfn;
    }
    netif::TxRequest r{};
    r.gref = new_grants_[i];
    r.offset = s.offset;
    r.flags = i + 1 < payload_segs_.size() ? netif::txf::more_data : 0;
    r.id = id;
    r.size = s.len;
    tx_->produce_request(r);
  }

  ++counters_.tx_packets;
  counters_.tx_bytes += total;
  counters_.tx_requests += n_data;
  if (!o.defer_push) flush();
  return TxStatus::kQueued;
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
  if (st.has_slot && slots_) {
    (void)slots_->free(st.slot);
    counters_.slots_in_use = slots_->in_use();
  }
  --f.responses_pending;
  if (st.has_grant) {
    end_grant(st.gref, KeptGrant{GrantRef{}, st.has_linear ? std::optional<Pfn>(st.linear) : std::nullopt,
                                 st.frame, -1, st.reserved_gref});
  } else {
    maybe_complete_tx_frame(st.frame);
  }
}

}  // namespace pvnet
