// The one way the command's libraries get a Platform (a domain's view of the hypervisor), whichever hypervisor
// it is: a simulator in this process, a simulator another process serves on a socket (pvnet backend, pvnet
// hypervisor), or real Xen. Before this, every daemon and harness built its own, each with its own retry loop.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "grant-sim/platform/platform.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {
class SimHypervisor;
}

namespace pvnet::tools {

struct PlatformSpec {
  enum class Kind { in_process, sim_socket, xen };
  Kind kind = Kind::in_process;

  // in_process: attach to a domain of this simulator (not owned; it must outlive the platform).
  SimHypervisor* hypervisor = nullptr;
  DomId dom = kDom0;  // in_process and sim_socket: the domain to be

  // sim_socket: the server's guest socket PATH; `privileged` connects on PATH.priv instead (dom0 and driver
  // domains attach there, mode 0600). `client` says attach, create or adopt the domain.
  std::string socket;
  bool privileged = false;
  SimClientOptions client = SimClientOptions::attach();
  // How long a socket nobody listens on yet (ENOENT, ECONNREFUSED: the server may still be starting) is tried
  // again; zero: once. The error after that is the last attempt's, with its code.
  std::chrono::milliseconds retry{0};

  // xen: this domain on a real Xen host (gntalloc/gntdev/evtchn/xenstore).
  XenPlatformOptions xen_options;

  static PlatformSpec in_process(SimHypervisor& hv, DomId dom);
  static PlatformSpec sim_socket(std::string path, DomId dom, SimClientOptions client,
                                 std::chrono::milliseconds retry = std::chrono::milliseconds(0));
  // dom0 (or a driver domain) attaching on the privileged socket of the server on `path`.
  static PlatformSpec sim_socket_privileged(std::string path, DomId dom);
  static PlatformSpec xen(XenPlatformOptions o);
};

// EINVAL for a spec that names no hypervisor (in_process without one, sim_socket without a path); otherwise what
// the hypervisor said (ESRCH: no such domain to attach to, EEXIST: the domain to create is there, ENOENT or
// ECONNREFUSED: no server on the socket within `retry`, ENODEV and the like: not on Xen).
Result<std::unique_ptr<Platform>> open_platform(const PlatformSpec& spec);

// Whether a connect error means "nobody is listening there (yet)": the errors `retry` waits out.
bool no_server_yet(int code);

}  // namespace pvnet::tools
