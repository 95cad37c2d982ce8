#include "backend/payload_policy.hpp"

#include <cerrno>
#include <string>

#include "backend/policy_auto.hpp"
#include "backend/policy_fixed.hpp"
#include "grant-sim/platform/lazy_window.hpp"

namespace pvnet {

const char* to_string(PayloadPolicyKind k) {
  switch (k) {
    case PayloadPolicyKind::slots: return "slots";
    case PayloadPolicyKind::copy: return "copy";
    case PayloadPolicyKind::map: return "map";
    case PayloadPolicyKind::hdrcopy: return "hdrcopy";
    case PayloadPolicyKind::automatic: return "auto";
  }
  return "?";
}

std::optional<PayloadPolicyKind> parse_payload_policy(std::string_view name) {
  for (auto k : kAllPayloadPolicies)
    if (name == to_string(k)) return k;
  return std::nullopt;
}

PayloadPolicyTraits payload_policy_traits(PayloadPolicyKind k) {
  PayloadPolicyTraits t;
  switch (k) {
    case PayloadPolicyKind::slots:
    case PayloadPolicyKind::automatic:
      t.offers_header_slots = true;
      break;
    case PayloadPolicyKind::copy:     // the first 128 bytes by the header copy, the rest by copy_payload: all of it
    case PayloadPolicyKind::hdrcopy:  // xenvif_tx_build_gops: copy XEN_NETBACK_TX_COPY_LEN, map the rest
      break;
    case PayloadPolicyKind::map:  // netbk_tx_build_gops before 3.14: map every slot, memcpy the linear area out
      t.map_first_page = true;
      break;
  }
  return t;
}

PayloadPolicy::~PayloadPolicy() { end_poll(); }

// ---- mechanisms -----------------------------------------------------------------------------------------------

void PayloadPolicy::copy_payload(TxPacket& pkt, TxBatch& batch) {
  size_t total = 0;
  for (const auto& f : pkt.frags) total += f.len;
  pkt.payload_copy.resize(total);
  size_t at = 0;
  for (auto& f : pkt.frags) {
    if (f.len == 0) continue;
    CopyOp op;
    op.src = CopySide::gref(f.dom, f.gref, f.offset);
    op.dst = CopySide::local(pkt.payload_copy.data() + at);
    op.len = f.len;
    f.source = FragSource::copied;
    f.batch_op = static_cast<int32_t>(batch.copies.size());
    f.data = pkt.payload_copy.data() + at;
    batch.copies.push_back(op);
    at += f.len;
  }
}

void PayloadPolicy::map_payload(TxPacket& pkt, TxBatch& batch) {
  for (auto& f : pkt.frags) {
    MapOp op;
    op.dom = f.dom;
    op.ref = f.gref;
    op.readonly = true;
    f.source = FragSource::mapped;
    f.batch_op = static_cast<int32_t>(batch.maps.size());
    batch.maps.push_back(op);
  }
}

void PayloadPolicy::batch_done(const TxBatch& batch) {
  for (const auto& op : batch.maps)
    if (op.status == GntSt::okay) {
      UnmapOp u;
      u.handle = op.handle;
      mapped_.push_back(u);
    }
}

Result<void> PayloadPolicy::resolve(TxPacket& pkt, const TxBatch& batch) const {
  for (auto& f : pkt.frags) {
    GntSt st = GntSt::okay;
    if (f.source == FragSource::mapped) {
      const MapOp& op = batch.maps.at(static_cast<size_t>(f.batch_op));
      st = op.status;
      if (st == GntSt::okay) f.data = op.addr + f.offset;
    } else if (f.source == FragSource::copied) {
      st = batch.copies.at(static_cast<size_t>(f.batch_op)).status;
    }
    if (st != GntSt::okay)
      return make_error(static_cast<int>(st), std::string("payload grant ") + std::to_string(f.gref.value) +
                                                  " of dom" + std::to_string(f.dom.value) + ": " + to_string(st));
  }
  return {};
}

Result<void> PayloadPolicy::ensure_window() {
  if (window_) return {};
  window_ = mapper_.make_lazy_window(window_slots_);
  if (!window_) return make_error(ENOMEM, "cannot reserve a lazy window of " + std::to_string(window_slots_));
  return {};
}

Result<void> PayloadPolicy::expose(TxPacket& pkt) {
  size_t lazy = 0;
  for (const auto& f : pkt.frags) lazy += f.source == FragSource::grant ? 1 : 0;
  if (lazy == 0) return {};  // mapped or copied in the poll's batch already
  if (auto ok = ensure_window(); !ok) return ok;
  if (lazy > window_->slots())
    return make_error(E2BIG, std::to_string(lazy) + " frags exceed the lazy window of " +
                                 std::to_string(window_->slots()) + " pages");
  if (window_used_.size() + lazy > window_->slots()) release_window();  // recycle: earlier packets are done
  for (auto& f : pkt.frags) {
    if (f.source != FragSource::grant) continue;
    const size_t slot = window_used_.size();
    std::byte* page = window_->assign(slot, f.dom, f.gref, /*readonly=*/true);
    window_used_.push_back(slot);
    f.window_slot = static_cast<int32_t>(slot);
    f.source = FragSource::lazy;
    f.data = page + f.offset;
  }
  return {};
}

Result<void> PayloadPolicy::verify(const TxPacket& pkt, uint64_t* pages_touched) const {
  uint64_t touched = 0;
  Result<void> result;
  for (const auto& f : pkt.frags) {
    if (f.source == FragSource::mapped) ++touched;
    if (f.source != FragSource::lazy || f.window_slot < 0 || !window_) continue;
    const auto slot = static_cast<size_t>(f.window_slot);
    if (window_->mapped(slot)) ++touched;
    if (auto st = window_->status(slot); st != GntSt::okay && result.ok())
      result = make_error(static_cast<int>(st), std::string("payload grant ") + std::to_string(f.gref.value) +
                                                    " of dom" + std::to_string(f.dom.value) + ": " + to_string(st));
  }
  if (pages_touched) *pages_touched = touched;
  return result;
}

void PayloadPolicy::release_window() {
  if (window_used_.empty()) return;
  window_->release(window_used_);
  window_used_.clear();
}

void PayloadPolicy::end_poll() {
  release_window();
  if (!mapped_.empty()) {
    mapper_.unmap(mapped_);
    mapped_.clear();
  }
}

// ---- factory ----------------------------------------------------------------------------------------------------

Result<std::unique_ptr<PayloadPolicy>> make_payload_policy(PayloadPolicyKind kind, Platform& dom0,
                                                           size_t window_slots) {
  if (kind == PayloadPolicyKind::automatic) return make_auto_policy(dom0, window_slots);
  return make_fixed_policy(kind, dom0.mapper(), window_slots);
}

}  // namespace pvnet
