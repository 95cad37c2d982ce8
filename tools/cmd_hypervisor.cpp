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

#include "grant-sim/sim_hypervisor.hpp"
#include "grant-sim/sim_server.hpp"
#include "tools/command.hpp"

namespace po = boost::program_options;

namespace {

int run_hypervisor(int argc, char** argv) {
  std::string socket;
  uint64_t dom0_mem = 1u << 20;
  uint32_t dom0_grants = 256;
  po::options_description opts("pvnet hypervisor options");
  opts.add_options()
      ("help,h", "show this help")
      ("socket,s", po::value<std::string>(&socket)->required(), "Unix socket to serve on (SOCK_SEQPACKET)")
      ("dom0-mem", po::value<uint64_t>(&dom0_mem)->default_value(dom0_mem), "bytes of dom0 memory")
      ("dom0-grants", po::value<uint32_t>(&dom0_grants)->default_value(dom0_grants), "dom0 grant entries");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: pvnet hypervisor --socket PATH\n\n"
                   "Serves the simulated hypervisor to other pvnet processes until SIGINT or SIGTERM.\n"
                   "A client that exits takes its domain with it (store subtree, event channels).\n\n"
                << opts;
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pvnet hypervisor: " << e.what() << "\n" << opts;
    return 2;
  }

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
  std::cerr << "pvnet hypervisor: serving on " << socket << "\n";
  for (;;) {
    pollfd p[2] = {{(*server)->fd(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) {
      std::perror("pvnet hypervisor: poll");
      return 1;
    }
    if (p[1].revents) break;
    (*server)->handle();
  }
  std::cerr << "pvnet hypervisor: stopping (" << (*server)->nr_clients() << " clients connected)\n";
  return 0;
}

}  // namespace

PVNET_COMMAND(hypervisor, "hypervisor", "serve the simulated hypervisor (grants, event channels, store) on a socket",
              run_hypervisor);
