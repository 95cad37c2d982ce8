// The simulated hypervisor served to other processes over a Unix socket (SOCK_SEQPACKET; protocol in
// sim_wire.hpp). Each connection is one Platform of one domain: at hello it attaches to an existing domain
// (dom0, say), or creates or adopts one, which it then owns. Control operations (store, event-channel binding,
// looking up another domain's memory) are requests; the data paths are not: notify is a write to the peer's
// eventfd and grant map/copy run in the client on the domains' memfds.
//
// When a connection closes (or its process dies) the server drops its watches and closes its event-channel
// ports (peers' notify then fails with ENOTCONN) and releases every pin the client held on other domains' grants
// (recorded in a per-connection pin ledger the client's pin_grant/unpin_grant keep, so the guests can end access
// again). If the connection created or adopted its domain, the domain is destroyed (store subtree
// /local/domain/<id> removed, @releaseDomain fired); if it attached (a dom0 backend process), the domain stays and
// the backend state nodes it wrote (/local/domain/<id>/backend/.../state) are switched to Closed, so frontends
// see their backend gone and can wait for a new one (docs/protocol.md, "Backend restart"). A malformed request gets an error
// reply and the connection stays up; a connection the server cannot reply to is dropped.
//
// Who a client is (docs/security.md, "The simulator's trust model"), as Xen's IS_PRIV: the socket it came in on.
// - The guest socket (socket_path()): hello creates or adopts a domain that does not exist yet; the connection
//   then is that domain and acts for it alone (store as that domain, its own ports). It receives its RAM and its
//   grant table, never the active table, and reaches no other domain's memory (get_domain of another: EPERM).
//   Adopted RAM must be memfds sealed against shrinking; the grant and active tables are always the server's.
// - The privileged socket (privileged_path(): mode 0600, and only peers with our uid or root): the toolstack and
//   driver domains. hello may also attach to an existing domain (dom0), get_domain reaches any domain (with the
//   active table and a pin ledger), as dom0's netback maps and copies guests' grants.
//
// Drive it either from its own thread (run_in_thread) or from the owner's event loop: poll fd() for POLLIN and
// call handle(), which never blocks. Not both at once.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_wire.hpp"

namespace pvnet {

class SimServer {
 public:
  // Listens on socket_path (guests) and privileged_socket_path(socket_path) (the toolstack, driver domains). A
  // stale socket file is replaced; one a live server answers on is EADDRINUSE.
  static Result<std::unique_ptr<SimServer>> listen(const std::string& socket_path, SimHypervisor& hv);
  ~SimServer();  // stops the thread, drops every connection (with the cleanup above), unlinks the sockets
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  int fd() const { return epoll_.get(); }  // readable when handle() has work
  void handle();                           // accept, serve every waiting request, clean up closed connections
  Result<void> run_in_thread();
  void stop();  // joins the thread started by run_in_thread (no-op otherwise)

  // What the server released for a client that went away (closed its socket or died): the pins it held on
  // other domains' grants (maps, lazy-window faults, copies in progress), from its pin ledger, and the backend
  // state nodes it had written, switched to Closed (a driver domain's device that died).
  struct ClientGone {
    uint64_t client = 0;
    DomId dom;
    bool owned_domain = false;     // its domain was destroyed with it
    uint64_t pins_released = 0;    // read + write pins dropped on its behalf
    uint32_t locks_recovered = 0;      // active-entry locks it died holding (taken over by the hypervisor)
    uint32_t entries_rolled_back = 0;  // ... in the middle of changing the entry: rolled back from its journal
    uint32_t flags_mismatch = 0;       // entries left pinned by others whose in-use flags the guest had cleared
    uint32_t states_closed = 0;    // backend state nodes set to Closed (6)
  };
  void on_client_gone(std::function<void(const ClientGone&)> f) { on_gone_ = std::move(f); }
  uint64_t pins_released() const { return pins_released_.load(); }
  // Pins that domain `grantee` holds now on any domain's grants (every process's, from the active tables).
  uint64_t pins_held_by(DomId grantee);

  size_t nr_clients() const { return nr_clients_.load(); }
  uint64_t bad_requests() const { return bad_requests_.load(); }
  uint64_t refused_requests() const { return refused_.load(); }  // EPERM: a guest asked for what only dom0 may
  const std::string& socket_path() const { return path_; }
  const std::string& privileged_path() const { return priv_path_; }

 private:
  struct Conn;
  SimServer(std::string path, SimHypervisor& hv, UniqueFd listen_fd, UniqueFd priv_listen_fd, UniqueFd epoll,
            UniqueFd stop_fd);
  void accept_all(int listen_fd, bool privileged);
  void serve(uint64_t id);
  void drop(uint64_t id);
  WireWriter dispatch(Conn& c, WireReader& r);
  WireWriter hello(Conn& c, WireReader& r);

  WireWriter get_domain(Conn& c, DomId dom);

  std::string path_;
  std::string priv_path_;
  SimHypervisor& hv_;
  UniqueFd listen_;
  UniqueFd priv_listen_;
  UniqueFd epoll_;
  UniqueFd stop_;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
  std::atomic<size_t> nr_clients_{0};
  std::atomic<uint64_t> bad_requests_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> pins_released_{0};
  std::function<void(const ClientGone&)> on_gone_;
  std::shared_ptr<SimDomainView> held_view_;  // keeps a get_domain reply's fds open until it is sent
  std::thread thread_;
};

}  // namespace pvnet
