#include "grant-sim/sim/lazy_window_segv.hpp"

#include <sys/mman.h>

#include "grant-sim/sim/lazy_window_base.hpp"

namespace pvnet::sim {
namespace {

class SegvLazyWindow final : public LazyWindowBase {
 public:
  using LazyWindowBase::LazyWindowBase;

 protected:
  bool install(size_t slot, Slot& s, const FrameLoc& loc) override {
    const int prot = PROT_READ | (s.readonly ? 0 : PROT_WRITE);
    return map_fixed(slot_addr(slot), prot, MAP_SHARED, loc.fd, loc.fd_offset);
  }
};

}  // namespace

std::unique_ptr<LazyWindow> make_segv_window(size_t slots, DomId self, DomainDirectory& dir,
                                             std::shared_ptr<AtomicGrantCounters> counters) {
  auto w = std::make_unique<SegvLazyWindow>(slots, self, dir, std::move(counters));
  if (!w->init()) return nullptr;
  return w;
}

}  // namespace pvnet::sim
