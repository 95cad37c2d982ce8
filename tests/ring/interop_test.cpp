// Two processes, one shared TX ring, eventfds as event channels: a C++ frontend talks to a backend written with
// ring.h's C macros, and a C frontend to the C++ backend. Millions of numbered requests in random batches must
// each arrive exactly once and in order, and so must their responses. Each side sleeps only after a final check
// (ring.h's rule), so a lost notification shows up as a poll timeout, which fails the test.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include "shared-ring/netif.hpp"
#include "tests/ring/c_ring_driver.h"
#include "tests/ring/shm_fixture.hpp"

namespace pvnet::netif {
namespace {

constexpr int kTimeoutMs = 10000;

uint32_t xorshift32(uint32_t& s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

void kick(int fd) {
  const uint64_t one = 1;
  ssize_t n;
  do n = write(fd, &one, sizeof(one));
  while (n < 0 && errno == EINTR);
}

bool sleep_on(int fd) {
  pollfd p{fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, kTimeoutMs);
  while (n < 0 && errno == EINTR);
  uint64_t v;
  return n > 0 && read(fd, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v));
}

// Same protocol as c_tx_frontend_loop, written against TxFrontRing.
c_loop_stats cpp_tx_frontend_loop(std::span<std::byte> mem, int req_fd, int rsp_fd, uint64_t count, uint32_t seed) {
  c_loop_stats st{};
  auto r = TxFrontRing::attach(mem);  // the shared header was initialised before the fork
  if (!r) return {0, 0, -10, 0};
  TxFrontRing& front = *r;
  uint64_t sent = 0, acked = 0;
  uint32_t rng = seed | 1;
  while (acked < count) {
    const ring::RingIdx rp = front.rsp_prod();
    if (front.response_prod_overflow(rp)) return {st.notifies, st.sleeps, -5, static_cast<uint32_t>(acked)};
    while (front.rsp_cons() != rp) {
      const TxResponse rsp = front.consume_response();
      if (rsp.id != static_cast<uint16_t>(acked) || rsp.status != -static_cast<int16_t>(acked % 3))
        return {st.notifies, st.sleeps, -1, static_cast<uint32_t>(acked)};
      ++acked;
    }
    const uint32_t free_reqs = front.free_requests();
    if (sent < count && free_reqs > 0) {
      uint64_t batch = 1 + xorshift32(rng) % 64;
      batch = std::min<uint64_t>({batch, free_reqs, count - sent});
      for (uint64_t i = 0; i < batch; ++i, ++sent)
        front.produce_request(TxRequest{GrantRef{static_cast<uint32_t>(sent)}, static_cast<uint16_t>(sent >> 16), 0,
                                        static_cast<uint16_t>(sent), static_cast<uint16_t>(sent ^ 0x5a5a)});
      if (front.push_requests_and_check_notify()) {
        kick(req_fd);
        ++st.notifies;
      }
      continue;
    }
    if (acked == count) break;
    if (front.final_check_for_responses()) continue;
    ++st.sleeps;
    if (!sleep_on(rsp_fd)) return {st.notifies, st.sleeps, -2, static_cast<uint32_t>(acked)};
  }
  return st;
}

// Same protocol as c_tx_backend_loop, written against TxBackRing.
c_loop_stats cpp_tx_backend_loop(std::span<std::byte> mem, int req_fd, int rsp_fd, uint64_t count, uint32_t seed) {
  c_loop_stats st{};
  auto r = TxBackRing::init(mem);
  if (!r) return {0, 0, -10, 0};
  TxBackRing& back = *r;
  uint64_t done = 0;
  uint32_t rng = seed | 1;
  while (done < count) {
    auto rp = back.checked_req_prod();
    if (!rp) return {st.notifies, st.sleeps, -4, static_cast<uint32_t>(done)};
    const uint32_t avail = *rp - back.req_cons();
    if (avail == 0) {
      if (back.final_check_for_requests()) continue;
      ++st.sleeps;
      if (!sleep_on(req_fd)) return {st.notifies, st.sleeps, -2, static_cast<uint32_t>(done)};
      continue;
    }
    const uint32_t batch = std::min(1 + xorshift32(rng) % 64, avail);
    for (uint32_t i = 0; i < batch; ++i, ++done) {
      const TxRequest req = back.consume_request();
      if (req.gref.value != static_cast<uint32_t>(done) || req.offset != static_cast<uint16_t>(done >> 16) ||
          req.flags != 0 || req.id != static_cast<uint16_t>(done) || req.size != static_cast<uint16_t>(done ^ 0x5a5a))
        return {st.notifies, st.sleeps, -3, static_cast<uint32_t>(done)};
      back.produce_response(TxResponse{req.id, static_cast<int16_t>(-static_cast<int16_t>(done % 3))});
    }
    if (back.push_responses_and_check_notify()) {
      kick(rsp_fd);
      ++st.notifies;
    }
  }
  return st;
}

enum class Who { kCppFrontCBack, kCFrontCppBack };

void run_interop(Who who, size_t ring_bytes, uint64_t count, uint32_t seed) {
  test::SharedArea area(ring_bytes + 4096);  // ring, then one page for the child's stats
  std::span<std::byte> ring_mem = area.bytes().first(ring_bytes);
  auto* child_stats = reinterpret_cast<c_loop_stats*>(area.bytes().data() + ring_bytes);
  *child_stats = c_loop_stats{0, 0, -99, 0};  // stays -99 if the child dies before reporting
  test::EventFd req_evt, rsp_evt;
  TxSharedRing::init(ring_mem);  // SHARED_RING_INIT by the frontend side, before anyone looks at the ring

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    c_loop_stats st{};
    if (who == Who::kCppFrontCBack)
      c_tx_backend_loop(ring_mem.data(), ring_bytes, req_evt.fd(), rsp_evt.fd(), count, seed + 1, kTimeoutMs, &st);
    else
      c_tx_frontend_loop(ring_mem.data(), ring_bytes, req_evt.fd(), rsp_evt.fd(), count, seed, kTimeoutMs, &st);
    *child_stats = st;
    _exit(st.error == 0 ? 0 : 1);
  }
  c_loop_stats mine = who == Who::kCppFrontCBack
                          ? cpp_tx_frontend_loop(ring_mem, req_evt.fd(), rsp_evt.fd(), count, seed)
                          : cpp_tx_backend_loop(ring_mem, req_evt.fd(), rsp_evt.fd(), count, seed + 1);
  if (mine.error != 0) kill(pid, SIGKILL);  // the child would otherwise wait out its own timeout
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const c_loop_stats& front = who == Who::kCppFrontCBack ? mine : *child_stats;
  const c_loop_stats& back = who == Who::kCppFrontCBack ? *child_stats : mine;

