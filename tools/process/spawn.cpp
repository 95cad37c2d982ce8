#include "tools/process/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "grant-sim/platform/unique_fd.hpp"

namespace pvnet::tools {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(n));
}

Result<pid_t> spawn_process(const SpawnSpec& spec) {
  if (spec.argv.empty()) return make_error(EINVAL, "empty command");
  // Everything the child needs is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  UniqueFd devnull;
  if (spec.stdin_fd < 0) devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int in = spec.stdin_fd >= 0 ? spec.stdin_fd : devnull.get();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(errno, "fork for " + spec.argv[0] + ": " + std::strerror(errno));
  if (pid == 0) {
    if (spec.own_group) ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (in >= 0 && ::dup2(in, 0) < 0) ::_exit(127);
    if (spec.stdout_fd >= 0 && ::dup2(spec.stdout_fd, 1) < 0) ::_exit(127);
    if (spec.stderr_fd >= 0 && ::dup2(spec.stderr_fd, 2) < 0) ::_exit(127);
    ::execv(spec.exe.c_str(), argv.data());
    const char msg[] = "pvnet: exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (spec.own_group) ::setpgid(pid, pid);  // both sides: whichever runs first, the group exists before a kill
  return pid;
}

Result<std::string> find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) == 0) return program;
    return make_error(ENOENT, program + " is not executable");
  }
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string cand = dir + "/" + program;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  }
  return make_error(ENOENT, "'" + program + "' is not installed (run tools/setup.sh)");
}

Result<CommandOutput> run_bounded(const std::vector<std::string>& argv_in, std::chrono::milliseconds timeout) {
  if (argv_in.empty()) return make_error(EINVAL, "empty command");
  auto exe = find_program(argv_in[0]);
  if (!exe) return exe.error();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return make_error(errno, std::string("pipe: ") + std::strerror(errno));
  UniqueFd rd(p[0]), wr(p[1]);
  SpawnSpec spec;
  spec.exe = *exe;
  spec.argv = argv_in;
  spec.stdout_fd = spec.stderr_fd = wr.get();
  spec.own_group = true;
  auto spawned = spawn_process(spec);
  if (!spawned) return spawned.error();
  const pid_t pid = *spawned;
  wr.reset();
  CommandOutput out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool eof = false;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    if (!eof) {
      pollfd pf{rd.get(), POLLIN, 0};
      if (::poll(&pf, 1, 50) > 0) {
        char buf[4096];
        ssize_t n = ::read(rd.get(), buf, sizeof buf);
        if (n > 0) out.output.append(buf, static_cast<size_t>(n));
        else eof = true;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
    if (!reaped && std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return make_error(ETIMEDOUT, "'" + argv_in[0] + "' did not finish within " +
                                       std::to_string(timeout.count() / 1000) + " s; output:\n" + out.output);
    }
  }
  // What is left in the pipe (a grandchild may still hold it: do not wait for its EOF).
  for (;;) {
    pollfd pf{rd.get(), POLLIN, 0};
    if (::poll(&pf, 1, 0) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.output.append(buf, static_cast<size_t>(n));
  }
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

Result<std::string> run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  auto r = run_bounded(argv, timeout);
  if (!r) return r.error();
  if (r->status != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return make_error(EIO, "'" + cmd + "' failed (status " + std::to_string(r->status) + "): " + r->output);
  }
  return r->output;
}

}  // namespace pvnet::tools
