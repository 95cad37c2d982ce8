#include "grant-sim/sim/sim_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"

namespace pvnet {
namespace {

// epoll keys of the two listening sockets (connections are numbered from 1).
constexpr uint64_t kGuestListenId = ~uint64_t{0};
constexpr uint64_t kPrivListenId = ~uint64_t{0} - 1;
constexpr size_t kWatchReplyBudget = kWireMaxMessage - 1024;

Error errno_error(const std::string& what) { return make_error(errno, what + ": " + std::strerror(errno)); }

Result<sockaddr_un> unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    return make_error(ENAMETOOLONG, "socket path '" + path + "' is empty or too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

WireWriter reply_ok() {
  WireWriter w;
  w.u32(kWireMagic).i32(0).str("");
  return w;
}

WireWriter reply_err(const Error& e) {
  WireWriter w;
  w.u32(kWireMagic).i32(e.code == 0 ? -1 : e.code).str(e.reason);
  return w;
}

WireWriter reply_of(const Result<void>& r) { return r ? reply_ok() : reply_err(r.error()); }

// A client's record of the pins it holds on one other domain's grants: {read, write} per entry, in a memfd the
// client maps into its view of that domain (SimDomain::set_pin_ledger) and the server keeps mapped here.
struct PinLedger {
  std::shared_ptr<sim::SimDomain> dom;  // the hypervisor's own view: keeps the memory alive for the release
  UniqueFd fd;
  uint32_t* counts = nullptr;
  size_t bytes = 0;
  PinLedger() = default;
  PinLedger(PinLedger&& o) noexcept
      : dom(std::move(o.dom)), fd(std::move(o.fd)), counts(std::exchange(o.counts, nullptr)), bytes(o.bytes) {}
  PinLedger(const PinLedger&) = delete;
  ~PinLedger() {
    if (counts) ::munmap(counts, bytes);
  }
};

// The entry-lock tag of a client (never 1, the tag of an unrecorded pinner).
uint32_t lock_tag_of(uint64_t id) { return 0x80000000u | static_cast<uint32_t>(id & 0x7fffffffu); }

Result<PinLedger> make_ledger(std::shared_ptr<SimDomainView> view) {
  PinLedger l;
  l.dom = std::static_pointer_cast<sim::SimDomain>(std::move(view));
  l.bytes = size_t{2} * sizeof(uint32_t) * l.dom->nr_grant_entries();
  l.fd = UniqueFd(::memfd_create("pvnet-pin-ledger", MFD_CLOEXEC));
  if (!l.fd) return errno_error("memfd_create");
  if (l.bytes == 0 || ::ftruncate(l.fd.get(), static_cast<off_t>(l.bytes)) != 0) return errno_error("ftruncate");
  void* p = ::mmap(nullptr, l.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, l.fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("mmap pin ledger");
  l.counts = static_cast<uint32_t*>(p);
  return l;
}

// "/local/domain/<self>/backend/.../state", absolute (relative paths resolve under the home).
std::optional<std::string> backend_state_node(DomId self, const std::string& path) {
  const std::string home = "/local/domain/" + std::to_string(self.value);
  std::string abs = path.empty() || path[0] != '/' ? home + "/" + path : path;
  const std::string prefix = home + "/backend/";
  const std::string suffix = "/state";
  if (abs.size() <= prefix.size() + suffix.size() || abs.compare(0, prefix.size(), prefix) != 0 ||
      abs.compare(abs.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  return abs;
}

void put_binding(WireWriter& w, EvtchnBinding b) {
  w.u32(b.port.value).u32(b.slot).u32(b.gen).fd(std::move(b.eventfd));
}

}  // namespace

struct SimServer::Conn {
  UniqueFd sock;
  uint64_t id = 0;
  bool privileged = false;  // came in on the privileged socket
  bool said_hello = false;
  std::map<uint16_t, PinLedger> ledgers;
  std::set<std::string> state_nodes;  // backend state nodes it wrote (closed if it dies)
  DomId dom;
  bool owns_domain = false;
  std::shared_ptr<StoreTree> tree;
  StoreTree::WatcherId watcher = 0;
  std::unique_ptr<EvtchnControl> evtchn;  // its destructor closes the connection's ports
  ~Conn() {
    if (tree && watcher) tree->remove_watcher(watcher);
  }
};

namespace {

// A listening SOCK_SEQPACKET socket on `path`, with file mode `mode` (set before listen(), so nobody connects
// while it is still wider).
Result<UniqueFd> listen_on(const std::string& path, mode_t mode) {
  auto addr = unix_addr(path);
  if (!addr) return addr.error();
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!probe) return errno_error("socket");
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) == 0)
    return make_error(EADDRINUSE, "a hypervisor is already serving on " + path);
  ::unlink(path.c_str());  // a stale socket from a server that died
  UniqueFd l(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!l) return errno_error("socket");
  if (::bind(l.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) return errno_error("bind " + path);
  if (mode != 0 && ::chmod(path.c_str(), mode) != 0) return errno_error("chmod " + path);
  if (::listen(l.get(), 64) != 0) return errno_error("listen " + path);
  return l;
}

Result<void> watch_in(int epoll, int fd, uint64_t key) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = key;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl");
  return {};
}

}  // namespace

Result<std::unique_ptr<SimServer>> SimServer::listen(const std::string& socket_path, SimHypervisor& hv) {
  const std::string priv = privileged_socket_path(socket_path);
  auto l = listen_on(socket_path, 0);
  if (!l) return l.error();
  auto pl = listen_on(priv, 0600);
  if (!pl) {
    ::unlink(socket_path.c_str());
    return pl.error();
  }
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  if (auto w = watch_in(ep.get(), l->get(), kGuestListenId); !w) return w.error();
  if (auto w = watch_in(ep.get(), pl->get(), kPrivListenId); !w) return w.error();
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return errno_error("eventfd");
  return std::unique_ptr<SimServer>(
      new SimServer(socket_path, hv, std::move(*l), std::move(*pl), std::move(ep), std::move(stop)));
}

SimServer::SimServer(std::string path, SimHypervisor& hv, UniqueFd listen_fd, UniqueFd priv_listen_fd,
                     UniqueFd epoll, UniqueFd stop_fd)
    : path_(std::move(path)), priv_path_(privileged_socket_path(path_)), hv_(hv), listen_(std::move(listen_fd)),
      priv_listen_(std::move(priv_listen_fd)), epoll_(std::move(epoll)), stop_(std::move(stop_fd)) {}

SimServer::~SimServer() {
  stop();
  while (!conns_.empty()) drop(conns_.begin()->first);
  ::unlink(path_.c_str());
  ::unlink(priv_path_.c_str());
}

Result<void> SimServer::run_in_thread() {
  if (thread_.joinable()) return make_error(EBUSY, "sim server: already running in a thread");
  thread_ = std::thread([this] {
    for (;;) {
      pollfd p[2] = {{epoll_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
      if (p[1].revents) break;
      handle();
    }
  });
  return {};
}

void SimServer::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  thread_.join();
  uint64_t v;
  (void)!::read(stop_.get(), &v, sizeof v);
}

void SimServer::handle() {
  epoll_event evs[32];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), evs, 32, 0);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == kGuestListenId)
        accept_all(listen_.get(), false);
      else if (evs[i].data.u64 == kPrivListenId)
        accept_all(priv_listen_.get(), true);
      else
        serve(evs[i].data.u64);
    }
    if (n < 32) return;
  }
}

