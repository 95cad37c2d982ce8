#include "tools/process/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "tools/process/control_lines.hpp"
#include "tools/process/spawn.hpp"

namespace pvnet::tools {

using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::string& exe, std::vector<std::string> args,
                                                          std::string name, bool capture_stderr) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return make_error(errno, "socketpair for " + name + ": " + std::strerror(errno));
  UniqueFd ours(sv[0]), theirs(sv[1]);
  SpawnSpec spec;
  spec.exe = exe;
  spec.argv = std::move(args);
  spec.stdin_fd = spec.stdout_fd = theirs.get();
  if (capture_stderr) spec.stderr_fd = theirs.get();
  auto pid = spawn_process(spec);
  if (!pid) return make_error(pid.error().code, pid.error().reason);
  return std::unique_ptr<ChildProcess>(new ChildProcess(*pid, std::move(ours), std::move(name)));
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

void ChildProcess::kill_and_reap() {
  if (status_) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = st;
}

bool ChildProcess::try_reap() {
  if (status_) return true;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) status_ = st;
  return status_.has_value();
}

std::string ChildProcess::status_text() const {
  if (!status_) return "still running";
  if (WIFEXITED(*status_)) return "exited with status " + std::to_string(WEXITSTATUS(*status_));
  if (WIFSIGNALED(*status_)) return std::string("killed by signal ") + std::to_string(WTERMSIG(*status_)) + " (" +
                                    ::strsignal(WTERMSIG(*status_)) + ")";
  return "stopped";
}

Result<std::string> ChildProcess::read_line(Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (eof_) {
      // Give a child that closed stdout a moment to exit, so the message can say how it ended.
      for (int i = 0; i < 200 && !try_reap(); ++i) std::this_thread::sleep_for(Ms(5));
      return make_error(EPIPE, name_ + " " + status_text());
    }
    const auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left.count() <= 0) return make_error(ETIMEDOUT, name_ + " did not answer within " +
                                                            std::to_string(timeout.count()) + " ms");
    pollfd p{io_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return make_error(errno, std::string("poll: ") + std::strerror(errno));
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = ::read(io_.get(), tmp, sizeof tmp);
    if (n < 0 && errno != EINTR && errno != EAGAIN) eof_ = true;
    if (n == 0) eof_ = true;
    if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
  }
}

Result<std::string> ChildProcess::wait_for_line(std::string_view prefix, Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left.count() < 0) left = Ms(0);
    auto line = read_line(left);
    if (!line) {
      if (line.error().code == ETIMEDOUT)
        return make_error(ETIMEDOUT, name_ + " did not say '" + std::string(prefix) + "' within " +
                                         std::to_string(timeout.count()) + " ms");
      return make_error(line.error().code,
                        name_ + " " + status_text() + " before saying '" + std::string(prefix) + "'");
    }
    if (line->rfind(prefix, 0) == 0) return line;
  }
}

Result<ControlLine> ChildProcess::wait_for(ControlLine::Kind kind, Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string want = to_string(kind);
  for (;;) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left.count() < 0) left = Ms(0);
    auto line = read_line(left);
    if (!line) {
      if (line.error().code == ETIMEDOUT)
        return make_error(ETIMEDOUT, name_ + " did not say '" + want + "' within " + std::to_string(timeout.count()) +
                                         " ms");
      return make_error(line.error().code, name_ + " " + status_text() + " before saying '" + want + "'");
    }
    if (line->rfind(want, 0) != 0) continue;  // cheap filter: only a line of that kind is parsed
    auto c = parse_control_line(*line);
    if (!c) return make_error(c.error().code, name_ + ": " + c.error().reason);
    if (c->kind == kind) return c;
  }
}

Result<void> ChildProcess::send_line(std::string_view line) {
  std::string s(line);
  s += '\n';
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(io_.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(errno, "telling " + name_ + " '" + std::string(line) + "': " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<void> ChildProcess::signal(int sig) {
  if (try_reap()) return make_error(ESRCH, name_ + " " + status_text() + " (wanted to send it " + ::strsignal(sig) + ")");
  if (::kill(pid_, sig) < 0) return make_error(errno, std::string("kill ") + name_ + ": " + std::strerror(errno));
  return {};
}

Result<int> ChildProcess::wait(Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!try_reap()) {
    if (Clock::now() > deadline)
      return make_error(ETIMEDOUT, name_ + " did not exit within " + std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(Ms(2));
  }
  if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
  if (WIFSIGNALED(*status_)) return 128 + WTERMSIG(*status_);
  return 255;
}

}  // namespace pvnet::tools
