// A Platform in another process than the simulated hypervisor: SimClient::connect talks to a SimServer's socket.
// Store operations and event-channel binding are requests to the server; watch events are queued by the server
// and signalled on an eventfd (the store's watch_fd()), then fetched. notify() writes the peer's eventfd directly.
// Grant map/copy are local: the first time the mapper names another domain, the client fetches that domain's
// memfds from the server, maps them (SimDomainView::open) and keeps them.
//
// The Platform's store, event channel and mapper share one connection; each call takes a lock for its request,
// so they may be used from different threads. Destroying the Platform closes the connection: if it created or
// adopted its domain, the server destroys the domain.
#pragma once
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/platform/guest_memory.hpp"
#include "grant-sim/platform/platform.hpp"

namespace pvnet {

struct SimClientOptions {
  enum class Mode { attach, create, adopt };
  Mode mode = Mode::attach;
  uint64_t mem_bytes = 0;          // create
  uint32_t nr_grant_entries = 0;   // create
  std::optional<DomainShm> shm;    // adopt
  std::vector<GuestRamRegion> ram;  // adopt_ram: borrowed fds, duplicated by each connect

  static SimClientOptions attach() { return {}; }
  static SimClientOptions create(uint64_t mem_bytes, uint32_t nr_grant_entries) {
    SimClientOptions o;
    o.mode = Mode::create;
    o.mem_bytes = mem_bytes;
    o.nr_grant_entries = nr_grant_entries;
    return o;
  }
  static SimClientOptions adopt(DomainShm shm) {
    SimClientOptions o;
    o.mode = Mode::adopt;
    o.shm = std::move(shm);
    return o;
  }
  // Adopt RAM the caller keeps (a vhost-user guest's memfds): connect sends duplicates, so the same options can
  // be tried again after a failed connect (the hypervisor still starting).
  static SimClientOptions adopt_ram(std::span<const GuestRamRegion> ram, uint32_t nr_grant_entries) {
    SimClientOptions o;
    o.mode = Mode::adopt;
    o.ram.assign(ram.begin(), ram.end());
    o.nr_grant_entries = nr_grant_entries;
    return o;
  }
};

class SimClient {
 public:
  // socket_path: a server's guest socket (create, adopt: the client is then that domain alone) or its privileged
  // one, privileged_socket_path(PATH) (attach, e.g. as dom0; and every other domain's memory for the mapper).
  // Adopt sends the shm's RAM regions only (memfds sealed with F_SEAL_SHRINK); the server makes the tables.
  // Errors: the socket's (ENOENT/ECONNREFUSED: no server), ESRCH (attach to a domain that does not exist),
  // EEXIST (create one that does), EPERM (attach on the guest socket, unsealed RAM), or whatever the server reports.
  static Result<std::unique_ptr<Platform>> connect(const std::string& socket_path, DomId self,
                                                   SimClientOptions options);
  // Seconds a request waits for its reply before failing with ETIMEDOUT.
  static constexpr int kReplyTimeoutSeconds = 10;
};

}  // namespace pvnet
