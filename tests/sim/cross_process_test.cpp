// The simulated hypervisor across processes: a SimServer in this process, clients in forked children.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>

#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "grant-sim/sim/sim_wire.hpp"

namespace pvnet {
namespace {

#define CHILD_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "child: CHECK(%s) failed at line %d\n", #cond, __LINE__); \
      ::_exit(1);                                                               \
    }                                                                           \
  } while (0)

std::string socket_path() {
  static int n = 0;
  return "/tmp/pvnet-simtest-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock";
}

pid_t fork_child(const std::function<void()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  return pid;
}

int wait_child(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Waits (through watches) until `path` reads `value`, up to timeout_ms.
bool await_value(Store& s, const std::string& path, const std::string& value, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (s.read_opt(path) == value) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    (void)s.wait_watches(static_cast<int>(std::min<long long>(left.count(), 100)));
  }
}

bool await_gone(Store& s, const std::string& path, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!s.read_opt(path)) return true;
    (void)s.wait_watches(50);
  }
  return false;
}

struct CrossProcess : ::testing::Test {
  std::string path = socket_path();
  std::string priv = privileged_socket_path(path);  // dom0's (the toolstack's) socket
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<SimServer> server = SimServer::listen(path, *hv).value();
  void SetUp() override { ASSERT_TRUE(server->run_in_thread()); }
  // fork() copies only the calling thread: a server thread holding a lock at that moment (the allocator's, under
  // ASan) leaves it held forever in the child. Fork with the server stopped; the child's connect waits in the
  // listen backlog until the thread runs again.
  pid_t fork_guest(const std::function<void()>& body) {
    server->stop();
    const pid_t pid = fork_child(body);
    EXPECT_TRUE(server->run_in_thread());
    return pid;
  }
};

