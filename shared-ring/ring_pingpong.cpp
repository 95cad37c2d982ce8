#include "shared-ring/ring_pingpong.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace pvnet::netif {

struct TxRingPingPong::Shared {  // lives in the shared page after the ring
  std::atomic<uint32_t> stop;
  std::atomic<uint64_t> backend_kicks;
};

namespace {

constexpr size_t kRingBytes = kPageSize;
constexpr size_t kAreaBytes = kRingBytes + kPageSize;

void kick(int fd) {
  const uint64_t one = 1;
  while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void wait_on(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
  }
}

// Busy-poll spin. Every 4096 empty polls it yields the CPU: on a machine with more runnable threads than cores a
// pure spinner can burn its whole time slice while the peer it waits for is descheduled (measured here: busy-poll
// fell to ~20 k desc/s at load 7 on 2 cores). Still never sleeps and never notifies.
inline void cpu_relax(uint32_t& spins) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  if (++spins % 4096 == 0) sched_yield();
}



[[noreturn]] void backend(std::span<std::byte> ring_mem, TxRingPingPong::Shared* ctl, RingWakeMode mode, int req_fd,
                          int rsp_fd) {
  TxBackRing back = *TxBackRing::init(ring_mem);
  uint64_t kicks = 0;
  uint32_t spins = 0;
  for (;;) {
    auto rp = back.checked_req_prod();
    if (!rp) std::_Exit(2);
    uint32_t avail = *rp - back.req_cons();
    if (avail == 0) {
      if (ctl->stop.load(std::memory_order_acquire)) break;
      switch (mode) {
        case RingWakeMode::kBusyPoll:
          cpu_relax(spins);
          break;
        case RingWakeMode::kSuppressed:
          if (!back.final_check_for_requests()) wait_on(req_fd);
          break;
        case RingWakeMode::kEventfdPerMessage:
          wait_on(req_fd);  // every request comes with its own kick, so no final check is needed to stay live
          break;
      }
      continue;
    }
    for (; avail > 0; --avail) {
      const TxRequest req = back.consume_request();
      back.produce_response(TxResponse{req.id, rsp::okay});
      if (mode == RingWakeMode::kEventfdPerMessage) {
        back.push_responses();
        kick(rsp_fd);
        ++kicks;
      }
    }
    if (mode == RingWakeMode::kBusyPoll) {
      back.push_responses();
    } else if (mode == RingWakeMode::kSuppressed && back.push_responses_and_check_notify()) {
      kick(rsp_fd);
      ++kicks;
    }
  }
  ctl->backend_kicks.store(kicks, std::memory_order_release);
  std::_Exit(0);
}

}  // namespace

Result<TxRingPingPong> TxRingPingPong::start(RingWakeMode mode) {
  void* area = mmap(nullptr, kAreaBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return make_error(errno, std::string("mmap: ") + std::strerror(errno));
  std::span<std::byte> ring_mem(static_cast<std::byte*>(area), kRingBytes);
  auto* shared = new (static_cast<std::byte*>(area) + kRingBytes) Shared{};
  auto front = TxFrontRing::init(ring_mem);
  if (!front) {
    munmap(area, kAreaBytes);
    return front.error();
  }
  const int req_fd = eventfd(0, EFD_CLOEXEC), rsp_fd = eventfd(0, EFD_CLOEXEC);
  if (req_fd < 0 || rsp_fd < 0) {
    const int e = errno;
    if (req_fd >= 0) close(req_fd);
    if (rsp_fd >= 0) close(rsp_fd);
    munmap(area, kAreaBytes);
    return make_error(e, std::string("eventfd: ") + std::strerror(e));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(req_fd);
    close(rsp_fd);
    munmap(area, kAreaBytes);
    return make_error(e, std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    // The backend spins (busy-poll): it must not outlive a frontend killed by a signal.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the frontend died before prctl
    backend(ring_mem, shared, mode, req_fd, rsp_fd);
  }
  return TxRingPingPong(mode, shared, *front, req_fd, rsp_fd, pid);
}

TxRingPingPong::TxRingPingPong(TxRingPingPong&& o) noexcept
    : mode_(o.mode_),
      shared_(std::exchange(o.shared_, nullptr)),
      front_(std::exchange(o.front_, std::nullopt)),
      req_fd_(std::exchange(o.req_fd_, -1)),
      rsp_fd_(std::exchange(o.rsp_fd_, -1)),
      pid_(std::exchange(o.pid_, -1)),
      front_kicks_(o.front_kicks_),
      next_id_(o.next_id_) {}

TxRingPingPong::~TxRingPingPong() {
  (void)stop();
  if (req_fd_ >= 0) close(req_fd_);
  if (rsp_fd_ >= 0) close(rsp_fd_);
  if (shared_) munmap(reinterpret_cast<std::byte*>(shared_) - kRingBytes, kAreaBytes);
}

void TxRingPingPong::run(uint64_t count) {
  TxFrontRing& front = *front_;
  uint64_t sent = 0, acked = 0;
  while (acked < count) {
    const uint32_t ready = front.unconsumed_responses();
    front.advance_rsp_cons(ready);  // a real netfront would free the slots' grants here
    acked += ready;
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(front.free_requests(), count - sent));
    if (n > 0) {
      for (uint32_t i = 0; i < n; ++i) {
        front.produce_request(TxRequest{GrantRef{next_id_}, 0, 0, next_id_, 64});
        ++next_id_;
        if (mode_ == RingWakeMode::kEventfdPerMessage) {
          front.push_requests();
          kick(req_fd_);
          ++front_kicks_;
        }
      }
      sent += n;
      if (mode_ == RingWakeMode::kBusyPoll) {
        front.push_requests();
      } else if (mode_ == RingWakeMode::kSuppressed && front.push_requests_and_check_notify()) {
        kick(req_fd_);
        ++front_kicks_;
      }
      continue;
    }
    if (ready != 0 || acked == count) continue;
    switch (mode_) {
      case RingWakeMode::kBusyPoll:
        cpu_relax(spins_);
        break;
      case RingWakeMode::kSuppressed:
        if (!front.final_check_for_responses()) wait_on(rsp_fd_);
        break;
      case RingWakeMode::kEventfdPerMessage:
        wait_on(rsp_fd_);
        break;
    }
  }
}

uint64_t TxRingPingPong::run_for(double seconds, uint64_t chunk) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t total = 0;
  do {
    run(chunk);
    total += chunk;
  } while (std::chrono::steady_clock::now() < end);
  return total;
}

Result<void> TxRingPingPong::stop() {
  if (pid_ < 0) return {};
  shared_->stop.store(1, std::memory_order_release);
  kick(req_fd_);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return make_error(EIO, "ring backend process failed");
  return {};
}

uint64_t TxRingPingPong::backend_kicks() const {
  return shared_ ? shared_->backend_kicks.load(std::memory_order_acquire) : 0;
}

}  // namespace pvnet::netif
