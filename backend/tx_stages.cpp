#include "backend/tx_stages.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared-ring/packet_headers.hpp"

namespace pvnet {

const netif::ExtraInfo* TxChain::extra(uint8_t type) const {
  if (type == netif::extra_type::none || type >= netif::extra_type::max) return nullptr;
  const netif::ExtraInfo& e = extras[type - 1];
  return e.type == type ? &e : nullptr;
}

std::optional<GsoInfo> TxChain::gso() const {
  const netif::ExtraInfo* e = extra(netif::extra_type::gso);
  if (!e) return std::nullopt;
  return GsoInfo{e->u.gso.type, e->u.gso.size};
}

namespace {

// xenvif_get_extras: the extra-info slots after the first request, each type at most once. nullopt: read them
// all; else why not (`incomplete`: past req_prod).
std::optional<std::variant<TxChainIncomplete, Violation>> read_extras(const netif::TxBackRing& ring,
                                                                      ring::RingIdx cons, uint32_t avail,
                                                                      uint32_t& idx, TxChain& chain) {
  for (;;) {
    if (idx >= avail) return TxChainIncomplete{idx};
    const netif::TxRequest raw = ring.copy_request(cons + idx++);
    netif::ExtraInfo extra;
    static_assert(sizeof(extra) <= sizeof(raw));
    std::memcpy(&extra, &raw, sizeof(extra));
    ++chain.n_extras;
    if (extra.type == netif::extra_type::none || extra.type >= netif::extra_type::max)
      return Violation{"Invalid extra type: " + std::to_string(extra.type)};
    if (chain.extras[extra.type - 1].type != netif::extra_type::none)
      return Violation{"Repeated extra type: " + std::to_string(extra.type)};
    chain.extras[extra.type - 1] = extra;
    if (!(extra.flags & netif::extra_flag::more)) return std::nullopt;
  }
}

}  // namespace

std::variant<TxChain, TxChainIncomplete, Violation> read_tx_chain(const netif::TxBackRing& ring, ring::RingIdx cons,
                                                                 uint32_t avail) {
  TxChain chain;
  uint32_t idx = 0;
  chain.first = ring.copy_request(cons + idx++);
  if (chain.first.flags & netif::txf::extra_info) {
    if (auto bad = read_extras(ring, cons, avail, idx, chain)) {
      if (auto* v = std::get_if<Violation>(&*bad)) return std::move(*v);
      return std::get<TxChainIncomplete>(*bad);
    }
  }
  // xenvif_count_requests: the pieces, up to fatal_skb_slots.
  for (uint16_t flags = chain.first.flags; flags & netif::txf::more_data;) {
    if (1 + chain.pieces.size() >= kTxFatalSlots)
      return Violation{"Too many slots (" + std::to_string(kTxFatalSlots) + " or more) in one packet"};
    if (idx >= avail) return TxChainIncomplete{idx};
    chain.pieces.push_back(ring.copy_request(cons + idx++));
    flags = chain.pieces.back().flags;
  }
  return chain;
}

Violation past_req_prod(const TxChainIncomplete& c, uint32_t avail) {
  return Violation{"packet chain of " + std::to_string(c.slots) + "+ slots runs past req_prod (" +
                   std::to_string(avail) + " published)"};
}

namespace {

std::string cross_page(uint32_t offset, uint32_t size) {
  return "Cross page boundary, txp->offset: " + std::to_string(offset) + ", size: " + std::to_string(size);
}

// A header-slot first request: the kept page its header is in, or why the request is a violation.
Result<const KeptMapping*> check_header_slot(const netif::TxRequest& first, uint32_t first_len,
                                             const TxVifRules& vif) {
  if (!vif.header_slots) return make_error(EPROTO, "header-slot request without negotiated header slots");
  auto it = vif.kept ? vif.kept->find(first.gref) : KeptMappings::const_iterator{};
  if (!vif.kept || it == vif.kept->end())
    return make_error(EPROTO, "header-slot gref " + std::to_string(first.gref.value) + " is not a kept mapping");
  if (first.offset % vif.slot_size != 0)
    return make_error(EPROTO, "header-slot offset " + std::to_string(first.offset) + " is not a multiple of " +
                                  std::to_string(vif.slot_size));
  if (first_len > vif.slot_size)
    return make_error(EPROTO, "header length " + std::to_string(first_len) + " exceeds the slot size " +
                                  std::to_string(vif.slot_size));
  return &it->second;
}

}  // namespace

Result<TxChecked> check_tx_chain(const TxChain& chain, const TxVifRules& vif) {
  uint32_t rest = 0;
  for (const auto& p : chain.pieces) {
    if (uint32_t{p.offset} + p.size > kPageSize) return make_error(EPROTO, cross_page(p.offset, p.size));
    rest += p.size;
  }
  const netif::TxRequest& first = chain.first;
  TxChecked c;
  // A first size smaller than the rest is what buggy frontends send: Linux netback drops the packet and keeps
  // the vif (drop_err in xenvif_count_requests), and so does pvnet (docs/protocol.md 4).
  c.first_too_small = rest > first.size;
  c.first_len = c.first_too_small ? 0 : first.size - rest;
  if (uint32_t{first.offset} + c.first_len > kPageSize) return make_error(EPROTO, cross_page(first.offset, c.first_len));
  if (first.flags & netif::txf::header_slot) {
    auto kept = check_header_slot(first, c.first_len, vif);
    if (!kept) return kept.error();
    c.kept = *kept;
  }
  // xenvif_set_skb_gso: "Failure … is fatal".
  if (const netif::ExtraInfo* g = chain.extra(netif::extra_type::gso)) {
    if (g->u.gso.size == 0) return make_error(EPROTO, "GSO size must not be zero");
    if (g->u.gso.type != netif::gso_type::tcpv4 && g->u.gso.type != netif::gso_type::tcpv6)
      return make_error(EPROTO, "Bad GSO type " + std::to_string(g->u.gso.type));
  }
  return c;
}

std::optional<DropReason> tx_drop_reason(const TxChain& chain, const TxChecked& checked) {
  if (chain.pieces.size() + 1 > kTxMaxSlotsPerPacket) return DropReason::too_many_slots;
  if (checked.first_too_small) return DropReason::first_size_smaller_than_rest;
  if (chain.first.size < kEthHdrLen) return DropReason::runt;
  return std::nullopt;
}

bool tx_over_mtu(const TxPacket& pkt, uint32_t mtu) {
  if (pkt.gso.present()) return false;
  const uint32_t l2 = std::max<uint32_t>(pkt.hdr.l2_len, kEthHdrLen);
  return pkt.len > l2 && pkt.len - l2 > mtu;
}

void fill_tx_completion(const TxChain& chain, TxCompletion& c) {
  c.len = chain.first.size;
  c.slots.push_back(TxResponseSlot{chain.first.id, false});
  for (uint32_t i = 0; i < chain.n_extras; ++i) c.slots.push_back(TxResponseSlot{0, true});
  for (const auto& p : chain.pieces) c.slots.push_back(TxResponseSlot{p.id, false});
}

bool claim_request_ids(std::bitset<1u << 16>& inflight, const TxCompletion& c) {
  size_t claimed = 0;
  for (; claimed < c.slots.size(); ++claimed) {
    const TxResponseSlot& s = c.slots[claimed];
    if (s.extra) continue;
    if (inflight.test(s.id)) break;
    inflight.set(s.id);
  }
  if (claimed == c.slots.size()) return true;
  for (size_t i = 0; i < claimed; ++i)
    if (!c.slots[i].extra) inflight.reset(c.slots[i].id);
  return false;
}

}  // namespace pvnet
