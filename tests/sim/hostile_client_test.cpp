// A hostile guest that speaks the hypervisor socket's protocol (grant-sim/sim/sim_wire.hpp) itself instead of through
// `pvnet frontend` (docs/security.md, "The simulator's trust model"). Each test is one thing such a client did to
// the server before it enforced roles (issue 21) and checks it is refused, with dom0's own paths still working.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "grant-sim/sim/sim_wire.hpp"

namespace pvnet {
namespace {

std::string socket_path() {
  static int n = 0;
  return "/tmp/pvnet-hostile-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock";
}

// One raw connection: a request, its reply (code, reason, every fd that came with it).
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    sock_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    connected_ = ::connect(sock_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool connected() const { return connected_; }

  struct Reply {
    int code = -1;
    std::string reason;
    std::vector<UniqueFd> fds;
  };
  Reply call(const WireWriter& w) {
    if (!wire_send(sock_.get(), w)) return Reply{};
    return receive();
  }
  Reply receive() {
    Reply out;
    auto r = wire_recv(sock_.get());
    if (!r) {
      out.reason = r.error().reason;
      return out;
    }
    if (r->u32() != kWireMagic) return out;
    out.code = r->i32();
    out.reason = r->str();
    while (r->fds_left() > 0) out.fds.push_back(r->fd());
    return out;
  }

 private:
  UniqueFd sock_;
  bool connected_ = false;
};

WireWriter request(WireOp op) {
  WireWriter w;
  w.u32(kWireMagic).u32(static_cast<uint32_t>(op));
  return w;
}

WireWriter hello(uint16_t dom, WireHelloMode mode, uint64_t mem_bytes = 0, uint32_t grants = 0) {
  WireWriter w = request(WireOp::hello);
  w.u16(dom).u8(static_cast<uint8_t>(mode)).u64(mem_bytes).u32(grants);
  return w;
}

WireWriter get_domain(uint16_t dom) {
  WireWriter w = request(WireOp::get_domain);
  w.u16(dom);
  return w;
}

std::string fd_name(int fd) {
  char buf[256] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

UniqueFd plain_memfd(const char* name, uint64_t bytes, unsigned seals = 0) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(bytes)), 0);
  if (seals) {
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
  }
  return fd;
}

// A domain's RAM the way a QEMU guest hands it over: one region of `pages` pages of a memfd.
DomainShm ram_only(DomId dom, UniqueFd fd, uint64_t pages, uint32_t grants = 32) {
  DomainShm shm;
  shm.dom = dom;
  shm.nr_grant_entries = grants;
  shm.regions.push_back(MemRegion{std::move(fd), Pfn{0}, pages, 0});
  return shm;
}

struct HostileClient : ::testing::Test {
  std::string path = socket_path();
  std::string priv = privileged_socket_path(path);
  std::unique_ptr<SimHypervisor> hv = SimHypervisor::create().value();
  std::unique_ptr<SimServer> server = SimServer::listen(path, *hv).value();
  void SetUp() override { ASSERT_TRUE(server->run_in_thread()); }

  Result<std::unique_ptr<Platform>> adopt(DomainShm shm) {
    const DomId dom = shm.dom;
    return SimClient::connect(path, dom, SimClientOptions::adopt(std::move(shm)));
  }
};

// Item 1: `hello attach 0` made any client dom0.
TEST_F(HostileClient, OnlyThePrivilegedSocketAttachesToDom0OrAnyExistingDomain) {
  RawClient guest(path);
  ASSERT_TRUE(guest.connected());
  auto r = guest.call(hello(0, WireHelloMode::attach));
  EXPECT_EQ(r.code, EPERM) << r.reason;
  EXPECT_TRUE(r.fds.empty());
  // Not a second view of a guest either (it would act for that guest).
  auto g5 = SimClient::connect(path, DomId{5}, SimClientOptions::create(16 * kPageSize, 32)).value();
  RawClient other(path);
  auto r5 = other.call(hello(5, WireHelloMode::attach));
  EXPECT_EQ(r5.code, EPERM) << r5.reason;
  auto s = SimClient::connect(path, kDom0, SimClientOptions::attach());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EPERM);

  // The privileged socket: only its owner may connect.
  struct stat st {};
  ASSERT_EQ(::stat(priv.c_str(), &st), 0) << priv;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  auto d0 = SimClient::connect(priv, kDom0, SimClientOptions::attach());
  ASSERT_TRUE(d0) << d0.error().reason;
  EXPECT_TRUE(SimClient::connect(priv, DomId{5}, SimClientOptions::attach()));
  EXPECT_GE(server->refused_requests(), 3u);
}

