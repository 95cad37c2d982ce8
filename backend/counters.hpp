// What the backend did and what it cost dom0, as data: one struct per vif (and one total), printed by one
// function, exported as JSON by one function. Names follow xen-netback's ethtool stats where one exists.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "backend/drop_reason.hpp"
#include "grant-sim/platform/counters.hpp"

namespace pvnet {

struct BackendCounters {
  // TX: guest -> dom0.
  uint64_t packets_in = 0;           // TX packets accepted off the ring (valid, handed to a sink or dropped)
  uint64_t bytes_in = 0;
  uint64_t packets_out = 0;          // TX packets a sink delivered (written, forwarded, inspected)
  uint64_t bytes_out = 0;
  uint64_t tx_requests = 0;          // ring slots consumed (data and extra-info)
  uint64_t tx_responses = 0;         // responses published
  uint64_t tx_header_slot_packets = 0;  // packets whose header came from a kept header slot
  uint64_t tx_plain_packets = 0;     // plain-netif packets (header grant-copied)
  uint64_t tx_gso_packets = 0;
  uint64_t tx_frags = 0;             // payload pieces handed to sinks unmapped
  uint64_t tx_backpressure_stalls = 0;  // polls in which a full sink stopped this ring's consumer
  uint64_t tx_fatal_errors = 0;      // protocol violations (the vif was disabled)
  uint64_t tx_credit_stalls = 0;     // polls in which the credit scheduler stopped this ring's consumer
  uint64_t tx_inflight_stalls = 0;   // polls in which max_inflight_per_vif stopped this ring's consumer
  uint64_t header_bytes = 0;         // header bytes obtained (slot memcpy or grant copy)
  uint64_t backend_memcpy_bytes = 0; // bytes the dom0 CPU copied out of guest memory (slots, payload reads)
  uint64_t slots_used = 0;           // header slots consumed (one per header-slot packet)
  uint64_t payload_pages_touched = 0;  // payload pages a sink read through the payload policy

  // RX: dom0 -> guest.
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_requests = 0;          // RX buffers consumed (data and GSO extra slot)
  uint64_t rx_responses = 0;
  uint64_t rx_gso_packets = 0;
  uint64_t rx_copy_ops = 0;          // grant-copy segments issued for RX
  uint64_t rx_copy_errors = 0;
  uint64_t rx_queued = 0;            // frames currently waiting for RX buffers (a gauge)
  uint64_t rx_queue_full = 0;        // times a sender was held back because this queue was full
  uint64_t rx_queue_bytes = 0;       // bytes currently waiting for RX buffers (a gauge)
  uint64_t rx_stalls = 0;            // times the guest was found stalled (queue dropped, see rx_stall_timeout_ms)

  // Recall (docs/protocol.md "Recall").
  uint64_t recall_requests = 0;
  uint64_t recalled_grefs = 0;       // grefs released on request (kept mappings unmapped, queued bytes copied)
  uint64_t recall_refused = 0;       // grefs that could not be released (the rings, while connected)

  // Control ring.
  uint64_t ctrl_requests = 0;
  uint64_t kept_pages = 0;           // header-slot pages mapped right now (a gauge)

  DropCounts dropped;  // reason -> packets dropped (answered ERROR/DROPPED); JSON {key: count} as before

  GrantCounters grant;  // the mapper's, filled in for the backend total only (batches span vifs)

  uint64_t dropped_total() const;
  BackendCounters& operator+=(const BackendCounters& o);
};

void to_json(nlohmann::json& j, const BackendCounters& c);
std::ostream& operator<<(std::ostream& os, const BackendCounters& c);

}  // namespace pvnet
