// What dom0 paid for the traffic alone: the backend's counters between two snapshots ("traffic start", taken once
// the vifs are connected, and "traffic end", taken after the last completion), apart from what connecting cost
// (the rings and the kept header-slot pages are mapped once per connection) and from teardown. Shared by the
// in-process replay and `pvnet backend`, so both write the same STATS.json keys with the same meaning.
#pragma once
#include <nlohmann/json.hpp>

#include "backend/counters.hpp"

namespace pvnet::tools {

// `end` with the cost counters made deltas (grant counters, memcpy and header bytes, slots used, drops by reason);
// the packet counters stay as at `end` (nothing flows outside the window).
BackendCounters traffic_window(const BackendCounters& start, const BackendCounters& end);

// The backend's keys of STATS.json: backend_memcpy_bytes, header_bytes, grant_copy_bytes, dom0_bytes_copied,
// pages_mapped, pages_unmapped, tlb_shootdowns, faults, hypercalls, slots_used (the window's), "backend" (the
// window's counters) and "connection" (what connecting cost, and what teardown left mapped: `final` is taken
// after every vif was torn down).
nlohmann::json traffic_window_json(const BackendCounters& start, const BackendCounters& end,
                                   const BackendCounters& final);

}  // namespace pvnet::tools
