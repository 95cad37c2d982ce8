// Every xenstore key of the netif protocol (docs/protocol.md 1-2, 7-9), spelled once. Who writes each is said
// next to it; the typed readers and writers are in negotiation/features.hpp, vif_paths.hpp and recall.hpp.
#pragma once
#include <string>
#include <string_view>

namespace pvnet::netif::key {

// ---- the toolstack's (docs/protocol.md 1) ----
inline constexpr const char* state = "state";              // each end its own: the xenbus state, a number
inline constexpr const char* backend = "backend";          // frontend dir: the backend directory's path
inline constexpr const char* backend_id = "backend-id";    // frontend dir: the backend's domain
inline constexpr const char* frontend = "frontend";        // backend dir: the frontend directory's path
inline constexpr const char* frontend_id = "frontend-id";  // backend dir: the frontend's domain
inline constexpr const char* handle = "handle";            // both: the vif's number
inline constexpr const char* mac = "mac";                  // both
inline constexpr const char* online = "online";            // backend dir: 1, 0 when libxl detaches
inline constexpr const char* error = "error";              // backend dir: why connect failed (xenbus_dev_fatal)

// ---- the backend's offer ----
inline constexpr const char* feature_sg = "feature-sg";  // also the frontend's: it takes chained RX buffers
inline constexpr const char* feature_gso_tcpv4 = "feature-gso-tcpv4";  // also the frontend's (RX GSO)
inline constexpr const char* feature_gso_tcpv6 = "feature-gso-tcpv6";  // also the frontend's (RX GSO)
inline constexpr const char* feature_rx_copy = "feature-rx-copy";
inline constexpr const char* feature_rx_flip = "feature-rx-flip";  // always 0: no page flipping
inline constexpr const char* feature_split_event_channels = "feature-split-event-channels";
inline constexpr const char* feature_ctrl_ring = "feature-ctrl-ring";
inline constexpr const char* feature_header_slots = "feature-header-slots";  // docs/protocol.md 5
inline constexpr const char* feature_rx_extents = "feature-rx-extents";      // docs/protocol.md 7
inline constexpr const char* max_tx_ring_page_order = "max-tx-ring-page-order";  // docs/protocol.md 9: 0..kMax
inline constexpr const char* mtu = "mtu";

// ---- the frontend's keys ----
inline constexpr const char* tx_ring_ref = "tx-ring-ref";                // one page; or, with the order:
inline constexpr const char* tx_ring_page_order = "tx-ring-page-order";  // 1..offered, and tx-ring-ref0..2^N-1
inline constexpr const char* rx_ring_ref = "rx-ring-ref";
inline constexpr const char* event_channel = "event-channel";            // one port for both rings, or
inline constexpr const char* event_channel_tx = "event-channel-tx";      // split: one port per ring
inline constexpr const char* event_channel_rx = "event-channel-rx";
inline constexpr const char* ctrl_ring_ref = "ctrl-ring-ref";
inline constexpr const char* event_channel_ctrl = "event-channel-ctrl";
inline constexpr const char* request_rx_copy = "request-rx-copy";
inline constexpr const char* feature_rx_notify = "feature-rx-notify";
inline constexpr const char* feature_no_csum_offload = "feature-no-csum-offload";  // complete checksums on RX
inline constexpr const char* request_header_slots = "request-header-slots";  // "1", with header-slot-size
inline constexpr const char* header_slot_size = "header-slot-size";          // bytes, a power of two 64..2048
inline constexpr const char* request_rx_extents = "request-rx-extents";      // "1", with rx-extents-ref
inline constexpr const char* rx_extents_ref = "rx-extents-ref";              // gref of the extents table
inline constexpr const char* rx_extent_headroom = "rx-extent-headroom";      // bytes left free (default 0)

// ---- recall (docs/protocol.md 8) ----
inline constexpr const char* recall = "recall";                  // frontend: "<seq> <gref> <gref> ..."
inline constexpr const char* recall_done = "recall-done";        // backend: "<seq>" once released, or "error"
inline constexpr const char* recall_refused = "recall-refused";  // backend: grefs it cannot release, or empty

// tx-ring-ref<i> of a multi-page TX ring.
inline std::string tx_ring_ref_n(unsigned i) { return std::string(tx_ring_ref) + std::to_string(i); }

}  // namespace pvnet::netif::key

namespace pvnet::netif {
// <dir>/<key>
inline std::string key_path(std::string_view dir, std::string_view key) {
  std::string p(dir);
  p += '/';
  p += key;
  return p;
}
}  // namespace pvnet::netif
