#include "tools/process/event_loop.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace pvnet::tools {

Result<std::unique_ptr<EventLoop>> EventLoop::create(std::initializer_list<int> signals) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) < 0)
    return make_error(errno, std::string("sigprocmask: ") + std::strerror(errno));
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) return make_error(errno, std::string("signalfd: ") + std::strerror(errno));
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(sfd)));
}

size_t EventLoop::add(int fd, short events) {
  fds_.push_back({fd, events, 0});
  return fds_.size() - 1;
}

Result<int> EventLoop::wait(int timeout_ms) {
  for (auto& p : fds_) p.revents = 0;
  const int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return make_error(errno, std::string("poll: ") + std::strerror(errno));
  }
  return n;
}

std::vector<int> EventLoop::take_signals() {
  std::vector<int> out;
  signalfd_siginfo si;
  while (::read(sfd_.get(), &si, sizeof si) == sizeof si) out.push_back(static_cast<int>(si.ssi_signo));
  return out;
}

}  // namespace pvnet::tools
