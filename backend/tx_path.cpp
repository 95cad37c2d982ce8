// The TX path (guest -> dom0), in the shape of xenvif_tx_build_gops + xenvif_tx_check_gop + xenvif_tx_submit:
// for each vif, take packets off its ring (tx_build: read_tx_chain, check_tx_chain, credit, claim_request_ids,
// build_tx_packet, all on private copies of the requests), then run ONE batched map and ONE batched grant copy for
// every vif of the poll (run_tx_batch: the headers' copies and the payload policy's operations), then check each
// packet's operations, parse its private header copy and hand it to its vif's sink (finish_tx_packet).
// The judgement itself (which chain is a violation, which packet a drop) is in tx_stages.cpp, pure.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <span>
#include <variant>

#include "backend/tx_stages.hpp"
#include "backend/vif.hpp"

namespace pvnet {

size_t Backend::tx_action() {
  TxScratch& scratch = *tx_scratch_;
  scratch.reset();
  size_t work = 0;
  for (auto& [vid, vifp] : vifs_)
    if (vifp->connected && !vifp->disabled) work += tx_build(*vifp, scratch);
  run_tx_batch(scratch);
  for (TxBuilt& b : std::span<TxBuilt>(scratch.built.data(), scratch.used)) finish_tx_packet(b, scratch.batch);
  return work;
}

// One vif's ring this poll: packets up to the budget, until the ring is empty or something holds it back (a busy
// sink, the in-flight cap, credit) or the frontend breaks the protocol.
size_t Backend::tx_build(Vif& vif, TxScratch& scratch) {
  auto& ring = *vif.tx;
  auto checked = ring.checked_req_prod();
  if (!checked) {
    fatal_protocol_error(vif, ProtocolRing::tx, checked.error().reason);
    return 0;
  }
  const ring::RingIdx prod = *checked;
  const auto now = std::chrono::steady_clock::now();
  vif.credit_stalled = false;
  size_t work = 0;
  TxStop stop = TxStop::taken;
  for (uint32_t budget = options_.tx_budget; budget > 0 && stop == TxStop::taken; --budget)
    stop = tx_take_packet(vif, prod, now, scratch, work);

  if (stop == TxStop::sink_busy) ++vif.counters.tx_backpressure_stalls;
  if (stop == TxStop::inflight_full) ++vif.counters.tx_inflight_stalls;
  if (stop == TxStop::credit) {
    vif.credit_stalled = true;  // the timer resumes it
    ++vif.counters.tx_credit_stalls;
  }
  const bool stalled = stop == TxStop::sink_busy || stop == TxStop::inflight_full || stop == TxStop::credit;
  // Ring drained: re-arm req_event (RING_FINAL_CHECK_FOR_REQUESTS) so the frontend's next push notifies us.
  if (!stalled && !vif.disabled && ring.req_cons() == prod && ring.final_check_for_requests())
    ++work;  // more arrived meanwhile: poll again
  return work;
}

// The packet at req_cons: read and checked whole before it is taken off the ring; a violation disables the vif.
Backend::TxStop Backend::tx_take_packet(Vif& vif, ring::RingIdx prod, std::chrono::steady_clock::time_point now,
                                        TxScratch& scratch, size_t& work) {
  auto& ring = *vif.tx;
  const ring::RingIdx cons = ring.req_cons();
  const uint32_t avail = prod - cons;
  if (avail == 0) return TxStop::drained;
  if (!vif.opts.sink->ready(vif.id)) return TxStop::sink_busy;
  if (vif.inflight >= options_.max_inflight_per_vif) return TxStop::inflight_full;

  auto read = read_tx_chain(ring, cons, avail);
  if (const auto* incomplete = std::get_if<TxChainIncomplete>(&read)) read = past_req_prod(*incomplete, avail);
  if (const auto* v = std::get_if<Violation>(&read)) {
    fatal_protocol_error(vif, ProtocolRing::tx, v->why);
    return TxStop::violation;
  }
  const TxChain& chain = std::get<TxChain>(read);
  auto checked = check_tx_chain(chain, TxVifRules{vif.header_slots, vif.slot_size, &vif.kept});
  if (!checked) {
    fatal_protocol_error(vif, ProtocolRing::tx, checked.error().reason);
    return TxStop::violation;
  }
  // Credit (netback's tx_credit_exceeded): out of credit, the packet stays on the ring until the timer.
  if (!vif.credit.take(chain.first.size, now)) return TxStop::credit;

  // The packet is well formed: take it off the ring.
  ring.advance_req_cons(chain.slots());
  vif.counters.tx_requests += chain.slots();
  work += chain.slots();
  build_tx_packet(vif, chain, *checked, scratch);
  return TxStop::taken;
}

// The packet as the sink will see it: who to answer, its header on its way into private memory, its payload as
// grant references. A repeated id or an odd packet is built only as far as its answer (dropped, counted).
void Backend::build_tx_packet(Vif& vif, const TxChain& chain, const TxChecked& checked, TxScratch& scratch) {
  TxBuilt& b = scratch.next();
  b.vif = &vif;
  TxPacket& pkt = b.pkt;
  const netif::TxRequest& first = chain.first;
  pkt.src = vif.id;
  pkt.src_dom = vif.fe_dom;
  pkt.len = first.size;
  pkt.tx_flags = first.flags & (netif::txf::csum_blank | netif::txf::data_validated);
  pkt.header_slot = first.flags & netif::txf::header_slot;
  if (auto gso = chain.gso()) pkt.gso = *gso;
  TxCompletion& c = pkt.completion;
  c.src = vif.id;
  c.generation = vif.generation;
  fill_tx_completion(chain, c);
  ++vif.counters.packets_in;
  vif.counters.bytes_in += first.size;

  // A repeated id is odd, not fatal: dropped with an error (the guest only confuses itself), counted.
  if (!claim_request_ids(vif.inflight_ids, c)) {
    b.drop = DropReason::dup_id;
    return;
  }
  c.tracked = true;
  ++vif.inflight;
  b.drop = tx_drop_reason(chain, checked);
  if (b.drop) return;
  take_tx_header(vif, b, chain, checked, scratch.batch.copies);
  for (const auto& p : chain.pieces)
    if (p.size != 0) pkt.frags.push_back(TxFrag{vif.fe_dom, p.gref, p.offset, p.size});
}

// The header leaves the guest here or in the poll's batch, before anyone parses it (the guest may rewrite its
// pages): a memcpy out of the kept slot; under `map` out of the mapped first page once the batch ran; else a grant
// copy of up to plain_header_copy bytes, joining the poll's copy batch. The rest of the first piece is payload.
void Backend::take_tx_header(Vif& vif, TxBuilt& b, const TxChain& chain, const TxChecked& checked,
                             std::vector<CopyOp>& copies) {
  TxPacket& pkt = b.pkt;
  const netif::TxRequest& first = chain.first;
  const uint32_t first_len = checked.first_len;
  const PayloadPolicyTraits traits = payload_->traits();
  if (checked.kept) {
    pkt.header.resize(first_len);
    // An empty slot header (everything in the payload) is odd but legal; memcpy must not see a null vector.
    if (first_len != 0) std::memcpy(pkt.header.data(), checked.kept->addr + first.offset, first_len);
    vif.counters.backend_memcpy_bytes += first_len;
    vif.counters.header_bytes += first_len;
    ++vif.counters.slots_used;
    ++vif.counters.tx_header_slot_packets;
    return;
  }
  ++vif.counters.tx_plain_packets;
  if (traits.map_first_page) {
    // The whole first piece is mapped with the payload; its header is memcpy'd out once the batch ran.
    pkt.header_from_frag0 = std::min(first_len, traits.plain_header_copy);
    if (first_len != 0)
      pkt.frags.push_back(TxFrag{vif.fe_dom, first.gref, first.offset, static_cast<uint16_t>(first_len)});
    return;
  }
  const uint32_t hl = std::min(first_len, traits.plain_header_copy);
  pkt.header.resize(hl);
  if (hl != 0) {
    b.copy_op = copies.size();
    copies.push_back(copy_op(CopySide::gref(vif.fe_dom, first.gref, first.offset), CopySide::local(pkt.header.data()),
                             hl));
  }
  if (first_len > hl)
    pkt.frags.push_back(TxFrag{vif.fe_dom, first.gref, static_cast<uint16_t>(first.offset + hl),
                               static_cast<uint16_t>(first_len - hl)});
}

// The policy's payload operations join the poll's batches (the headers' grant copies are already in), then one
// map and one grant copy for the whole poll.
void Backend::run_tx_batch(TxScratch& scratch) {
  TxBatch& batch = scratch.batch;
  for (TxBuilt& b : std::span<TxBuilt>(scratch.built.data(), scratch.used))
    if (!b.drop) payload_->prepare(b.pkt, b.vif->opts.sink->reads_payload(), batch);
  if (!batch.maps.empty()) dom0_.mapper().map(batch.maps);
  if (!batch.copies.empty()) dom0_.mapper().copy(batch.copies);
  payload_->batch_done(batch);
}

namespace {

// Under `map`, plain netif: the header bytes leave the mapped guest page here, before anyone parses them.
void header_out_of_frag0(TxPacket& pkt, BackendCounters& counters) {
  TxFrag& f0 = pkt.frags.front();
  const uint32_t hl = pkt.header_from_frag0;
  pkt.header.resize(hl);
  std::memcpy(pkt.header.data(), f0.data, hl);
  counters.backend_memcpy_bytes += hl;
  counters.header_bytes += hl;
  pkt.header_from_frag0 = 0;
  if (f0.len == hl) {
    pkt.frags.erase(pkt.frags.begin());  // still unmapped by end_poll: the policy holds its handle
  } else {
    f0.offset = static_cast<uint16_t>(f0.offset + hl);
    f0.len = static_cast<uint16_t>(f0.len - hl);
    f0.data += hl;
  }
}

}  // namespace

// xenvif_tx_check_gop for one packet: its header copy and payload operations succeeded, its header is in private
// memory and parsed, it fits the MTU. nullopt: it goes to the sink.
std::optional<DropReason> Backend::check_tx_packet(TxBuilt& b, TxBatch& batch) {
  Vif& vif = *b.vif;
  TxPacket& pkt = b.pkt;
  if (b.copy_op != SIZE_MAX) {
    if (batch.copies[b.copy_op].status != GntSt::okay) return DropReason::bad_header_grant;
    vif.counters.header_bytes += pkt.header.size();
  }
  if (auto ok = payload_->resolve(pkt, batch); !ok)
    return pkt.header_from_frag0 ? DropReason::bad_header_grant : DropReason::bad_payload_grant;
  if (pkt.header_from_frag0 != 0) header_out_of_frag0(pkt, vif.counters);
  pkt.hdr = parse_headers(pkt.header);
  if (tx_over_mtu(pkt, vif.opts.mtu)) return DropReason::over_mtu;
  return std::nullopt;
}

// xenvif_tx_submit for one packet: answered at once if dropped, else handed to its vif's sink.
void Backend::finish_tx_packet(TxBuilt& b, TxBatch& batch) {
  Vif& vif = *b.vif;
  TxPacket& pkt = b.pkt;
  if (!b.drop) b.drop = check_tx_packet(b, batch);
  if (b.drop) {
    complete_tx(vif, pkt.completion, netif::rsp::error, *b.drop);
    return;
  }
  if (pkt.gso.present()) ++vif.counters.tx_gso_packets;
  vif.counters.tx_frags += pkt.frags.size();
  // On done the sink left the packet (its completion) here; on held it moved it away and answers later.
  SinkResult r = vif.opts.sink->consume(pkt, *payload_, vif.counters);
  if (r.kind == SinkResult::Kind::done) complete_tx(vif, pkt.completion, r.status, r.drop_reason);
}

}  // namespace pvnet
