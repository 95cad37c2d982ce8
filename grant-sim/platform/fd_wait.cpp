#include "grant-sim/platform/fd_wait.hpp"

#include <poll.h>

#include <cerrno>

namespace pvnet {

void wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do r = ::poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
}

}  // namespace pvnet
