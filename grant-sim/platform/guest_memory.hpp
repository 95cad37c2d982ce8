// A domain's own pseudo-physical memory, as the domain itself sees it (its "RAM"). Only the owning domain
// (a frontend) uses this; a backend reaches another domain's pages only through GrantMapper.
//
// And guest RAM as files, for a driver that brings its domain's memory with it (the vhost-user bridge: a QEMU
// guest's RAM memfds): GuestRamRegion names the runs, and whoever makes the domain (SimHypervisor::adopt_ram,
// SimClientOptions::adopt_ram) takes its own duplicates of the fds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  virtual uint64_t nr_pages() const = 0;
  // The page at `pfn`, or an empty span if pfn is outside the domain's memory.
  virtual std::span<std::byte> page(Pfn pfn) = 0;
  // The frame holding `p`, if p points into this domain's memory.
  virtual bool frame_of(const std::byte* p, Pfn* pfn) const = 0;
};

// Guest frames [first, first + nr_pages) are the bytes of `fd` from `fd_offset` (page-aligned). The fd is
// borrowed: it stays the caller's, open at least until the domain is made.
struct GuestRamRegion {
  int fd = -1;
  Pfn first{0};
  uint64_t nr_pages = 0;
  uint64_t fd_offset = 0;
};

// A memfd of `bytes` that nobody can shrink, grow or unseal (F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL): memory a
// hypervisor will map, which must not be cut under its mappings.
Result<UniqueFd> make_sealed_memfd(const std::string& name, uint64_t bytes);

}  // namespace pvnet
