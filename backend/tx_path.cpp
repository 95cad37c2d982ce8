// The TX path (guest -> dom0), in the shape of xenvif_tx_build_gops + xenvif_tx_submit: copy each request into
// private memory once, validate the packet's whole chain, take the header (memcpy out of a kept header slot; for
// plain netif a grant copy of up to 128 bytes, or under `map` a memcpy out of the mapped first page), let the
// payload policy add its payload operations, run ONE batched map and ONE batched grant copy for every vif of the
// poll, parse the private header copy, and hand the packet to the vif's sink.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <span>
#include <string>

#include "backend/vif.hpp"

namespace pvnet {

namespace {

// Linux xen-netback: a packet of more than XEN_NETBK_LEGACY_SLOTS_MAX (= XEN_NETIF_NR_SLOTS_MIN) slots is dropped
// with an error; one of fatal_skb_slots (20) or more is a protocol violation.
constexpr uint32_t kMaxSlotsPerPacket = netif::kNrSlotsMin;
constexpr uint32_t kFatalSlots = kTxFatalSlots;

enum class Chain { ok, incomplete, fatal };

}  // namespace

size_t Backend::tx_action() {
  TxScratch& scratch = *tx_scratch_;
  scratch.reset();
  TxBatch& batch = scratch.batch;
  std::vector<CopyOp>& copies = batch.copies;
  const PayloadPolicyTraits traits = payload_->traits();
  size_t work = 0;

  for (auto& [vid, vifp] : vifs_) {
    Vif& vif = *vifp;
    if (!vif.connected || vif.disabled) continue;
    auto& ring = *vif.tx;
    auto checked = ring.checked_req_prod();
    if (!checked) {
      fatal_tx_err(vif, "TX " + checked.error().reason);
      continue;
    }
    const ring::RingIdx prod = *checked;
    bool stalled = false, inflight_stalled = false;
    const auto now = std::chrono::steady_clock::now();
    vif.credit_stalled = false;

    for (uint32_t budget = options_.tx_budget; budget > 0; --budget) {
      const ring::RingIdx cons = ring.req_cons();
      const uint32_t avail = prod - cons;
      if (avail == 0) break;
      if (!vif.opts.sink->ready(vif.id)) {
        stalled = true;
        break;
      }
      if (vif.inflight >= options_.max_inflight_per_vif) {
        inflight_stalled = true;
        break;
      }

      // The chain: first request, its extras, its following pieces. Every field is read from a private copy.
      std::string why;
      Chain chain = Chain::ok;
      uint32_t idx = 0;
      const netif::TxRequest first = ring.copy_request(cons + idx++);
      std::array<netif::ExtraInfo, netif::extra_type::max> extras{};  // indexed by type - 1
      uint32_t n_extras = 0;
      if (first.flags & netif::txf::extra_info) {
        for (;;) {
          if (idx >= avail) { chain = Chain::incomplete; break; }
          const netif::TxRequest raw = ring.copy_request(cons + idx++);
          netif::ExtraInfo extra;
          static_assert(sizeof(extra) <= sizeof(raw));
          std::memcpy(&extra, &raw, sizeof(extra));
          ++n_extras;
          if (extra.type == netif::extra_type::none || extra.type >= netif::extra_type::max) {
            chain = Chain::fatal;
            why = "Invalid extra type: " + std::to_string(extra.type);
            break;
          }
          if (extras[extra.type - 1].type != netif::extra_type::none) {
            chain = Chain::fatal;
            why = "Repeated extra type: " + std::to_string(extra.type);
            break;
          }
          extras[extra.type - 1] = extra;
          if (!(extra.flags & netif::extra_flag::more)) break;
        }
      }
      std::array<netif::TxRequest, kFatalSlots - 1> pieces_buf;
      uint32_t n_pieces = 0;
      uint16_t flags = first.flags;
      while (chain == Chain::ok && (flags & netif::txf::more_data)) {
        if (1 + n_pieces >= kFatalSlots) {
          chain = Chain::fatal;
          why = "Too many slots (" + std::to_string(kFatalSlots) + " or more) in one packet";
          break;
        }
        if (idx >= avail) { chain = Chain::incomplete; break; }
        pieces_buf[n_pieces] = ring.copy_request(cons + idx++);
        flags = pieces_buf[n_pieces++].flags;
      }
      const std::span<const netif::TxRequest> pieces(pieces_buf.data(), n_pieces);
      if (chain == Chain::incomplete) {
        // A packet's requests are published together (netfront pushes whole packets); a chain that runs past
        // req_prod is what Linux reports as "Missing extra info" / "Asked for N slots but exceeds this limit".
        chain = Chain::fatal;
        why = "packet chain of " + std::to_string(idx) + "+ slots runs past req_prod (" + std::to_string(avail) +
              " published)";
      }
      if (chain == Chain::fatal) {
        fatal_tx_err(vif, why);
        break;
      }

      // Whole-chain checks (docs/protocol.md 4 "Errors", 5 "Backend checks").
      uint32_t rest = 0;
      for (const auto& p : pieces) {
        if (uint32_t{p.offset} + p.size > kPageSize) {
          why = "Cross page boundary, txp->offset: " + std::to_string(p.offset) + ", size: " + std::to_string(p.size);
          break;
        }
        rest += p.size;
      }
      // A first size smaller than the rest is what buggy frontends send: Linux netback drops the packet and keeps
      // the vif (drop_err in xenvif_count_requests), and so does pvnet (docs/protocol.md 4).
      const bool first_too_small = rest > first.size;
      const uint32_t first_len = why.empty() && !first_too_small ? first.size - rest : 0;
      if (why.empty() && uint32_t{first.offset} + first_len > kPageSize)
        why = "Cross page boundary, txp->offset: " + std::to_string(first.offset) +
              ", size: " + std::to_string(first_len);
      const bool slot = first.flags & netif::txf::header_slot;
      const KeptMapping* kept = nullptr;
      if (why.empty() && slot) {
        auto it = vif.kept.find(first.gref);
        if (!vif.header_slots)
          why = "header-slot request without negotiated header slots";
        else if (it == vif.kept.end())
          why = "header-slot gref " + std::to_string(first.gref.value) + " is not a kept mapping";
        else if (first.offset % vif.slot_size != 0)
          why = "header-slot offset " + std::to_string(first.offset) + " is not a multiple of " +
                std::to_string(vif.slot_size);
        else if (first_len > vif.slot_size)
          why = "header length " + std::to_string(first_len) + " exceeds the slot size " +
                std::to_string(vif.slot_size);
        else
          kept = &it->second;
      }
      const auto& gso_extra = extras[netif::extra_type::gso - 1];
      if (why.empty() && gso_extra.type == netif::extra_type::gso) {
        if (gso_extra.u.gso.size == 0) why = "GSO size must not be zero";
        else if (gso_extra.u.gso.type != netif::gso_type::tcpv4 && gso_extra.u.gso.type != netif::gso_type::tcpv6)
          why = "Bad GSO type " + std::to_string(gso_extra.u.gso.type);
      }
      if (!why.empty()) {
        fatal_tx_err(vif, why);
        break;
      }

      // Credit (netback's tx_credit_exceeded): out of credit, the packet stays on the ring until the timer.
      if (!vif.credit.take(first.size, now)) {
        vif.credit_stalled = true;
        break;
      }

      // The packet is well formed: take it off the ring.
      ring.advance_req_cons(idx);
      vif.counters.tx_requests += idx;
      work += idx;
      TxBuilt& b = scratch.next();
      b.vif = &vif;
      TxPacket& pkt = b.pkt;
      pkt.src = vif.id;
      pkt.src_dom = vif.fe_dom;
      pkt.len = first.size;
      pkt.tx_flags = first.flags & (netif::txf::csum_blank | netif::txf::data_validated);
      pkt.header_slot = slot;
      if (gso_extra.type == netif::extra_type::gso) pkt.gso = GsoInfo{gso_extra.u.gso.type, gso_extra.u.gso.size};
      auto& c = pkt.completion;
      c.src = vif.id;
      c.generation = vif.generation;
      c.len = first.size;
      c.slots.push_back(TxResponseSlot{first.id, false});
      for (uint32_t i = 0; i < n_extras; ++i) c.slots.push_back(TxResponseSlot{0, true});
      for (const auto& p : pieces) c.slots.push_back(TxResponseSlot{p.id, false});
      ++vif.counters.packets_in;
      vif.counters.bytes_in += first.size;

      // netif.h leaves ids to the frontend; one still in flight here would make its two answers ambiguous to the
      // guest. Odd, not fatal: dropped with an error (the guest only confuses itself), counted.
      // The bitset holds every id in flight, this packet's included as they are checked: a repeat within the packet
      // or of an older packet's id is found in one pass; on a repeat, this packet's ids are taken out again.
      bool dup_id = false;
      size_t checked_slots = 0;
      for (; checked_slots < c.slots.size(); ++checked_slots) {
        const TxResponseSlot& s = c.slots[checked_slots];
        if (s.extra) continue;
        if (vif.inflight_ids.test(s.id)) {
          dup_id = true;
          break;
        }
        vif.inflight_ids.set(s.id);
      }
      if (dup_id) {
        for (size_t i = 0; i < checked_slots; ++i)
          if (!c.slots[i].extra) vif.inflight_ids.reset(c.slots[i].id);
      } else {
        c.tracked = true;
        ++vif.inflight;
      }

      if (dup_id) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "dup_id";
      } else if (pieces.size() + 1 > kMaxSlotsPerPacket) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "too_many_slots";
      } else if (first_too_small) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "first_size_smaller_than_rest";
      } else if (first.size < kEthHdrLen) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "runt";
      } else if (kept) {
        // The header leaves the guest's slot here, before anyone parses it: the guest may rewrite the slot.
        pkt.header.resize(first_len);
        // An empty slot header (everything in the payload) is odd but legal; memcpy must not see a null vector.
    if (first_len != 0) std::memcpy(pkt.header.data(), kept->addr + first.offset, first_len);
        vif.counters.backend_memcpy_bytes += first_len;
        vif.counters.header_bytes += first_len;
        ++vif.counters.slots_used;
        ++vif.counters.tx_header_slot_packets;
      } else if (traits.map_first_page) {
        // The whole first piece is mapped with the payload; its header is memcpy'd out once the batch ran.
        pkt.header_from_frag0 = std::min(first_len, traits.plain_header_copy);
        ++vif.counters.tx_plain_packets;
        if (first_len != 0)
          pkt.frags.push_back(TxFrag{vif.fe_dom, first.gref, first.offset, static_cast<uint16_t>(first_len)});
      } else {
        const uint32_t hl = std::min(first_len, traits.plain_header_copy);
        pkt.header.resize(hl);
        if (hl != 0) {
          b.copy_op = copies.size();
          copies.push_back(copy_op(CopySide::gref(vif.fe_dom, first.gref, first.offset),
                                  CopySide::local(pkt.header.data()), hl));
        }
        ++vif.counters.tx_plain_packets;
        if (first_len > hl)
          pkt.frags.push_back(TxFrag{vif.fe_dom, first.gref, static_cast<uint16_t>(first.offset + hl),
                                     static_cast<uint16_t>(first_len - hl)});
      }
      for (const auto& p : pieces)
        if (p.size != 0) pkt.frags.push_back(TxFrag{vif.fe_dom, p.gref, p.offset, p.size});
    }

    if (stalled) ++vif.counters.tx_backpressure_stalls;
    if (inflight_stalled) ++vif.counters.tx_inflight_stalls;
    if (vif.credit_stalled) ++vif.counters.tx_credit_stalls;
    stalled = stalled || inflight_stalled || vif.credit_stalled;
    // Ring drained: re-arm req_event (RING_FINAL_CHECK_FOR_REQUESTS) so the frontend's next push notifies us.
    if (!stalled && !vif.disabled && ring.req_cons() == prod && ring.final_check_for_requests())
      ++work;  // more arrived meanwhile: poll again
  }

  // The policy's payload operations join the poll's batches (the headers' grant copies are already in).
  const std::span<TxBuilt> built(scratch.built.data(), scratch.used);
  for (auto& b : built)
    if (b.drop_status == 0) payload_->prepare(b.pkt, b.vif->opts.sink->reads_payload(), batch);
  // One map and one grant copy for the whole poll.
  if (!batch.maps.empty()) dom0_.mapper().map(batch.maps);
  if (!copies.empty()) dom0_.mapper().copy(copies);
  payload_->batch_done(batch);

  for (auto& b : built) {
    Vif& vif = *b.vif;
    TxPacket& pkt = b.pkt;
    if (b.drop_status == 0 && b.copy_op != SIZE_MAX) {
      if (copies[b.copy_op].status != GntSt::okay) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "bad_header_grant";
      } else {
        vif.counters.header_bytes += pkt.header.size();
      }
    }
    if (b.drop_status == 0) {
      if (auto ok = payload_->resolve(pkt, batch); !ok) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = pkt.header_from_frag0 ? "bad_header_grant" : "bad_payload_grant";
      }
    }
    if (b.drop_status == 0 && pkt.header_from_frag0 != 0) {
      // The header leaves the mapped guest page here, before anyone parses it: the guest may rewrite the page.
      TxFrag& f0 = pkt.frags.front();
      const uint32_t hl = pkt.header_from_frag0;
      pkt.header.resize(hl);
      std::memcpy(pkt.header.data(), f0.data, hl);
      vif.counters.backend_memcpy_bytes += hl;
      vif.counters.header_bytes += hl;
      pkt.header_from_frag0 = 0;
      if (f0.len == hl) {
        pkt.frags.erase(pkt.frags.begin());  // still unmapped by end_poll: the policy holds its handle
      } else {
        f0.offset = static_cast<uint16_t>(f0.offset + hl);
        f0.len = static_cast<uint16_t>(f0.len - hl);
        f0.data += hl;
      }
    }
    if (b.drop_status == 0) {
      pkt.hdr = parse_headers(pkt.header);
      // The MTU bounds the L3 packet of a non-GSO frame; a GSO super-frame is bounded by the 16-bit size.
      const uint32_t l2 = std::max<uint32_t>(pkt.hdr.l2_len, kEthHdrLen);
      if (!pkt.gso.present() && pkt.len > l2 && pkt.len - l2 > vif.opts.mtu) {
        b.drop_status = netif::rsp::error;
        b.drop_reason = "over_mtu";
      }
    }
    if (b.drop_status != 0) {
      complete_tx(vif, pkt.completion, b.drop_status, b.drop_reason);
      continue;
    }
    if (pkt.gso.present()) ++vif.counters.tx_gso_packets;
    vif.counters.tx_frags += pkt.frags.size();
    // On done the sink left the packet (its completion) here; on held it moved it away and answers later.
    SinkResult r = vif.opts.sink->consume(pkt, *payload_, vif.counters);
    if (r.kind == SinkResult::Kind::done) complete_tx(vif, pkt.completion, r.status, r.drop_reason);
  }
  return work;
}

}  // namespace pvnet
