#include "tools/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace pvnet::tools {

using Clock = std::chrono::steady_clock;

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::string& exe, std::vector<std::string> args,
                                                          std::string name, bool capture_stderr) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return make_error(errno, "socketpair for " + name + ": " + std::strerror(errno));
  UniqueFd ours(sv[0]), theirs(sv[1]);
  // Everything the child needs is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(errno, "fork for " + name + ": " + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (::dup2(theirs.get(), 0) < 0 || ::dup2(theirs.get(), 1) < 0) ::_exit(127);
    if (capture_stderr && ::dup2(theirs.get(), 2) < 0) ::_exit(127);
    ::execv(exe.c_str(), argv.data());
    const char msg[] = "pvnet: exec of /proc/self/exe failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, std::move(ours), std::move(name)));
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
