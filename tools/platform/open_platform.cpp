#include "tools/platform/open_platform.hpp"

#include <fcntl.h>

#include <cerrno>
#include <thread>

#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_wire.hpp"

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryEvery = std::chrono::milliseconds(20);

UniqueFd dup_fd(const UniqueFd& f) { return f ? UniqueFd{::fcntl(f.get(), F_DUPFD_CLOEXEC, 0)} : UniqueFd{}; }

// SimClient::connect consumes an adopt's fds even when it fails after connecting: each attempt gets duplicates.
SimClientOptions copy_of(const SimClientOptions& o) {
  SimClientOptions c;
  c.mode = o.mode;
  c.mem_bytes = o.mem_bytes;
  c.nr_grant_entries = o.nr_grant_entries;
  if (o.shm) {
    DomainShm s;
    s.dom = o.shm->dom;
    s.nr_grant_entries = o.shm->nr_grant_entries;
    for (const auto& r : o.shm->regions) s.regions.push_back(MemRegion{dup_fd(r.fd), r.first, r.nr_pages, r.fd_offset});
    s.grant_table = dup_fd(o.shm->grant_table);
    s.active = dup_fd(o.shm->active);
    c.shm = std::move(s);
  }
  return c;
}

Result<std::unique_ptr<Platform>> open_socket(const PlatformSpec& spec) {
  if (spec.socket.empty()) return make_error(EINVAL, "no simulator socket given");
  const std::string path = spec.privileged ? privileged_socket_path(spec.socket) : spec.socket;
  const auto deadline = Clock::now() + spec.retry;
  for (;;) {
    auto p = SimClient::connect(path, spec.dom, copy_of(spec.client));
    if (p || !no_server_yet(p.error().code) || Clock::now() > deadline) return p;
    std::this_thread::sleep_for(kRetryEvery);
  }
}

}  // namespace

bool no_server_yet(int code) { return code == ENOENT || code == ECONNREFUSED; }

PlatformSpec PlatformSpec::in_process(SimHypervisor& hv, DomId dom) {
  PlatformSpec s;
  s.kind = Kind::in_process;
  s.hypervisor = &hv;
  s.dom = dom;
  return s;
}

PlatformSpec PlatformSpec::sim_socket(std::string path, DomId dom, SimClientOptions client,
                                      std::chrono::milliseconds retry) {
  PlatformSpec s;
  s.kind = Kind::sim_socket;
  s.socket = std::move(path);
  s.dom = dom;
  s.client = std::move(client);
  s.retry = retry;
  return s;
}

PlatformSpec PlatformSpec::sim_socket_privileged(std::string path, DomId dom) {
  PlatformSpec s = sim_socket(std::move(path), dom, SimClientOptions::attach());
  s.privileged = true;
  return s;
}

PlatformSpec PlatformSpec::xen(XenPlatformOptions o) {
  PlatformSpec s;
  s.kind = Kind::xen;
  s.xen_options = o;
  return s;
}

Result<std::unique_ptr<Platform>> open_platform(const PlatformSpec& spec) {
  switch (spec.kind) {
    case PlatformSpec::Kind::in_process:
      if (!spec.hypervisor) return make_error(EINVAL, "no in-process hypervisor given");
      return spec.hypervisor->attach(spec.dom);
    case PlatformSpec::Kind::sim_socket:
      return open_socket(spec);
    case PlatformSpec::Kind::xen: {
      auto p = XenPlatform::open(spec.xen_options);
      if (!p) return p.error();
      return std::unique_ptr<Platform>(std::move(p).value());
    }
  }
  return make_error(EINVAL, "unknown platform kind");
}

}  // namespace pvnet::tools
