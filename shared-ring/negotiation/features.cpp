#include "shared-ring/negotiation/features.hpp"

#include <bit>
#include <cerrno>
#include <string>

#include "shared-ring/header_slots.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet::netif {
namespace {

// One directory's keys: a number is a decimal in 0..UINT32_MAX, a flag is on only if it reads 1.
struct Dir {
  Store& store;
  std::string_view path;

  std::string at(std::string_view key) const { return key_path(path, key); }
  bool has(std::string_view key) const { return store.read_opt(at(key)).has_value(); }
  std::optional<uint32_t> u32(std::string_view key) const {
    auto v = store.read_int(at(key));
    if (!v || *v < 0 || *v > UINT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(*v);
  }
  bool flag(std::string_view key) const { return u32(key).value_or(0) == 1; }
};

// Writes until one fails; the first failure is the result.
struct Writer {
  Store& store;
  std::string_view dir;
  Result<void> result{};
  void put(std::string_view key, long long v) {
    if (result) result = store.write_int(key_path(dir, key), v);
  }
  void flag(std::string_view key, bool on) { put(key, on ? 1 : 0); }
};

// The TX ring: tx-ring-ref, or with tx-ring-page-order N (docs/protocol.md 9) tx-ring-ref0 .. 2^N - 1.
Result<void> read_tx_ring(const Dir& d, uint32_t offered_order, FrontendKeys& k) {
  uint32_t order = 0;
  if (d.has(key::tx_ring_page_order)) {
    auto o = d.u32(key::tx_ring_page_order);
    if (!o || *o > offered_order)
      return make_error(EINVAL, d.at(key::tx_ring_page_order) + " is not a number from 0 to the offered " +
                                    std::to_string(offered_order));
    order = *o;
  }
  if (order == 0) {
    if (auto r = d.u32(key::tx_ring_ref)) k.tx_ring_refs.push_back(*r);
    return {};
  }
  for (uint32_t i = 0; i < (1u << order); ++i) {
    auto r = d.u32(key::tx_ring_ref_n(i));
    if (!r) return make_error(EINVAL, "reading " + d.at(key::tx_ring_ref_n(i)));
    k.tx_ring_refs.push_back(*r);
  }
  return {};
}

Result<void> read_rings_and_ports(const Dir& d, uint32_t offered_order, FrontendKeys& k) {
  if (auto r = read_tx_ring(d, offered_order, k); !r) return r;
  auto rx_ref = d.u32(key::rx_ring_ref);
  if (k.tx_ring_refs.empty() || !rx_ref)
    return make_error(EINVAL, "reading " + d.at(key::tx_ring_ref) + " and " + key::rx_ring_ref);
  k.rx_ring_ref = *rx_ref;
  auto shared = d.u32(key::event_channel);
  auto tx = d.u32(key::event_channel_tx);
  auto rx = d.u32(key::event_channel_rx);
  k.split_event_channels = tx && rx;
  if (!shared && !k.split_event_channels)
    return make_error(EINVAL, "reading " + d.at(key::event_channel) + " or event-channel-tx/-rx");
  k.tx_port = k.split_event_channels ? *tx : *shared;
  k.rx_port = k.split_event_channels ? *rx : *shared;
  return {};
}

// The extensions: each read only when offered, refused when asked for with a missing or bad key.
Result<void> read_extensions(const Dir& d, const BackendFeatures& offered, FrontendKeys& k) {
  if (auto ref = offered.ctrl_ring ? d.u32(key::ctrl_ring_ref) : std::nullopt) {
    auto port = d.u32(key::event_channel_ctrl);
    if (!port) return make_error(EINVAL, "reading " + d.at(key::event_channel_ctrl));
    k.ctrl = FrontendKeys::CtrlRing{*ref, *port};
  }
  if (offered.header_slots && d.flag(key::request_header_slots)) {
    if (!k.ctrl) return make_error(EINVAL, std::string(key::request_header_slots) + " without a control ring");
    uint32_t size = kHeaderSlotSizeDefault;
    if (d.has(key::header_slot_size)) {
      auto s = d.u32(key::header_slot_size);
      if (!s || !HeaderSlotGeometry::valid_slot_size(*s))
        return make_error(EINVAL, d.at(key::header_slot_size) + " is not a power of two from " +
                                      std::to_string(kHeaderSlotSizeMin) + " to " + std::to_string(kHeaderSlotSizeMax));
      size = *s;
    }
    k.header_slot_size = size;
  }
  if (offered.rx_extents && d.flag(key::request_rx_extents)) {
    auto ref = d.u32(key::rx_extents_ref);
    if (!ref) return make_error(EINVAL, std::string(key::request_rx_extents) + " without " + d.at(key::rx_extents_ref));
    FrontendKeys::RxExtents ext{*ref, 0};
    if (d.has(key::rx_extent_headroom)) {
      auto h = d.u32(key::rx_extent_headroom);
      if (!h || *h > kRxExtentHeadroomMax)
        return make_error(EINVAL, d.at(key::rx_extent_headroom) + " is not a number from 0 to " +
                                      std::to_string(kRxExtentHeadroomMax));
      ext.headroom = *h;
    }
    k.rx_extents = ext;
  }
  return {};
}

}  // namespace

Result<void> BackendFeatures::write(Store& store, std::string_view dir) const {
  Writer w{store, dir};
  w.flag(key::feature_sg, sg);
  w.flag(key::feature_gso_tcpv4, gso_tcpv4);
  w.flag(key::feature_gso_tcpv6, gso_tcpv6);
  w.flag(key::feature_rx_copy, rx_copy);
  w.flag(key::feature_rx_flip, false);
  w.flag(key::feature_split_event_channels, split_event_channels);
  w.flag(key::feature_ctrl_ring, ctrl_ring);
  w.flag(key::feature_header_slots, header_slots);
  w.flag(key::feature_rx_extents, rx_extents);
  w.put(key::max_tx_ring_page_order, max_tx_ring_page_order);
  if (mtu) w.put(key::mtu, *mtu);
  return w.result;
}

Result<BackendFeatures> BackendFeatures::read(Store& store, std::string_view dir) {
  const Dir d{store, dir};
  BackendFeatures f;
  f.sg = d.flag(key::feature_sg);
  f.gso_tcpv4 = d.flag(key::feature_gso_tcpv4);
  f.gso_tcpv6 = d.flag(key::feature_gso_tcpv6);
  f.rx_copy = d.flag(key::feature_rx_copy);
  f.split_event_channels = d.flag(key::feature_split_event_channels);
  f.ctrl_ring = d.flag(key::feature_ctrl_ring);
  f.header_slots = d.flag(key::feature_header_slots);
  f.rx_extents = d.flag(key::feature_rx_extents);
  f.max_tx_ring_page_order = d.u32(key::max_tx_ring_page_order).value_or(0);
  f.mtu.reset();
  if (auto m = d.u32(key::mtu); m && *m > 0 && *m <= 65535) f.mtu = *m;
  if (!f.rx_copy)
    return make_error(EOPNOTSUPP, std::string("backend lacks ") + key::feature_rx_copy +
                                      " (the only RX mode netfront speaks)");
  return f;
}

uint32_t FrontendKeys::tx_ring_page_order() const {
  return static_cast<uint32_t>(std::countr_zero(tx_ring_refs.size()));
}

Result<void> FrontendKeys::write(Store& store, std::string_view dir) const {
  Writer w{store, dir};
  if (tx_ring_refs.size() == 1) {
    w.put(key::tx_ring_ref, tx_ring_refs[0]);
  } else {
    w.put(key::tx_ring_page_order, tx_ring_page_order());
    for (size_t i = 0; i < tx_ring_refs.size(); ++i)
      w.put(key::tx_ring_ref_n(static_cast<unsigned>(i)), tx_ring_refs[i]);
  }
  w.put(key::rx_ring_ref, rx_ring_ref);
  if (split_event_channels) {
    w.put(key::event_channel_tx, tx_port);
    w.put(key::event_channel_rx, rx_port);
  } else {
    w.put(key::event_channel, tx_port);
  }
  if (rx_copy) w.put(key::request_rx_copy, 1);
  if (rx_notify) w.put(key::feature_rx_notify, 1);
  if (sg) w.put(key::feature_sg, 1);
  if (gso_tcpv4) w.put(key::feature_gso_tcpv4, 1);
  if (gso_tcpv6) w.put(key::feature_gso_tcpv6, 1);
  if (no_csum_offload) w.put(key::feature_no_csum_offload, 1);
  if (ctrl) {
    w.put(key::ctrl_ring_ref, ctrl->ref);
    w.put(key::event_channel_ctrl, ctrl->port);
  }
  if (header_slot_size) {
    w.put(key::request_header_slots, 1);
    w.put(key::header_slot_size, *header_slot_size);
  }
  if (rx_extents) {
    w.put(key::request_rx_extents, 1);
    w.put(key::rx_extents_ref, rx_extents->ref);
    if (rx_extents->headroom) w.put(key::rx_extent_headroom, rx_extents->headroom);
  }
  return w.result;
}

Result<FrontendKeys> FrontendKeys::read(Store& store, std::string_view dir, const BackendFeatures& offered) {
  const Dir d{store, dir};
  FrontendKeys k;
  if (auto r = read_rings_and_ports(d, offered.max_tx_ring_page_order, k); !r) return r.error();
  // Like Linux netback, grant copy is the only RX mode: a frontend that cannot take it is refused.
  k.rx_copy = d.flag(key::request_rx_copy);
  if (!k.rx_copy) return make_error(EOPNOTSUPP, d.at(key::request_rx_copy) + " is not 1");
  if (auto r = read_extensions(d, offered, k); !r) return r.error();
  k.rx_notify = d.flag(key::feature_rx_notify);
  k.sg = d.flag(key::feature_sg);
  k.gso_tcpv4 = d.flag(key::feature_gso_tcpv4);
  k.gso_tcpv6 = d.flag(key::feature_gso_tcpv6);
  k.no_csum_offload = d.flag(key::feature_no_csum_offload);
  return k;
}

}  // namespace pvnet::netif
