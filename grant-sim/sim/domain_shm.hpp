// A simulated domain's shared state as file descriptors, so it can live in one process and be used from others
// (fds passed over a Unix socket with SCM_RIGHTS). Its RAM is one or more memfd regions (created by pvnet, or a
// QEMU guest's RAM received over vhost-user); its grant table is a memfd of grant_entry_v1 that the domain
// itself writes; the "active" table is hypervisor-private state (pin counts) shared by every process that plays
// the hypervisor for this domain, and by no guest (docs/security.md, "The simulator's trust model").
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include "grant-sim/platform/guest_memory.hpp"
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

// What a domain may be, bounded as Xen bounds it, so that no size, offset or per-entry walk is a number a guest
// chose freely. Xen: max_grant_frames (64 by default in 4.17) frames of 512 v1 entries each.
inline constexpr uint32_t kMaxGrantFrames = 64;
inline constexpr uint32_t kGrantEntriesPerFrame = 4096 / 8;
inline constexpr uint32_t kMaxGrantEntries = kMaxGrantFrames * kGrantEntriesPerFrame;  // 32768
inline constexpr uint64_t kMaxDomainMemBytes = uint64_t{64} << 30;                     // per domain, all regions
inline constexpr uint64_t kMaxDomainPages = kMaxDomainMemBytes / kPageSize;
// A grant_entry_v1 names a 32-bit frame: no region reaches past that (and no frame arithmetic can wrap).
inline constexpr uint64_t kMaxFrameEnd = uint64_t{1} << 32;

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
  UniqueFd active;         // hypervisor-private: per-entry pin counts, layout owned by sim_grant_table.cpp;
                           // absent in a guest's own view of its domain
  uint32_t nr_grant_entries = 0;
};

// Creates a fresh domain: one memfd of mem_bytes (rounded up to pages) and a grant table of nr_grant_entries.
Result<DomainShm> create_domain_shm(DomId dom, uint64_t mem_bytes, uint32_t nr_grant_entries);

// A domain's regions of the given RAM, each fd duplicated (the GuestRamRegions stay the caller's, so a failed
// adopt can be tried again with them). Checked where the domain is opened (SimDomainView::open, the server).
Result<std::vector<MemRegion>> dup_ram_regions(std::span<const GuestRamRegion> ram);

// EINVAL with a reason unless nr_grant_entries is in (kNrReservedEntries, kMaxGrantEntries].
Result<void> check_grant_entries(uint32_t nr_grant_entries);
// EINVAL with a reason unless the region is well formed: 0 < nr_pages <= kMaxDomainPages, first + nr_pages <=
// kMaxFrameEnd, fd_offset page-aligned and fd_offset + nr_pages pages representable as an off_t. Overflow-checked.
Result<void> check_region(uint64_t first, uint64_t nr_pages, uint64_t fd_offset);
// EPERM unless fd is a memfd (or other shmem file) sealed against shrinking: memory taken from a client, which
// dom0 maps, must not be truncated under it (a dom0 access past the end is SIGBUS).
Result<void> check_sealed_memfd(int fd, const std::string& what);

class SimDomainView;  // a process's mapping of one DomainShm (grant-sim/sim/sim_domain.hpp)

// How a simulated mapper finds another domain's shared state by its id (in one process: the SimHypervisor's
// table; across processes: a client that asks the hypervisor process for the domain's fds on first use).
class DomainDirectory {
 public:
  virtual ~DomainDirectory() = default;
  // nullptr if no such domain (the caller reports GNTST_bad_domain).
  virtual std::shared_ptr<SimDomainView> find(DomId dom) = 0;
};

}  // namespace pvnet
