// netback's credit scheduler (xenvif_tx_credit_callback / tx_credit_exceeded), as a token bucket per vif counting
// both bytes and packets: a guest cannot make dom0 grant-copy or map more than its share per second. When the
// bucket is empty the backend stops consuming that TX ring (back-pressure: the requests stay on the ring) and
// arms a timer for the moment credit returns.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>

namespace pvnet {

struct CreditLimits {
  uint64_t bytes_per_sec = 0;  // 0: unlimited
  uint64_t ops_per_sec = 0;    // packets per second; 0: unlimited
  uint64_t burst_bytes = 0;    // bucket size; 0: one tenth of a second's worth (at least 64 KiB)
  uint64_t burst_ops = 0;      // 0: one tenth of a second's worth (at least 16)
  bool limited() const { return bytes_per_sec != 0 || ops_per_sec != 0; }
};

class CreditBucket {
 public:
  using Clock = std::chrono::steady_clock;

  void configure(const CreditLimits& l, Clock::time_point now) {
    limits_ = l;
    cap_bytes_ = l.burst_bytes ? l.burst_bytes : std::max<uint64_t>(l.bytes_per_sec / 10, 65536);
    cap_ops_ = l.burst_ops ? l.burst_ops : std::max<uint64_t>(l.ops_per_sec / 10, 16);
    bytes_ = static_cast<double>(cap_bytes_);
    ops_ = static_cast<double>(cap_ops_);
    last_ = now;
  }

  // May a packet go now? Like Linux, a packet is let through while any byte credit is left (it may leave the
  // bucket in debt): a packet larger than the burst would otherwise never go.
  bool take(uint32_t bytes, Clock::time_point now) {
    if (!limits_.limited()) return true;
    refill(now);
    if ((limits_.bytes_per_sec && bytes_ <= 0) || (limits_.ops_per_sec && ops_ < 1)) return false;
    if (limits_.bytes_per_sec) bytes_ -= bytes;
    if (limits_.ops_per_sec) ops_ -= 1;
    return true;
  }

  // When take() can succeed again (now if it can already).
  Clock::time_point ready_at(Clock::time_point now) {
    refill(now);
    double wait_s = 0;
    if (limits_.bytes_per_sec && bytes_ <= 0)
      wait_s = std::max(wait_s, (1.0 - bytes_) / static_cast<double>(limits_.bytes_per_sec));
    if (limits_.ops_per_sec && ops_ < 1)
      wait_s = std::max(wait_s, (1.0 - ops_) / static_cast<double>(limits_.ops_per_sec));
    return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s)) +
           std::chrono::microseconds(wait_s > 0 ? 1 : 0);
  }

 private:
  void refill(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    if (dt <= 0) return;
    bytes_ = std::min(static_cast<double>(cap_bytes_), bytes_ + dt * static_cast<double>(limits_.bytes_per_sec));
    ops_ = std::min(static_cast<double>(cap_ops_), ops_ + dt * static_cast<double>(limits_.ops_per_sec));
  }

  CreditLimits limits_;
  uint64_t cap_bytes_ = 0, cap_ops_ = 0;
  double bytes_ = 0, ops_ = 0;
  Clock::time_point last_{};
};

}  // namespace pvnet
