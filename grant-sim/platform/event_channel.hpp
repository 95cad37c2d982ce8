// Interdomain event channels, shaped like libxenevtchn: one pollable fd for all of a domain's ports;
// pending() drains which ports fired; a port stays masked after it fires until unmask(), as Xen's do.
#pragma once
#include <vector>
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

class EventChannel {
 public:
  virtual ~EventChannel() = default;
  // EVTCHNOP_alloc_unbound: a port that `remote` may bind to.
  virtual Result<Port> alloc_unbound(DomId remote) = 0;
  // EVTCHNOP_bind_interdomain: connect to `remote`'s unbound port; returns our local port.
  virtual Result<Port> bind_interdomain(DomId remote, Port remote_port) = 0;
  virtual Result<void> unbind(Port local) = 0;
  // EVTCHNOP_send: raise the event on the other end of `local`. Counted (notifications sent).
  virtual Result<void> notify(Port local) = 0;
  // Readable when any of this domain's ports is pending.
  virtual int fd() const = 0;
  // The ports that fired since the last call (each at most once). Non-blocking.
  virtual std::vector<Port> pending() = 0;
  virtual void unmask(Port local) = 0;
  // Block until a port fires or timeout_ms passes (-1: forever). Returns pending().
  virtual std::vector<Port> wait(int timeout_ms) = 0;
  virtual uint64_t notifications_sent() const = 0;
};

}  // namespace pvnet
