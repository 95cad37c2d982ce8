// The control ring's static-grant messages (netif.h XEN_NETIF_CTRL_TYPE_*_GREF_MAPPING), which register the
// header-slot pages the backend keeps mapped for the connection's life (docs/protocol.md 5).
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "backend/vif.hpp"

namespace pvnet {

namespace {

constexpr uint32_t kMaxGrefTableEntries = kPageSize / sizeof(netif::NetifGref);  // the table is one page

struct CtrlContext {
  Platform& dom0;
  Backend::Vif& vif;
  uint32_t limit;       // per-domain kept-page limit
  uint32_t kept_by_dom; // pages the frontend's domain already has kept (all its vifs)
};

// Copies the frontend's gref table (one page it granted) into private memory with one grant copy: every entry is
// then read once, from the copy (no double fetch).
bool copy_gref_table(Platform& dom0, DomId fe, GrantRef table, uint32_t entries,
                     std::vector<netif::NetifGref>& out) {
  out.assign(entries, netif::NetifGref{});
  CopyOp op = copy_op(CopySide::gref(fe, table, 0), CopySide::local(reinterpret_cast<std::byte*>(out.data())),
                      entries * sizeof(netif::NetifGref));
  dom0.mapper().copy(std::span<CopyOp>(&op, 1));
  return op.status == GntSt::okay;
}

uint32_t add_gref_mapping(CtrlContext& c, const netif::CtrlRequest& req) {
  auto& vif = c.vif;
  const uint32_t n = req.data[2];
  if (req.data[0] != 0 || n == 0 || n > kMaxGrefTableEntries || c.kept_by_dom + n > c.limit)
    return netif::ctrl_status::invalid_parameter;
  std::vector<netif::NetifGref> table;
  if (!copy_gref_table(c.dom0, vif.fe_dom, GrantRef{req.data[1]}, n, table))
    return netif::ctrl_status::invalid_parameter;
  std::unordered_set<GrantRef> seen;
  for (const auto& e : table)
    if (!seen.insert(e.ref).second || vif.kept.count(e.ref)) return netif::ctrl_status::invalid_parameter;

  // One batch; netif.h: "In case of failure none of grants mappings get added in the backend".
  std::vector<MapOp> ops;
  ops.reserve(n);
  for (const auto& e : table) ops.push_back(map_op(vif.fe_dom, e.ref, /*readonly=*/true));
  c.dom0.mapper().map(ops);
  bool all_ok = true;
  for (const auto& op : ops) all_ok = all_ok && op.status == GntSt::okay;
  if (!all_ok) {
    std::vector<UnmapOp> undo;
    for (const auto& op : ops)
      if (op.status == GntSt::okay) undo.push_back(unmap_op(op.handle));
    if (!undo.empty()) c.dom0.mapper().unmap(undo);
    return netif::ctrl_status::invalid_parameter;
  }
  for (const auto& op : ops) vif.kept.emplace(op.ref, KeptMapping{op.addr, op.handle});
  vif.counters.kept_pages = vif.kept.size();
  return netif::ctrl_status::success;
}

uint32_t del_gref_mapping(CtrlContext& c, const netif::CtrlRequest& req, uint32_t* removed) {
  auto& vif = c.vif;
  const uint32_t n = req.data[2];
  *removed = 0;
  if (req.data[0] != 0 || n == 0 || n > kMaxGrefTableEntries) return netif::ctrl_status::invalid_parameter;
  const GrantRef table_ref{req.data[1]};
  std::vector<netif::NetifGref> table;
  if (!copy_gref_table(c.dom0, vif.fe_dom, table_ref, n, table)) return netif::ctrl_status::invalid_parameter;
  std::vector<UnmapOp> unmaps;
  for (auto& e : table) {
    auto it = vif.kept.find(e.ref);
    if (it == vif.kept.end()) {
      e.status = netif::ctrl_status::invalid_parameter;
      continue;
    }
    // Nothing outlives the poll that copied a header out of its slot, so the page can go at once.
    unmaps.push_back(unmap_op(it->second.handle));
    vif.kept.erase(it);
    e.status = netif::ctrl_status::success;
    ++*removed;
  }
  if (!unmaps.empty()) c.dom0.mapper().unmap(unmaps);
  vif.counters.kept_pages = vif.kept.size();
  // Each entry's status goes back into the frontend's table (netif.h: it "determines if the entry was removed").
  CopyOp back = copy_op(CopySide::local(reinterpret_cast<std::byte*>(table.data())),
                        CopySide::gref(vif.fe_dom, table_ref, 0), n * sizeof(netif::NetifGref));
  c.dom0.mapper().copy(std::span<CopyOp>(&back, 1));
  return netif::ctrl_status::success;
}

}  // namespace

size_t Backend::ctrl_action(Vif& vif) {
  if (!vif.connected || vif.disabled || !vif.ctrl) return 0;
  auto& ring = *vif.ctrl;
  auto prod = ring.checked_req_prod();
  if (!prod) {
    fatal_protocol_error(vif, ProtocolRing::ctrl, prod.error().reason);
    return 0;
  }
  size_t work = 0;
  for (;;) {
    while (ring.req_cons() != *prod) {
      const netif::CtrlRequest req = ring.consume_request();
      ++vif.counters.ctrl_requests;
      ++work;
      netif::CtrlResponse rsp{req.id, req.type, netif::ctrl_status::not_supported, 0};
      CtrlContext c{dom0_, vif, options_.max_kept_pages_per_domain, kept_pages_of(vif.fe_dom)};
      switch (req.type) {
        case netif::ctrl_type::get_gref_mapping_size:
          if (!vif.header_slots) break;  // NOT_SUPPORTED: the extension was not negotiated
          if (req.data[0] != 0) {
            rsp.status = netif::ctrl_status::invalid_parameter;
            break;
          }
          rsp.status = netif::ctrl_status::success;
          rsp.data = options_.max_kept_pages_per_domain;
          break;
        case netif::ctrl_type::add_gref_mapping:
          if (!vif.header_slots) break;
          rsp.status = add_gref_mapping(c, req);
          break;
        case netif::ctrl_type::del_gref_mapping:
          if (!vif.header_slots) break;
          rsp.status = del_gref_mapping(c, req, &rsp.data);
          break;
        default:
          break;  // hashing is not offered: NOT_SUPPORTED, as netif.h allows
      }
      ring.produce_response(rsp);
    }
    if (work != 0 && ring.push_responses_and_check_notify()) (void)dom0_.evtchn().notify(vif.ctrl_port);
    if (!ring.final_check_for_requests()) break;
    auto again = ring.checked_req_prod();
    if (!again) {
      fatal_protocol_error(vif, ProtocolRing::ctrl, again.error().reason);
      break;
    }
    prod = again;
  }
  return work;
}

}  // namespace pvnet
