// The RX path (dom0 -> guest), in the shape of xenvif_rx_action: for each vif with queued frames (rx_build), judge
// each frame against what the guest takes (rx_drop_reason), claim as many of the guest's posted buffers as it
// needs (claim_rx_buffers: plain netif, a page each from offset 0; RX extents, docs/protocol.md 7, each buffer's
// extent of its page, the first after the headroom; one more slot for a GSO extra), plan its grant copies and
// responses (plan_rx_copies: dom0 bytes -> guest, or source guest's gref -> this guest's gref), then do ONE
// batched grant copy for every vif of the poll and answer each buffer (complete_rx).
#include <algorithm>
#include <deque>

#include "backend/rx_stages.hpp"
#include "backend/vif.hpp"

namespace pvnet {

// A frame on its way into a guest's buffers: its copies are ops_[op_begin, op_end) of the poll's batch.
struct Backend::RxWork {
  Vif* vif = nullptr;
  RxFrame frame;
  size_t op_begin = 0, op_end = 0;
  std::vector<netif::RxResponse> rsps;  // in ring order; the GSO extra (if any) at extra_at, as raw bytes
  size_t extra_at = SIZE_MAX;
};

size_t Backend::rx_action() {
  // Most polls have nothing queued for any guest: don't even build the (allocating) work lists then.
  if (std::none_of(vifs_.begin(), vifs_.end(), [](const auto& v) { return !v.second->rx_queue.empty(); })) return 0;
  // A deque: the copy ops point into each work's frame (local bytes, payload copies), so works must never be
  // copied by a reallocation (RxFrame's move may throw, which makes a vector copy on growth).
  std::deque<RxWork> works;
  std::vector<CopyOp> ops;
  size_t work = 0;
  for (auto& [vid, vifp] : vifs_) {
    Vif& vif = *vifp;
    if (vif.connected && !vif.disabled && !vif.rx_queue.empty()) work += rx_build(vif, works, ops);
  }
  if (!ops.empty()) dom0_.mapper().copy(ops);
  complete_rx(works, ops);
  return work;
}

// One vif's queue this poll: frames in order while the guest has buffers for them.
size_t Backend::rx_build(Vif& vif, std::deque<RxWork>& works, std::vector<CopyOp>& ops) {
  auto& ring = *vif.rx;
  auto checked = ring.checked_req_prod();
  if (!checked) {
    fatal_protocol_error(vif, ProtocolRing::rx, checked.error().reason);
    return 0;
  }
  RxExtents& ext = vif.rx_ext;
  const RxVifCaps caps{vif.fe_sg, vif.fe_gso_tcpv4, vif.fe_gso_tcpv6};
  size_t work = 0;
  while (!vif.rx_queue.empty()) {
    RxFrame& f = vif.rx_queue.front();
    RxClaim claim;
    if (auto drop = rx_drop_reason(f, caps, ext.active, ring.size())) claim = {RxClaim::Kind::drop, 0, *drop};
    else claim = claim_rx_buffers(ring, ext, f, caps);
    if (claim.kind == RxClaim::Kind::wait) break;  // for the guest to post more buffers
    if (claim.kind == RxClaim::Kind::violation) {
      // A bad extent: the frontend broke the protocol. Only this vif is disabled (its queue dropped, counted).
      fatal_protocol_error(vif, ProtocolRing::rx, "extent of a request is outside its page, empty or inside the headroom");
      return work;
    }
    if (claim.kind == RxClaim::Kind::drop) {
      drop_rx_frame(vif, f, netif::rsp::error, claim.drop);
      vif.rx_queue.pop_front();
      continue;
    }
    std::vector<RxBuf> bufs(ext.held.begin(), ext.held.begin() + claim.take);
    ext.held.erase(ext.held.begin(), ext.held.begin() + claim.take);
    RxWork& w = works.emplace_back();
    w.vif = &vif;
    w.frame = std::move(f);
    vif.rx_queue.pop_front();
    RxCopyPlan plan = plan_rx_copies(w.frame, bufs, vif.fe_dom, ext.active ? ext.headroom : 0);
    w.op_begin = ops.size();
    ops.insert(ops.end(), plan.ops.begin(), plan.ops.end());
    w.op_end = ops.size();
    w.rsps = std::move(plan.rsps);
    w.extra_at = plan.extra_at;
    vif.counters.rx_requests += claim.take;
    work += claim.take;
  }
  vif.counters.rx_queued = vif.rx_queue.size();
  // Frames still waiting for buffers: have the guest notify us when it posts more.
  if (!vif.rx_queue.empty() && ring.final_check_for_requests()) ++work;
  return work;
}

// The poll's copies ran: answer each frame's buffers (ERROR on all of them if a copy failed), its source's TX
// requests, and push each touched ring once.
void Backend::complete_rx(std::deque<RxWork>& works, const std::vector<CopyOp>& ops) {
  std::vector<Vif*> touched;
  for (auto& w : works) {
    Vif& vif = *w.vif;
    bool ok = true;
    for (size_t i = w.op_begin; i < w.op_end; ++i) ok = ok && ops[i].status == GntSt::okay;
    vif.counters.rx_copy_ops += w.op_end - w.op_begin;
    if (!ok) {
      ++vif.counters.rx_copy_errors;
      for (size_t i = 0; i < w.rsps.size(); ++i)
        if (i != w.extra_at) w.rsps[i].status = netif::rsp::error;
    } else {
      ++vif.counters.rx_packets;
      vif.counters.rx_bytes += w.frame.len;
      if (w.frame.gso.present()) ++vif.counters.rx_gso_packets;
    }
    for (const auto& r : w.rsps) vif.rx->produce_response(r);
    vif.counters.rx_responses += w.rsps.size();
    if (std::find(touched.begin(), touched.end(), &vif) == touched.end()) touched.push_back(&vif);
    if (!ok) drop_rx_frame(vif, w.frame, netif::rsp::error, DropReason::rx_copy_error);
    else if (w.frame.has_completion) complete_tx(w.frame.completion, netif::rsp::okay);
  }
  for (Vif* vif : touched)
    if (vif->rx->push_responses_and_check_notify()) (void)dom0_.evtchn().notify(vif->rx_port);
}

}  // namespace pvnet