// Item 1, the uid check: a process of another uid cannot reach the privileged socket, not even when its file mode
// was widened by hand (SO_PEERCRED). Needs root to run a child as another uid.
TEST_F(HostileClient, AnotherUidIsRefusedOnThePrivilegedSocketEvenIfItsModeIsWidened) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another uid";
  server->stop();  // fork with no server thread running (the child only connects)
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
    RawClient c(priv);
    if (c.connected()) ::_exit(21);  // 0600 root: connect is refused by the file mode
    ::_exit(errno == EACCES ? 0 : 22);
  }
  int wst = 0;
  ::waitpid(pid, &wst, 0);
  EXPECT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0) << wst;

  ASSERT_EQ(::chmod(priv.c_str(), 0666), 0);
  const pid_t pid2 = ::fork();
  if (pid2 == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
    RawClient c(priv);
    if (!c.connected()) ::_exit(21);
    // The server answers the accept itself, before any request, and closes.
    ::_exit(c.receive().code == EPERM ? 0 : 23);
  }
  // Serve the accept from this thread (the child's socket waits in the backlog).
  for (int i = 0; i < 200 && server->refused_requests() == 0; ++i) {
    server->handle();
    ::usleep(5000);
  }
  ::waitpid(pid2, &wst, 0);
  EXPECT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0) << wst;
  EXPECT_EQ(server->refused_requests(), 1u);
  EXPECT_EQ(server->nr_clients(), 0u);
  ASSERT_TRUE(server->run_in_thread());
}

// Item 2: a guest that said hello as domain 78 received domain 5's (and dom0's) RAM, grant and active tables.
TEST_F(HostileClient, AGuestReachesNoOtherDomainsMemory) {
  auto g5 = SimClient::connect(path, DomId{5}, SimClientOptions::create(16 * kPageSize, 32)).value();
  std::memcpy(g5->memory().page(Pfn{1}).data(), "guest 5's secret", 17);
  RawClient evil(path);
  auto h = evil.call(hello(78, WireHelloMode::create, 4 * kPageSize, 32));
  ASSERT_EQ(h.code, 0) << h.reason;
  for (uint16_t victim : {uint16_t{5}, uint16_t{0}}) {
    auto r = evil.call(get_domain(victim));
    EXPECT_EQ(r.code, EPERM) << "domain " << victim << ": " << r.reason;
    EXPECT_TRUE(r.fds.empty()) << "domain " << victim << ": " << r.fds.size() << " fds handed out";
  }
  // Through the client library the same: a guest's mapper finds no other domain (GNTST_bad_domain).
  auto g79 = SimClient::connect(path, DomId{79}, SimClientOptions::create(4 * kPageSize, 32)).value();
  const GrantRef ref = g5->grant_table().grant_access(DomId{79}, Pfn{1}, true).value();
  MapOp op;
  op.dom = DomId{5};
  op.ref = ref;
  g79->mapper().map({&op, 1});
  EXPECT_EQ(op.status, GntSt::bad_domain);
  // dom0 still reaches it, through the grant.
  auto d0 = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  const GrantRef to0 = g5->grant_table().grant_access(kDom0, Pfn{1}, true).value();
  MapOp m;
  m.dom = DomId{5};
  m.ref = to0;
  d0->mapper().map({&m, 1});
  ASSERT_EQ(m.status, GntSt::okay);
  EXPECT_EQ(std::memcmp(m.addr, "guest 5's secret", 17), 0);
  UnmapOp u{m.handle};
  d0->mapper().unmap({&u, 1});
}

// Item 3: a guest was handed its own active table (its lock words could hang netback for ever) and a writable
// event-channel status map; it could shrink nothing, but nothing said so.
TEST_F(HostileClient, AGuestNeverHoldsTheActiveTableAndCannotWriteTheStatusMap) {
  RawClient guest(path);
  auto h = guest.call(hello(5, WireHelloMode::create, 16 * kPageSize, 32));
  ASSERT_EQ(h.code, 0) << h.reason;
  int status_fd = -1, grant_fd = -1;
  for (const UniqueFd& fd : h.fds) {
    const std::string name = fd_name(fd.get());
    EXPECT_EQ(name.find("-active"), std::string::npos) << "a guest received " << name;
    if (name.find("evtchn-status") != std::string::npos) status_fd = fd.get();
    if (name.find("grant-table") != std::string::npos) grant_fd = fd.get();
  }
  ASSERT_GE(status_fd, 0);
  ASSERT_GE(grant_fd, 0);
  EXPECT_EQ(::fcntl(status_fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, status_fd, 0), MAP_FAILED);
  // Reopening the memfd writable through /proc gets no further: it is sealed against new writable mappings.
  const std::string reopen = "/proc/self/fd/" + std::to_string(status_fd);
  UniqueFd rw(::open(reopen.c_str(), O_RDWR | O_CLOEXEC));
  if (rw) {
    EXPECT_EQ(::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, rw.get(), 0), MAP_FAILED);
    const uint32_t junk = 0xffffffff;
    EXPECT_LT(::pwrite(rw.get(), &junk, sizeof junk, 0), 0);
    EXPECT_NE(::ftruncate(rw.get(), 0), 0);
  }
  // Its grant table it writes (Xen's model) but cannot shrink under dom0.
  void* gt = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, grant_fd, 0);
  EXPECT_NE(gt, MAP_FAILED);
  if (gt != MAP_FAILED) ::munmap(gt, kPageSize);
  EXPECT_NE(::ftruncate(grant_fd, 0), 0);
  EXPECT_EQ(errno, EPERM);

  // dom0 still pins this guest's grants (the active table stayed in the hypervisor).
  auto d0 = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  MapOp op;
  op.dom = DomId{5};
  op.ref = GrantRef{9};  // never granted
  d0->mapper().map({&op, 1});
  EXPECT_EQ(op.status, GntSt::permission_denied);
}

