#include "grant-sim/sim/lazy_window_uffd.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "grant-sim/sim/lazy_window_base.hpp"

namespace pvnet::sim {
namespace {

constexpr uint64_t kFeatures = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MINOR_SHMEM;

UniqueFd open_uffd() {
  // UFFD_USER_MODE_ONLY: we only need faults from our own user-space touches (works without CAP_SYS_PTRACE).
  UniqueFd fd{static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY))};
  if (!fd) return fd;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kFeatures;
  if (::ioctl(fd.get(), UFFDIO_API, &api) != 0 || (api.features & kFeatures) != kFeatures) return UniqueFd{};
  return fd;
}

class UffdLazyWindow final : public LazyWindowBase {
 public:
  UffdLazyWindow(size_t slots, DomId self, DomainDirectory& dir, std::shared_ptr<AtomicGrantCounters> counters,
                 UniqueFd uffd)
      : LazyWindowBase(slots, self, dir, std::move(counters)), uffd_(std::move(uffd)) {}

 protected:
  // Pre-build the VMA on the frame the entry names now. This is a peek, not a check: the fault validates
  // and pins; if the frame changed meanwhile the fault maps the right one instead.
  void on_assign(size_t slot, Slot& s) override {
    s.prebuilt = FrameLoc{};
    if (!s.dom || s.ref.value >= s.dom->nr_grant_entries()) return;
    const uint32_t frame = __atomic_load_n(&s.dom->shared_entry(s.ref.value)->frame, __ATOMIC_RELAXED);
    FrameLoc loc;
    if (!s.dom->locate(frame, &loc)) return;
    std::byte* at = slot_addr(slot);
    const int prot = PROT_READ | (s.readonly ? 0 : PROT_WRITE);
    if (!map_fixed(at, prot, MAP_SHARED, loc.fd, loc.fd_offset)) return;
    uffdio_register reg{};
    reg.range = uffdio_range{reinterpret_cast<uint64_t>(at), kPageSize};
    reg.mode = UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
      reserve_range(at, kPageSize);  // an unregistered shared mapping would give access without a check
      return;
    }
    s.prebuilt = loc;
  }

  bool install(size_t slot, Slot& s, const FrameLoc& loc) override {
    std::byte* at = slot_addr(slot);
    if (s.prebuilt.fd == loc.fd && s.prebuilt.fd_offset == loc.fd_offset) {
      // CONTINUE maps what is in the page cache: make sure the page exists (a never-touched shmem page is a
      // hole) by faulting it in through the hypervisor's own mapping. MADV_POPULATE_READ says EFAULT where a
      // read would raise SIGBUS inside this handler (the memfd shrank since the fault's size check); kernels
      // before 5.14 lack it (EINVAL) and get the read.
      if (::syscall(SYS_madvise, loc.direct, kPageSize, MADV_POPULATE_READ) != 0) {
        if (errno != EINVAL) return false;
        (void)*reinterpret_cast<volatile const char*>(loc.direct);
      }
      uffdio_continue cont{};
      cont.range = uffdio_range{reinterpret_cast<uint64_t>(at), kPageSize};
      if (::syscall(SYS_ioctl, uffd_.get(), UFFDIO_CONTINUE, &cont) == 0) return true;
    }
    const int prot = PROT_READ | (s.readonly ? 0 : PROT_WRITE);
    return map_fixed(at, prot, MAP_SHARED, loc.fd, loc.fd_offset);
  }

 private:
  UniqueFd uffd_;
};

}  // namespace

bool uffd_lazy_supported() {
  static const bool supported = static_cast<bool>(open_uffd());
  return supported;
}

std::unique_ptr<LazyWindow> make_uffd_window(size_t slots, DomId self, DomainDirectory& dir,
                                             std::shared_ptr<AtomicGrantCounters> counters) {
  UniqueFd fd = open_uffd();
  if (!fd) return nullptr;
  auto w = std::make_unique<UffdLazyWindow>(slots, self, dir, std::move(counters), std::move(fd));
  if (!w->init()) return nullptr;
  return w;
}

}  // namespace pvnet::sim
