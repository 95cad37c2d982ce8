// pvnet backend: dom0 as its own process (tools/daemons/backend_daemon.hpp): the options, then the daemon.
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "tools/command.hpp"
#include "tools/daemons/backend_daemon.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

int cmd_backend(int argc, char** argv) {
  DaemonOptions o;
  BackendDaemonArgs a;
  std::string frontends;
  po::options_description desc(
      "usage: pvnet backend [--hypervisor sim|xen] --socket PATH|--hypervisor-socket PATH [--policy P] [--sink vif|pcap|null] [--out FILE] [--forward A:B ...]\n"
      "                     [--frontends 1,2,...] [--mtu N] [--json FILE] [--tap-netns NS --tap-for DOMID]\n"
      "                     [--toolstack pvnet|libxl]\n\n"
      "dom0 as a process: serves the simulated hypervisor on PATH, gives every guest domain that appears a vif\n"
      "(the toolstack's job) and runs netback. Says \"ready PATH\" on stdout once listening. SIGUSR1/SIGUSR2:\n"
      "counters snapshot at traffic start/end; SIGTERM/SIGINT: tear every vif down, write --json, exit.\n"
      "On Xen with --toolstack libxl it serves the vifs `xl network-attach` (or a vif = [...] line) creates.\n\noptions");
  desc.add_options()("help,h", "this help")
      ("hypervisor", po::value(&a.hypervisor)->default_value("sim"),
       "sim: serve the simulated hypervisor on --socket; xen: be dom0's netback on a real Xen host (docs/xen.md)")
      ("socket,s", po::value(&o.socket), "Unix socket to serve the hypervisor on (--hypervisor sim)")
      ("hypervisor-socket", po::value(&o.attach),
       "instead of --socket: attach as dom0 to the `pvnet hypervisor --socket PATH` serving on this path (through\n"
       "its privileged socket PATH.priv, mode 0600); the\n"
       "backend may then die and be started again while the guests keep running (their frontends reconnect)")
      ("policy,p", po::value(&a.policy)->default_value("slots"), "payload policy: slots|copy|map|hdrcopy")
      ("sink", po::value(&o.sink)->default_value("vif"), "where TX frames go: vif (see --forward), pcap, null")
      ("out,o", po::value(&o.out), "--sink pcap: the capture dom0 writes every vif's frames to")
      ("forward", po::value(&a.forward)->composing(), "A:B: frames of domain A's vif go to domain B's vif")
      ("frontends", po::value(&frontends), "comma-separated domains to give a vif (default: every domain)")
      ("toolstack", po::value(&a.toolstack)->default_value("pvnet"),
       "pvnet: write a vif's directories for every domain (and remove them); libxl: write none, serve the "
       "directories libxl writes (xl network-attach, or vif = ['backend=0,script=vif-pvnet,...']), go Closed when "
       "libxl takes one offline (docs/xen.md)")
      ("mtu", ranged(&o.mtu, limits::kMinMtu, limits::kMaxMtu)->default_value(9000), "vif MTU")
      ("max-kept-pages", ranged(&o.limits.max_kept_pages_per_domain, 0, kMaxKeptPages)->default_value(64),
       "limit: header-slot pages kept mapped per guest domain")
      ("max-inflight", ranged(&o.limits.max_inflight_per_vif, 1, kMaxInflight)->default_value(256),
       "limit: TX packets of one vif held in dom0 unanswered (back-pressure beyond)")
      ("rx-queue-bytes",
       ranged(&o.vif_limits.rx_queue_max_bytes, kMinRxQueueBytes, kMaxRxQueueBytes)->default_value(4u << 20),
       "limit: bytes queued for one guest's RX (XSA-392)")
      ("rx-stall-ms", ranged(&o.vif_limits.rx_stall_timeout_ms, 0, limits::kMaxTimeoutS * 1000)->default_value(2000),
       "a guest posting no RX buffers this long has its queue dropped (0: never)")
      ("credit-bytes", ranged(&o.vif_limits.credit.bytes_per_sec, 0, UINT64_MAX)->default_value(0),
       "credit scheduler: TX bytes per second per vif (0: unlimited)")
      ("credit-packets", ranged(&o.vif_limits.credit.ops_per_sec, 0, UINT64_MAX)->default_value(0),
       "credit scheduler: TX packets per second per vif (0: unlimited)")
      ("json,j", po::value(&o.json), "write the counters here on exit")
      ("tap-netns", po::value(&o.tap_netns), "TAP sink: make the TAP in this network namespace (ip netns add)")
      ("tap-for", ranged(&o.tap_for, 1, limits::kMaxGuestDomId), "TAP sink: the domain whose vif is bridged to the TAP")
      ("tap-name", po::value(&o.tap_name), "TAP sink: interface name (default pvtapDOMID)")
      ("tap-addr", po::value(&o.tap_addrs)->composing(),
       "TAP sink: an address for the namespace's side (198.18.0.0/15, fd00::/8); default 198.18.0.254/24, fd00::fe/64");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "backend")) return *status;
  if (vm.count("frontends")) a.frontends = frontends;
  if (auto r = resolve_backend_options(a, o); !r) {
    std::cerr << "pvnet backend: " << r.error().reason << "\n";
    return 2;
  }
  return run_backend_daemon(std::move(o));
}

}  // namespace

PVNET_COMMAND(backend, "backend", "dom0 as a process: hypervisor socket, toolstack and netback in one poll loop",
              cmd_backend);

}  // namespace pvnet::tools