  EXPECT_EQ(front.error, 0) << "frontend failed at seq " << front.bad_seq;
  EXPECT_EQ(back.error, 0) << "backend failed at seq " << back.bad_seq;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Suppression works: far fewer kicks than messages in each direction.
  EXPECT_LT(front.notifies, count);
  EXPECT_LT(back.notifies, count);
  std::printf("  %s, %zu-byte ring, %llu messages: frontend kicks %llu, sleeps %llu; backend kicks %llu, sleeps %llu\n",
              who == Who::kCppFrontCBack ? "C++ front -> C back" : "C front -> C++ back", ring_bytes,
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(front.notifies),
              static_cast<unsigned long long>(front.sleeps), static_cast<unsigned long long>(back.notifies),
              static_cast<unsigned long long>(back.sleeps));
  testing::Test::RecordProperty("frontend_kicks", std::to_string(front.notifies));
  testing::Test::RecordProperty("backend_kicks", std::to_string(back.notifies));
}

// 2M messages: past the 2^16 wrap of id and offset, and through ring index wrap many times.
constexpr uint64_t kMessages = 2'000'000;

TEST(RingInterop, CppFrontendToCBackend) { run_interop(Who::kCppFrontCBack, 4096, kMessages, 7); }
TEST(RingInterop, CFrontendToCppBackend) { run_interop(Who::kCFrontCppBack, 4096, kMessages, 11); }
TEST(RingInterop, CppFrontendToCBackendTwoPageRing) { run_interop(Who::kCppFrontCBack, 2 * 4096, kMessages / 2, 13); }
TEST(RingInterop, CFrontendToCppBackendFourPageRing) { run_interop(Who::kCFrontCppBack, 4 * 4096, kMessages / 2, 17); }

}  // namespace
}  // namespace pvnet::netif