void SimServer::accept_all(int listen_fd, bool privileged) {
  for (;;) {
    UniqueFd s(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!s) return;
    if (privileged) {
      // The socket file is 0600; this is the check for a peer that reached it anyway (a file mode widened
      // by hand, an fd passed on). Root, or the uid this hypervisor runs as.
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
          (cred.uid != 0 && cred.uid != ::geteuid())) {
        ++refused_;
        (void)wire_send(s.get(), reply_err(make_error(EPERM, "privileged socket: uid " + std::to_string(cred.uid) +
                                                                 " may not act as the toolstack")));
        continue;
      }
    }
    uint64_t id = next_id_++;
    if (!watch_in(epoll_.get(), s.get(), id)) continue;
    auto c = std::make_unique<Conn>();
    c->sock = std::move(s);
    c->id = id;
    c->privileged = privileged;
    conns_.emplace(id, std::move(c));
    nr_clients_.store(conns_.size());
  }
}

void SimServer::drop(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c->sock.get(), nullptr);
  bool destroy = c->said_hello && c->owns_domain;
  DomId dom = c->dom;
  ClientGone gone;
  gone.client = id;
  gone.dom = dom;
  gone.owned_domain = destroy;
  // Its pins first: by the time a frontend sees its backend Closed, end_access on its grants succeeds.
  const uint32_t tag = lock_tag_of(id);
  for (auto& [d, l] : c->ledgers) {
    for (uint32_t ref = 0; ref < l.dom->nr_grant_entries(); ++ref) {
      // Died inside pin/unpin's critical section: the lock is taken over and the entry rolled back (ActiveEntry).
      const sim::DeadPinnerRelease r = sim::release_dead_pinner(*l.dom, GrantRef{ref}, tag, &l.counts[2 * size_t{ref}]);
      gone.pins_released += r.pins_released;
      gone.locks_recovered += r.lock_recovered ? 1 : 0;
      gone.entries_rolled_back += r.rolled_back ? 1 : 0;
      gone.flags_mismatch += r.flags_mismatch ? 1 : 0;
    }
  }
  c->ledgers.clear();
  pins_released_ += gone.pins_released;
  std::set<std::string> states = std::move(c->state_nodes);
  std::shared_ptr<StoreTree> tree = c->tree;
  c.reset();  // watches and ports go first, so the domain's removal is the last thing peers see
  if (destroy) {
    (void)hv_.destroy_domain(dom);
  } else if (tree) {
    // A driver domain's backend that died: its devices are Closed (what a frontend sees of a dead backend;
    // the toolstack, here the backend when it comes back, rewrites them).
    const std::string closed = std::to_string(static_cast<int>(XenbusState::Closed));
    for (const auto& path : states) {
      auto v = tree->read(kDom0, path);
      if (v && *v != closed && tree->write(kDom0, path, closed)) ++gone.states_closed;
    }
  }
  nr_clients_.store(conns_.size());
  if (on_gone_) on_gone_(gone);
}

