// pvnet_crash_at is the pvnet command with this one file beside it: PVNET_TEST_CRASH_AT=<step>:<N> makes the
// process _exit(77) the N-th time any thread reaches that step of a grant pin or unpin (sim::CrashPoint names
// the steps), so a test can end a backend inside a chosen critical section, deterministically, mid-stream.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"

namespace {

using pvnet::sim::CrashPoint;

CrashPoint g_point = CrashPoint::count;
std::atomic<unsigned long> g_left{0};

void crash_at(CrashPoint p) {  // async-signal-safe: it also runs in the lazy-fault handler
  if (p != g_point || g_left.fetch_sub(1, std::memory_order_relaxed) != 1) return;
  static const char msg[] = "pvnet_crash_at: ending the process at the chosen step\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(77);
}

[[maybe_unused]] const bool installed = [] {
  const char* spec = std::getenv("PVNET_TEST_CRASH_AT");
  if (!spec) return false;
  const char* colon = std::strchr(spec, ':');
  const std::string name(spec, colon ? static_cast<size_t>(colon - spec) : std::strlen(spec));
  for (unsigned i = 0; i < static_cast<unsigned>(CrashPoint::count); ++i)
    if (name == pvnet::sim::to_string(static_cast<CrashPoint>(i))) g_point = static_cast<CrashPoint>(i);
  const unsigned long n = colon ? std::strtoul(colon + 1, nullptr, 10) : 1;
  if (g_point == CrashPoint::count || n == 0) {
    static const char msg[] = "pvnet_crash_at: PVNET_TEST_CRASH_AT must be <step>:<N>, N >= 1\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(2);
  }
  g_left.store(n);
  pvnet::sim::crash_hook = crash_at;
  return true;
}();

}  // namespace
