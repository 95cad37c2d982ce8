#include "grant-sim/sim/sim_client.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_grant_table.hpp"
#include "grant-sim/sim/sim_platform.hpp"
#include "grant-sim/sim/sim_wire.hpp"

namespace pvnet {
namespace {

WireWriter request(WireOp op) {
  WireWriter w;
  w.u32(kWireMagic).u32(static_cast<uint32_t>(op));
  return w;
}

// One request at a time on the socket; the reply comes back positioned at its op-specific fields.
class Connection {
 public:
  explicit Connection(UniqueFd sock) : sock_(std::move(sock)) {}
  Result<WireReader> call(const WireWriter& req) {
    std::lock_guard lk(mu_);
    if (auto s = wire_send(sock_.get(), req); !s) return s.error();
    auto r = wire_recv(sock_.get());
    if (!r) {
      if (r.error().code == EAGAIN || r.error().code == EWOULDBLOCK)
        return make_error(ETIMEDOUT, "sim client: no reply from the hypervisor");
      return r.error();
    }
    WireReader& rd = *r;
    uint32_t magic = rd.u32();
    int32_t code = rd.i32();
    std::string reason = rd.str();
    if (rd.failed() || magic != kWireMagic) return make_error(EPROTO, "sim client: malformed reply");
    if (code != 0) return make_error(code, std::move(reason));
    return r;
  }
  Result<void> call_void(const WireWriter& req) {
    auto r = call(req);
    if (!r) return r.error();
    return {};
  }

 private:
  std::mutex mu_;
  UniqueFd sock_;
};

Error malformed(const char* what) { return make_error(EPROTO, std::string("sim client: malformed reply to ") + what); }

class ClientStore final : public Store {
 public:
  ClientStore(std::shared_ptr<Connection> c, DomId self, UniqueFd watch_fd)
      : conn_(std::move(c)), self_(self), watch_fd_(std::move(watch_fd)) {}
  DomId self() const override { return self_; }
  Result<std::string> read(std::string_view path) override {
    auto r = conn_->call(request(WireOp::store_read).str(path));
    if (!r) return r.error();
    std::string v = r->str();
    if (r->failed()) return malformed("store_read");
    return v;
  }
  Result<void> write(std::string_view path, std::string_view value) override {
    return conn_->call_void(request(WireOp::store_write).str(path).str(value));
  }
  Result<void> remove(std::string_view path) override {
    return conn_->call_void(request(WireOp::store_remove).str(path));
  }
  Result<std::vector<std::string>> directory(std::string_view path) override {
    auto r = conn_->call(request(WireOp::store_directory).str(path));
    if (!r) return r.error();
    uint32_t n = r->u32();
    std::vector<std::string> out;
    for (uint32_t i = 0; i < n && !r->failed(); ++i) out.push_back(r->str());
    if (r->failed()) return malformed("store_directory");
    return out;
  }
  Result<void> watch(std::string_view path, std::string_view token) override {
    return conn_->call_void(request(WireOp::store_watch).str(path).str(token));
  }
  Result<void> unwatch(std::string_view path, std::string_view token) override {
    return conn_->call_void(request(WireOp::store_unwatch).str(path).str(token));
  }
  int watch_fd() const override { return watch_fd_.get(); }
  std::vector<WatchEvent> read_watches() override {
    std::vector<WatchEvent> out;
    // The server hands out a bounded batch per reply and leaves the eventfd signalled while more remain.
    while (readable_now()) {
      auto r = conn_->call(request(WireOp::store_read_watches));
      if (!r) break;
      uint32_t n = r->u32();
      for (uint32_t i = 0; i < n && !r->failed(); ++i) {
        WatchEvent e;
        e.path = r->str();
        e.token = r->str();
        if (!r->failed()) out.push_back(std::move(e));
      }
      if (n == 0 || r->failed()) break;
    }
    return out;
  }
  std::vector<WatchEvent> wait_watches(int timeout_ms) override {
    wait_readable(watch_fd_.get(), timeout_ms);
    return read_watches();
  }
  Result<void> set_permissions(std::string_view path, const NodePerms& perms) override {
    WireWriter w = request(WireOp::store_set_perms);
    w.str(path);
    wire_put_perms(w, perms);
    return conn_->call_void(w);
  }
  Result<NodePerms> get_permissions(std::string_view path) override {
    auto r = conn_->call(request(WireOp::store_get_perms).str(path));
    if (!r) return r.error();
    NodePerms p = wire_get_perms(*r);
    if (r->failed()) return malformed("store_get_perms");
    return p;
  }

