// What dom0 pays for, as data. One struct, printed by one function, exported as JSON by one function.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

namespace pvnet {

struct GrantCounters {
  uint64_t hypercalls = 0;        // one per batch: GNTTABOP_map/unmap/copy, as netback batches them
  uint64_t map_ops = 0;           // map requests issued (including failed ones)
  uint64_t pages_mapped = 0;      // successful foreign maps (eager and lazy)
  uint64_t pages_unmapped = 0;
  uint64_t tlb_shootdowns = 0;    // one per unmap batch that removed at least one mapping
  uint64_t faults = 0;            // lazy-window faults handled (each one a map)
  uint64_t fault_errors = 0;      // faults on a grant that failed validation (scratch page mapped instead)
  uint64_t copy_ops = 0;          // grant-copy segments
  uint64_t grant_copy_bytes = 0;
  uint64_t failed_ops = 0;        // any op that returned a GNTST_* other than okay

  GrantCounters& operator+=(const GrantCounters& o);
  friend GrantCounters operator-(GrantCounters a, const GrantCounters& b);
  bool operator==(const GrantCounters&) const = default;
};

void to_json(nlohmann::json& j, const GrantCounters& c);
std::ostream& operator<<(std::ostream& os, const GrantCounters& c);

}  // namespace pvnet