TEST_F(CrossProcess, StoreEventsAndGrantsBetweenAGuestProcessAndDom0ThenTheGuestIsKilled) {
  auto dom0 = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  const std::string fe = "/local/domain/5/device/vif/0";
  const std::string be = "/local/domain/0/backend/vif/5/0";
  ASSERT_TRUE(dom0->store().watch(fe, "fe"));
  ASSERT_TRUE(dom0->store().write(be, ""));
  ASSERT_TRUE(dom0->store().set_permissions(be, NodePerms{kDom0, {}, {DomId{5}}}));  // libxl's n0 r<F>, inherited
  ASSERT_TRUE(dom0->store().write(be + "/state", "1"));

  pid_t child = fork_guest([&] {
    auto g = SimClient::connect(path, DomId{5}, SimClientOptions::create(64 * kPageSize, 32));
    CHILD_CHECK(g.ok());
    Platform& p = **g;
    CHILD_CHECK(p.self() == DomId{5});
    CHILD_CHECK(p.store().watch(be, "be"));
    // The guest may not write dom0's backend directory.
    auto denied = p.store().write(be + "/state", "4");
    CHILD_CHECK(!denied && denied.error().code == EACCES);
    auto page = p.memory().page(Pfn{2});
    CHILD_CHECK(page.size() == kPageSize);
    std::memcpy(page.data(), "granted by dom5", 16);
    auto ref = p.grant_table().grant_access(kDom0, Pfn{2}, true);
    CHILD_CHECK(ref.ok());
    auto port = p.evtchn().alloc_unbound(kDom0);
    CHILD_CHECK(port.ok());
    CHILD_CHECK(p.store().write_int("device/vif/0/tx-ring-ref", ref->value));
    CHILD_CHECK(p.store().write_int("device/vif/0/event-channel", port->value));
    CHILD_CHECK(p.store().switch_state("device/vif/0", XenbusState::Initialised));
    CHILD_CHECK(await_value(p.store(), be + "/state", "4"));
    auto fired = p.evtchn().wait(5000);
    CHILD_CHECK(fired.size() == 1 && fired[0] == *port);
    CHILD_CHECK(p.evtchn().notify(*port));
    CHILD_CHECK(p.store().switch_state("device/vif/0", XenbusState::Connected));
    ::pause();  // until killed
  });

  Store& st = dom0->store();
  ASSERT_TRUE(await_value(st, fe + "/state", "3"));
  long long gref = *st.read_int(fe + "/tx-ring-ref");
  long long gport = *st.read_int(fe + "/event-channel");

  // Grant map and grant copy run in this process, on the child's memory.
  MapOp op;
  op.dom = DomId{5};
  op.ref = GrantRef{static_cast<uint32_t>(gref)};
  dom0->mapper().map(std::span(&op, 1));
  ASSERT_EQ(op.status, GntSt::okay);
  EXPECT_EQ(std::memcmp(op.addr, "granted by dom5", 16), 0);
  UnmapOp un;
  un.handle = op.handle;
  dom0->mapper().unmap(std::span(&un, 1));
  EXPECT_EQ(un.status, GntSt::okay);
  std::byte buf[16];
  CopyOp c;
  c.src = CopySide::gref(DomId{5}, op.ref, 0);
  c.dst = CopySide::local(buf);
  c.len = 16;
  dom0->mapper().copy(std::span(&c, 1));
  ASSERT_EQ(c.status, GntSt::okay);
  EXPECT_EQ(std::memcmp(buf, "granted by dom5", 16), 0);
  EXPECT_EQ(dom0->mapper().counters().grant_copy_bytes, 16u);

  // Events both ways.
  auto bp = dom0->evtchn().bind_interdomain(DomId{5}, Port{static_cast<uint32_t>(gport)});
  ASSERT_TRUE(bp);
  ASSERT_TRUE(st.switch_state(be, XenbusState::Connected));
  ASSERT_TRUE(dom0->evtchn().notify(*bp));
  auto fired = dom0->evtchn().wait(5000);
  ASSERT_EQ(fired, std::vector<Port>{*bp});
  ASSERT_TRUE(await_value(st, fe + "/state", "4"));
  EXPECT_EQ(server->nr_clients(), 2u);

  // Kill the guest: the server cleans up.
  ASSERT_TRUE(st.watch("@releaseDomain", "rel"));
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  ASSERT_TRUE(await_gone(st, "/local/domain/5"));
  EXPECT_FALSE(hv->has_domain(DomId{5}));
  auto n = dom0->evtchn().notify(*bp);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ENOTCONN);
  EXPECT_EQ(server->nr_clients(), 1u);
  EXPECT_TRUE(st.read_opt(be + "/state"));  // the toolstack's backend dir is dom0's business, not the server's
}

TEST_F(CrossProcess, ServerDrivenFromTheOwnersLoopThroughFdAndHandle) {
  server->stop();  // drive it by hand from here on (no thread at the fork either)
  pid_t child = fork_child([&] {
    auto g = SimClient::connect(path, DomId{3}, SimClientOptions::create(16 * kPageSize, 16));
    CHILD_CHECK(g.ok());
    CHILD_CHECK((*g)->store().write("hello", "from a child"));
    CHILD_CHECK((*g)->store().read("/local/domain/3/hello").ok());
    auto bad = (*g)->store().read("/nope");
    CHILD_CHECK(!bad && bad.error().code == ENOENT);
    CHILD_CHECK((*g)->store().watch("/go", "go"));
    CHILD_CHECK(await_value((*g)->store(), "/go", "1"));
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool saw_write = false, saw_cleanup = false;
  while (std::chrono::steady_clock::now() < deadline && !saw_cleanup) {
    pollfd p{server->fd(), POLLIN, 0};
    ::poll(&p, 1, 50);
    server->handle();
    if (!saw_write && hv->store_tree()->read(kDom0, "/local/domain/3/hello").ok()) {
      saw_write = true;
      ASSERT_TRUE(hv->store_tree()->write(kDom0, "/go", "1"));  // now the child may go
      ASSERT_TRUE(hv->store_tree()->set_perms(kDom0, "/go", NodePerms{kDom0, {}, {DomId{3}}}));  // and read it
    }
    if (saw_write && !hv->has_domain(DomId{3})) saw_cleanup = true;
  }
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_TRUE(saw_write);
  EXPECT_TRUE(saw_cleanup);
}

TEST_F(CrossProcess, AttachToAMissingDomainOrCreateAnExistingOneFails) {
  auto a = SimClient::connect(priv, DomId{42}, SimClientOptions::attach());
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ESRCH);
  auto g = SimClient::connect(path, DomId{4}, SimClientOptions::create(4 * kPageSize, 16)).value();
  auto again = SimClient::connect(path, DomId{4}, SimClientOptions::create(4 * kPageSize, 16));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EEXIST);
  EXPECT_EQ(SimClient::connect("/tmp/pvnet-no-such.sock", kDom0, SimClientOptions::attach()).error().code, ENOENT);
  EXPECT_EQ(SimServer::listen(path, *hv).error().code, EADDRINUSE);
}

