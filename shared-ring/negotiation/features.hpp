// The negotiation of docs/protocol.md 2 as two typed records, each with its one writer and its one reader:
//   BackendFeatures  what the backend offers in its directory (netback_probe's keys), read by the frontend;
//   FrontendKeys     what the frontend writes in its own directory before Connected (xennet_connect's keys:
//                    rings, event channels, requests), read by the backend at connect.
// A reader refuses with the reason the refusing driver reports (Backend::connect writes it to <backend>/error),
// so both drivers, their test doubles and the tools all speak the same keys with the same rules.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "grant-sim/platform/store.hpp"
#include "shared-ring/negotiation/keys.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::netif {

struct BackendFeatures {
  bool sg = true;          // feature-sg
  bool gso_tcpv4 = true;   // feature-gso-tcpv4
  bool gso_tcpv6 = true;   // feature-gso-tcpv6
  bool rx_copy = true;     // feature-rx-copy (feature-rx-flip is always written 0); read refuses a backend without
  bool split_event_channels = true;  // feature-split-event-channels
  bool ctrl_ring = true;             // feature-ctrl-ring
  bool header_slots = true;          // feature-header-slots (docs/protocol.md 5)
  bool rx_extents = true;            // feature-rx-extents (docs/protocol.md 7)
  uint32_t max_tx_ring_page_order = 0;  // max-tx-ring-page-order (docs/protocol.md 9)
  std::optional<uint32_t> mtu = 1500;   // mtu; read: absent or outside 1..65535 is nullopt (keep what you had)
  bool operator==(const BackendFeatures&) const = default;

  // Every key, "1"/"0" for the flags (as netback writes them).
  Result<void> write(Store& store, std::string_view backend_dir) const;
  // A flag is on only if it reads "1". Refuses a backend without feature-rx-copy (EOPNOTSUPP): grant copy is the
  // only RX mode a netfront of ours speaks.
  static Result<BackendFeatures> read(Store& store, std::string_view backend_dir);
};

struct FrontendKeys {
  struct CtrlRing {
    uint32_t ref = 0;   // ctrl-ring-ref
    uint32_t port = 0;  // event-channel-ctrl
    bool operator==(const CtrlRing&) const = default;
  };
  struct RxExtents {
    uint32_t ref = 0;       // rx-extents-ref
    uint32_t headroom = 0;  // rx-extent-headroom, written only when not 0
    bool operator==(const RxExtents&) const = default;
  };

  // One ref: tx-ring-ref. 2^N refs (N >= 1): tx-ring-page-order N and tx-ring-ref0 .. tx-ring-ref<2^N - 1>.
  std::vector<uint32_t> tx_ring_refs;
  uint32_t rx_ring_ref = 0;
  // event-channel (tx_port == rx_port), or split: event-channel-tx and event-channel-rx.
  bool split_event_channels = false;
  uint32_t tx_port = 0;
  uint32_t rx_port = 0;
  std::optional<CtrlRing> ctrl;
  bool rx_copy = true;    // request-rx-copy (read refuses a frontend without it)
  bool rx_notify = true;  // feature-rx-notify
  bool sg = false;        // feature-sg
  bool gso_tcpv4 = false;
  bool gso_tcpv6 = false;
  bool no_csum_offload = false;
  // request-header-slots with header-slot-size (read: kHeaderSlotSizeDefault when the size is absent).
  std::optional<uint32_t> header_slot_size;
  std::optional<RxExtents> rx_extents;  // request-rx-extents with its table

  uint32_t tx_ring_page_order() const;  // log2 of tx_ring_refs.size()
  bool operator==(const FrontendKeys&) const = default;

  // The keys the fields say, stopping at the first failed write. Writes what it is given (a test double may lie:
  // header slots without a control ring); only read() judges.
  Result<void> write(Store& store, std::string_view frontend_dir) const;
  // Backend::connect's reading, against what this backend offered: a key for something not offered is ignored
  // (the control ring, header slots, RX extents, as from a backend that never heard of them); a missing or bad key
  // for something asked for refuses the connection (EINVAL, or EOPNOTSUPP without request-rx-copy).
  static Result<FrontendKeys> read(Store& store, std::string_view frontend_dir, const BackendFeatures& offered);
};

}  // namespace pvnet::netif
