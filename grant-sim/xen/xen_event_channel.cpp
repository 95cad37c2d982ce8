#include "grant-sim/xen/xen_event_channel.hpp"

#include <fcntl.h>
extern "C" {
#include <xenevtchn.h>
}

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "grant-sim/platform/fd_wait.hpp"
#include "grant-sim/xen/xen_platform.hpp"

namespace pvnet {
namespace {

struct EvtchnClose {
  void operator()(xenevtchn_handle* h) const { if (h) xenevtchn_close(h); }
};

Error evtchn_error(const std::string& what) {
  const int e = errno ? errno : EIO;
  return make_error(e, what + ": " + std::strerror(e));
}

class XenEventChannel final : public EventChannel {
 public:
  explicit XenEventChannel(xenevtchn_handle* h) : h_(h) {}

  Result<Port> alloc_unbound(DomId remote) override {
    errno = 0;
    const xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(h_.get(), remote.value);
    if (p < 0) return evtchn_error("xenevtchn_bind_unbound_port for domain " + std::to_string(remote.value));
    return Port{static_cast<uint32_t>(p)};
  }
  Result<Port> bind_interdomain(DomId remote, Port remote_port) override {
    errno = 0;
    const xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(h_.get(), remote.value, remote_port.value);
    if (p < 0)
      return evtchn_error("xenevtchn_bind_interdomain to domain " + std::to_string(remote.value) + " port " +
                          std::to_string(remote_port.value));
    return Port{static_cast<uint32_t>(p)};
  }
  Result<void> unbind(Port local) override {
    errno = 0;
    if (xenevtchn_unbind(h_.get(), local.value) < 0) return evtchn_error("xenevtchn_unbind " + std::to_string(local.value));
    return {};
  }
  Result<void> notify(Port local) override {
    errno = 0;
    if (xenevtchn_notify(h_.get(), local.value) < 0) return evtchn_error("xenevtchn_notify " + std::to_string(local.value));
    sent_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  int fd() const override { return xenevtchn_fd(h_.get()); }
  std::vector<Port> pending() override {
    std::vector<Port> out;
    // The fd is non-blocking (set at open): xenevtchn_pending fails with EAGAIN once nothing is left.
    for (;;) {
      const xenevtchn_port_or_error_t p = xenevtchn_pending(h_.get());
      if (p < 0) break;
      const Port port{static_cast<uint32_t>(p)};
      bool seen = false;
      for (Port q : out) seen = seen || q == port;
      if (!seen) out.push_back(port);
    }
    return out;
  }
  void unmask(Port local) override { (void)xenevtchn_unmask(h_.get(), local.value); }
  std::vector<Port> wait(int timeout_ms) override {
    auto p = pending();
    if (!p.empty()) return p;
    wait_readable(fd(), timeout_ms);
    return pending();
  }
  uint64_t notifications_sent() const override { return sent_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<xenevtchn_handle, EvtchnClose> h_;
  std::atomic<uint64_t> sent_{0};
};

}  // namespace

Result<std::unique_ptr<EventChannel>> open_xen_event_channel() {
  if (auto r = xen_device_present("evtchn"); !r) return r.error();
  errno = 0;
  xenevtchn_handle* h = xenevtchn_open(nullptr, 0);
  if (!h) return evtchn_error("xenevtchn_open");
  std::unique_ptr<XenEventChannel> ev = std::make_unique<XenEventChannel>(h);
  const int fl = ::fcntl(ev->fd(), F_GETFL);
  if (fl < 0 || ::fcntl(ev->fd(), F_SETFL, fl | O_NONBLOCK) < 0) return evtchn_error("evtchn fd O_NONBLOCK");
  return std::unique_ptr<EventChannel>(std::move(ev));
}

}  // namespace pvnet