TEST_F(CrossProcess, AdoptedMemoryIsSharedWithTheCreator) {
  auto shm = create_domain_shm(DomId{7}, 8 * kPageSize, 16).value();
  int mem_fd = ::dup(shm.regions[0].fd.get());
  auto g = SimClient::connect(path, DomId{7}, SimClientOptions::adopt(std::move(shm))).value();
  auto page = g->memory().page(Pfn{1});
  ASSERT_EQ(page.size(), kPageSize);
  std::memcpy(page.data(), "adopted", 7);
  char back[8] = {};
  ASSERT_EQ(::pread(mem_fd, back, 7, kPageSize), 7);
  EXPECT_STREQ(back, "adopted");
  ::close(mem_fd);
  EXPECT_TRUE(hv->has_domain(DomId{7}));
  g.reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (hv->has_domain(DomId{7}) && std::chrono::steady_clock::now() < deadline) ::usleep(1000);
  EXPECT_FALSE(hv->has_domain(DomId{7}));  // the adopting connection owned it
}

// Raw packets at the server: every malformed one gets an error reply and the server keeps serving.
TEST_F(CrossProcess, MalformedRequestsGetErrorRepliesNotACrash) {
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, priv.c_str());  // as dom0: the requests after hello are served
  ASSERT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  auto expect_error = [&](const WireWriter& w, int code) {
    ASSERT_TRUE(wire_send(s.get(), w));
    auto r = wire_recv(s.get());
    ASSERT_TRUE(r) << r.error().reason;
    EXPECT_EQ(r->u32(), kWireMagic);
    EXPECT_EQ(r->i32(), code);
    EXPECT_FALSE(r->str().empty());
  };
  WireWriter tiny;
  tiny.u8(1);
  expect_error(tiny, EPROTO);
  WireWriter bad_magic;
  bad_magic.u32(0xdeadbeef).u32(1);
  expect_error(bad_magic, EPROTO);
  WireWriter before_hello;
  before_hello.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::store_read)).str("/x");
  expect_error(before_hello, EPROTO);
  WireWriter short_hello;
  short_hello.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(0);
  expect_error(short_hello, EPROTO);
  WireWriter adopt_no_fds;
  adopt_no_fds.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(9).u8(2).u64(0).u32(0);
  adopt_no_fds.u16(9).u32(16).u8(0).u32(1).u64(0).u64(1).u64(0);
  expect_error(adopt_no_fds, EPROTO);
  WireWriter bad_mode;
  bad_mode.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(0).u8(77).u64(0).u32(0);
  expect_error(bad_mode, EINVAL);
  WireWriter hello;
  hello.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(0).u8(0).u64(0).u32(0);
  ASSERT_TRUE(wire_send(s.get(), hello));
  ASSERT_TRUE(wire_recv(s.get()));
  WireWriter lying_length;
  lying_length.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::store_write)).u32(1u << 30).u8('x');
  expect_error(lying_length, EPROTO);
  WireWriter unknown_op;
  unknown_op.u32(kWireMagic).u32(999);
  expect_error(unknown_op, EPROTO);
  WireWriter trailing;
  trailing.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::store_read)).str("/local").u8(0);
  expect_error(trailing, EPROTO);
  WireWriter with_fd;
  with_fd.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::store_read)).str("/local").fd(s.get());
  expect_error(with_fd, EPROTO);
  WireWriter bad_port;
  bad_port.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::evtchn_bind_interdomain)).u16(3).u32(12345);
  expect_error(bad_port, EINVAL);
  EXPECT_GE(server->bad_requests(), 9u);
  // Still serving, this connection and others.
  WireWriter ok;
  ok.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::store_read)).str("/local/domain/0");
  ASSERT_TRUE(wire_send(s.get(), ok));
  auto r = wire_recv(s.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->u32(), kWireMagic);
  EXPECT_EQ(r->i32(), 0);
  EXPECT_TRUE(SimClient::connect(priv, kDom0, SimClientOptions::attach()));
}

