// Recall (docs/protocol.md "Recall"): a frontend that wants granted pages back names them in its store directory;
// the backend finishes with them at once (a kept header-slot mapping is unmapped; bytes of a queued packet that
// still live in a recalled page are grant-copied into dom0 memory, so the packet is still delivered) and confirms.
// Nothing else outlives a poll (payload maps and lazy slots are released by end_poll), so one pass is enough and
// the answer comes within the poll that saw the request.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>

#include "backend/recall.hpp"
#include "backend/vif.hpp"

namespace pvnet {

namespace {

// "<seq> <gref> <gref> ...": decimal, space separated, at most one page of grefs. Garbage is refused whole.
bool parse_recall(const std::string& s, std::string& seq, std::vector<GrantRef>& refs) {
  std::istringstream in(s);
  if (!(in >> seq) || seq.size() > 20) return false;
  std::string tok;
  while (in >> tok) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc() || p != tok.data() + tok.size()) return false;
    refs.push_back(GrantRef{v});
    if (refs.size() > kPageSize / sizeof(uint32_t)) return false;
  }
  return true;
}

}  // namespace

void Backend::handle_recall(Vif& vif) {
  Store& store = dom0_.store();
  auto req = store.read_opt(vif.paths.frontend + "/" + recall_key::request);
  if (!req || *req == vif.recall_seen) return;
  vif.recall_seen = *req;
  ++vif.counters.recall_requests;
  std::string seq;
  std::vector<GrantRef> refs;
  if (!parse_recall(*req, seq, refs)) {
    (void)store.write(vif.paths.backend + "/" + recall_key::done, "error");
    return;
  }
  const std::set<GrantRef> wanted(refs.begin(), refs.end());

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
  std::string refused;
  for (GrantRef r : wanted) {
    if (released.count(r)) continue;
    if (std::find(vif.ring_grefs.begin(), vif.ring_grefs.end(), r) != vif.ring_grefs.end()) {
      ++vif.counters.recall_refused;
      refused += (refused.empty() ? "" : " ") + std::to_string(r.value);
    }
  }
  vif.counters.recalled_grefs += released.size();
  // Confirm: everything not refused is no longer used by dom0 (grefs never held need no work).
  (void)store.write(vif.paths.backend + "/" + recall_key::refused, refused);
  (void)store.write(vif.paths.backend + "/" + recall_key::done, seq);
}

}  // namespace pvnet
