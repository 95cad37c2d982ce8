// The daemons' one loop shape: block the signals a daemon handles, take them through a signalfd, and sleep in
// poll() on that signalfd plus whatever fds this round wants (the server socket, the store's watch fd, event
// channels, a TAP...). A signal is then an event like any other, seen between two rounds, never in the middle
// of netfront or netback work.
#pragma once
#include <poll.h>

#include <initializer_list>
#include <memory>
#include <vector>

#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::tools {

class EventLoop {
 public:
  // Blocks `signals` in the calling thread (the daemons are single-threaded) and opens a signalfd for them.
  static Result<std::unique_ptr<EventLoop>> create(std::initializer_list<int> signals);

  // A round: forget last round's fds, add this round's (an fd < 0 is a hole poll() skips, so indices stay
  // stable), then wait.
  void clear() { fds_.resize(1); }
  size_t add(int fd, short events = POLLIN);
  // Sleeps until an fd (or a signal) is ready, at most timeout_ms (-1: no limit; 0: only look). EINTR is a
  // round with nothing ready. The number of ready fds, the signalfd included.
  Result<int> wait(int timeout_ms);
  bool ready(size_t index) const { return index < fds_.size() && fds_[index].revents != 0; }

  // The signals that arrived since the last call, in order (reads the signalfd without blocking).
  std::vector<int> take_signals();
  int signal_fd() const { return sfd_.get(); }

 private:
  explicit EventLoop(UniqueFd sfd) : sfd_(std::move(sfd)) { fds_.push_back({sfd_.get(), POLLIN, 0}); }
  UniqueFd sfd_;
  std::vector<pollfd> fds_;  // [0]: the signalfd
};

}  // namespace pvnet::tools
