#include "tools/guest_env.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "grant-sim/platform/unique_fd.hpp"
#include "tools/child_process.hpp"

namespace pvnet::tools {

namespace fs = std::filesystem;

namespace {
// The build tree holding the running binary: the first parent folder with a CMakeCache.txt.
std::string build_tree() {
  std::error_code ec;
  fs::path p = fs::path(self_exe()).parent_path();
  for (int i = 0; i < 4 && !p.empty(); ++i, p = p.parent_path())
    if (fs::exists(p / "CMakeCache.txt", ec)) return p.string();
  return {};
}
}  // namespace

Result<std::string> pvnet_source_dir() {
  if (const char* e = std::getenv("PVNET_SOURCE_DIR"); e && *e) return std::string(e);
  const std::string tree = build_tree();
  if (!tree.empty()) {
    std::ifstream f(tree + "/CMakeCache.txt");
    std::string line;
    const std::string key = "pvnet_SOURCE_DIR:STATIC=";
    while (std::getline(f, line))
      if (line.rfind(key, 0) == 0) return line.substr(key.size());
  }
  return make_error(ENOENT, "cannot find the pvnet source tree (set PVNET_SOURCE_DIR)");
}

std::string guest_cache_dir() {
  if (const char* e = std::getenv("PVNET_GUEST_CACHE"); e && *e) return e;
  const std::string tree = build_tree();
  return (tree.empty() ? std::string("/tmp") : tree) + "/guest-cache";
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
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(errno, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(wr.get(), 1);
    ::dup2(wr.get(), 2);
    ::execv(exe->c_str(), argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
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

Result<void> build_guest(const std::string& cache, bool verbose) {
  auto src = pvnet_source_dir();
  if (!src) return src.error();
  const std::string script = *src + "/tools/guest/build-guest.sh";
  if (::access(script.c_str(), X_OK) != 0) return make_error(ENOENT, script + " is missing");
  auto r = run_bounded({script, cache}, std::chrono::minutes(10));
  if (!r) return r.error();
  if (r->status != 0) return make_error(EIO, "guest build failed:\n" + r->output);
  if (verbose) std::fputs(r->output.c_str(), stdout);
  return {};
}

Result<std::string> ensure_netns(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return make_error(EINVAL, "bad netns name '" + name + "'");
  const std::string path = "/run/netns/" + name;
  if (::access(path.c_str(), F_OK) != 0) {
    if (auto r = run_checked({"ip", "netns", "add", name}, std::chrono::seconds(10)); !r) return r.error();
  }
  if (auto r = run_checked({"ip", "-n", name, "link", "set", "lo", "up"}, std::chrono::seconds(10)); !r)
    return r.error();
  return path;
}

bool allowed_guest_address(const std::string& cidr) {
  const auto slash = cidr.find('/');
  const std::string ip = cidr.substr(0, slash);
  if (slash != std::string::npos) {
    const std::string len = cidr.substr(slash + 1);
    if (len.empty() || len.find_first_not_of("0123456789") != std::string::npos) return false;
  }
  in_addr a4{};
  if (::inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
    const uint32_t h = ntohl(a4.s_addr);
    return (h & 0xfffe0000u) == 0xc6120000u;  // 198.18.0.0/15
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &a6) == 1) return a6.s6_addr[0] == 0xfd;  // fd00::/8
  return false;
}

Result<void> configure_netns_link(const std::string& netns, const std::string& ifname,
                                  const std::vector<std::string>& addresses, unsigned mtu) {
  const auto t = std::chrono::seconds(10);
  if (auto r = run_checked({"ip", "-n", netns, "link", "set", ifname, "mtu", std::to_string(mtu), "up"}, t); !r)
    return r.error();
  for (const auto& a : addresses) {
    if (!allowed_guest_address(a))
      return make_error(EINVAL, "address " + a + " is outside 198.18.0.0/15 and fd00::/8");
    const bool v6 = a.find(':') != std::string::npos;
    std::vector<std::string> cmd = {"ip", "-n", netns};
    if (v6) cmd.push_back("-6");
    for (const char* w : {"addr", "replace", a.c_str(), "dev", ifname.c_str()}) cmd.push_back(w);
    if (v6) cmd.push_back("nodad");
    if (auto r = run_checked(cmd, t); !r) return r.error();
  }
  return {};
}

}  // namespace pvnet::tools
