// The bare TX ring's descriptor rate between two processes: the core of shared-ring/bench/ring_bench.cpp, shared
// with `pvnet bench` (which reports it as the ceiling every payload policy is measured against, in the same run).
// This process is the frontend (produces TxRequests, consumes TxResponses); a forked child is the backend (copies
// each request out, answers it). Nothing but the ring moves: no grants, no payload, no header.
//   BusyPoll          both sides spin on the shared indices, never sleep: the ceiling.
//   Suppressed        ring.h's protocol: push_*_and_check_notify + final_check, eventfd kick only when asked.
//   EventfdPerMessage one push and one eventfd write per descriptor in each direction: the naive baseline.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "shared-ring/netif.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::netif {

enum class RingWakeMode : uint8_t { kBusyPoll, kSuppressed, kEventfdPerMessage };

class TxRingPingPong {
 public:
  // Maps the shared ring page, makes the eventfds and forks the backend. The child touches only the shared page
  // and the eventfds (no allocation), so the caller may have other threads.
  static Result<TxRingPingPong> start(RingWakeMode mode);
  TxRingPingPong(TxRingPingPong&& o) noexcept;
  TxRingPingPong& operator=(TxRingPingPong&&) = delete;
  ~TxRingPingPong();  // stops the child if stop() was not called

  // Sends `count` descriptors and waits for their responses.
  void run(uint64_t count);
  // Sends descriptors in rounds of `chunk` until `seconds` have passed; returns how many were answered.
  uint64_t run_for(double seconds, uint64_t chunk = 1 << 14);
  // Stops and reaps the backend. Fails if it did not exit cleanly (a corrupt ring).
  Result<void> stop();

  uint64_t frontend_kicks() const { return front_kicks_; }
  uint64_t backend_kicks() const;  // valid after stop()

  struct Shared;

 private:
  TxRingPingPong(RingWakeMode mode, Shared* shared, TxFrontRing front, int req_fd, int rsp_fd, pid_t pid)
      : mode_(mode), shared_(shared), front_(front), req_fd_(req_fd), rsp_fd_(rsp_fd), pid_(pid) {}

  RingWakeMode mode_;
  Shared* shared_ = nullptr;
  std::optional<TxFrontRing> front_;
  int req_fd_ = -1, rsp_fd_ = -1;
  pid_t pid_ = -1;
  uint64_t front_kicks_ = 0;
  uint16_t next_id_ = 0;
  uint32_t spins_ = 0;
};

}  // namespace pvnet::netif
