// What netfront did, as data: one struct, printed by one function, exported as JSON by one function.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

namespace pvnet {

struct NetfrontCounters {
  // TX (guest -> backend)
  uint64_t tx_packets = 0;          // frames posted on the ring
  uint64_t tx_bytes = 0;
  uint64_t tx_requests = 0;         // data requests (not counting extra-info slots)
  uint64_t tx_slot_packets = 0;     // frames whose first request named a header slot
  uint64_t tx_whole_in_slot = 0;    // ... and that travelled entirely in it (no payload grant)
  uint64_t tx_plain_packets = 0;    // frames sent as plain netif (first request = first page piece)
  uint64_t tx_gso_packets = 0;      // frames with a GSO extra
  uint64_t tx_grants = 0;           // payload grants issued
  uint64_t tx_linearised = 0;       // frames whose payload was copied into fresh pages (> NR_SLOTS_MIN pieces)
  uint64_t tx_linearised_bytes = 0;
  uint64_t tx_busy = 0;             // transmit() refused for lack of ring room, ids, slots, grants or pages
  uint64_t tx_invalid = 0;          // transmit() refused a frame the protocol cannot carry
  uint64_t tx_completed = 0;        // frames reported complete (any status)
  uint64_t tx_errors = 0;           // completed with NETIF_RSP_ERROR (or an unknown status)
  uint64_t tx_dropped = 0;          // completed with NETIF_RSP_DROPPED (or torn down before a response)
  uint64_t tx_lost_backend_gone = 0;  // frames in flight when the backend died or restarted (never answered)
  uint64_t reconnects = 0;            // backend connections lost and started again (NetfrontConfig::reconnect)
  uint64_t recalls_sent = 0;          // recall requests written (docs/protocol.md 8)
  uint64_t recalls_answered = 0;      // ... that the backend confirmed in time
  uint64_t recall_timeouts = 0;       // ... that it did not answer within the recall's timeout
  // RX (backend -> guest)
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_gso_packets = 0;
  uint64_t rx_errors = 0;           // frames dropped: a response with status < 0, or a malformed chain
  uint64_t rx_buffers_posted = 0;   // rx requests produced (cumulative)
  uint64_t rx_copy_bytes = 0;       // bytes copied out of RX buffers into delivered frames
  // Shared
  uint64_t frontend_copy_bytes = 0;  // TX header bytes copied into slots + linearised payload bytes
  uint64_t slots_in_use = 0;         // gauge
  uint64_t slots_total = 0;          // gauge: registered slots (0 without header slots)
  uint64_t grants_in_use = 0;        // gauge: every grant netfront holds (rings, slot pages, payload, RX buffers)
  uint64_t grants_busy_retries = 0;  // end_access refused because the backend still had the grant in use
  uint64_t grants_kept = 0;          // gauge: grants (and their pages) kept because they are still in use
  uint64_t notifications_sent = 0;   // event-channel kicks after push-and-check-notify
  uint64_t ctrl_requests = 0;
  uint64_t bad_responses = 0;        // responses naming an id not in flight, or an overflowing rsp_prod

  bool operator==(const NetfrontCounters&) const = default;
};

void to_json(nlohmann::json& j, const NetfrontCounters& c);
std::ostream& operator<<(std::ostream& os, const NetfrontCounters& c);

}  // namespace pvnet
