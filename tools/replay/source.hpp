// A packet source: the guest-side counterpart of backend/sink.hpp's Sink. A sender (the trace sender, the TAP
// frontend) has frames to put on netfront's TX ring; each frame is placed in the guest's pages, handed to
// Netfront::transmit under a cookie, and its pages stay granted until netfront's TxDone for that cookie gives them
// back. Source owns that bookkeeping (one in-flight map instead of one per sender) and netfront's TX-completion
// handler; the sender keeps what is its own: where frames come from, its counters, what to do when the ring is
// full.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>

#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"

namespace pvnet::tools {

// The frames handed to netfront and not answered yet: cookie -> the pages that hold them.
class InFlightFrames {
 public:
  // A cookie no frame in flight has (they count up from 1).
  uint64_t next_cookie() { return ++last_cookie_; }
  void hold(uint64_t cookie, PlacedFrame frame) { frames_.insert_or_assign(cookie, std::move(frame)); }
  // The frame's pages go back to the guest's pool. False for a cookie not in flight (a completion of a frame
  // a previous sender on the same netfront sent).
  bool release(uint64_t cookie) { return frames_.erase(cookie) != 0; }
  size_t size() const { return frames_.size(); }
  bool empty() const { return frames_.empty(); }

 private:
  std::unordered_map<uint64_t, PlacedFrame> frames_;
  uint64_t last_cookie_ = 0;
};

class Source {
 public:
  // Installs netfront's TX-completion handler: each TxDone releases its frame's pages, then `on_done` (the
  // sender's counters) sees it. The handler is reset when the Source goes.
  Source(Netfront& front, std::function<void(const TxDone&)> on_done);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Hands `placed` to netfront under a new cookie (set in tx.cookie). kQueued: the frame is in flight and
  // `placed` is empty; any other status: `placed` still holds the frame (kBusy: try again once there is room).
  TxStatus transmit(std::optional<PlacedFrame>& placed, TxOptions& tx);
  const InFlightFrames& in_flight() const { return in_flight_; }

 private:
  Netfront& front_;
  std::function<void(const TxDone&)> on_done_;
  InFlightFrames in_flight_;
};

}  // namespace pvnet::tools