TEST_F(CrossProcess, WatchEventsAcrossTheSocketAndManyOfThem) {
  auto a = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  auto b = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  ASSERT_TRUE(a->store().watch("/data", "t"));
  auto first = a->store().wait_watches(1000);
  ASSERT_EQ(first.size(), 1u);  // fired at registration
  EXPECT_EQ(first[0].path, "/data");
  pollfd p{a->store().watch_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  ASSERT_TRUE(b->store().write("/data/x", "1"));
  EXPECT_EQ(::poll(&p, 1, 1000), 1);
  auto ev = a->store().read_watches();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].path, "/data/x");
  const std::string long_token(2000, 'k');
  ASSERT_TRUE(a->store().watch("/many", long_token));
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(b->store().write("/many/n" + std::to_string(i), "v"));
  auto all = a->store().read_watches();  // more than one reply's worth: fetched in batches
  EXPECT_EQ(all.size(), 201u);
  EXPECT_EQ(all.back().path, "/many/n199");
  ASSERT_TRUE(b->store().set_permissions("/many", NodePerms{DomId{3}, {}}));
  EXPECT_EQ(a->store().get_permissions("/many")->owner, DomId{3});
}

}  // namespace
}  // namespace pvnet

namespace pvnet {
namespace {

// What a control-path request costs (one socket round trip to the server thread), next to a data-path notify.
TEST_F(CrossProcess, ControlRoundTripVersusNotifyCost) {
  auto a = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  auto g = SimClient::connect(path, DomId{6}, SimClientOptions::create(4 * kPageSize, 16)).value();
  ASSERT_TRUE(a->store().write("/bench", "v"));
  constexpr int kReads = 2000, kNotifies = 100000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) ASSERT_EQ(*a->store().read("/bench"), "v");
  auto t1 = std::chrono::steady_clock::now();
  Port gp = *g->evtchn().alloc_unbound(kDom0);
  Port bp = *a->evtchn().bind_interdomain(DomId{6}, gp);
  auto t2 = std::chrono::steady_clock::now();
  for (int i = 0; i < kNotifies; ++i) ASSERT_TRUE(a->evtchn().notify(bp));
  auto t3 = std::chrono::steady_clock::now();
  EXPECT_EQ(g->evtchn().pending(), std::vector<Port>{gp});
  double read_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / kReads;
  double notify_ns = std::chrono::duration<double, std::nano>(t3 - t2).count() / kNotifies;
  std::printf("store read over the socket: %.1f us; notify: %.0f ns\n", read_us, notify_ns);
  EXPECT_LT(notify_ns, read_us * 1000);  // the data path never pays a round trip
}

}  // namespace
}  // namespace pvnet
