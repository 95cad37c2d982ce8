// A process's mapping of one simulated domain: its grant table and active table (the hypervisor's view), and
// each RAM region mapped whole (the hypervisor's "directmap", which grant copy reads and writes, and which the
// owning domain uses as its own RAM).
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"

namespace pvnet {
namespace sim {
namespace {

size_t round_up_pages(size_t bytes) { return (bytes + kPageSize - 1) / kPageSize * kPageSize; }

Result<void*> map_fd(int fd, size_t bytes, uint64_t offset, const char* what) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) return make_error(EBADF, std::string(what) + ": bad fd");
  // offset + bytes cannot wrap: check_region bounds both (and the tables are at most a few hundred KiB).
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < offset || static_cast<uint64_t>(st.st_size) - offset < bytes)
    return make_error(EINVAL, std::string(what) + ": fd is smaller than the domain says (" +
                                  std::to_string(st.st_size) + " < " + std::to_string(offset) + " + " +
                                  std::to_string(bytes) + ")");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return make_error(errno, std::string(what) + ": mmap: " + std::strerror(errno));
  return p;
}

}  // namespace

Result<std::shared_ptr<SimDomain>> SimDomain::open_impl(DomainShm shm) {
  std::shared_ptr<SimDomain> d{new SimDomain()};
  d->shm_ = std::move(shm);
  const DomainShm& s = d->shm_;
  if (auto ok = check_grant_entries(s.nr_grant_entries); !ok) return ok.error();
  d->gt_bytes_ = round_up_pages(grant_table_bytes(s.nr_grant_entries));
  auto gt = map_fd(s.grant_table.get(), d->gt_bytes_, 0, "grant table");
  if (!gt) return gt.error();
  d->gt_ = static_cast<GrantEntryV1*>(*gt);
  // No active table: a guest's own view of its domain (it grants, it never pins; no directory hands it out).
  if (s.active) {
    d->act_bytes_ = round_up_pages(active_table_bytes(s.nr_grant_entries));
    auto act = map_fd(s.active.get(), d->act_bytes_, 0, "active table");
    if (!act) return act.error();
    d->act_ = static_cast<ActiveEntry*>(*act);
  }
  for (const MemRegion& r : s.regions) {
    if (auto ok = check_region(r.first.value, r.nr_pages, r.fd_offset); !ok) return ok.error();
    // Both ends are below kMaxFrameEnd (check_region): the sums cannot wrap.
    for (const Region& o : d->regions_)
      if (r.first.value < o.first + o.nr && o.first < r.first.value + r.nr_pages)
        return make_error(EINVAL, "memory regions overlap");
    if (r.nr_pages > kMaxDomainPages - d->nr_pages_)
      return make_error(EINVAL, "memory regions total more than " + std::to_string(kMaxDomainPages) + " pages");
    auto p = map_fd(r.fd.get(), r.nr_pages * kPageSize, r.fd_offset, "memory region");
    if (!p) return p.error();
    d->regions_.push_back(Region{static_cast<std::byte*>(*p), r.first.value, r.nr_pages, r.fd.get(), r.fd_offset});
    d->nr_pages_ += r.nr_pages;
  }
  return d;
}

SimDomain::~SimDomain() {
  for (const Region& r : regions_) ::munmap(r.direct, r.nr * kPageSize);
  if (act_) ::munmap(act_, act_bytes_);
  if (gt_) ::munmap(gt_, gt_bytes_);
}

bool SimDomain::locate(uint64_t frame, FrameLoc* out) const {
  for (const Region& r : regions_) {
    if (frame >= r.first && frame - r.first < r.nr) {
      const uint64_t off = (frame - r.first) * kPageSize;
      *out = FrameLoc{r.fd, r.fd_offset + off, r.direct + off};
      return true;
    }
  }
  return false;
}

bool SimDomain::frame_of(const std::byte* p, uint64_t* frame) const {
  for (const Region& r : regions_) {
    if (p >= r.direct && p < r.direct + r.nr * kPageSize) {
      *frame = r.first + static_cast<uint64_t>(p - r.direct) / kPageSize;
      return true;
    }
  }
  return false;
}

namespace {

class SimGuestMemory final : public GuestMemory {
 public:
  explicit SimGuestMemory(std::shared_ptr<SimDomain> d) : d_(std::move(d)) {}
  uint64_t nr_pages() const override { return d_->nr_pages(); }
  std::span<std::byte> page(Pfn pfn) override {
    FrameLoc loc;
    if (!d_->locate(pfn.value, &loc)) return {};
    return {loc.direct, kPageSize};
  }
  bool frame_of(const std::byte* p, Pfn* pfn) const override {
    uint64_t f = 0;
    if (!d_->frame_of(p, &f)) return false;
    *pfn = Pfn{f};
    return true;
  }

 private:
  std::shared_ptr<SimDomain> d_;
};

}  // namespace
}  // namespace sim

Result<std::shared_ptr<SimDomainView>> SimDomainView::open(DomainShm shm) {
  auto d = sim::SimDomain::open_impl(std::move(shm));
  if (!d) return d.error();
  return std::shared_ptr<SimDomainView>(std::move(*d));
}

std::unique_ptr<GuestMemory> make_sim_guest_memory(std::shared_ptr<SimDomainView> self) {
  return std::make_unique<sim::SimGuestMemory>(std::static_pointer_cast<sim::SimDomain>(std::move(self)));
}

}  // namespace pvnet