// Item 3 and 5: adopt took the client's grant table and active table as they were (unsealed, and the active
// table's lock words the guest's to write). Now the hypervisor makes both; the guest's are not used.
TEST_F(HostileClient, AdoptTakesRamOnlyTheTablesAreTheHypervisors) {
  DomainShm shm = ram_only(DomId{7}, plain_memfd("ram", 8 * kPageSize, F_SEAL_SHRINK), 8, 32);
  shm.grant_table = plain_memfd("guest-gt", kPageSize);   // unsealed
  shm.active = plain_memfd("guest-active", kPageSize);    // the lock words a guest would spin dom0 on
  const ino_t guest_gt = inode_of(shm.grant_table.get()), guest_act = inode_of(shm.active.get());
  auto g = adopt(std::move(shm));
  ASSERT_TRUE(g) << g.error().reason;
  auto v = hv->domain_view(DomId{7}).value();
  ASSERT_TRUE(v->shm().active);
  EXPECT_NE(inode_of(v->shm().active.get()), guest_act) << "the hypervisor uses the guest's active table";
  EXPECT_NE(inode_of(v->shm().grant_table.get()), guest_gt) << "the hypervisor uses the guest's grant table";
  EXPECT_TRUE(::fcntl(v->shm().grant_table.get(), F_GET_SEALS) & F_SEAL_SHRINK);
  // The guest's own grant table (the hypervisor's) works: dom0 maps what it grants.
  std::memcpy(g.value()->memory().page(Pfn{2}).data(), "adopted", 8);
  const GrantRef ref = g.value()->grant_table().grant_access(kDom0, Pfn{2}, true).value();
  auto d0 = SimClient::connect(priv, kDom0, SimClientOptions::attach()).value();
  CopyOp c;
  char buf[8] = {};
  c.src = CopySide::gref(DomId{7}, ref, 0);
  c.dst = CopySide::local(reinterpret_cast<std::byte*>(buf));
  c.len = 8;
  d0->mapper().copy({&c, 1});
  ASSERT_EQ(c.status, GntSt::okay);
  EXPECT_STREQ(buf, "adopted");

  // A raw adopt that sends tables is refused.
  RawClient evil(path);
  UniqueFd ram = plain_memfd("ram", 4 * kPageSize, F_SEAL_SHRINK);
  UniqueFd act = plain_memfd("act", kPageSize);
  WireWriter w = hello(8, WireHelloMode::adopt);
  w.u16(8).u32(32).u8(kWireActiveTable).u32(1).fd(act.get()).u64(0).u64(4).u64(0).fd(ram.get());
  auto r = evil.call(w);
  EXPECT_EQ(r.code, EPERM) << r.reason;
  EXPECT_FALSE(hv->has_domain(DomId{8}));
}

