// A simulated domain's shared state as file descriptors, so it can live in one process and be used from others
// (fds passed over a Unix socket with SCM_RIGHTS). Its RAM is one or more memfd regions (created by pvnet, or a
// QEMU guest's RAM received over vhost-user); its grant table is a memfd of grant_entry_v1 that the domain
// itself writes; the "active" table is hypervisor-private state (pin counts) shared by every process that plays
// the hypervisor for this domain.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "grant-sim/unique_fd.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

struct MemRegion {
  UniqueFd fd;
  Pfn first;             // first guest frame of the region
  uint64_t nr_pages = 0;
  uint64_t fd_offset = 0;  // byte offset of `first` in fd
};

struct DomainShm {
  DomId dom;
  std::vector<MemRegion> regions;
  UniqueFd grant_table;    // grant_entry_v1[nr_grant_entries], written by the domain
  UniqueFd active;         // hypervisor-private: per-entry pin counts, layout owned by sim_grant_table.cpp
  uint32_t nr_grant_entries = 0;
};

// Creates a fresh domain: one memfd of mem_bytes (rounded up to pages) and a grant table of nr_grant_entries.
Result<DomainShm> create_domain_shm(DomId dom, uint64_t mem_bytes, uint32_t nr_grant_entries);

class SimDomainView;  // a process's mapping of one DomainShm (grant-sim/sim_domain.hpp)

// How a simulated mapper finds another domain's shared state by its id (in one process: the SimHypervisor's
// table; across processes: a client that asks the hypervisor process for the domain's fds on first use).
class DomainDirectory {
 public:
  virtual ~DomainDirectory() = default;
  // nullptr if no such domain (the caller reports GNTST_bad_domain).
  virtual std::shared_ptr<SimDomainView> find(DomId dom) = 0;
};

}  // namespace pvnet
