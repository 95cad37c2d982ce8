// pvnet hypervisor: the simulated hypervisor (grant tables, event channels, store) served on a Unix socket, so
// that backend and frontend processes (and QEMU-facing daemons) can share it. Runs until SIGINT/SIGTERM.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <string>

#include "grant-sim/sim/sim_grant_table.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "tools/command.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace {

constexpr uint64_t kMaxDom0Mem = 1ull << 36;    // --dom0-mem: 64 GiB

int run_hypervisor(int argc, char** argv) {
  std::string socket;
  uint64_t dom0_mem = 1u << 20;
  uint32_t dom0_grants = 256;
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
      ("socket,s", po::value<std::string>(&socket)->required(), "Unix socket to serve on (SOCK_SEQPACKET)")
      ("dom0-mem", pvnet::tools::ranged(&dom0_mem, pvnet::kPageSize, kMaxDom0Mem)->default_value(dom0_mem),
       "bytes of dom0 memory")
      ("dom0-grants", pvnet::tools::ranged(&dom0_grants, pvnet::sim::kNrReservedEntries + 1, pvnet::kMaxGrantEntries)
                          ->default_value(dom0_grants),
       "dom0 grant entries");
  po::variables_map vm;
  if (auto status = pvnet::tools::parse_options(argc, argv, opts, vm, "hypervisor")) return *status;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  pvnet::UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sfd) {
    std::perror("pvnet hypervisor: signalfd");
    return 1;
  }
  auto hv = pvnet::SimHypervisor::create(pvnet::SimHypervisor::Options{dom0_mem, dom0_grants});
  if (!hv) {
    std::cerr << "pvnet hypervisor: " << hv.error().reason << "\n";
    return 1;
  }
  auto server = pvnet::SimServer::listen(socket, **hv);
  if (!server) {
    std::cerr << "pvnet hypervisor: " << server.error().reason << "\n";
    return 1;
  }
  pvnet::SimServer& srv = **server;
  srv.on_client_gone([&srv](const pvnet::SimServer::ClientGone& g) {
    std::printf("client-gone id=%llu dom=%u owned=%d pins_released=%llu locks_recovered=%u rolled_back=%u "
                "flags_mismatch=%u states_closed=%u dom_pins_left=%llu\n",
                static_cast<unsigned long long>(g.client), g.dom.value, g.owned_domain ? 1 : 0,
                static_cast<unsigned long long>(g.pins_released), g.locks_recovered, g.entries_rolled_back,
                g.flags_mismatch, g.states_closed,
                static_cast<unsigned long long>(srv.pins_held_by(g.dom)));
    std::fflush(stdout);
  });
  std::printf("ready %s\n", socket.c_str());
  std::fflush(stdout);
  std::cerr << "pvnet hypervisor: serving guests on " << socket << ", the toolstack on " << srv.privileged_path()
            << "\n";
  for (;;) {
    pollfd p[2] = {{(*server)->fd(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) {
      std::perror("pvnet hypervisor: poll");
      return 1;
    }
    if (p[1].revents) break;
    (*server)->handle();
  }
  std::cerr << "pvnet hypervisor: stopping (" << (*server)->nr_clients() << " clients connected, "
            << (*server)->refused_requests() << " requests refused, " << (*hv)->store_tree()->dropped_events()
            << " watch events dropped)\n";
  return 0;
}

}  // namespace

PVNET_COMMAND(hypervisor, "hypervisor", "serve the simulated hypervisor (grants, event channels, store) on a socket",
              run_hypervisor);
