#include "tools/daemons/hypervisor_daemon.hpp"

#include <signal.h>

#include <cstdio>
#include <iostream>

#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/process/event_loop.hpp"

namespace pvnet::tools {

int run_hypervisor_daemon(const HypervisorDaemonOptions& o) {
  auto loop = EventLoop::create({SIGINT, SIGTERM});
  if (!loop) {
    std::cerr << "pvnet hypervisor: " << loop.error().reason << "\n";
    return 1;
  }
  EventLoop& ev = **loop;
  auto hv = SimHypervisor::create(SimHypervisor::Options{o.dom0_mem, o.dom0_grants});
  if (!hv) {
    std::cerr << "pvnet hypervisor: " << hv.error().reason << "\n";
    return 1;
  }
  auto server = SimServer::listen(o.socket, **hv);
  if (!server) {
    std::cerr << "pvnet hypervisor: " << server.error().reason << "\n";
    return 1;
  }
  SimServer& srv = **server;
  srv.on_client_gone([&srv](const SimServer::ClientGone& g) {
    std::printf("client-gone id=%llu dom=%u owned=%d pins_released=%llu locks_recovered=%u rolled_back=%u "
                "flags_mismatch=%u states_closed=%u dom_pins_left=%llu\n",
                static_cast<unsigned long long>(g.client), g.dom.value, g.owned_domain ? 1 : 0,
                static_cast<unsigned long long>(g.pins_released), g.locks_recovered, g.entries_rolled_back,
                g.flags_mismatch, g.states_closed,
                static_cast<unsigned long long>(srv.pins_held_by(g.dom)));
    std::fflush(stdout);
  });
  say(ready_line(o.socket));
  std::cerr << "pvnet hypervisor: serving guests on " << o.socket << ", the toolstack on " << srv.privileged_path()
            << "\n";
  for (;;) {
    ev.clear();
    const size_t server_at = ev.add(srv.fd());
    if (auto w = ev.wait(-1); !w) {
      std::cerr << "pvnet hypervisor: " << w.error().reason << "\n";
      return 1;
    }
    if (!ev.take_signals().empty()) break;
    if (ev.ready(server_at)) srv.handle();
  }
  std::cerr << "pvnet hypervisor: stopping (" << srv.nr_clients() << " clients connected, "
            << srv.refused_requests() << " requests refused, " << (*hv)->store_tree()->dropped_events()
            << " watch events dropped)\n";
  return 0;
}

}  // namespace pvnet::tools
