// A split virtqueue (virtio 1.1 section 2.6), device side, written for a guest that misbehaves: every index and
// address the guest wrote is read once into private memory, bounds-checked, and translated through the memory
// table; a descriptor chain is bounded by the queue size (loop detection); indirect tables are followed only if
// negotiated and only one level deep. A bad chain is dropped (returned with length 0, counted); a broken ring (an
// avail index more than the queue size ahead, a head out of range, ring addresses outside RAM) makes the queue
// `broken()`: the device stops using it and the owner disconnects the guest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include <nlohmann/json_fwd.hpp>

#include "frontend/vhost_user.hpp"
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/counter_list.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::vhost {

// One queue's counters (shared-ring/counter_list.hpp: the list makes the fields and to_json).
#define PVNET_VIRTQ_COUNTERS(X)                                                                           \
  X(chains)            /* chains taken off the avail ring */                                              \
  X(bad_chains)        /* dropped: loop, too long, address outside RAM, bad indirect, wrong direction */  \
  X(used)              /* used-ring entries written */                                                    \
  X(calls)             /* call eventfd writes */                                                          \
  X(calls_suppressed)  /* calls not made: nothing new, or the driver asked for none (EVENT_IDX, NO_INTERRUPT) */ \
  X(kicks)             /* kick eventfd reads that found something */

struct VirtqCounters {
  PVNET_VIRTQ_COUNTERS(PVNET_COUNTER_FIELD)
};
void to_json(nlohmann::json& j, const VirtqCounters& c);

struct VirtqConfig {
  uint32_t num = 0;             // queue size: a power of two, 1..32768
  uint64_t desc_gpa = 0, avail_gpa = 0, used_gpa = 0;
  uint16_t last_avail_idx = 0;  // SET_VRING_BASE
  bool event_idx = false;       // VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;        // VIRTIO_RING_F_INDIRECT_DESC negotiated
};

// One piece of a chain: host bytes of guest memory, with the guest physical address they came from.
struct ChainBuf {
  uint64_t gpa = 0;
  uint32_t len = 0;
  std::byte* host = nullptr;
};

struct Chain {
  uint16_t head = 0;
  std::vector<ChainBuf> readable;  // device-readable (driver -> device), in chain order
  std::vector<ChainBuf> writable;  // device-writable, after every readable one (virtio 2.6.4.2)
  uint64_t read_bytes = 0, write_bytes = 0;
  void clear() {
    readable.clear();
    writable.clear();
    read_bytes = write_bytes = 0;
  }
};

class SplitVirtqueue {
 public:
  SplitVirtqueue() = default;
  SplitVirtqueue(const SplitVirtqueue&) = delete;
  SplitVirtqueue& operator=(const SplitVirtqueue&) = delete;

  // Checks and maps the three ring areas. The memory table must outlive the queue (or the next start()).
  Result<void> start(const GuestMemoryTable& mem, const VirtqConfig& cfg);
  void stop() { started_ = false; }
  bool started() const { return started_; }
  bool broken() const { return !broken_reason_.empty(); }
  const std::string& broken_reason() const { return broken_reason_; }
  uint16_t last_avail_idx() const { return last_avail_; }
  uint32_t num() const { return cfg_.num; }

  enum class Pop : uint8_t { kChain, kEmpty, kBadChain, kBroken };
  // kBadChain: the chain was already returned (len 0) and counted; `why` says what was wrong. Call again.
  Pop pop(Chain& out, std::string* why = nullptr);
  // Returns a chain: used ring entry, then used->idx with release order. Notify with call() after a batch.
  void push(uint16_t head, uint32_t written_len);
  // Interrupts the driver if it wants one (used_event / NO_INTERRUPT), through the call eventfd.
  void call();
  // Event idx: tells the driver up to where we have looked (kicks for later buffers are wanted). Returns true if
  // more buffers arrived meanwhile (look again before sleeping).
  bool enable_kicks();

  void set_call_fd(UniqueFd fd) { call_fd_ = std::move(fd); }
  void set_kick_fd(UniqueFd fd) { kick_fd_ = std::move(fd); }
  int kick_fd() const { return kick_fd_.get(); }
  bool drain_kick();  // reads the kick eventfd; true if it had been signalled

  const VirtqCounters& counters() const { return counters_; }

 private:
  struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
  };
  bool walk(uint16_t head, Chain& out, std::string* why);
  bool add_buf(const Desc& d, Chain& out, std::string* why);
  void set_broken(std::string why) {
    if (broken_reason_.empty()) broken_reason_ = std::move(why);
  }

  const GuestMemoryTable* mem_ = nullptr;
  VirtqConfig cfg_;
  bool started_ = false;
  std::string broken_reason_;
  std::byte* desc_ = nullptr;
  std::byte* avail_ = nullptr;
  std::byte* used_ = nullptr;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;  // used idx at our last call (event idx)
  bool signalled_valid_ = false;
  UniqueFd kick_fd_, call_fd_;
  VirtqCounters counters_;
};

}  // namespace pvnet::vhost