// Item 4: nr_pages * 4096 wrapped (2^52 + k pages passed as k), a region at 2^64 - 4 wrapped the overlap check.
TEST_F(HostileClient, AdoptedRegionsWhoseNumbersOverflowAreRefused) {
  struct Case {
    const char* what;
    uint64_t first, nr_pages, fd_offset;
  };
  const Case cases[] = {
      {"2^52 + 4 pages", 0, (uint64_t{1} << 52) + 4, 0},
      {"2^64 / 4096 pages", 0, uint64_t{1} << 52, 0},
      {"a region at frame 2^64 - 4", ~uint64_t{0} - 3, 4, 0},
      {"a region past frame 2^32", uint64_t{1} << 32, 4, 0},
      {"an fd offset near 2^64", 0, 4, ~uint64_t{0} - 4095},
      {"an fd offset past off_t", 0, 4, uint64_t{1} << 63},
  };
  for (const Case& k : cases) {
    DomainShm shm = ram_only(DomId{9}, plain_memfd("ram", 8 * kPageSize, F_SEAL_SHRINK), 4);
    shm.regions.push_back(MemRegion{plain_memfd("ram2", 8 * kPageSize, F_SEAL_SHRINK), Pfn{k.first}, k.nr_pages,
                                    k.fd_offset});
    auto g = adopt(std::move(shm));
    ASSERT_FALSE(g) << k.what << " was accepted";
    EXPECT_TRUE(g.error().code == EINVAL || g.error().code == EPROTO) << k.what << ": " << g.error().reason;
    EXPECT_FALSE(hv->has_domain(DomId{9})) << k.what;
    // And in-process, where the same numbers reach SimDomainView::open.
    DomainShm local = create_domain_shm(DomId{9}, 0, 32).value();
    local.regions.push_back(MemRegion{plain_memfd("ram3", 8 * kPageSize), Pfn{k.first}, k.nr_pages, k.fd_offset});
    EXPECT_FALSE(SimDomainView::open(std::move(local))) << k.what;
  }
  // Two regions that do not overlap and a total within the bound still work.
  DomainShm ok = ram_only(DomId{9}, plain_memfd("ram", 4 * kPageSize, F_SEAL_SHRINK), 4);
  ok.regions.push_back(MemRegion{plain_memfd("hi", 4 * kPageSize, F_SEAL_SHRINK), Pfn{(uint64_t{1} << 32) - 4}, 4, 0});
  auto g = adopt(std::move(ok));
  ASSERT_TRUE(g) << g.error().reason;
  EXPECT_EQ(g.value()->memory().nr_pages(), 8u);
}

// Item 5: adopt accepted any fd; truncating the RAM memfd after hello killed dom0 (SIGBUS).
TEST_F(HostileClient, AdoptedRamMustBeSealedAgainstShrinking) {
  UniqueFd unsealed = plain_memfd("unsealed", 8 * kPageSize);
  const int keep = ::dup(unsealed.get());
  auto g = adopt(ram_only(DomId{10}, std::move(unsealed), 8));
  ASSERT_FALSE(g) << "unsealed RAM was adopted";
  EXPECT_EQ(g.error().code, EPERM) << g.error().reason;
  EXPECT_FALSE(hv->has_domain(DomId{10}));
  EXPECT_EQ(::ftruncate(keep, 0), 0);  // what the guest would have done under dom0
  ::close(keep);
  // Not a memfd at all.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  auto piped = adopt(ram_only(DomId{10}, UniqueFd(p[0]), 1));
  ASSERT_FALSE(piped);
  EXPECT_EQ(piped.error().code, EPERM) << piped.error().reason;
  // Sealed: adopted, and the guest can no longer shrink it.
  UniqueFd sealed = plain_memfd("sealed", 8 * kPageSize, F_SEAL_SHRINK);
  const int mine = ::dup(sealed.get());
  auto ok = adopt(ram_only(DomId{10}, std::move(sealed), 8));
  ASSERT_TRUE(ok) << ok.error().reason;
  EXPECT_NE(::ftruncate(mine, 0), 0);
  ::close(mine);
}

// Item 7: nr_grant_entries was any value above 8; a ledger on such a domain made dom0's poll loop walk it all.
TEST_F(HostileClient, GrantTablesAreBoundedByXensMaxGrantFrames) {
  RawClient evil(path);
  auto r = evil.call(hello(11, WireHelloMode::create, 4 * kPageSize, 1u << 26));
  EXPECT_EQ(r.code, EINVAL) << r.reason;
  EXPECT_FALSE(hv->has_domain(DomId{11}));
  auto over = SimClient::connect(path, DomId{11}, SimClientOptions::create(4 * kPageSize, kMaxGrantEntries + 1));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, EINVAL);
  auto adopted = adopt(ram_only(DomId{11}, plain_memfd("ram", 4 * kPageSize, F_SEAL_SHRINK), 4, 0xffffffffu));
  ASSERT_FALSE(adopted);
  EXPECT_FALSE(hv->create_domain(DomId{12}, 4 * kPageSize, 1u << 26));
  EXPECT_FALSE(SimHypervisor::create(SimHypervisor::Options{1u << 20, 1u << 26}));
  // The largest table works, and a privileged client that takes a ledger on it and goes costs a bounded walk.
  auto big = SimClient::connect(path, DomId{11}, SimClientOptions::create(4 * kPageSize, kMaxGrantEntries));
  ASSERT_TRUE(big) << big.error().reason;
  EXPECT_EQ(big.value()->grant_table().capacity(), kMaxGrantEntries);
  EXPECT_EQ(kMaxGrantEntries, 64u * 512u);
}

}  // namespace
}  // namespace pvnet
