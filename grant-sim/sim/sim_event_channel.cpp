#include "grant-sim/sim/sim_event_channel.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace pvnet {
namespace {

constexpr size_t kStatusBytes = kMaxEvtchnChannels * sizeof(uint32_t);

Error errno_error(const char* what) { return make_error(errno, std::string(what) + ": " + std::strerror(errno)); }

std::string port_name(DomId d, Port p) {
  return "dom" + std::to_string(d.value) + " port " + std::to_string(p.value);
}

}  // namespace

// ---- EvtchnStatusMap ----

Result<EvtchnStatusMap> EvtchnStatusMap::create() {
  UniqueFd fd(::memfd_create("pvnet-evtchn-status", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return errno_error("memfd_create(evtchn status)");
  if (::ftruncate(fd.get(), kStatusBytes) != 0) return errno_error("ftruncate(evtchn status)");
  void* p = ::mmap(nullptr, kStatusBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("mmap(evtchn status)");
  EvtchnStatusMap m(UniqueFd{}, static_cast<uint32_t*>(p), true);
  // Our mapping stays writable; every later one (any process, any fd of this file) is read-only.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0)
    return errno_error("F_ADD_SEALS(evtchn status)");
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  m.ro_fd_ = UniqueFd(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!m.ro_fd_) return errno_error("reopen(evtchn status) read-only");
  return m;
}

Result<EvtchnStatusMap> EvtchnStatusMap::open_readonly(UniqueFd fd) {
  void* p = ::mmap(nullptr, kStatusBytes, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("mmap(evtchn status)");
  return EvtchnStatusMap(std::move(fd), static_cast<uint32_t*>(p), false);
}

EvtchnStatusMap::EvtchnStatusMap(EvtchnStatusMap&& o) noexcept
    : ro_fd_(std::move(o.ro_fd_)), words_(std::exchange(o.words_, nullptr)), writable_(o.writable_) {}

EvtchnStatusMap& EvtchnStatusMap::operator=(EvtchnStatusMap&& o) noexcept {
  if (this != &o) {
    if (words_) ::munmap(words_, kStatusBytes);
    ro_fd_ = std::move(o.ro_fd_);
    words_ = std::exchange(o.words_, nullptr);
    writable_ = o.writable_;
  }
  return *this;
}

EvtchnStatusMap::~EvtchnStatusMap() {
  if (words_) ::munmap(words_, kStatusBytes);
}

uint32_t EvtchnStatusMap::load(uint32_t slot) const {
  if (slot >= kMaxEvtchnChannels) return 0;
  return std::atomic_ref<uint32_t>(words_[slot]).load(std::memory_order_acquire);
}

void EvtchnStatusMap::store(uint32_t slot, uint32_t w) {
  if (slot >= kMaxEvtchnChannels || !writable_) return;
  std::atomic_ref<uint32_t>(words_[slot]).store(w, std::memory_order_release);
}

// ---- EvtchnTable ----

Result<std::unique_ptr<EvtchnTable>> EvtchnTable::create() {
  auto st = EvtchnStatusMap::create();
  if (!st) return st.error();
  return std::unique_ptr<EvtchnTable>(new EvtchnTable(std::move(st).value()));
}

EvtchnTable::EvtchnTable(EvtchnStatusMap status) : status_(std::move(status)) {
  free_slots_.reserve(kMaxEvtchnChannels);
  for (uint32_t s = kMaxEvtchnChannels; s-- > 0;) free_slots_.push_back(s);
}

EvtchnTable::Handle EvtchnTable::open_handle() {
  std::lock_guard lk(mu_);
  return next_handle_++;
}

Result<uint32_t> EvtchnTable::alloc_slot() {
  if (free_slots_.empty()) return make_error(ENOSPC, "event channels: all " + std::to_string(kMaxEvtchnChannels) +
                                                         " channels in use");
  uint32_t s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

uint32_t EvtchnTable::bump(uint32_t slot, bool connected) {
  uint32_t gen = ((status_.load(slot) >> 1) + 1) & 0x7fffffffu;
  status_.store(slot, EvtchnStatusMap::word(gen, connected));
  return gen;
}

Result<EvtchnBinding> EvtchnTable::binding_of(const Key& k, Port port) {
  End& e = ends_.at(k);
  int dup = ::fcntl(e.eventfd.get(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return errno_error("dup(eventfd)");
  return EvtchnBinding{port, UniqueFd(dup), e.slot, status_.load(e.slot) >> 1};
}

Result<EvtchnBinding> EvtchnTable::alloc_unbound(Handle h, DomId self, DomId remote) {
  std::lock_guard lk(mu_);
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) return errno_error("eventfd");
  auto slot = alloc_slot();
  if (!slot) return slot.error();
  uint32_t& next = next_port_[self.value];
  Port port{++next};  // port 0 is never valid in Xen
  End e;
  e.owner = h;
  e.state = State::unbound;
  e.remote = remote;
  e.eventfd = std::move(efd);
  e.slot = *slot;
  bump(*slot, false);
  Key k = key(self, port);
  ends_.emplace(k, std::move(e));
  auto b = binding_of(k, port);
  if (!b) close_locked(k);
  return b;
}

Result<EvtchnBinding> EvtchnTable::bind_interdomain(Handle h, DomId self, DomId remote, Port remote_port) {
  std::lock_guard lk(mu_);
  auto it = ends_.find(key(remote, remote_port));
  if (it == ends_.end())
    return make_error(EINVAL, "bind_interdomain: " + port_name(remote, remote_port) + " is not allocated");
  End& r = it->second;
  if (r.state != State::unbound)
    return make_error(EINVAL, "bind_interdomain: " + port_name(remote, remote_port) + " is already bound");
  if (r.remote != self)
    return make_error(EINVAL, "bind_interdomain: " + port_name(remote, remote_port) + " is unbound for dom" +
                                  std::to_string(r.remote.value) + ", not for dom" + std::to_string(self.value));
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) return errno_error("eventfd");
  uint32_t& next = next_port_[self.value];
  Port port{++next};
  End e;
  e.owner = h;
  e.state = State::interdomain;
  e.remote = remote;
  e.remote_port = remote_port;
  e.eventfd = std::move(efd);
  e.slot = r.slot;
  r.state = State::interdomain;
  r.remote_port = port;
  // A new generation: whoever cached the previous peer of this slot must look it up again.
  bump(r.slot, true);
  Key k = key(self, port);
  ends_.emplace(k, std::move(e));
  auto b = binding_of(k, port);
  if (!b) close_locked(k);
  return b;
}

void EvtchnTable::close_locked(Key k) {
  auto it = ends_.find(k);
  if (it == ends_.end()) return;
  End& e = it->second;
  if (e.state == State::interdomain) {
    auto rit = ends_.find(key(e.remote, e.remote_port));
    if (rit != ends_.end()) {
      // Xen's __evtchn_close: the remote end becomes unbound, bindable again by the closing domain.
      rit->second.state = State::unbound;
      rit->second.remote = DomId{k.first};
      rit->second.remote_port = Port{};
      bump(rit->second.slot, false);
      ends_.erase(it);
      return;
    }
  }
  bump(e.slot, false);
  free_slots_.push_back(e.slot);
  ends_.erase(it);
}

Result<void> EvtchnTable::unbind(Handle h, DomId self, Port local) {
  std::lock_guard lk(mu_);
  auto it = ends_.find(key(self, local));
  if (it == ends_.end() || it->second.owner != h)
    return make_error(EINVAL, "unbind: " + port_name(self, local) + " is not bound through this handle");
  close_locked(it->first);
  return {};
}

Result<EvtchnPeer> EvtchnTable::peer(Handle h, DomId self, Port local) {
  std::lock_guard lk(mu_);
  auto it = ends_.find(key(self, local));
  if (it == ends_.end() || it->second.owner != h)
    return make_error(EINVAL, "notify: " + port_name(self, local) + " is not bound through this handle");
  const End& e = it->second;
  EvtchnPeer p;
  p.slot = e.slot;
  uint32_t w = status_.load(e.slot);
  p.gen = w >> 1;
  p.connected = e.state == State::interdomain;
  if (p.connected) {
    const End& r = ends_.at(key(e.remote, e.remote_port));
    int dup = ::fcntl(r.eventfd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return errno_error("dup(peer eventfd)");
    p.peer_eventfd.reset(dup);
  }
  return p;
}

void EvtchnTable::close_handle(Handle h) {
  std::lock_guard lk(mu_);
  std::vector<Key> keys;
  for (auto& [k, e] : ends_)
    if (e.owner == h) keys.push_back(k);
  for (auto& k : keys) close_locked(k);
}

void EvtchnTable::close_domain(DomId dom) {
  std::lock_guard lk(mu_);
  std::vector<Key> keys;
  for (auto& [k, e] : ends_)
    if (k.first == dom.value) keys.push_back(k);
  for (auto& k : keys) close_locked(k);
  next_port_.erase(dom.value);
}

size_t EvtchnTable::nr_ports(DomId dom) const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (auto& [k, e] : ends_) n += k.first == dom.value;
  return n;
}

// ---- the in-process control ----

namespace {

class LocalEvtchnControl final : public EvtchnControl {
 public:
  LocalEvtchnControl(std::shared_ptr<EvtchnTable> t, DomId self)
      : table_(std::move(t)), self_(self), handle_(table_->open_handle()) {}
  ~LocalEvtchnControl() override { table_->close_handle(handle_); }
  DomId self() const override { return self_; }
  const EvtchnStatusMap& status() const override { return table_->status(); }
  Result<EvtchnBinding> alloc_unbound(DomId remote) override { return table_->alloc_unbound(handle_, self_, remote); }
  Result<EvtchnBinding> bind_interdomain(DomId remote, Port rp) override {
    return table_->bind_interdomain(handle_, self_, remote, rp);
  }
  Result<void> unbind(Port local) override { return table_->unbind(handle_, self_, local); }
  Result<EvtchnPeer> peer(Port local) override { return table_->peer(handle_, self_, local); }

 private:
  std::shared_ptr<EvtchnTable> table_;
  DomId self_;
  EvtchnTable::Handle handle_;
};

}  // namespace

std::unique_ptr<EvtchnControl> make_local_evtchn_control(std::shared_ptr<EvtchnTable> table, DomId self) {
  return std::make_unique<LocalEvtchnControl>(std::move(table), self);
}

// ---- SimEventChannel ----

Result<std::unique_ptr<SimEventChannel>> SimEventChannel::create(std::unique_ptr<EvtchnControl> control) {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  return std::unique_ptr<SimEventChannel>(new SimEventChannel(std::move(control), std::move(ep)));
}

SimEventChannel::SimEventChannel(std::unique_ptr<EvtchnControl> control, UniqueFd epoll)
    : control_(std::move(control)), epoll_(std::move(epoll)) {}

SimEventChannel::~SimEventChannel() = default;  // the control's destructor closes our ports

Result<Port> SimEventChannel::add(EvtchnBinding b) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u32 = b.port.value;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, b.eventfd.get(), &ev) != 0) {
    Error err = errno_error("epoll_ctl(ADD)");
    (void)control_->unbind(b.port);
    return err;
  }
  LocalPort lp;
  lp.eventfd = std::move(b.eventfd);
  lp.slot = b.slot;
  lp.gen = b.gen;
  ports_[b.port.value] = std::move(lp);
  return b.port;
}

Result<Port> SimEventChannel::alloc_unbound(DomId remote) {
  std::lock_guard lk(mu_);
  auto b = control_->alloc_unbound(remote);
  if (!b) return b.error();
  return add(std::move(b).value());
}

Result<Port> SimEventChannel::bind_interdomain(DomId remote, Port remote_port) {
  std::lock_guard lk(mu_);
  auto b = control_->bind_interdomain(remote, remote_port);
  if (!b) return b.error();
  return add(std::move(b).value());
}

Result<void> SimEventChannel::unbind(Port local) {
  std::lock_guard lk(mu_);
  auto it = ports_.find(local.value);
  if (it == ports_.end()) return make_error(EINVAL, "unbind: port " + std::to_string(local.value) + " not bound here");
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.eventfd.get(), nullptr);
  ports_.erase(it);
  return control_->unbind(local);
}

Result<void> SimEventChannel::notify(Port local) {
  std::lock_guard lk(mu_);
  auto it = ports_.find(local.value);
  if (it == ports_.end()) return make_error(EINVAL, "notify: port " + std::to_string(local.value) + " not bound here");
  LocalPort& lp = it->second;
  if (!lp.peer_eventfd || control_->status().load(lp.slot) != EvtchnStatusMap::word(lp.gen, true)) {
    // First send on this port, or the channel changed since: ask the hypervisor who the peer is now.
    auto p = control_->peer(local);
    if (!p) return p.error();
    lp.slot = p->slot;
    lp.gen = p->gen;
    lp.peer_eventfd = std::move(p->peer_eventfd);
    if (!p->connected)
      return make_error(ENOTCONN, "notify: port " + std::to_string(local.value) +
                                      " has no peer (never bound, or the remote end closed)");
  }
  uint64_t one = 1;
  if (::write(lp.peer_eventfd.get(), &one, sizeof one) != sizeof one && errno != EAGAIN)
    return errno_error("notify: write(eventfd)");  // EAGAIN: the counter is saturated, the event is pending anyway
  ++sent_;
  return {};
}

std::vector<Port> SimEventChannel::pending() {
  std::lock_guard lk(mu_);
  std::vector<Port> out;
  epoll_event evs[64];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), evs, 64, 0);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      auto it = ports_.find(evs[i].data.u32);
      if (it == ports_.end()) continue;
      uint64_t v;
      (void)!::read(it->second.eventfd.get(), &v, sizeof v);
      out.push_back(Port{evs[i].data.u32});
    }
    if (n < 64) break;
  }
  return out;
}

void SimEventChannel::unmask(Port local) {
  std::lock_guard lk(mu_);
  auto it = ports_.find(local.value);
  if (it == ports_.end()) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u32 = local.value;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.eventfd.get(), &ev);
}

std::vector<Port> SimEventChannel::wait(int timeout_ms) {
  pollfd p{epoll_.get(), POLLIN, 0};
  int r;
  do r = ::poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return pending();
}

uint64_t SimEventChannel::notifications_sent() const {
  std::lock_guard lk(mu_);
  return sent_;
}

}  // namespace pvnet
