// Creating a simulated domain's shared state: RAM, grant table and active table, each a sealed memfd so that
// no process holding the fd (a guest included) can shrink it under another process's mapping (which would turn
// a dom0 access into SIGBUS).
#include "grant-sim/domain_shm.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "grant-sim/sim_grant_table.hpp"

namespace pvnet {
namespace {

Result<UniqueFd> sealed_memfd(const std::string& name, uint64_t bytes) {
  UniqueFd fd{::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (!fd) return make_error(errno, "memfd_create(" + name + "): " + std::strerror(errno));
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return make_error(errno, "ftruncate(" + name + "): " + std::strerror(errno));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return make_error(errno, "F_ADD_SEALS(" + name + "): " + std::strerror(errno));
  return fd;
}

uint64_t round_up_pages(uint64_t bytes) { return (bytes + kPageSize - 1) / kPageSize * kPageSize; }

}  // namespace

Result<DomainShm> create_domain_shm(DomId dom, uint64_t mem_bytes, uint32_t nr_grant_entries) {
  if (nr_grant_entries <= sim::kNrReservedEntries)
    return make_error(EINVAL, "a grant table needs more than the " + std::to_string(sim::kNrReservedEntries) +
                                  " reserved entries");
  const std::string tag = "pvnet-d" + std::to_string(dom.value);
  DomainShm shm;
  shm.dom = dom;
  shm.nr_grant_entries = nr_grant_entries;
  // mem_bytes == 0: no RAM of our own; the caller adds regions it received (a QEMU guest's memfds).
  if (mem_bytes > 0) {
    auto ram = sealed_memfd(tag + "-ram", round_up_pages(mem_bytes));
    if (!ram) return ram.error();
    shm.regions.push_back(MemRegion{std::move(*ram), Pfn{0}, round_up_pages(mem_bytes) / kPageSize, 0});
  }
  auto gt = sealed_memfd(tag + "-grant-table", round_up_pages(sim::grant_table_bytes(nr_grant_entries)));
  if (!gt) return gt.error();
  shm.grant_table = std::move(*gt);
  auto act = sealed_memfd(tag + "-active", round_up_pages(sim::active_table_bytes(nr_grant_entries)));
  if (!act) return act.error();
  shm.active = std::move(*act);
  return shm;
}

}  // namespace pvnet
