// The process-wide SIGSEGV/SIGBUS handlers and the registry of fault ranges they consult (fault_range.hpp).
#include "grant-sim/platform/fault_range.hpp"

#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace pvnet {
namespace {

// ---- the process-wide registry: fixed-size, lock-free for readers (the signal handlers) ----

constexpr size_t kMaxWindows = 256;
struct RegistryEntry {
  std::atomic<FaultRange*> window{nullptr};
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
};
RegistryEntry g_registry[kMaxWindows];
struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
std::once_flag g_install_once;
FaultRange* const kClaimed = reinterpret_cast<FaultRange*>(uintptr_t{1});

void chain(int sig, siginfo_t* si, void* uc) {
  const struct sigaction& prev = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) { prev.sa_sigaction(sig, si, uc); return; }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Nobody else wants it: restore the default action; returning re-executes the access, which then kills
  // the process with the right signal and a core, as if we had never been installed.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
}

// What the faulting access was, from the x86 page-fault error code (bit 1: write, bit 4: instruction fetch).
FaultRange::Access fault_kind(int sig, void* uc) {
#if defined(__x86_64__)
  if (sig == SIGSEGV) {
    const auto err = static_cast<const ucontext_t*>(uc)->uc_mcontext.gregs[REG_ERR];
    if (err & 16) return FaultRange::Access::exec;
    return (err & 2) ? FaultRange::Access::write : FaultRange::Access::read;
  }
#endif
  (void)sig;
  (void)uc;
  return FaultRange::Access::unknown;
}

void on_signal(int sig, siginfo_t* si, void* uc) {
  const int saved_errno = errno;
  const auto addr = reinterpret_cast<uintptr_t>(si->si_addr);
  for (RegistryEntry& e : g_registry) {
    FaultRange* w = e.window.load(std::memory_order_acquire);
    if (w == nullptr || w == kClaimed) continue;
    if (addr < e.begin.load(std::memory_order_relaxed) || addr >= e.end.load(std::memory_order_relaxed)) continue;
    // The range belongs to a live window as long as it is registered: windows unregister before unmapping.
    if (e.window.load(std::memory_order_acquire) != w) continue;
    if (w->on_fault(addr, sig, fault_kind(sig, uc))) {
      errno = saved_errno;
      return;
    }
    break;
  }
  errno = saved_errno;
  chain(sig, si, uc);
}

void install_handlers() {
  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, &g_prev_segv);
  ::sigaction(SIGBUS, &sa, &g_prev_bus);
}

}  // namespace

bool register_fault_range(FaultRange* w, uintptr_t begin, uintptr_t end) {
  std::call_once(g_install_once, install_handlers);
  for (RegistryEntry& e : g_registry) {
    FaultRange* expected = nullptr;
    if (!e.window.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) continue;
    e.begin.store(begin, std::memory_order_relaxed);
    e.end.store(end, std::memory_order_relaxed);
    e.window.store(w, std::memory_order_release);
    return true;
  }
  return false;
}

void unregister_fault_range(FaultRange* w) {
  for (RegistryEntry& e : g_registry) {
    if (e.window.load(std::memory_order_acquire) != w) continue;
    e.window.store(kClaimed, std::memory_order_release);
    e.begin.store(0, std::memory_order_relaxed);
    e.end.store(0, std::memory_order_relaxed);
    e.window.store(nullptr, std::memory_order_release);
  }
}

}  // namespace pvnet
