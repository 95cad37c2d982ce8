#include "tools/process/temp_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

namespace pvnet::tools {
namespace {

// The directories the signal handler removes. Fixed storage: the handler reads it without locks or allocation.
struct LiveDir {
  std::atomic<bool> claimed{false};  // the entry belongs to a TempDir
  std::atomic<bool> live{false};     // path is written and the directory exists
  char path[PATH_MAX] = {};
};
constexpr size_t kMaxLive = 16;
std::array<LiveDir, kMaxLive> g_live;
constexpr int kMaxDepth = 8;
constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP};

// Async-signal-safe (only system calls): `name` (relative to `at`) and, if it is a directory, what is in it.
void remove_tree(int at, const char* name, int depth) {
  if (::unlinkat(at, name, 0) == 0) return;
  if (errno != EISDIR || depth >= kMaxDepth) return;
  const int fd = ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buf[2048];
  // Removing entries while reading the listing may make it skip some: read it again until nothing was left.
  for (int pass = 0; pass < 64; ++pass) {
    (void)::lseek(fd, 0, SEEK_SET);
    bool removed_any = false;
    for (;;) {
      const ssize_t n = ::getdents64(fd, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
        off += d->d_reclen;
        if (!std::strcmp(d->d_name, ".") || !std::strcmp(d->d_name, "..")) continue;
        remove_tree(fd, d->d_name, depth + 1);
        removed_any = true;
      }
    }
    if (!removed_any) break;
  }
  ::close(fd);
  (void)::unlinkat(at, name, AT_REMOVEDIR);
}

void on_stop_signal(int sig) {
  const int saved = errno;
  for (auto& d : g_live)
    if (d.live.load(std::memory_order_acquire)) remove_tree(AT_FDCWD, d.path, 0);
  errno = saved;
  // SA_RESETHAND put the default action back; the signal, blocked while we run, ends the process on return.
  (void)::raise(sig);
}

void install_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kStopSignals) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0) continue;
      if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;  // someone handles (or ignores) it
      struct sigaction sa {};
      sa.sa_handler = on_stop_signal;
      sigemptyset(&sa.sa_mask);
      for (int s : kStopSignals) sigaddset(&sa.sa_mask, s);  // one removal at a time
      sa.sa_flags = SA_RESETHAND;
      (void)::sigaction(sig, &sa, nullptr);
    }
  });
}

int list(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (size_t i = 0; i < kMaxLive; ++i) {
    bool expected = false;
    if (!g_live[i].claimed.compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_live[i].path, path.c_str(), path.size() + 1);
    g_live[i].live.store(true, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;  // more than kMaxLive at once: removed by its destructor only
}

}  // namespace

Result<TempDir> TempDir::create(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
  install_handler_once();
  if (!::mkdtemp(tmpl.data())) return make_error(errno, "mkdtemp " + tmpl + ": " + std::strerror(errno));
  TempDir d;
  d.path_ = std::move(tmpl);
  d.slot_ = list(d.path_);
  return d;
}

Result<TempDir> TempDir::kept(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return make_error(ec.value(), "cannot create " + path + ": " + ec.message());
  TempDir d;
  d.path_ = path;
  d.keep_ = true;
  return d;
}

TempDir::TempDir(TempDir&& o) noexcept
    : path_(std::exchange(o.path_, {})), keep_(std::exchange(o.keep_, false)), slot_(std::exchange(o.slot_, -1)) {}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::exchange(o.path_, {});
    keep_ = std::exchange(o.keep_, false);
    slot_ = std::exchange(o.slot_, -1);
  }
  return *this;
}

TempDir::~TempDir() { release(); }

void TempDir::release() {
  if (!path_.empty() && !keep_) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  if (slot_ >= 0) {
    g_live[static_cast<size_t>(slot_)].live.store(false, std::memory_order_release);
    g_live[static_cast<size_t>(slot_)].claimed.store(false, std::memory_order_release);
  }
  path_.clear();
  slot_ = -1;
}

}  // namespace pvnet::tools
