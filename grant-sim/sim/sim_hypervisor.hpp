// The simulated hypervisor in one process: the table of domains (their shared memory), the event-channel table
// and the store. Domain 0 exists from the start (its memory and grant table are made on first use). Each
// Platform it hands out is one handle on a domain (its own event-channel ports and store watches, which go when
// the Platform is destroyed); a Platform may outlive the SimHypervisor object safely (they share the state).
// Thread-safe: a SimServer may serve other processes from a thread while this process uses its own Platforms.
#pragma once
#include <memory>
#include <vector>
#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/platform/platform.hpp"
#include "grant-sim/sim/sim_event_channel.hpp"
#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {

inline constexpr uint16_t kFirstReservedDomId = 0x7FF0;  // DOMID_FIRST_RESERVED

class SimHypervisor final : public DomainDirectory {
 public:
  struct Options {
    uint64_t dom0_mem_bytes = 1u << 20;
    uint32_t dom0_grant_entries = 256;
  };
  static Result<std::unique_ptr<SimHypervisor>> create(Options options);
  static Result<std::unique_ptr<SimHypervisor>> create() { return create(Options{}); }
  ~SimHypervisor() override;

  // A new domain with mem_bytes of RAM (rounded up to pages) and nr_grant_entries grant entries; its store home
  // /local/domain/<id> is created owned by it (@introduceDomain fires). EEXIST if it exists.
  Result<std::unique_ptr<Platform>> create_domain(DomId dom, uint64_t mem_bytes, uint32_t nr_grant_entries);
  // The same for memory made elsewhere (a QEMU guest's RAM).
  Result<std::unique_ptr<Platform>> adopt_domain(DomainShm shm);
  // A domain of RAM the caller keeps (duplicates of its fds), with fresh tables of nr_grant_entries.
  Result<std::unique_ptr<Platform>> adopt_ram(DomId dom, std::span<const GuestRamRegion> ram,
                                              uint32_t nr_grant_entries);
  // Another handle on an existing domain (dom0's backend, or a second process's view of a guest).
  Result<std::unique_ptr<Platform>> attach(DomId dom);
  // Removes the domain: its store subtree /local/domain/<id> goes (@releaseDomain fires), its event-channel
  // ports close (peers' notify fails with ENOTCONN), and mappers no longer find it. Mappings and Platforms
  // already made keep their memory alive until they go. dom0 cannot be destroyed.
  Result<void> destroy_domain(DomId dom);
  bool has_domain(DomId dom) const;
  std::vector<DomId> domains() const;

  // DomainDirectory, for the mappers.
  std::shared_ptr<SimDomainView> find(DomId dom) override;

  // The parts, for the SimServer and for tests.
  Result<std::shared_ptr<SimDomainView>> add_domain(DomainShm shm);  // register without making a Platform
  Result<std::shared_ptr<SimDomainView>> domain_view(DomId dom);     // ESRCH if absent
  const std::shared_ptr<StoreTree>& store_tree() const;
  const std::shared_ptr<EvtchnTable>& evtchn_table() const;

  struct Core;

 private:
  explicit SimHypervisor(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  Result<std::unique_ptr<Platform>> platform_for(std::shared_ptr<SimDomainView> view);
  std::shared_ptr<Core> core_;
};

}  // namespace pvnet
