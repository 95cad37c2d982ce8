// Simulated interdomain event channels. A channel is two ends; each end is an eventfd that only the OTHER end's
// notify() writes, so the data path is one write() with no hypervisor round trip, in one process or across
// processes (the eventfds travel over the SimServer's socket). The hypervisor's bookkeeping (which port is bound
// to which, Xen's struct evtchn) lives in an EvtchnTable; a domain's view of it (libxenevtchn's handle) is a
// SimEventChannel, which talks to the table through an EvtchnControl (directly in one process, or as a
// SimClient's requests to the server).
//
// How notify() learns that the peer went away without asking the hypervisor: every channel has a status word in a
// memfd that all processes map (EvtchnStatusMap): (generation << 1) | connected. The table bumps the generation
// whenever the channel is bound or an end closes, so a cached peer eventfd is only used while the word still says
// "connected, same generation". Unlike Xen (which silently drops a send on a port whose remote closed), notify()
// on such a port FAILS with ENOTCONN: a driver learns that its peer is gone at its next kick.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include "grant-sim/platform/event_channel.hpp"
#include "grant-sim/platform/unique_fd.hpp"

namespace pvnet {

inline constexpr uint32_t kMaxEvtchnChannels = 4096;  // channels alive at once, across all domains

// Written by the hypervisor only: create() maps it writable and then seals the memfd (F_SEAL_FUTURE_WRITE, no
// shrink or grow), so no other mapping of it can ever be writable, not even one of a fd reopened through
// /proc/<pid>/fd; clients get readonly_fd() (an O_RDONLY reopen) and map it with open_readonly() (PROT_READ).
class EvtchnStatusMap {
 public:
  static Result<EvtchnStatusMap> create();
  static Result<EvtchnStatusMap> open_readonly(UniqueFd fd);  // takes ownership of a fd from readonly_fd()
  EvtchnStatusMap(EvtchnStatusMap&& o) noexcept;
  EvtchnStatusMap& operator=(EvtchnStatusMap&& o) noexcept;
  ~EvtchnStatusMap();
  int readonly_fd() const { return ro_fd_.get(); }  // for clients: O_RDONLY, sealed
  uint32_t load(uint32_t slot) const;
  void store(uint32_t slot, uint32_t word);  // the creator's map only; a no-op on a read-only one
  static uint32_t word(uint32_t gen, bool connected) { return (gen << 1) | (connected ? 1u : 0u); }

 private:
  EvtchnStatusMap(UniqueFd ro_fd, uint32_t* words, bool writable)
      : ro_fd_(std::move(ro_fd)), words_(words), writable_(writable) {}
  UniqueFd ro_fd_;
  uint32_t* words_ = nullptr;
  bool writable_ = false;
};

// What a domain's handle learns when it allocates or binds a port.
struct EvtchnBinding {
  Port port;
  UniqueFd eventfd;  // this end's: readable when the peer notifies
  uint32_t slot = 0;
  uint32_t gen = 0;
};

// The other end, as notify() needs it.
struct EvtchnPeer {
  uint32_t slot = 0;
  uint32_t gen = 0;
  bool connected = false;
  UniqueFd peer_eventfd;  // set only when connected
};

// The control path of one handle (the hypercalls). Closing the handle (destroying the control) closes its ports.
class EvtchnControl {
 public:
  virtual ~EvtchnControl() = default;
  virtual DomId self() const = 0;
  virtual const EvtchnStatusMap& status() const = 0;
  virtual Result<EvtchnBinding> alloc_unbound(DomId remote) = 0;
  virtual Result<EvtchnBinding> bind_interdomain(DomId remote, Port remote_port) = 0;
  virtual Result<void> unbind(Port local) = 0;
  virtual Result<EvtchnPeer> peer(Port local) = 0;
};

// The hypervisor's table of every end of every channel. Thread-safe.
class EvtchnTable {
 public:
  using Handle = uint64_t;
  static Result<std::unique_ptr<EvtchnTable>> create();

  const EvtchnStatusMap& status() const { return status_; }
  Handle open_handle();
  // Closes every port opened through `h`; their peers' ports become unbound (Xen's __evtchn_close).
  void close_handle(Handle h);
  // Closes every port of `dom` (the domain was destroyed).
  void close_domain(DomId dom);

  Result<EvtchnBinding> alloc_unbound(Handle h, DomId self, DomId remote);
  Result<EvtchnBinding> bind_interdomain(Handle h, DomId self, DomId remote, Port remote_port);
  Result<void> unbind(Handle h, DomId self, Port local);
  Result<EvtchnPeer> peer(Handle h, DomId self, Port local);
  size_t nr_ports(DomId dom) const;

 private:
  explicit EvtchnTable(EvtchnStatusMap status);
  enum class State { unbound, interdomain };
  struct End {
    Handle owner = 0;
    State state = State::unbound;
    DomId remote;      // unbound: who may bind; interdomain: the peer domain
    Port remote_port;  // interdomain only
    UniqueFd eventfd;
    uint32_t slot = 0;
  };
  using Key = std::pair<uint16_t, uint32_t>;  // (domain, port)
  static Key key(DomId d, Port p) { return {d.value, p.value}; }
  Result<uint32_t> alloc_slot();
  uint32_t bump(uint32_t slot, bool connected);  // new generation; returns it
  void close_locked(Key k);
  Result<EvtchnBinding> binding_of(const Key& k, Port port);

  mutable std::mutex mu_;
  EvtchnStatusMap status_;
  std::map<Key, End> ends_;
  std::map<uint16_t, uint32_t> next_port_;
  std::vector<uint32_t> free_slots_;
  Handle next_handle_ = 1;
};

// A handle on `table` for domain `self`, used in the hypervisor's own process. `table` must outlive it.
std::unique_ptr<EvtchnControl> make_local_evtchn_control(std::shared_ptr<EvtchnTable> table, DomId self);

// libxenevtchn's handle: one epoll fd over this handle's per-port eventfds. Every port is armed one-shot, so a
// port that fired stays masked until unmask(), as Xen's do; events raised meanwhile are delivered on unmask.
class SimEventChannel final : public EventChannel {
 public:
  static Result<std::unique_ptr<SimEventChannel>> create(std::unique_ptr<EvtchnControl> control);
  ~SimEventChannel() override;

  Result<Port> alloc_unbound(DomId remote) override;
  Result<Port> bind_interdomain(DomId remote, Port remote_port) override;
  Result<void> unbind(Port local) override;
  Result<void> notify(Port local) override;
  int fd() const override { return epoll_.get(); }
  std::vector<Port> pending() override;
  void unmask(Port local) override;
  std::vector<Port> wait(int timeout_ms) override;
  uint64_t notifications_sent() const override;

 private:
  SimEventChannel(std::unique_ptr<EvtchnControl> control, UniqueFd epoll);
  struct LocalPort {
    UniqueFd eventfd;
    UniqueFd peer_eventfd;
    uint32_t slot = 0;
    uint32_t gen = 0;
  };
  Result<Port> add(EvtchnBinding b);

  mutable std::mutex mu_;
  std::unique_ptr<EvtchnControl> control_;
  UniqueFd epoll_;
  std::map<uint32_t, LocalPort> ports_;
  uint64_t sent_ = 0;
};

}  // namespace pvnet