uint64_t SimServer::pins_held_by(DomId grantee) {
  uint64_t n = 0;
  for (DomId d : hv_.domains()) {
    auto v = hv_.domain_view(d);
    if (!v) continue;
    auto dom = std::static_pointer_cast<sim::SimDomain>(std::move(v).value());
    for (uint32_t ref = 0; ref < dom->nr_grant_entries(); ++ref) {
      const sim::ActiveEntry* a = dom->active_entry(ref);
      const uint32_t pins = __atomic_load_n(&a->pin_read, __ATOMIC_ACQUIRE) + __atomic_load_n(&a->pin_write, __ATOMIC_ACQUIRE);
      if (pins && __atomic_load_n(&a->domid, __ATOMIC_ACQUIRE) == grantee.value) n += pins;
    }
  }
  return n;
}

void SimServer::serve(uint64_t id) {
  // A bounded number of requests per call, so one busy client cannot starve the others.
  for (int i = 0; i < 64; ++i) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    auto msg = wire_recv(c.sock.get());
    if (!msg) {
      if (msg.error().code == EAGAIN || msg.error().code == EWOULDBLOCK) return;
      if (msg.error().code == EPROTO) {  // truncated: say so, keep the connection
        ++bad_requests_;
        if (!wire_send(c.sock.get(), reply_err(msg.error()))) {
          drop(id);
          return;
        }
        continue;
      }
      drop(id);
      return;
    }
    WireWriter reply = dispatch(c, *msg);
    bool sent = wire_send(c.sock.get(), reply).ok();
    held_view_.reset();
    if (!sent) {
      drop(id);
      return;
    }
  }
}

namespace {

// What a guest may pass in as its RAM: well-formed regions (the decoder checked their numbers) of memfds sealed
// against shrinking. The tables are never a client's: the hypervisor makes them.
Result<DomainShm> adopted_shm(DomId dom, DomainShm in) {
  if (in.dom != dom) return make_error(EINVAL, "hello: adopted memory is for another domain");
  if (in.grant_table || in.active)
    return make_error(EPERM, "hello: adopt takes RAM only; the grant and active tables are the hypervisor's to make");
  for (size_t i = 0; i < in.regions.size(); ++i)
    if (auto ok = check_sealed_memfd(in.regions[i].fd.get(), "hello: adopted region " + std::to_string(i)); !ok)
      return ok.error();
  auto shm = create_domain_shm(dom, 0, in.nr_grant_entries);
  if (!shm) return shm.error();
  shm->regions = std::move(in.regions);
  return shm;
}

// The tables a connection receives with a domain's shm: a guest never gets the active table.
uint8_t tables_for(bool privileged) { return privileged ? kWireGrantTable | kWireActiveTable : kWireGrantTable; }

}  // namespace

