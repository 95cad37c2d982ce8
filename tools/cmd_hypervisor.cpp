// pvnet hypervisor: the simulated hypervisor served on a Unix socket (tools/daemons/hypervisor_daemon.hpp).
#include <boost/program_options.hpp>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"
#include "tools/command.hpp"
#include "tools/daemons/hypervisor_daemon.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace {

int run_hypervisor(int argc, char** argv) {
  pvnet::tools::HypervisorDaemonOptions o;
  po::options_description opts(
      "usage: pvnet hypervisor --socket PATH [--dom0-mem BYTES] [--dom0-grants N]\n\n"
      "Serves the simulated hypervisor to other pvnet processes until SIGINT or SIGTERM. A client that created\n"
      "its domain takes it with it when it exits (store subtree, event channels). A client that attached (a dom0\n"
      "backend: pvnet backend --hypervisor-socket PATH) leaves dom0 alive: the pins it held on guests' grants are\n"
      "released and the backend state nodes it wrote are set Closed. On stdout, per client that goes:\n"
      "  client-gone id=N dom=D owned=0|1 pins_released=P locks_recovered=L rolled_back=B flags_mismatch=M\n"
      "              states_closed=S dom_pins_left=R\n"
      "(locks_recovered: grant entries whose lock it died holding; rolled_back: of those, entries it was changing,\n"
      "put back as before that operation; flags_mismatch: entries still pinned by others whose in-use flags the\n"
      "guest had cleared itself; dom_pins_left: pins domain D still holds on any grant, through its other clients).\n"
      "Guests (pvnet frontend --socket PATH) connect on PATH and may only create their own domain; the toolstack\n"
      "and driver domains (pvnet backend --hypervisor-socket PATH) attach on PATH.priv (mode 0600, same uid or\n"
      "root only). docs/security.md, \"The simulator's trust model\".\n\noptions");
  opts.add_options()
      ("help,h", "show this help")
      ("socket,s", po::value<std::string>(&o.socket)->required(), "Unix socket to serve on (SOCK_SEQPACKET)")
      ("dom0-mem", pvnet::tools::ranged(&o.dom0_mem, pvnet::kPageSize, pvnet::tools::kMaxDom0Mem)->default_value(o.dom0_mem),
       "bytes of dom0 memory")
      ("dom0-grants", pvnet::tools::ranged(&o.dom0_grants, pvnet::sim::kNrReservedEntries + 1, pvnet::kMaxGrantEntries)
                          ->default_value(o.dom0_grants),
       "dom0 grant entries");
  po::variables_map vm;
  if (auto status = pvnet::tools::parse_options(argc, argv, opts, vm, "hypervisor")) return *status;

  return pvnet::tools::run_hypervisor_daemon(o);
}

}  // namespace

PVNET_COMMAND(hypervisor, "hypervisor", "serve the simulated hypervisor (grants, event channels, store) on a socket",
              run_hypervisor);
