// The simulator's grantee side (GrantMapper): foreign map = mmap of the granting domain's memfd at the granted
// frame; unmap = munmap; grant copy = one process_vm_readv() per batch between the hypervisor's mappings of
// the domains' RAM; lazy windows fault pages in on first touch (lazy_window_segv / lazy_window_uffd).
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include "grant-sim/platform/atomic_grant_counters.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"

namespace pvnet::sim {

// How a lazy window learns of the first touch of a slot.
enum class LazyHandler {
  segv,  // PROT_NONE reservation; SIGSEGV handler validates, then mmap(MAP_FIXED) of the frame
  uffd,  // assign() pre-builds the VMA on the frame; userfaultfd MINOR fault -> SIGBUS; UFFDIO_CONTINUE
};
const char* to_string(LazyHandler h);
// The default (see docs/grant-sim.md for the measurements behind it); PVNET_LAZY_HANDLER=segv|uffd overrides.
LazyHandler default_lazy_handler();
// Whether this kernel and these privileges allow the uffd handler (probed once).
bool uffd_lazy_supported();

class SimMapper final : public GrantMapper {
 public:
  SimMapper(DomId self, DomainDirectory& dir);
  ~SimMapper() override;  // unmaps (and unpins) every mapping still held
  SimMapper(const SimMapper&) = delete;
  SimMapper& operator=(const SimMapper&) = delete;

  DomId self() const override { return self_; }
  void map(std::span<MapOp> ops) override;
  void map_contiguous(std::span<MapOp> ops) override;
  bool can_map_contiguous() const override { return true; }
  void unmap(std::span<UnmapOp> ops) override;
  void copy(std::span<CopyOp> ops) override;
  std::unique_ptr<LazyWindow> make_lazy_window(size_t slots) override;
  // A window with a chosen fault handler (benchmarks and tests compare both). Falls back to segv if the
  // uffd handler is unavailable here.
  std::unique_ptr<LazyWindow> make_lazy_window(size_t slots, LazyHandler h);
  GrantCounters counters() const override { return counters_->snapshot(); }
  size_t live_mappings() const;

 private:
  struct Mapping {
    std::shared_ptr<SimDomain> dom;
    GrantRef ref;
    bool readonly = true;
    std::byte* addr = nullptr;
  };
  std::shared_ptr<SimDomain> find(DomId dom);
  void map_one(MapOp& op, std::byte* at);  // at: nullptr, or the address to map at (MAP_FIXED)

  DomId self_;
  DomainDirectory& dir_;
  std::shared_ptr<AtomicGrantCounters> counters_;
  mutable std::mutex mu_;          // the handle table
  std::vector<Mapping> mappings_;  // indexed by MapHandle::value; addr == nullptr: free
  std::vector<uint32_t> free_handles_;
};

}  // namespace pvnet::sim
