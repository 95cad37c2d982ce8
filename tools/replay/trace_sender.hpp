// A guest's "stack" sending a trace through its netfront: places each frame in the guest's own pages (where a
// real stack's data is born), hands it to netfront (TCP longer than the MTU as a GSO super-frame, as a stack
// with TSO would), keeps the pages until netfront reports the frame complete, and counts every frame either
// queued or refused with a reason. Used by `pvnet replay` (one process) and `pvnet frontend --tx` (its own).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "shared-ring/result.hpp"
#include "tools/replay/source.hpp"

namespace pvnet::tools {

struct SendOptions {
  std::string trace;
  uint32_t repeat = 1;
  uint32_t mtu = 9000;
  uint32_t data_offset = 0;
  bool progress = false;
  int drain_timeout_s = 30;
  // While netfront is not Connected: true = wait (poll) for it to reconnect, false = fail. Unset: fail.
  std::function<bool()> await_reconnect;
  // Asked before each frame (and while waiting for room): true = send no more, wait up to stop_drain_ms for the
  // frames in flight, and return (not an error). Unset: never.
  std::function<bool()> stop;
  int stop_drain_ms = 2000;
};

struct SendStats {
  uint64_t packets_in = 0;  // frames read from the trace
  uint64_t bytes_in = 0;
  uint64_t queued = 0;      // handed to netfront
  uint64_t completed = 0;   // completions received
  uint64_t completed_ok = 0;
  std::map<std::string, uint64_t> refused;  // frames never queued, by reason
  bool stopped = false;     // SendOptions::stop ended the run early
};

class TraceSender {
 public:
  TraceSender(Netfront& front, GuestPagePool& pool, SendOptions options);
  // Sends every frame (until SendOptions::stop says so) and waits for every completion (after a stop: for at most
  // stop_drain_ms; what is still in flight is queued - completed). `poll` advances the drivers (and may block
  // briefly when there is nothing to do); it returns the work done.
  Result<void> run(const std::function<size_t()>& poll);
  const SendStats& stats() const { return stats_; }

 private:
  Result<void> send_all(const std::function<size_t()>& poll);
  Result<void> drain(const std::function<size_t()>& poll);
  bool stop_requested();

  Netfront& front_;
  GuestPagePool& pool_;
  SendOptions opt_;
  SendStats stats_;
  Source source_;  // the frames in flight (their pages), netfront's TX-completion handler
};

}  // namespace pvnet::tools
