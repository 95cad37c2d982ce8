// Creating a simulated domain's shared state: RAM, grant table and active table, each a sealed memfd so that
// no process holding the fd (a guest included) can shrink it under another process's mapping (which would turn
// a dom0 access into SIGBUS). And the checks on a domain's shape, shared by every path that takes one from a
// client (sim_wire.cpp's decoding, SimDomain::open_impl, the server's adopt).
#include "grant-sim/sim/domain_shm.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"

namespace pvnet {
namespace {

uint64_t round_up_pages(uint64_t bytes) { return (bytes + kPageSize - 1) / kPageSize * kPageSize; }

}  // namespace

Result<std::vector<MemRegion>> dup_ram_regions(std::span<const GuestRamRegion> ram) {
  std::vector<MemRegion> out;
  for (const GuestRamRegion& r : ram) {
    UniqueFd dup{::fcntl(r.fd, F_DUPFD_CLOEXEC, 0)};
    if (!dup) return make_error(errno, std::string("dup of a guest RAM fd: ") + std::strerror(errno));
    out.push_back(MemRegion{std::move(dup), r.first, r.nr_pages, r.fd_offset});
  }
  return out;
}

Result<void> check_grant_entries(uint32_t n) {
  if (n <= sim::kNrReservedEntries)
    return make_error(EINVAL, "a grant table needs more than the " + std::to_string(sim::kNrReservedEntries) +
                                  " reserved entries");
  if (n > kMaxGrantEntries)
    return make_error(EINVAL, "a grant table has at most " + std::to_string(kMaxGrantEntries) + " entries (" +
                                  std::to_string(kMaxGrantFrames) + " frames, Xen's max_grant_frames), not " +
                                  std::to_string(n));
  return {};
}

Result<void> check_region(uint64_t first, uint64_t nr_pages, uint64_t fd_offset) {
  if (nr_pages == 0 || nr_pages > kMaxDomainPages)
    return make_error(EINVAL, "memory region of " + std::to_string(nr_pages) + " pages (1.." +
                                  std::to_string(kMaxDomainPages) + ")");
  if (first >= kMaxFrameEnd || nr_pages > kMaxFrameEnd - first)
    return make_error(EINVAL, "memory region at frame " + std::to_string(first) + " + " + std::to_string(nr_pages) +
                                  " pages reaches past frame 2^32");
  if (fd_offset % kPageSize != 0) return make_error(EINVAL, "memory region's fd offset is not page-aligned");
  const uint64_t bytes = nr_pages * kPageSize;  // <= 2^36: no wrap
  if (fd_offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) - bytes)
    return make_error(EINVAL, "memory region's fd offset " + std::to_string(fd_offset) + " is out of range");
  return {};
}

Result<void> check_sealed_memfd(int fd, const std::string& what) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0)
    return make_error(EPERM, what + ": not a sealable memfd (" + std::strerror(errno) +
                                 "): memory dom0 maps must be a memfd sealed with F_SEAL_SHRINK");
  if (!(seals & F_SEAL_SHRINK))
    return make_error(EPERM, what + ": memfd not sealed with F_SEAL_SHRINK (its holder could truncate it under dom0)");
  return {};
}

Result<DomainShm> create_domain_shm(DomId dom, uint64_t mem_bytes, uint32_t nr_grant_entries) {
  if (auto ok = check_grant_entries(nr_grant_entries); !ok) return ok.error();
  if (mem_bytes > kMaxDomainMemBytes)
    return make_error(EINVAL, "domain memory of " + std::to_string(mem_bytes) + " bytes (at most " +
                                  std::to_string(kMaxDomainMemBytes) + ")");
  const std::string tag = "pvnet-d" + std::to_string(dom.value);
  DomainShm shm;
  shm.dom = dom;
  shm.nr_grant_entries = nr_grant_entries;
  // mem_bytes == 0: no RAM of our own; the caller adds regions it received (a QEMU guest's memfds).
  if (mem_bytes > 0) {
    auto ram = make_sealed_memfd(tag + "-ram", round_up_pages(mem_bytes));
    if (!ram) return ram.error();
    shm.regions.push_back(MemRegion{std::move(*ram), Pfn{0}, round_up_pages(mem_bytes) / kPageSize, 0});
  }
  auto gt = make_sealed_memfd(tag + "-grant-table", round_up_pages(sim::grant_table_bytes(nr_grant_entries)));
  if (!gt) return gt.error();
  shm.grant_table = std::move(*gt);
  auto act = make_sealed_memfd(tag + "-active", round_up_pages(sim::active_table_bytes(nr_grant_entries)));
  if (!act) return act.error();
  shm.active = std::move(*act);
  return shm;
}

}  // namespace pvnet
