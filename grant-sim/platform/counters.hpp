// What dom0 pays for, as data. One struct, printed by one function, exported as JSON by one function, both made
// from its one field list.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "shared-ring/counter_list.hpp"

namespace pvnet {

// The fields, one list (shared-ring/counter_list.hpp): it makes the struct's fields, +=, -, to_json and <<.
#define PVNET_GRANT_COUNTERS(X)                                                                      \
  X(hypercalls)        /* one per batch: GNTTABOP_map/unmap/copy, as netback batches them */         \
  X(map_ops)           /* map requests issued (including failed ones) */                              \
  X(pages_mapped)      /* successful foreign maps (eager and lazy) */                                 \
  X(pages_unmapped)                                                                                   \
  X(tlb_shootdowns)    /* one per unmap batch that removed at least one mapping */                    \
  X(faults)            /* lazy-window faults handled (each one a map) */                              \
  X(fault_errors)      /* faults on a grant that failed validation (scratch page mapped instead) */   \
  X(copy_ops)          /* grant-copy segments */                                                      \
  X(grant_copy_bytes)                                                                                 \
  X(failed_ops)        /* any op that returned a GNTST_* other than okay */

struct GrantCounters {
  PVNET_GRANT_COUNTERS(PVNET_COUNTER_FIELD)

  GrantCounters& operator+=(const GrantCounters& o);
  friend GrantCounters operator-(GrantCounters a, const GrantCounters& b);
  bool operator==(const GrantCounters&) const = default;
};

void to_json(nlohmann::json& j, const GrantCounters& c);
std::ostream& operator<<(std::ostream& os, const GrantCounters& c);

}  // namespace pvnet
