// What a driver (netfront or netback) gets from its "hypervisor": its own memory and grant table (to grant),
// a mapper (to use others' grants), event channels and the store. Implemented by the simulator (in one process
// or across processes) and, later, over Xen's own libraries. Frontend and backend code take a Platform&;
// they never name the simulator's concrete types.
#pragma once
#include "grant-sim/platform/event_channel.hpp"
#include "grant-sim/platform/grant_mapper.hpp"
#include "grant-sim/platform/grant_table.hpp"
#include "grant-sim/platform/guest_memory.hpp"
#include "grant-sim/platform/store.hpp"

namespace pvnet {

class Platform {
 public:
  virtual ~Platform() = default;
  virtual DomId self() const = 0;
  virtual GuestMemory& memory() = 0;
  virtual GrantTable& grant_table() = 0;
  virtual GrantMapper& mapper() = 0;
  virtual EventChannel& evtchn() = 0;
  virtual Store& store() = 0;
};

}  // namespace pvnet
