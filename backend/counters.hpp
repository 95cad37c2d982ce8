// What the backend did and what it cost dom0, as data: one struct per vif (and one total), printed by one
// function, exported as JSON by one function, both made from the struct's one field list. Names follow
// xen-netback's ethtool stats where one exists.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "backend/drop_reason.hpp"
#include "grant-sim/platform/counters.hpp"
#include "shared-ring/counter_list.hpp"

namespace pvnet {

// The fields, one list (shared-ring/counter_list.hpp): it makes the struct's fields, +=, to_json and operator<<.
#define PVNET_BACKEND_COUNTERS(X)                                                                              \
  /* TX: guest -> dom0. */                                                                                    \
  X(packets_in)              /* TX packets accepted off the ring (valid, handed to a sink or dropped) */      \
  X(bytes_in)                                                                                                 \
  X(packets_out)             /* TX packets a sink delivered (written, forwarded, inspected) */                \
  X(bytes_out)                                                                                                \
  X(tx_requests)             /* ring slots consumed (data and extra-info) */                                  \
  X(tx_responses)            /* responses published */                                                        \
  X(tx_header_slot_packets)  /* packets whose header came from a kept header slot */                          \
  X(tx_plain_packets)        /* plain-netif packets (header grant-copied) */                                  \
  X(tx_gso_packets)                                                                                           \
  X(tx_frags)                /* payload pieces handed to sinks unmapped */                                    \
  X(tx_backpressure_stalls)  /* polls in which a full sink stopped this ring's consumer */                    \
  X(tx_fatal_errors)         /* protocol violations (the vif was disabled) */                                 \
  X(tx_credit_stalls)        /* polls in which the credit scheduler stopped this ring's consumer */           \
  X(tx_inflight_stalls)      /* polls in which max_inflight_per_vif stopped this ring's consumer */           \
  X(header_bytes)            /* header bytes obtained (slot memcpy or grant copy) */                          \
  X(backend_memcpy_bytes)    /* bytes the dom0 CPU copied out of guest memory (slots, payload reads) */       \
  X(slots_used)              /* header slots consumed (one per header-slot packet) */                         \
  X(payload_pages_touched)   /* payload pages a sink read through the payload policy */                       \
  /* RX: dom0 -> guest. */                                                                                    \
  X(rx_packets)                                                                                               \
  X(rx_bytes)                                                                                                 \
  X(rx_requests)             /* RX buffers consumed (data and GSO extra slot) */                              \
  X(rx_responses)                                                                                             \
  X(rx_gso_packets)                                                                                           \
  X(rx_copy_ops)             /* grant-copy segments issued for RX */                                          \
  X(rx_copy_errors)                                                                                           \
  X(rx_queued)               /* frames currently waiting for RX buffers (a gauge) */                          \
  X(rx_queue_full)           /* frames this RX queue refused because it was full (a forwarded one is          \
                                dropped on its source, a local one here) */                                   \
  X(rx_queue_bytes)          /* bytes currently waiting for RX buffers (a gauge) */                           \
  X(rx_stalls)               /* times the guest was found stalled (queue dropped, see rx_stall_timeout_ms) */ \
  /* Recall (docs/protocol.md "Recall"). */                                                                   \
  X(recall_requests)                                                                                          \
  X(recalled_grefs)          /* grefs released on request (kept mappings unmapped, queued bytes copied) */    \
  X(recall_refused)          /* grefs that could not be released (the rings, while connected) */              \
  /* Control ring. */                                                                                         \
  X(ctrl_requests)                                                                                            \
  X(kept_pages)              /* header-slot pages mapped right now (a gauge) */

struct BackendCounters {
  PVNET_BACKEND_COUNTERS(PVNET_COUNTER_FIELD)

  DropCounts dropped;  // reason -> packets dropped (answered ERROR/DROPPED); JSON {key: count} as before

  GrantCounters grant;  // the mapper's, filled in for the backend total only (batches span vifs)

  uint64_t dropped_total() const;
  BackendCounters& operator+=(const BackendCounters& o);
};

void to_json(nlohmann::json& j, const BackendCounters& c);
std::ostream& operator<<(std::ostream& os, const BackendCounters& c);

}  // namespace pvnet
