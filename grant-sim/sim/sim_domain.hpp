// The simulator's view of one domain inside one process: the DomainShm mapped here. Implemented in
// sim_domain.cpp / sim_grant_table.cpp / sim_mapper.cpp / lazy_window_*.cpp; used by the SimHypervisor
// (in-process), the SimServer/SimClient (across processes) and the tests. Drivers never see these types:
// they get the interfaces through Platform.
#pragma once
#include <memory>
#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/platform/grant_mapper.hpp"
#include "grant-sim/platform/grant_table.hpp"
#include "grant-sim/platform/guest_memory.hpp"

namespace pvnet {

class SimDomainView {
 public:
  // Maps the domain's grant table, active table and RAM into this process. Takes ownership of the fds.
  static Result<std::shared_ptr<SimDomainView>> open(DomainShm shm);
  virtual ~SimDomainView() = default;
  virtual DomId dom() const = 0;
  // The fds, so a server can dup them and pass them to another process.
  virtual const DomainShm& shm() const = 0;
};

// The granting side for the domain that owns `self` (its netfront).
std::unique_ptr<GrantTable> make_sim_grant_table(std::shared_ptr<SimDomainView> self);
// The domain's own RAM, as the domain itself sees it.
std::unique_ptr<GuestMemory> make_sim_guest_memory(std::shared_ptr<SimDomainView> self);
// The grantee side for domain `self`: looks other domains up in `dir` (which must outlive the mapper).
std::unique_ptr<GrantMapper> make_sim_mapper(DomId self, DomainDirectory& dir);

}  // namespace pvnet
