// What netfront did, as data: one struct, printed by one function, exported as JSON by one function, both made
// from its one field list.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "shared-ring/counter_list.hpp"

namespace pvnet {

// The fields, one list (shared-ring/counter_list.hpp): it makes the struct's fields, to_json and operator<<.
#define PVNET_NETFRONT_COUNTERS(X)                                                                          \
  /* TX (guest -> backend). */                                                                              \
  X(tx_packets)            /* frames posted on the ring */                                                  \
  X(tx_bytes)                                                                                               \
  X(tx_requests)           /* data requests (not counting extra-info slots) */                              \
  X(tx_slot_packets)       /* frames whose first request named a header slot */                             \
  X(tx_whole_in_slot)      /* ... and that travelled entirely in it (no payload grant) */                   \
  X(tx_plain_packets)      /* frames sent as plain netif (first request = first page piece) */              \
  X(tx_gso_packets)        /* frames with a GSO extra */                                                    \
  X(tx_grants)             /* payload grants issued */                                                      \
  X(tx_linearised)         /* frames whose payload was copied into fresh pages (> NR_SLOTS_MIN pieces) */   \
  X(tx_linearised_bytes)                                                                                    \
  X(tx_busy)               /* transmit() refused for lack of ring room, ids, slots, grants or pages */      \
  X(tx_invalid)            /* transmit() refused a frame the protocol cannot carry */                       \
  X(tx_completed)          /* frames reported complete (any status) */                                      \
  X(tx_errors)             /* completed with NETIF_RSP_ERROR (or an unknown status) */                      \
  X(tx_dropped)            /* completed with NETIF_RSP_DROPPED (or torn down before a response) */          \
  X(tx_lost_backend_gone)  /* frames in flight when the backend died or restarted (never answered) */       \
  X(reconnects)            /* backend connections lost and started again (NetfrontConfig::reconnect) */     \
  X(recalls_sent)          /* recall requests written (docs/protocol.md 8) */                               \
  X(recalls_answered)      /* ... that the backend confirmed in time */                                     \
  X(recall_timeouts)       /* ... that it did not answer within the recall's timeout */                     \
  /* RX (backend -> guest). */                                                                              \
  X(rx_packets)                                                                                             \
  X(rx_bytes)                                                                                               \
  X(rx_gso_packets)                                                                                         \
  X(rx_errors)             /* frames dropped: a response with status < 0, or a malformed chain */           \
  X(rx_buffers_posted)     /* rx requests produced (cumulative) */                                          \
  X(rx_copy_bytes)         /* bytes copied out of RX buffers into delivered frames */                       \
  /* Shared. */                                                                                             \
  X(frontend_copy_bytes)   /* TX header bytes copied into slots + linearised payload bytes */               \
  X(slots_in_use)          /* gauge */                                                                      \
  X(slots_total)           /* gauge: registered slots (0 without header slots) */                           \
  X(grants_in_use)         /* gauge: every grant netfront holds (rings, slot pages, payload, RX buffers) */ \
  X(grants_busy_retries)   /* end_access refused because the backend still had the grant in use */          \
  X(grants_kept)           /* gauge: grants (and their pages) kept because they are still in use */         \
  X(notifications_sent)    /* event-channel kicks after push-and-check-notify */                            \
  X(ctrl_requests)                                                                                          \
  X(bad_responses)         /* responses naming an id not in flight, or an overflowing rsp_prod */

struct NetfrontCounters {
  PVNET_NETFRONT_COUNTERS(PVNET_COUNTER_FIELD)

  bool operator==(const NetfrontCounters&) const = default;
};

void to_json(nlohmann::json& j, const NetfrontCounters& c);
std::ostream& operator<<(std::ostream& os, const NetfrontCounters& c);

}  // namespace pvnet
