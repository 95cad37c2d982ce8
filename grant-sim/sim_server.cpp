#include "grant-sim/sim_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "grant-sim/sim_domain.hpp"

namespace pvnet {
namespace {

constexpr uint64_t kListenId = 0;
constexpr uint64_t kMaxMemBytes = uint64_t{64} << 30;
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

void put_binding(WireWriter& w, EvtchnBinding b) {
  w.u32(b.port.value).u32(b.slot).u32(b.gen).fd(std::move(b.eventfd));
}

}  // namespace

struct SimServer::Conn {
  UniqueFd sock;
  bool said_hello = false;
  DomId dom;
  bool owns_domain = false;
  std::shared_ptr<StoreTree> tree;
  StoreTree::WatcherId watcher = 0;
  std::unique_ptr<EvtchnControl> evtchn;  // its destructor closes the connection's ports
  ~Conn() {
    if (tree && watcher) tree->remove_watcher(watcher);
  }
};

Result<std::unique_ptr<SimServer>> SimServer::listen(const std::string& socket_path, SimHypervisor& hv) {
  auto addr = unix_addr(socket_path);
  if (!addr) return addr.error();
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!probe) return errno_error("socket");
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) == 0)
    return make_error(EADDRINUSE, "a hypervisor is already serving on " + socket_path);
  ::unlink(socket_path.c_str());  // a stale socket from a server that died
  UniqueFd l(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!l) return errno_error("socket");
  if (::bind(l.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0)
    return errno_error("bind " + socket_path);
  if (::listen(l.get(), 64) != 0) return errno_error("listen " + socket_path);
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, l.get(), &ev) != 0) return errno_error("epoll_ctl");
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return errno_error("eventfd");
  return std::unique_ptr<SimServer>(new SimServer(socket_path, hv, std::move(l), std::move(ep), std::move(stop)));
}

SimServer::SimServer(std::string path, SimHypervisor& hv, UniqueFd listen_fd, UniqueFd epoll, UniqueFd stop_fd)
    : path_(std::move(path)), hv_(hv), listen_(std::move(listen_fd)), epoll_(std::move(epoll)),
      stop_(std::move(stop_fd)) {}

SimServer::~SimServer() {
  stop();
  while (!conns_.empty()) drop(conns_.begin()->first);
  ::unlink(path_.c_str());
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
      if (evs[i].data.u64 == kListenId)
        accept_all();
      else
        serve(evs[i].data.u64);
    }
    if (n < 32) return;
  }
}

void SimServer::accept_all() {
  for (;;) {
    UniqueFd s(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!s) return;
    uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.get(), &ev) != 0) continue;
    auto c = std::make_unique<Conn>();
    c->sock = std::move(s);
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
  c.reset();  // watches and ports go first, so the domain's removal is the last thing peers see
  if (destroy) (void)hv_.destroy_domain(dom);
  nr_clients_.store(conns_.size());
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
        if (mem_bytes == 0 || mem_bytes > kMaxMemBytes)
          return reply_err(make_error(EINVAL, "hello: domain memory size out of range"));
        if (hv_.has_domain(dom)) return reply_err(make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists"));
        auto s = create_domain_shm(dom, mem_bytes, nr_grant_entries);
        if (!s) return reply_err(s.error());
        shm = std::move(s).value();
      } else {
        auto s = wire_get_shm(r);
        if (!s) return reply_err(s.error());
        if (!r.at_end() || r.fds_left() != 0) return reply_err(make_error(EPROTO, "hello: trailing bytes or fds"));
        if (s->dom != dom) return reply_err(make_error(EINVAL, "hello: adopted memory is for another domain"));
        shm = std::move(s).value();
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
  wire_put_shm(out, view->shm());
  held_view_ = view;
  out.fd(hv_.evtchn_table()->status().fd()).fd(c.tree->watcher_fd(c.watcher));
  return out;
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
        return reply_of(tree.write(self, path, value));
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
        auto v = hv_.domain_view(dom);
        if (!v) return reply_err(v.error());
        WireWriter w = reply_ok();
        wire_put_shm(w, (*v)->shm());
        // The view may go (domain destroyed) before the reply is sent: keep its fds open until then.
        held_view_ = std::move(v).value();
        return w;
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
