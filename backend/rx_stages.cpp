#include "backend/rx_stages.hpp"

#include <algorithm>
#include <cstring>

#include "backend/grant_ops.hpp"

namespace pvnet {

uint32_t rx_pages_for(const RxFrame& f) { return std::max<uint32_t>(1, (f.len + kPageSize - 1) / kPageSize); }

std::optional<DropReason> rx_drop_reason(const RxFrame& f, const RxVifCaps& caps, bool extents, uint32_t ring_size) {
  const uint32_t nbuf = rx_pages_for(f);
  const bool gso = f.gso.present();
  if (f.len == 0 || f.len > netif::kMaxFrameBytes) return DropReason::rx_bad_length;
  if (!extents && nbuf > 1 && !caps.sg) return DropReason::rx_no_sg;  // the frontend takes single-buffer frames
  if (gso && !((f.gso.type == netif::gso_type::tcpv4 && caps.gso_tcpv4) ||
               (f.gso.type == netif::gso_type::tcpv6 && caps.gso_tcpv6)))
    return DropReason::rx_no_gso;
  if (!extents && nbuf + (gso ? 1 : 0) > ring_size) return DropReason::rx_too_many_slots;
  return std::nullopt;
}

namespace {

// Plain netif: whole pages from offset 0, so the count is known before consuming anything.
RxClaim claim_pages(netif::RxBackRing& ring, RxExtents& ext, const RxFrame& f) {
  const uint32_t need = rx_pages_for(f) + (f.gso.present() ? 1 : 0);
  if (ring.unconsumed_requests() < need) return {RxClaim::Kind::wait};
  for (uint32_t i = 0; i < need; ++i) ext.held.push_back(RxBuf{ring.consume_request(), 0, kPageSize});
  return {RxClaim::Kind::take, need};
}

// Extents: take requests (and their extents) into `held` until their room covers the frame.
RxClaim claim_extents(netif::RxBackRing& ring, RxExtents& ext, const RxFrame& f, const RxVifCaps& caps) {
  const bool gso = f.gso.present();
  const uint32_t min_take = gso ? 2 : 1;
  uint32_t take = 0, room = 0, data_bufs = 0;
  for (;;) {
    for (; take < ext.held.size() && (room < f.len || take < min_take); ++take) {
      if (gso && take == 1) continue;  // the extra's slot carries no data
      room += ext.held[take].length - (take == 0 ? ext.headroom : 0);
      ++data_bufs;
    }
    if (room >= f.len && take >= min_take) break;
    if (ring.unconsumed_requests() == 0) break;
    auto b = ext.take(ring.consume_request());
    if (!b) return {RxClaim::Kind::violation};
    ext.held.push_back(*b);
  }
  if (room < f.len || take < min_take) {
    // Every buffer the ring can hold is taken and the frame still does not fit: it never will.
    if (ext.held.size() < ring.size()) return {RxClaim::Kind::wait};
    return {RxClaim::Kind::drop, 0, DropReason::rx_too_many_slots};
  }
  if (data_bufs > 1 && !caps.sg) return {RxClaim::Kind::drop, 0, DropReason::rx_no_sg};
  return {RxClaim::Kind::take, take};
}

uint16_t rx_csum_flags(uint16_t flags) {
  // Linux: CHECKSUM_PARTIAL -> csum_blank | data_validated; CHECKSUM_UNNECESSARY -> data_validated.
  if (flags & netif::rxf::csum_blank) return netif::rxf::csum_blank | netif::rxf::data_validated;
  return flags & netif::rxf::data_validated;
}

// Cuts source chunks at the destination buffers' ends, each buffer written from its response's offset, at most
// to the end of its extent (its page, without extents).
class RxCopyCutter {
 public:
  RxCopyCutter(std::span<const RxBuf> data, uint16_t first_offset, DomId dest, std::vector<CopyOp>& ops)
      : data_(data), first_offset_(first_offset), dest_(dest), ops_(ops), filled_(data.size(), 0) {}

