// The RX path (dom0 -> guest), in the shape of xenvif_rx_action: for each vif with queued frames, take as many of
// the guest's posted buffers as each frame needs (plain netif: a page each, filled from offset 0; with RX extents,
// docs/protocol.md 7: each buffer's extent of its page, the first after the headroom; one more slot for a GSO
// extra), build the grant copies (dom0 bytes -> guest, or source guest's gref -> this guest's gref), do ONE
// batched grant copy for every vif of the poll, then answer each buffer.
#include <algorithm>
#include <cstring>
#include <deque>

#include "backend/vif.hpp"

namespace pvnet {

namespace {

struct RxWork {
  Backend::Vif* vif = nullptr;
  RxFrame frame;
  size_t op_begin = 0, op_end = 0;
  std::vector<netif::RxResponse> rsps;  // in ring order; the GSO extra (if any) is rsps[1], as raw bytes
  size_t extra_at = SIZE_MAX;
};

uint16_t rx_csum_flags(uint16_t flags) {
  // Linux: CHECKSUM_PARTIAL -> csum_blank | data_validated; CHECKSUM_UNNECESSARY -> data_validated.
  if (flags & netif::rxf::csum_blank) return netif::rxf::csum_blank | netif::rxf::data_validated;
  return flags & netif::rxf::data_validated;
}

}  // namespace

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
    if (!vif.connected || vif.disabled || vif.rx_queue.empty()) continue;
    auto& ring = *vif.rx;
    auto checked = ring.checked_req_prod();
    if (!checked) {
      fatal_tx_err(vif, "RX " + checked.error().reason);
      continue;
    }
    RxExtents& ext = vif.rx_ext;
    bool violation = false;
    while (!vif.rx_queue.empty()) {
      RxFrame& f = vif.rx_queue.front();
      const uint32_t nbuf = std::max<uint32_t>(1, (f.len + kPageSize - 1) / kPageSize);
      const bool gso = f.gso.present();
      const char* drop = nullptr;
      if (f.len == 0 || f.len > netif::kMaxFrameBytes) drop = "rx_bad_length";
      else if (!ext.active && nbuf > 1 && !vif.fe_sg) drop = "rx_no_sg";  // the frontend takes only single-buffer frames
      else if (gso && !((f.gso.type == netif::gso_type::tcpv4 && vif.fe_gso_tcpv4) ||
                        (f.gso.type == netif::gso_type::tcpv6 && vif.fe_gso_tcpv6)))
        drop = "rx_no_gso";
      else if (!ext.active && nbuf + (gso ? 1 : 0) > ring.size()) drop = "rx_too_many_slots";

      // The buffers this frame needs: data buffers in ring order, the GSO extra's slot right after the first.
      // Plain netif: whole pages from offset 0, so the count is known before consuming anything. Extents: take
      // requests (and their extents) into `held` until their room covers the frame.
      uint32_t take = 0;  // buffers of `held` the frame uses
      if (!drop && !ext.active) {
        const uint32_t need = nbuf + (gso ? 1 : 0);
        if (ring.unconsumed_requests() < need) break;  // wait for the guest to post more buffers
        for (uint32_t i = 0; i < need; ++i) ext.held.push_back(RxBuf{ring.consume_request(), 0, kPageSize});
        take = need;
      } else if (!drop) {
        const uint32_t min_take = gso ? 2 : 1;
        uint32_t room = 0, data_bufs = 0;
        for (;;) {
          for (; take < ext.held.size() && (room < f.len || take < min_take); ++take) {
            if (gso && take == 1) continue;  // the extra's slot carries no data
            room += ext.held[take].length - (take == 0 ? ext.headroom : 0);
            ++data_bufs;
          }
          if (room >= f.len && take >= min_take) break;
          if (ring.unconsumed_requests() == 0) break;
          auto b = ext.take(ring.consume_request());
          if (!b) {
            violation = true;
            break;
          }
          ext.held.push_back(*b);
        }
        if (violation) break;
        if (room < f.len || take < min_take) {
          // Every buffer the ring can hold is taken and the frame still does not fit: it never will.
          if (ext.held.size() < ring.size()) break;  // wait for the guest to post more buffers
          drop = "rx_too_many_slots";
        } else if (data_bufs > 1 && !vif.fe_sg) {
          drop = "rx_no_sg";
        }
      }
      if (drop) {
        drop_rx_frame(vif, f, netif::rsp::error, drop);
        vif.rx_queue.pop_front();
        continue;
      }

      RxWork w;
      w.vif = &vif;
      w.frame = std::move(f);
      vif.rx_queue.pop_front();
      RxFrame& fr = w.frame;
      w.op_begin = ops.size();

      std::vector<RxBuf> bufs;
      for (uint32_t i = 0; i < take; ++i) {
        const RxBuf b = ext.held.front();
        ext.held.pop_front();
        if (gso && i == 1) {
          w.extra_at = 1;
          w.rsps.push_back(netif::RxResponse{});  // filled below
          continue;
        }
        bufs.push_back(b);
        w.rsps.push_back(netif::RxResponse{b.req.id, b.offset, 0, 0});
      }
      w.rsps[0].offset = static_cast<uint16_t>(bufs[0].offset + (ext.active ? ext.headroom : 0));
      vif.counters.rx_requests += take;
      work += take;

      // Copy segments: source chunks (local bytes, then frags) cut at the destination buffers' ends, each buffer
      // written from its response's offset, at most to the end of its extent (its page, without extents).
      std::vector<uint32_t> filled(bufs.size(), 0);
      size_t b = 0;
      auto start_of = [&](size_t i) -> uint32_t { return i == 0 ? w.rsps[0].offset : bufs[i].offset; };
      auto room_of = [&](size_t i) -> uint32_t { return uint32_t{bufs[i].offset} + bufs[i].length - start_of(i); };
      auto emit = [&](CopySide src, uint32_t len, bool local) {
        uint32_t done = 0;
        while (done < len) {
          if (filled[b] == room_of(b)) ++b;
          const uint32_t start = start_of(b) + filled[b];
          const uint32_t n = std::min(len - done, room_of(b) - filled[b]);
          CopySide s = src;
          if (local) s.ptr += done;
          else s.offset = static_cast<uint16_t>(s.offset + done);
          ops.push_back(copy_op(s, CopySide::gref(vif.fe_dom, bufs[b].req.gref, static_cast<uint16_t>(start)), n));
          filled[b] += n;
          done += n;
        }
      };
      if (!fr.local.empty())
        emit(CopySide::local(fr.local.data()), static_cast<uint32_t>(fr.local.size()), true);
      for (const auto& fg : fr.frags) {
        if (fg.len == 0) continue;
        if (fg.source == FragSource::copied)  // already in dom0 memory (fr.payload_copy): local -> guest
          emit(CopySide::local(const_cast<std::byte*>(fg.data)), fg.len, true);
        else
          emit(CopySide::gref(fg.dom, fg.gref, fg.offset), fg.len, false);
      }
      w.op_end = ops.size();

      // Responses: status = bytes in the buffer, more_data on all but the last, flags on the first.
      size_t bi = 0;
      for (size_t i = 0; i < w.rsps.size(); ++i) {
        if (i == w.extra_at) continue;
        auto& r = w.rsps[i];
        r.status = static_cast<int16_t>(filled[bi]);
        if (bi + 1 < bufs.size()) r.flags |= netif::rxf::more_data;
        if (bi == 0) {
          r.flags |= rx_csum_flags(fr.rx_flags);
          if (gso) r.flags |= netif::rxf::extra_info;
        }
        ++bi;
      }
      if (gso) {
        netif::ExtraInfo e{};
        e.type = netif::extra_type::gso;
        e.flags = 0;
        e.u.gso.size = fr.gso.size;
        e.u.gso.type = fr.gso.type;
        std::memcpy(&w.rsps[w.extra_at], &e, sizeof(e));
      }
      works.push_back(std::move(w));
    }
    if (violation) {
      // A bad extent: the frontend broke the protocol. Only this vif is disabled (its queue dropped, counted).
      fatal_tx_err(vif, "RX extent of a request is outside its page, empty or inside the headroom");
      continue;
    }
    vif.counters.rx_queued = vif.rx_queue.size();
    // Frames still waiting for buffers: have the guest notify us when it posts more.
    if (!vif.rx_queue.empty() && ring.final_check_for_requests()) ++work;
  }

  if (!ops.empty()) dom0_.mapper().copy(ops);

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
    if (!ok) drop_rx_frame(vif, w.frame, netif::rsp::error, "rx_copy_error");
    else if (w.frame.has_completion) complete_tx(w.frame.completion, netif::rsp::okay, "");
  }
  for (Vif* vif : touched)
    if (vif->rx->push_responses_and_check_notify()) (void)dom0_.evtchn().notify(vif->rx_port);
  return work;
}

}  // namespace pvnet
