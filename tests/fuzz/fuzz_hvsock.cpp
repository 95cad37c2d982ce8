// libFuzzer target: a hostile guest speaking the hypervisor socket's protocol (grant-sim/sim/sim_wire.hpp) itself,
// with real fds (docs/fuzzing.md, "fuzz_hvsock"; docs/security.md, "The simulator's trust model"). Up to four
// raw connections on the guest socket say hello in any mode for any domain, adopt "RAM" of any shape (memfds of odd
// sizes, sealed or not, truncated later, pipes, eventfds, /dev/null, the socket itself), send any request with any
// fds, write their own grant tables, and have dom0 copy into (and map) their grants. A privileged dom0 client holds
// a mapping of a healthy guest's grant all along, and a healthy pair (A grants, dom0 copies into B) is checked.
// Asserted: every request gets one well-formed reply; a guest never receives the active table, never attaches,
// never gets another domain's memory, never writes another domain's store nodes; an adopt succeeds only with
// RAM sealed against shrinking and no tables; dom0's mapping, map and copy keep working, the pair's memory is
// untouched; once the hostile clients close, their domains are gone and no fd is left open.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "grant-sim/sim/sim_wire.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/hvsock_actions.hpp"

namespace pvnet::fuzz {
namespace {

using namespace hvsock;

constexpr size_t kMaxActions = 64;
constexpr size_t kMaxKept = 16;
constexpr DomId kA{1}, kB{2};
constexpr uint32_t kPairPages = 16;

template <class T, size_t N>
T pick(const T (&a)[N], uint8_t sel) {
  return a[sel % N];
}

bool verbose() {
  static const bool v = std::getenv("PVNET_FUZZ_VERBOSE") != nullptr;
  return v;
}

std::string fd_name(int fd) {
  char buf[256] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The fds of the kinds a hypervisor socket passes around (memfds, sockets, eventfds, /dev/null), by name:
// libFuzzer's own files (the corpus, its logs) and pipes (the sanitizer's symbolizer) come and go meanwhile. The
// pipes an input makes are checked by inode (Fuzzer::pipes_).
std::vector<std::string> open_fds() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    const std::string name = fd_name(std::atoi(e.path().filename().c_str()));
    if (name.rfind("/memfd:", 0) == 0 || name.rfind("socket:", 0) == 0 || name.rfind("anon_inode:", 0) == 0 ||
        name == "/dev/null")
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool any_open(const std::vector<std::string>& names) {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    const std::string name = fd_name(std::atoi(e.path().filename().c_str()));
    if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += " " + x;
  return s;
}

uint64_t hash_ram(Platform& p, uint32_t skip_page) {
  uint64_t h = 1469598103934665603ull;
  for (uint32_t i = 0; i < kPairPages; ++i) {
    if (i == skip_page) continue;
    for (std::byte b : p.memory().page(Pfn{i})) h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  }
  return h;
}

// dom0, the healthy pair, and the server: built once, checked after every input.
struct Host {
  std::string path = "/tmp/pvnet-fuzz-hvsock-" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<SimServer> server;
  std::unique_ptr<Platform> dom0, a, b;
  GrantRef a_ro, a_pinned, b_rw;
  MapOp pinned;  // dom0's long-lived mapping of A's page 1
  uint64_t a_hash = 0, b_hash = 0;
  std::vector<std::string> fds;

  Host() {
    hv = SimHypervisor::create().value();
    server = SimServer::listen(path, *hv).value();
    PVNET_FUZZ_CHECK(server->run_in_thread().ok(), "server thread");
    dom0 = SimClient::connect(privileged_socket_path(path), kDom0, SimClientOptions::attach()).value();
    a = SimClient::connect(path, kA, SimClientOptions::create(kPairPages * kPageSize, 64)).value();
    b = SimClient::connect(path, kB, SimClientOptions::create(kPairPages * kPageSize, 64)).value();
    std::memcpy(a->memory().page(Pfn{1}).data(), "pinned by dom0", 15);
    std::memcpy(a->memory().page(Pfn{2}).data(), "healthy A frame, copied to B...", 32);
    a_pinned = a->grant_table().grant_access(kDom0, Pfn{1}, true).value();
    a_ro = a->grant_table().grant_access(kDom0, Pfn{2}, true).value();
    b_rw = b->grant_table().grant_access(kDom0, Pfn{3}, false).value();
    pinned.dom = kA;
    pinned.ref = a_pinned;
    dom0->mapper().map({&pinned, 1});
    PVNET_FUZZ_CHECK(pinned.status == GntSt::okay, "dom0 maps A's grant: %d", static_cast<int>(pinned.status));
    check("setup");
    a_hash = hash_ram(*a, ~0u);
    b_hash = hash_ram(*b, 3);
    fds = open_fds();
  }

  void check(const char* when) {
    PVNET_FUZZ_CHECK(std::memcmp(pinned.addr, "pinned by dom0", 15) == 0, "%s: dom0's mapping changed", when);
    MapOp m;
    m.dom = kA;
    m.ref = a_ro;
    dom0->mapper().map({&m, 1});
    PVNET_FUZZ_CHECK(m.status == GntSt::okay, "%s: dom0 map of A: %d", when, static_cast<int>(m.status));
    PVNET_FUZZ_CHECK(std::memcmp(m.addr, "healthy A frame", 15) == 0, "%s: A's frame through dom0's map", when);
    UnmapOp u{m.handle};
    dom0->mapper().unmap({&u, 1});
    PVNET_FUZZ_CHECK(u.status == GntSt::okay, "%s: dom0 unmap", when);
    CopyOp c;
    c.src = CopySide::gref(kA, a_ro, 0);
    c.dst = CopySide::gref(kB, b_rw, 100);
    c.len = 32;
    dom0->mapper().copy({&c, 1});
    PVNET_FUZZ_CHECK(c.status == GntSt::okay, "%s: dom0 copy A -> B: %d", when, static_cast<int>(c.status));
    PVNET_FUZZ_CHECK(std::memcmp(b->memory().page(Pfn{3}).data() + 100, "healthy A frame, copied to B...", 32) == 0,
                     "%s: B did not receive A's frame", when);
    PVNET_FUZZ_CHECK(a->store().read("/local/domain/1").ok(), "%s: A's store", when);
    if (a_hash) {
      PVNET_FUZZ_CHECK(hash_ram(*a, ~0u) == a_hash, "%s: A's memory changed", when);
      PVNET_FUZZ_CHECK(hash_ram(*b, 3) == b_hash, "%s: B's memory changed outside the copy's page", when);
    }
  }
};

Host& host() {
  static Host h;
  return h;
}

struct Reply {
  bool got = false;
  int code = -1;
  std::optional<WireReader> r;
};

// One hostile connection on the guest socket.
struct Conn {
  UniqueFd sock;
  bool said_hello = false;
  DomId dom;
  UniqueFd grant_table;
  uint32_t nr_entries = 0;
};

class HvsockFuzzer {
 public:
  explicit HvsockFuzzer(FuzzInput& in) : in_(in), h_(host()) {}

  void run() {
    for (size_t n = 0; n < kMaxActions && !in_.empty(); ++n) step(static_cast<Op>(in_.u8() % kOps));
    teardown();
  }

 private:
  Conn* slot(bool connect_if_needed = true) {
    Conn& c = conns_[in_.u8() % kSlots];
    if (!c.sock && connect_if_needed) connect(c);
    return c.sock ? &c : nullptr;
  }

  void connect(Conn& c) {
    c = Conn{};
    c.sock.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, h_.path.c_str());
    PVNET_FUZZ_CHECK(::connect(c.sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "connect: %s",
                     std::strerror(errno));
    timeval tv{5, 0};
    ::setsockopt(c.sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // Sends and waits for the one reply every request gets.
  Reply call(Conn& c, const WireWriter& w) {
    Reply out;
    auto s = wire_send(c.sock.get(), w);
    if (!s) {
      PVNET_FUZZ_CHECK(s.error().code == EMSGSIZE, "send: %s", s.error().reason.c_str());
      return out;
    }
    auto r = wire_recv(c.sock.get());
    PVNET_FUZZ_CHECK(r.ok(), "no reply: %s", r.ok() ? "" : r.error().reason.c_str());
    PVNET_FUZZ_CHECK(r->u32() == kWireMagic, "reply without magic");
    out.code = r->i32();
    const std::string reason = r->str();
    PVNET_FUZZ_CHECK(!r->failed(), "malformed reply");
    if (verbose()) std::fprintf(stderr, "  reply %d %s\n", out.code, reason.c_str());
    out.got = true;
    out.r.emplace(std::move(r).value());
    return out;
  }

  // Whatever fds a reply carried: never the active table.
  static void drain(WireReader& r) {
    while (r.fds_left() > 0) {
      UniqueFd fd = r.fd();
      const std::string name = fd_name(fd.get());
      PVNET_FUZZ_CHECK(name.find("-active") == std::string::npos, "a guest received %s", name.c_str());
    }
  }

  UniqueFd memfd(uint64_t bytes, unsigned seals) {
    UniqueFd fd(::memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    PVNET_FUZZ_CHECK(fd && ::ftruncate(fd.get(), static_cast<off_t>(bytes)) == 0, "memfd");
    if (kept_.size() < kMaxKept) kept_.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    if (seals) PVNET_FUZZ_CHECK(::fcntl(fd.get(), F_ADD_SEALS, seals) == 0, "seals");
    return fd;
  }

  UniqueFd make_fd(Conn& c, FdKind kind) {
    switch (kind) {
      case kSealedMemfd: return memfd(pick(kSizes, in_.u8()), F_SEAL_SHRINK | F_SEAL_GROW);
      case kShrinkSealed: return memfd(pick(kSizes, in_.u8()), F_SEAL_SHRINK);
      case kUnsealedMemfd: return memfd(pick(kSizes, in_.u8()), 0);
      case kWriteSealed: return memfd(pick(kSizes, in_.u8()), F_SEAL_SHRINK | F_SEAL_WRITE);
      case kPipe: {
        int p[2];
        PVNET_FUZZ_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe");
        pipes_.push_back(fd_name(p[0]));
        ::close(p[1]);
        return UniqueFd(p[0]);
      }
      case kEventfd: return UniqueFd(::eventfd(0, EFD_CLOEXEC));
      case kDevNull: return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
      case kOwnSocket:
      default: return UniqueFd(::fcntl(c.sock.get(), F_DUPFD_CLOEXEC, 0));
    }
  }

  // A successful hello: the domain's shm, as a guest sees it.
  void said_hello(Conn& c, DomId dom, WireReader& r) {
    auto shm = wire_get_shm(r);
    PVNET_FUZZ_CHECK(shm.ok(), "hello reply's shm: %s", shm.ok() ? "" : shm.error().reason.c_str());
    PVNET_FUZZ_CHECK(!shm->active, "a guest received its active table");
    PVNET_FUZZ_CHECK(shm->grant_table && shm->dom == dom, "hello reply without the guest's grant table");
    drain(r);
    c.said_hello = true;
    c.dom = dom;
    c.nr_entries = shm->nr_grant_entries;
    c.grant_table = std::move(shm->grant_table);
  }

  void hello() {
    Conn* c = slot();
    const DomId dom{pick(kDoms, in_.u8())};
    const uint8_t mode = in_.u8();
    const uint64_t mem = pick(kMems, in_.u8());
    const uint32_t grants = pick(kGrants, in_.u8());
    if (!c) return;
    WireWriter w;
    w.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(dom.value).u8(mode).u64(mem).u32(grants);
    Reply r = call(*c, w);
    if (!r.got) return;
    PVNET_FUZZ_CHECK(r.code != 0 || mode != 0, "a guest attached to domain %u", dom.value);
    PVNET_FUZZ_CHECK(r.code != 0 || !c->said_hello, "hello twice was accepted");
    PVNET_FUZZ_CHECK(r.code != 0 || grants <= kMaxGrantEntries, "a table of %u entries", grants);
    if (r.code == 0) said_hello(*c, dom, *r.r);
    else drain(*r.r);
  }

  void adopt() {
    Conn* c = slot();
    const DomId dom{pick(kDoms, in_.u8())};
    const uint32_t grants = pick(kGrants, in_.u8());
    const uint8_t tables = in_.u8();
    const uint32_t nregions = in_.u8() % 6;
    if (!c) return;
    WireWriter w;
    w.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::hello)).u16(dom.value).u8(2).u64(0).u32(grants);
    w.u16(dom.value).u32(grants).u8(tables).u32(nregions);
    if (tables & kWireGrantTable) w.fd(memfd(kPageSize, F_SEAL_SHRINK | F_SEAL_GROW));
    if (tables & kWireActiveTable) w.fd(memfd(kPageSize, F_SEAL_SHRINK | F_SEAL_GROW));
    bool all_sealed = true;
    for (uint32_t i = 0; i < nregions; ++i) {
      const uint64_t first = pick(kFirsts, in_.u8()), nr = pick(kNrPages, in_.u8()), off = pick(kOffsets, in_.u8());
      const auto kind = static_cast<FdKind>(in_.u8() % kFdKinds);
      all_sealed = all_sealed && (kind == kSealedMemfd || kind == kShrinkSealed);
      w.u64(first).u64(nr).u64(off).fd(make_fd(*c, kind));
    }
    Reply r = call(*c, w);
    if (!r.got) return;
    if (r.code == 0) {
      PVNET_FUZZ_CHECK(!c->said_hello, "hello twice was accepted");
      PVNET_FUZZ_CHECK(all_sealed, "adopted RAM that is not sealed against shrinking");
      PVNET_FUZZ_CHECK(tables == 0, "adopt took tables from a guest (%#x)", tables);
      said_hello(*c, dom, *r.r);
    } else {
      drain(*r.r);
    }
  }

  void raw() {
    Conn* c = slot();
    const uint8_t sel = in_.u8();
    const uint32_t magic = (sel & 0x80) ? in_.u32() : kWireMagic;
    const uint32_t op = (sel & 0x0f) ? (sel & 0x0f) : in_.u32();
    auto body = in_.bytes(in_.u8());
    const uint8_t nfds = in_.u8() % 8;
    if (!c) return;
    WireWriter w;
    w.u32(magic).u32(op);
    for (std::byte b : body) w.u8(static_cast<uint8_t>(b));
    for (uint8_t i = 0; i < nfds; ++i) w.fd(make_fd(*c, static_cast<FdKind>(in_.u8() % kFdKinds)));
    Reply r = call(*c, w);
    if (!r.got) return;
    if (magic == kWireMagic && op == static_cast<uint32_t>(WireOp::hello) && r.code == 0) {
      // Only create and adopt can succeed for a guest; the domain is whatever the bytes said.
      PVNET_FUZZ_CHECK(!c->said_hello, "hello twice was accepted");
      WireReader q(std::vector<std::byte>(body.begin(), body.end()), {});
      const DomId dom{q.u16()};
      const uint8_t mode = q.u8();
      PVNET_FUZZ_CHECK(mode == 1 || mode == 2, "raw hello in mode %u succeeded", mode);
      said_hello(*c, dom, *r.r);
      return;
    }
    if (op == static_cast<uint32_t>(WireOp::get_domain) && r.code == 0) {
      WireReader q(std::vector<std::byte>(body.begin(), body.end()), {});
      const uint16_t dom = q.u16();
      PVNET_FUZZ_CHECK(c->said_hello && dom == c->dom.value, "a guest got domain %u's memory", dom);
    }
    drain(*r.r);
  }

  void get_domain() {
    Conn* c = slot();
    const uint16_t dom = pick(kDoms, in_.u8());
    if (!c) return;
    WireWriter w;
    w.u32(kWireMagic).u32(static_cast<uint32_t>(WireOp::get_domain)).u16(dom);
    Reply r = call(*c, w);
    if (!r.got) return;
    PVNET_FUZZ_CHECK(r.code != 0 || (c->said_hello && dom == c->dom.value), "dom%u got domain %u's memory",
                     c->dom.value, dom);
    drain(*r.r);
  }

  void store() {
    static constexpr const char* kPaths[] = {"/local/domain/1/x", "/local/domain/2/device", "/local/domain/0/evil",
                                             "x", "/", "@releaseDomain", "/local/domain/3", ""};
    Conn* c = slot();
    const uint8_t req = in_.u8() % 8;
    const uint8_t psel = in_.u8() % 8;
    const uint8_t arg = in_.u8();
    if (!c) return;
    const std::string path = kPaths[psel];
    WireWriter w;
    w.u32(kWireMagic);
    switch (req) {
      case 0: w.u32(static_cast<uint32_t>(WireOp::store_read)).str(path); break;
      case 1: w.u32(static_cast<uint32_t>(WireOp::store_write)).str(path).str(std::to_string(arg)); break;
      case 2: w.u32(static_cast<uint32_t>(WireOp::store_watch)).str(path).str("t"); break;
      case 3:
        w.u32(static_cast<uint32_t>(WireOp::store_set_perms)).str(path);
        wire_put_perms(w, NodePerms{DomId{pick(kDoms, arg)}, {}, {}});
        break;
      case 4: w.u32(static_cast<uint32_t>(WireOp::evtchn_alloc_unbound)).u16(pick(kDoms, arg)); break;
      case 5: w.u32(static_cast<uint32_t>(WireOp::evtchn_bind_interdomain)).u16(pick(kDoms, arg)).u32(arg % 8); break;
      case 6: w.u32(static_cast<uint32_t>(WireOp::evtchn_unbind)).u32(arg % 8); break;
      default: w.u32(static_cast<uint32_t>(WireOp::evtchn_peer)).u32(arg % 8); break;
    }
    Reply r = call(*c, w);
    if (!r.got) return;
    if ((req == 1 || req == 3) && psel <= 2)
      PVNET_FUZZ_CHECK(r.code != 0, "dom%u changed %s", c->dom.value, path.c_str());
    drain(*r.r);
  }

  void truncate() {
    const uint8_t sel = in_.u8();
    const uint64_t size = pick(kSizes, in_.u8());
    if (kept_.empty()) return;
    (void)!::ftruncate(kept_[sel % kept_.size()].get(), static_cast<off_t>(size));
  }

  void grant() {
    Conn* c = slot(false);
    const uint16_t ref = in_.u16();
    const uint32_t frame = in_.u32();
    const uint8_t flags = in_.u8();
    if (!c || !c->grant_table || c->nr_entries == 0) return;
    const size_t bytes = (size_t{c->nr_entries} * sizeof(sim::GrantEntryV1) + kPageSize - 1) / kPageSize * kPageSize;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, c->grant_table.get(), 0);
    PVNET_FUZZ_CHECK(p != MAP_FAILED, "a guest cannot map its own grant table: %s", std::strerror(errno));
    auto* e = static_cast<sim::GrantEntryV1*>(p) + ref % c->nr_entries;
    e->frame = frame;
    e->domid = 0;
    __atomic_store_n(&e->flags, static_cast<uint16_t>(GTF_permit_access | ((flags & 1) ? GTF_readonly : 0) |
                                                      ((flags & 2) ? GTF_reading : 0)),
                     __ATOMIC_RELEASE);
    ::munmap(p, bytes);
  }

  void dom0_copy() {
    Conn* c = slot(false);
    const uint16_t ref = in_.u16();
    const uint8_t offset = in_.u8();
    const uint8_t len = in_.u8();
    if (!c || !c->said_hello) return;
    if (!probe_) {
      // A dom0 process of this run (its directory caches domains by id; the hostile ones change every run).
      auto p = SimClient::connect(privileged_socket_path(h_.path), kDom0, SimClientOptions::attach());
      PVNET_FUZZ_CHECK(p.ok(), "dom0 probe: %s", p.ok() ? "" : p.error().reason.c_str());
      probe_ = std::move(p).value();
    }
    std::byte pattern[256];
    std::memset(pattern, 0x5a, sizeof pattern);
    CopyOp op;
    op.src = CopySide::local(pattern);
    op.dst = CopySide::gref(c->dom, GrantRef{ref}, static_cast<uint16_t>(offset) * 16);
    op.len = static_cast<uint16_t>(len % 64 + 1);
    probe_->mapper().copy({&op, 1});  // any status: the guest's grant may be anything
    if (verbose()) std::fprintf(stderr, "  dom0 copy into dom%u ref %u: %d\n", c->dom.value, ref, static_cast<int>(op.status));
    MapOp m;
    m.dom = c->dom;
    m.ref = GrantRef{ref};
    m.readonly = (len & 1) != 0;
    probe_->mapper().map({&m, 1});
    if (m.status == GntSt::okay) {
      volatile std::byte x = m.addr[kPageSize - 1];  // the page is really there
      (void)x;
      UnmapOp u{m.handle};
      probe_->mapper().unmap({&u, 1});
    }
    h_.check("after dom0 copied into a hostile grant");
  }

  void step(Op op) {
    switch (op) {
      case kConnect: {
        Conn& c = conns_[in_.u8() % kSlots];
        connect(c);
        break;
      }
      case kHello: hello(); break;
      case kAdopt: adopt(); break;
      case kRaw: raw(); break;
      case kGetDomain: get_domain(); break;
      case kStore: store(); break;
      case kTruncate: truncate(); break;
      case kGrant: grant(); break;
      case kDom0Copy: dom0_copy(); break;
      case kClose: conns_[in_.u8() % kSlots] = Conn{}; break;
      case kCheck: h_.check("during"); break;
      case kOps: break;
    }
  }

  void teardown() {
    for (Conn& c : conns_) c = Conn{};
    probe_.reset();
    kept_.clear();
    // The server sees the hang-ups in its own time, and may still accept a connection that was closed before it
    // was accepted (then sees it hang up): wait until dom0 and the pair are all that is left, three round trips in
    // a row.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int settled = 0; settled < 3 && std::chrono::steady_clock::now() < deadline;) {
      (void)h_.dom0->store().read("/local/domain/0");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      settled = h_.server->nr_clients() == 3 && h_.hv->domains().size() == 3 ? settled + 1 : 0;
    }
    if (h_.server->nr_clients() != 3) {
      std::string doms;
      for (DomId d : h_.hv->domains()) doms += " " + std::to_string(d.value);
      auto t0 = std::chrono::steady_clock::now();
      const bool answers = h_.dom0->store().read("/local/domain/0").ok();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      PVNET_FUZZ_CHECK(false, "%zu clients left (dom0 and the pair: 3); domains%s; the server %s (%.0f ms)",
                       h_.server->nr_clients(), doms.c_str(), answers ? "answers" : "does not answer", ms);
    }
    PVNET_FUZZ_CHECK(h_.hv->domains().size() == 3, "%zu domains left (dom0 and the pair: 3)", h_.hv->domains().size());
    h_.check("end");
    // Every fd this input made or received is closed again (names differ only in socket inode numbers, so
    // compare the counts, and show the names).
    const auto fds = open_fds();
    PVNET_FUZZ_CHECK(fds.size() == h_.fds.size(), "%zu fds open, %zu before the input:\n  now:%s\n  before:%s",
                     fds.size(), h_.fds.size(), join(fds).c_str(), join(h_.fds).c_str());
    PVNET_FUZZ_CHECK(!any_open(pipes_), "a pipe this input sent is still open:%s", join(pipes_).c_str());
  }

  FuzzInput& in_;
  Host& h_;
  Conn conns_[kSlots];
  std::unique_ptr<Platform> probe_;
  std::vector<UniqueFd> kept_;
  std::vector<std::string> pipes_;  // "pipe:[inode]" of each pipe sent
};

}  // namespace
}  // namespace pvnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pvnet::fuzz::FuzzInput in(data, size);
  pvnet::fuzz::HvsockFuzzer(in).run();
  return 0;
}