 private:
  bool readable_now() const {
    pollfd p{watch_fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  std::shared_ptr<Connection> conn_;
  DomId self_;
  UniqueFd watch_fd_;
};

class ClientEvtchnControl final : public EvtchnControl {
 public:
  ClientEvtchnControl(std::shared_ptr<Connection> c, DomId self, EvtchnStatusMap status)
      : conn_(std::move(c)), self_(self), status_(std::move(status)) {}
  DomId self() const override { return self_; }
  const EvtchnStatusMap& status() const override { return status_; }
  Result<EvtchnBinding> alloc_unbound(DomId remote) override {
    return binding(conn_->call(request(WireOp::evtchn_alloc_unbound).u16(remote.value)));
  }
  Result<EvtchnBinding> bind_interdomain(DomId remote, Port remote_port) override {
    return binding(conn_->call(request(WireOp::evtchn_bind_interdomain).u16(remote.value).u32(remote_port.value)));
  }
  Result<void> unbind(Port local) override {
    return conn_->call_void(request(WireOp::evtchn_unbind).u32(local.value));
  }
  Result<EvtchnPeer> peer(Port local) override {
    auto r = conn_->call(request(WireOp::evtchn_peer).u32(local.value));
    if (!r) return r.error();
    EvtchnPeer p;
    p.slot = r->u32();
    p.gen = r->u32();
    p.connected = r->u8() != 0;
    if (p.connected) p.peer_eventfd = r->fd();
    if (r->failed()) return malformed("evtchn_peer");
    return p;
  }

 private:
  static Result<EvtchnBinding> binding(Result<WireReader> r) {
    if (!r) return r.error();
    EvtchnBinding b;
    b.port = Port{r->u32()};
    b.slot = r->u32();
    b.gen = r->u32();
    b.eventfd = r->fd();
    if (r->failed()) return malformed("evtchn bind");
    return b;
  }
  std::shared_ptr<Connection> conn_;
  DomId self_;
  EvtchnStatusMap status_;
};

// Other domains' memory, fetched from the server on first use and kept.
class ClientDirectory final : public DomainDirectory {
 public:
  ClientDirectory(std::shared_ptr<Connection> c, std::shared_ptr<SimDomainView> self)
      : conn_(std::move(c)), self_(std::move(self)) {}
  std::shared_ptr<SimDomainView> find(DomId dom) override {
    // A guest's own view has no active table (it is the hypervisor's): nothing may pin through it.
    if (dom == self_->dom())
      return std::static_pointer_cast<sim::SimDomain>(self_)->has_active() ? self_ : nullptr;
    std::lock_guard lk(mu_);
    auto it = cache_.find(dom.value);
    if (it != cache_.end()) return it->second.view;
    auto r = conn_->call(request(WireOp::get_domain).u16(dom.value));
    if (!r) return nullptr;
    auto shm = wire_get_shm(*r);
    if (!shm || shm->dom != dom) return nullptr;
    const bool has_ledger = r->u8() != 0;
    uint32_t tag = 0;
    UniqueFd ledger_fd;
    if (has_ledger) {
      tag = r->u32();
      ledger_fd = r->fd();
    }
    if (r->failed()) return nullptr;
    auto v = SimDomainView::open(std::move(shm).value());
    if (!v || !std::static_pointer_cast<sim::SimDomain>(*v)->has_active()) return nullptr;
    Entry e;
    e.view = *v;
    if (has_ledger) {
      // Every pin this process takes on the domain's grants is recorded where the hypervisor process can see
      // it, so it can release them if we die. Without the ledger we would pin unrecorded: refuse instead.
      auto d = std::static_pointer_cast<sim::SimDomain>(*v);
      e.ledger_bytes = size_t{2} * sizeof(uint32_t) * d->nr_grant_entries();
      void* p = ::mmap(nullptr, e.ledger_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ledger_fd.get(), 0);
      if (p == MAP_FAILED) return nullptr;
      e.ledger = static_cast<uint32_t*>(p);
      d->set_pin_ledger(e.ledger, tag);
    }
    cache_.emplace(dom.value, std::move(e));
    return std::move(v).value();
  }

 private:
  struct Entry {
    std::shared_ptr<SimDomainView> view;
    uint32_t* ledger = nullptr;
    size_t ledger_bytes = 0;
    Entry() = default;
    Entry(Entry&& o) noexcept
        : view(std::move(o.view)), ledger(std::exchange(o.ledger, nullptr)), ledger_bytes(o.ledger_bytes) {}
    Entry(const Entry&) = delete;
    ~Entry() {
      // The view may outlive us (a mapping still holds it): it must not write to an unmapped ledger.
      if (ledger) {
        std::static_pointer_cast<sim::SimDomain>(view)->set_pin_ledger(nullptr, 1);
        ::munmap(ledger, ledger_bytes);
      }
    }
  };
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<SimDomainView> self_;
  std::mutex mu_;
  std::map<uint16_t, Entry> cache_;
};

}  // namespace

Result<std::unique_ptr<Platform>> SimClient::connect(const std::string& socket_path, DomId self,
                                                     SimClientOptions options) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof a.sun_path)
    return make_error(ENAMETOOLONG, "sim client: socket path '" + socket_path + "' is empty or too long");
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) return make_error(errno, std::string("sim client: socket: ") + std::strerror(errno));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return make_error(errno, "sim client: connect " + socket_path + ": " + std::strerror(errno));
  timeval tv{kReplyTimeoutSeconds, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto conn = std::make_shared<Connection>(std::move(s));

  WireWriter hello = request(WireOp::hello);
  WireHelloMode mode = options.mode == SimClientOptions::Mode::create ? WireHelloMode::create
                       : options.mode == SimClientOptions::Mode::adopt ? WireHelloMode::adopt
                                                                        : WireHelloMode::attach;
  hello.u16(self.value).u8(static_cast<uint8_t>(mode)).u64(options.mem_bytes).u32(options.nr_grant_entries);
  if (mode == WireHelloMode::adopt) {
    if (!options.shm && !options.ram.empty()) {
      auto regions = dup_ram_regions(options.ram);
      if (!regions) return regions.error();
      options.shm = DomainShm{self, std::move(regions).value(), {}, {}, options.nr_grant_entries};
    }
    if (!options.shm) return make_error(EINVAL, "sim client: adopt without memory");
    wire_put_shm(hello, *options.shm, 0);  // RAM only: the hypervisor makes the tables
  }
  auto r = conn->call(hello);
  if (!r) return r.error();
  auto shm = wire_get_shm(*r);
  if (!shm) return shm.error();
  UniqueFd status_fd = r->fd();
  UniqueFd watch_fd = r->fd();
  if (r->failed()) return malformed("hello");
  auto status = EvtchnStatusMap::open_readonly(std::move(status_fd));
  if (!status) return status.error();
  auto view = SimDomainView::open(std::move(shm).value());
  if (!view) return view.error();

  auto dir = std::make_shared<ClientDirectory>(conn, *view);
  auto store = std::make_unique<ClientStore>(conn, self, std::move(watch_fd));
  auto evtchn = std::make_unique<ClientEvtchnControl>(conn, self, std::move(status).value());
  auto p = SimPlatform::assemble(*view, *dir, dir, std::move(evtchn), std::move(store));
  if (!p) return p.error();
  return std::unique_ptr<Platform>(std::move(p).value());
}

}  // namespace pvnet
