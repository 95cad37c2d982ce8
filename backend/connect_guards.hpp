// What Backend::connect acquires for a connection, held by guards that give it back on destruction unless the
// connection took it (release()): a refusal at any step after the mapping undoes everything before it, with no
// cleanup code at the refusal.
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backend/vif.hpp"
#include "shared-ring/negotiation/features.hpp"

namespace pvnet {

// The frontend's ring pages mapped into dom0, in one all-or-nothing batch: the TX ring's pages (several:
// contiguously, docs/protocol.md 9), the RX ring, the control ring and the RX extents table (read-only).
class RingMappings {
 public:
  explicit RingMappings(GrantMapper& mapper) : mapper_(mapper) {}
  ~RingMappings() { unmap_all(); }
  RingMappings(const RingMappings&) = delete;
  RingMappings& operator=(const RingMappings&) = delete;

  Result<void> map(DomId fe, const netif::FrontendKeys& keys, const std::string& fe_dir) {
    for (uint32_t ref : keys.tx_ring_refs) ops_.push_back(map_op(fe, GrantRef{ref}, false));
    n_tx_ = keys.tx_ring_refs.size();
    ops_.push_back(map_op(fe, GrantRef{keys.rx_ring_ref}, false));
    if (keys.ctrl) ops_.push_back(map_op(fe, GrantRef{keys.ctrl->ref}, false));
    if (keys.rx_extents) ops_.push_back(map_op(fe, GrantRef{keys.rx_extents->ref}, true));
    const std::span<MapOp> all(ops_);
    if (n_tx_ > 1) {
      mapper_.map_contiguous(all.first(n_tx_));  // all or nothing itself: nothing to undo when it fails
      if (all.front().status != GntSt::okay) {
        ops_.clear();
        return make_error(EINVAL, "mapping the " + std::to_string(n_tx_) + "-page TX ring of " + fe_dir + " failed");
      }
      mapper_.map(all.subspan(n_tx_));
    } else {
      mapper_.map(all);
    }
    for (const auto& op : ops_)
      if (op.status != GntSt::okay) return make_error(EINVAL, "mapping the rings of " + fe_dir + " failed");
    return {};
  }

  std::span<std::byte> tx_pages() const { return {ops_[0].addr, n_tx_ * kPageSize}; }
  std::span<std::byte> rx_page() const { return page(n_tx_); }
  std::span<std::byte> ctrl_page() const { return page(n_tx_ + 1); }  // with a control ring
  std::byte* extents_table() const { return ops_.back().addr; }       // with RX extents (always mapped last)
  const std::vector<MapOp>& ops() const { return ops_; }

  // The connection keeps the mappings: nothing is unmapped on destruction.
  std::vector<MapOp> release() { return std::exchange(ops_, {}); }

 private:
  std::span<std::byte> page(size_t i) const { return {ops_[i].addr, kPageSize}; }
  void unmap_all() {
    std::vector<UnmapOp> undo;
    for (const auto& op : ops_)
      if (op.status == GntSt::okay) undo.push_back(unmap_op(op.handle));
    if (!undo.empty()) mapper_.unmap(undo);
    ops_.clear();
  }

  GrantMapper& mapper_;
  std::vector<MapOp> ops_;
  size_t n_tx_ = 0;
};

// The event channels bound to the frontend's ports: unbound on destruction unless the connection took them.
class BoundPorts {
 public:
  BoundPorts(EventChannel& ev, DomId fe) : ev_(ev), fe_(fe) {}
  ~BoundPorts() {
    for (Port p : bound_) (void)ev_.unbind(p);
  }
  BoundPorts(const BoundPorts&) = delete;
  BoundPorts& operator=(const BoundPorts&) = delete;

  std::optional<Port> bind(uint32_t remote) {
    auto p = ev_.bind_interdomain(fe_, Port{remote});
    if (!p) return std::nullopt;
    bound_.push_back(*p);
    return *p;
  }
  std::vector<Port> release() { return std::exchange(bound_, {}); }

 private:
  EventChannel& ev_;
  DomId fe_;
  std::vector<Port> bound_;
};

}  // namespace pvnet