  void emit(CopySide src, uint32_t len, bool local) {
    for (uint32_t done = 0; done < len;) {
      if (filled_[b_] == room_of(b_)) ++b_;
      const uint32_t start = start_of(b_) + filled_[b_];
      const uint32_t n = std::min(len - done, room_of(b_) - filled_[b_]);
      CopySide s = src;
      if (local) s.ptr += done;
      else s.offset = static_cast<uint16_t>(s.offset + done);
      ops_.push_back(copy_op(s, CopySide::gref(dest_, data_[b_].req.gref, static_cast<uint16_t>(start)), n));
      filled_[b_] += n;
      done += n;
    }
  }
  uint32_t filled(size_t i) const { return filled_[i]; }

 private:
  uint32_t start_of(size_t i) const { return i == 0 ? first_offset_ : data_[i].offset; }
  uint32_t room_of(size_t i) const { return uint32_t{data_[i].offset} + data_[i].length - start_of(i); }

  std::span<const RxBuf> data_;
  uint16_t first_offset_;
  DomId dest_;
  std::vector<CopyOp>& ops_;
  std::vector<uint32_t> filled_;
  size_t b_ = 0;
};

// Responses: status = bytes in the buffer, more_data on all but the last, flags (and extra_info) on the first;
// the GSO extra slot carries the ExtraInfo's bytes.
void answer_rx_buffers(const RxFrame& f, const RxCopyCutter& cut, RxCopyPlan& plan) {
  size_t bi = 0;
  for (size_t i = 0; i < plan.rsps.size(); ++i) {
    if (i == plan.extra_at) continue;
    auto& r = plan.rsps[i];
    r.status = static_cast<int16_t>(cut.filled(bi));
    if (bi + 1 < plan.data_buffers) r.flags |= netif::rxf::more_data;
    if (bi == 0) {
      r.flags |= rx_csum_flags(f.rx_flags);
      if (f.gso.present()) r.flags |= netif::rxf::extra_info;
    }
    ++bi;
  }
  if (plan.extra_at != SIZE_MAX) {
    netif::ExtraInfo e{};
    e.type = netif::extra_type::gso;
    e.flags = 0;
    e.u.gso.size = f.gso.size;
    e.u.gso.type = f.gso.type;
    std::memcpy(&plan.rsps[plan.extra_at], &e, sizeof(e));
  }
}

}  // namespace

RxClaim claim_rx_buffers(netif::RxBackRing& ring, RxExtents& ext, const RxFrame& f, const RxVifCaps& caps) {
  return ext.active ? claim_extents(ring, ext, f, caps) : claim_pages(ring, ext, f);
}

RxCopyPlan plan_rx_copies(const RxFrame& f, std::span<const RxBuf> bufs, DomId dest, uint16_t headroom) {
  RxCopyPlan plan;
  std::vector<RxBuf> data;
  for (size_t i = 0; i < bufs.size(); ++i) {
    if (f.gso.present() && i == 1) {
      plan.extra_at = 1;
      plan.rsps.push_back(netif::RxResponse{});  // filled by answer_rx_buffers
      continue;
    }
    data.push_back(bufs[i]);
    plan.rsps.push_back(netif::RxResponse{bufs[i].req.id, bufs[i].offset, 0, 0});
  }
  plan.data_buffers = static_cast<uint32_t>(data.size());
  if (data.empty()) return plan;
  plan.rsps[0].offset = static_cast<uint16_t>(data[0].offset + headroom);
  RxCopyCutter cut(data, plan.rsps[0].offset, dest, plan.ops);
  if (!f.local.empty())
    cut.emit(CopySide::local(const_cast<std::byte*>(f.local.data())), static_cast<uint32_t>(f.local.size()), true);
  for (const auto& fg : f.frags) {
    if (fg.len == 0) continue;
    if (fg.source == FragSource::copied)  // already in dom0 memory (f.payload_copy): local -> guest
      cut.emit(CopySide::local(const_cast<std::byte*>(fg.data)), fg.len, true);
    else
      cut.emit(CopySide::gref(fg.dom, fg.gref, fg.offset), fg.len, false);
  }
  answer_rx_buffers(f, cut, plan);
  return plan;
}

}  // namespace pvnet
