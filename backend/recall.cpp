// Recall (docs/protocol.md "Recall"): a frontend that wants granted pages back names them in its store directory;
// the backend finishes with them at once (a kept header-slot mapping is unmapped; bytes of a queued packet that
// still live in a recalled page are grant-copied into dom0 memory, so the packet is still delivered) and confirms.
// Nothing else outlives a poll (payload maps and lazy slots are released by end_poll), so one pass is enough and
// the answer comes within the poll that saw the request.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <set>

#include "backend/vif.hpp"
#include "shared-ring/negotiation/keys.hpp"
#include "shared-ring/negotiation/recall.hpp"

namespace pvnet {

void Backend::handle_recall(Vif& vif) {
  Store& store = dom0_.store();
  namespace recall = netif::recall;
  const std::string done_key = netif::key_path(vif.paths.backend, netif::key::recall_done);
  auto req = store.read_opt(netif::key_path(vif.paths.frontend, netif::key::recall));
  if (!req || *req == vif.recall_seen) return;
  vif.recall_seen = *req;
  ++vif.counters.recall_requests;
  const auto request = recall::parse_request(*req);  // garbage is refused whole
  if (!request) {
    (void)store.write(done_key, recall::format_done(recall::Done{true, {}}));
    return;
  }
  const std::set<GrantRef> wanted(request->grefs.begin(), request->grefs.end());

  // 1. Kept header-slot mappings: a header is copied out of its slot in the poll that takes it, so none is needed.
  std::vector<UnmapOp> unmaps;
  std::set<GrantRef> released;
  for (GrantRef r : wanted) {
    auto it = vif.kept.find(r);
    if (it == vif.kept.end()) continue;
    unmaps.push_back(unmap_op(it->second.handle));
    vif.kept.erase(it);
    released.insert(r);
  }
  if (!unmaps.empty()) dom0_.mapper().unmap(unmaps);
  vif.counters.kept_pages = vif.kept.size();

  // 2. This guest's packets waiting in any RX queue with payload still in a recalled page: copy those bytes into
  //    dom0 memory now (one batch), so the packet is delivered later without the grant.
  std::vector<CopyOp> copies;
  std::vector<TxFrag*> targets;
  for (auto& [id, other] : vifs_) {
    for (RxFrame& f : other->rx_queue) {
      for (TxFrag& fg : f.frags) {
        if (fg.dom != vif.fe_dom || fg.source == FragSource::copied || !wanted.count(fg.gref) || fg.len == 0)
          continue;
        auto& buf = f.recall_copies.emplace_back(fg.len);
        copies.push_back(copy_op(CopySide::gref(fg.dom, fg.gref, fg.offset), CopySide::local(buf.data()), fg.len));
        targets.push_back(&fg);
      }
    }
  }
  if (!copies.empty()) dom0_.mapper().copy(copies);
  for (size_t i = 0; i < copies.size(); ++i) {
    TxFrag& fg = *targets[i];
    if (copies[i].status == GntSt::okay) {
      fg.source = FragSource::copied;
      fg.data = copies[i].dst.ptr;
      released.insert(fg.gref);
    } else {
      // The guest ended access before recalling: the bytes are gone. The RX copy will fail and be counted.
      ++vif.counters.rx_copy_errors;
    }
  }

  // 3. The rings cannot be given back while connected (the frontend closes to get them back).
  std::vector<GrantRef> refused;
  for (GrantRef r : wanted) {
    if (released.count(r)) continue;
    if (std::find(vif.ring_grefs.begin(), vif.ring_grefs.end(), r) != vif.ring_grefs.end()) {
      ++vif.counters.recall_refused;
      refused.push_back(r);
    }
  }
  vif.counters.recalled_grefs += released.size();
  // Confirm: everything not refused is no longer used by dom0 (grefs never held need no work).
  (void)store.write(netif::key_path(vif.paths.backend, netif::key::recall_refused), recall::format_grefs(refused));
  (void)store.write(done_key, recall::format_done(recall::Done{false, request->seq}));
}

}  // namespace pvnet