WireWriter SimServer::hello(Conn& c, WireReader& r) {
  DomId dom{r.u16()};
  auto mode = static_cast<WireHelloMode>(r.u8());
  uint64_t mem_bytes = r.u64();
  uint32_t nr_grant_entries = r.u32();
  if (r.failed()) return reply_err(make_error(EPROTO, "hello: malformed"));
  std::shared_ptr<SimDomainView> view;
  switch (mode) {
    case WireHelloMode::attach: {
      if (!r.at_end()) return reply_err(make_error(EPROTO, "hello: trailing bytes"));
      if (!c.privileged) {
        ++refused_;
        return reply_err(make_error(EPERM, "hello: only the privileged socket (" + priv_path_ +
                                               ") may attach to an existing domain; a guest creates its own"));
      }
      auto v = hv_.domain_view(dom);
      if (!v) return reply_err(v.error());
      view = std::move(v).value();
      break;
    }
    case WireHelloMode::create:
    case WireHelloMode::adopt: {
      DomainShm shm;
      if (mode == WireHelloMode::create) {
        if (!r.at_end()) return reply_err(make_error(EPROTO, "hello: trailing bytes"));
        if (mem_bytes == 0 || mem_bytes > kMaxDomainMemBytes)
          return reply_err(make_error(EINVAL, "hello: domain memory size out of range"));
        if (hv_.has_domain(dom)) return reply_err(make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists"));
        auto s = create_domain_shm(dom, mem_bytes, nr_grant_entries);
        if (!s) return reply_err(s.error());
        shm = std::move(s).value();
      } else {
        auto s = wire_get_shm(r);
        if (!s) return reply_err(s.error());
        if (!r.at_end() || r.fds_left() != 0) return reply_err(make_error(EPROTO, "hello: trailing bytes or fds"));
        if (hv_.has_domain(dom)) return reply_err(make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists"));
        auto a = adopted_shm(dom, std::move(s).value());
        if (!a) {
          if (a.error().code == EPERM) ++refused_;
          return reply_err(a.error());
        }
        shm = std::move(a).value();
      }
      auto v = hv_.add_domain(std::move(shm));
      if (!v) return reply_err(v.error());
      view = std::move(v).value();
      c.owns_domain = true;
      break;
    }
    default:
      return reply_err(make_error(EINVAL, "hello: unknown mode"));
  }
  auto w = hv_.store_tree()->add_watcher();
  if (!w) {
    if (c.owns_domain) (void)hv_.destroy_domain(dom);
    c.owns_domain = false;
    return reply_err(w.error());
  }
  c.tree = hv_.store_tree();
  c.watcher = *w;
  c.evtchn = make_local_evtchn_control(hv_.evtchn_table(), dom);
  c.dom = dom;
  c.said_hello = true;
  WireWriter out = reply_ok();
  wire_put_shm(out, view->shm(), tables_for(c.privileged));
  held_view_ = view;
  out.fd(hv_.evtchn_table()->status().readonly_fd()).fd(c.tree->watcher_fd(c.watcher));
  return out;
}

WireWriter SimServer::get_domain(Conn& c, DomId dom) {
  // Xen: a guest reaches another domain's memory only through the hypervisor's grant checks. Here the client
  // that does the checking holds the memory, so only a privileged one (dom0's netback) may have it.
  if (!c.privileged && dom != c.dom) {
    ++refused_;
    return reply_err(make_error(EPERM, "get_domain: a guest may not reach domain " + std::to_string(dom.value) +
                                           "'s memory (only the privileged socket may)"));
  }
  auto v = hv_.domain_view(dom);
  if (!v) return reply_err(v.error());
  // The client's pins on this domain are recorded in a ledger we keep, so they can be released if it dies.
  // (Its own domain needs none: pins on one's own grants go with the domain.)
  int ledger_fd = -1;
  if (c.privileged && dom != c.dom && (*v)->shm().regions.size() + 3 <= kWireMaxFds) {
    auto it = c.ledgers.find(dom.value);
    if (it == c.ledgers.end()) {
      auto l = make_ledger(*v);
      if (!l) return reply_err(l.error());
      it = c.ledgers.emplace(dom.value, std::move(l).value()).first;
    }
    ledger_fd = it->second.fd.get();
  }
  WireWriter w = reply_ok();
  wire_put_shm(w, (*v)->shm(), tables_for(c.privileged));
  w.u8(ledger_fd >= 0 ? 1 : 0);
  if (ledger_fd >= 0) w.u32(lock_tag_of(c.id)).fd(ledger_fd);
  // The view may go (domain destroyed) before the reply is sent: keep its fds open until then.
  held_view_ = std::move(v).value();
  return w;
}

WireWriter SimServer::dispatch(Conn& c, WireReader& r) {
  WireWriter out = [&]() -> WireWriter {
    if (r.u32() != kWireMagic || r.failed()) return reply_err(make_error(EPROTO, "bad magic"));
    auto op = static_cast<WireOp>(r.u32());
    if (r.fds_left() != 0 && op != WireOp::hello)
      return reply_err(make_error(EPROTO, "unexpected fds with request"));
    if (op == WireOp::hello) {
      if (c.said_hello) return reply_err(make_error(EPROTO, "hello twice"));
      return hello(c, r);
    }
    if (!c.said_hello) return reply_err(make_error(EPROTO, "request before hello"));
    StoreTree& tree = *c.tree;
    DomId self = c.dom;
    // Each case parses its fields; the common check below turns a short/long message into EPROTO.
    auto malformed = [&] { return r.failed() || !r.at_end(); };
    switch (op) {
      case WireOp::store_read: {
        std::string path = r.str();
        if (malformed()) break;
        auto v = tree.read(self, path);
        if (!v) return reply_err(v.error());
        WireWriter w = reply_ok();
        w.str(*v);
        return w;
      }
      case WireOp::store_write: {
        std::string path = r.str(), value = r.str();
        if (malformed()) break;
        auto res = tree.write(self, path, value);
        if (res && !c.owns_domain)
          if (auto node = backend_state_node(self, path)) c.state_nodes.insert(std::move(*node));
        return reply_of(res);
      }
      case WireOp::store_remove: {
        std::string path = r.str();
        if (malformed()) break;
        return reply_of(tree.remove(self, path));
      }
      case WireOp::store_directory: {
        std::string path = r.str();
        if (malformed()) break;
        auto d = tree.directory(self, path);
        if (!d) return reply_err(d.error());
        WireWriter w = reply_ok();
        w.u32(static_cast<uint32_t>(d->size()));
        for (auto& n : *d) w.str(n);
        if (w.bytes().size() > kWireMaxMessage) return reply_err(make_error(E2BIG, "directory: too many children"));
        return w;
      }
      case WireOp::store_watch:
      case WireOp::store_unwatch: {
        std::string path = r.str(), token = r.str();
        if (malformed()) break;
        return reply_of(op == WireOp::store_watch ? tree.watch(c.watcher, self, path, token)
                                                  : tree.unwatch(c.watcher, self, path, token));
      }
      case WireOp::store_read_watches: {
        if (malformed()) break;
        auto evs = tree.drain(c.watcher, kWatchReplyBudget);
        WireWriter w = reply_ok();
        w.u32(static_cast<uint32_t>(evs.size()));
        for (auto& e : evs) w.str(e.path).str(e.token);
        return w;
      }
      case WireOp::store_set_perms: {
        std::string path = r.str();
        NodePerms p = wire_get_perms(r);
        if (malformed()) break;
        return reply_of(tree.set_perms(self, path, p));
      }
      case WireOp::store_get_perms: {
        std::string path = r.str();
        if (malformed()) break;
        auto p = tree.get_perms(self, path);
        if (!p) return reply_err(p.error());
        WireWriter w = reply_ok();
        wire_put_perms(w, *p);
        return w;
      }
      case WireOp::evtchn_alloc_unbound:
      case WireOp::evtchn_bind_interdomain: {
        DomId remote{r.u16()};
        Port remote_port{op == WireOp::evtchn_bind_interdomain ? r.u32() : 0};
        if (malformed()) break;
        auto b = op == WireOp::evtchn_alloc_unbound ? c.evtchn->alloc_unbound(remote)
                                                    : c.evtchn->bind_interdomain(remote, remote_port);
        if (!b) return reply_err(b.error());
        WireWriter w = reply_ok();
        put_binding(w, std::move(b).value());
        return w;
      }
      case WireOp::evtchn_unbind: {
        Port port{r.u32()};
        if (malformed()) break;
        return reply_of(c.evtchn->unbind(port));
      }
      case WireOp::evtchn_peer: {
        Port port{r.u32()};
        if (malformed()) break;
        auto p = c.evtchn->peer(port);
        if (!p) return reply_err(p.error());
        WireWriter w = reply_ok();
        w.u32(p->slot).u32(p->gen).u8(p->connected ? 1 : 0);
        if (p->connected) w.fd(std::move(p->peer_eventfd));
        return w;
      }
      case WireOp::get_domain: {
        DomId dom{r.u16()};
        if (malformed()) break;
        return get_domain(c, dom);
      }
      default:
        break;
    }
    return reply_err(make_error(EPROTO, "malformed or unknown request"));
  }();
  int32_t code = 0;
  std::memcpy(&code, out.bytes().data() + 4, sizeof code);
  if (code == EPROTO) ++bad_requests_;
  return out;
}

}  // namespace pvnet
