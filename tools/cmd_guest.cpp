// pvnet guest: real Linux guests under QEMU (TCG) whose NIC is pvnet's netfront.
//   pvnet guest build                 the guest kernel + initramfs, built once into the cache (tools/guest/)
//   pvnet guest run --socket HV --domid N [--scenario STEPS] ...
//                                     QEMU with its RAM in a shared memfd and a vhost-user virtio-net NIC served by
//                                     `pvnet frontend --vhost-user` (domain N of the backend on HV); the serial
//                                     console goes to a file, its "PVNET ..." result lines to stdout
//   pvnet guest demo                  pvnet backend + two guests that ping each other through it
// Every step has a time limit; exit status 0 only if the guest printed "PVNET done ok".
#include <boost/program_options.hpp>
#include <iostream>
#include <string>

#include "tools/command.hpp"
#include "tools/lab/guest_env.hpp"
#include "tools/lab/guest_run.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

void add_run_options(po::options_description& d, GuestRunOptions& o) {
  d.add_options()("socket,s", po::value(&o.socket), "the backend's hypervisor socket (pvnet backend --socket)")
      ("domid", ranged(&o.domid, 1u, limits::kMaxGuestDomId)->default_value(1), "the guest's domain id")
      ("ip", po::value(&o.ip), "eth0 IPv4 address (default 198.18.0.DOMID/24)")
      ("ip6", po::value(&o.ip6), "eth0 IPv6 address (default fd00::DOMID/64)")
      ("scenario", po::value(&o.scenario)->default_value(o.scenario),
       "steps: wait:IP ping:IP send:IP:PORT recv:PORT iperf-server iperf:IP sleep:S, comma-separated")
      ("mb", ranged(&o.mb, 1, 65536)->default_value(20), "MiB the send step generates")
      ("timeout", ranged(&o.timeout_s, 1, limits::kMaxTimeoutS)->default_value(180), "seconds for the whole run")
      ("mem-mb", ranged(&o.mem_mb, 64, 16384)->default_value(256), "guest RAM (MiB)")
      ("serial", po::value(&o.serial), "serial console log (default WORKDIR/serial-domN.log)")
      ("workdir", po::value(&o.workdir), "sockets and logs (default a new /tmp/pvnet-guest-XXXXXX)")
      ("cache", po::value(&o.cache), "guest cache (default $PVNET_GUEST_CACHE or BUILD/guest-cache)")
      ("netdev", po::value(&o.netdev), "use this QEMU -netdev instead of pvnet (e.g. socket,listen=:5555)")
      ("capture", po::value(&o.capture), "pvnet frontend --capture FILE: the guest's traffic as pcap")
      ("libvirt", po::bool_switch(&o.libvirt), "start the guest through libvirtd instead of QEMU directly");
}

int cmd_guest_run(int argc, char** argv) {
  GuestRunOptions o;
  po::options_description desc("usage: pvnet guest run --socket HV --domid N [--scenario STEPS] [options]\n\noptions");
  desc.add_options()("help,h", "this help");
  add_run_options(desc, o);
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "guest run")) return *status;
  return run_guest(std::move(o));
}

int cmd_guest_build(int argc, char** argv) {
  std::string cache;
  po::options_description desc("usage: pvnet guest build [--cache DIR]\n\noptions");
  desc.add_options()("help,h", "this help")("cache", po::value(&cache), "default $PVNET_GUEST_CACHE or BUILD/guest-cache");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "guest build")) return *status;
  if (cache.empty()) cache = guest_cache_dir();
  if (auto r = build_guest(cache, true); !r) {
    std::cerr << "pvnet guest build: " << r.error().reason << "\n";
    return 1;
  }
  return 0;
}

// The backend and two guests pinging each other through it: what the README's two commands show.
int cmd_guest_demo(int argc, char** argv) {
  unsigned timeout_s = 180;
  std::string policy = "slots";
  po::options_description desc("usage: pvnet guest demo [--timeout S] [--policy P]\n\noptions");
  desc.add_options()("help,h", "this help")
      ("timeout", ranged(&timeout_s, 1, limits::kMaxTimeoutS)->default_value(180), "seconds")
      ("policy", po::value(&policy)->default_value("slots"), "the backend's payload policy");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "guest demo")) return *status;
  return run_guest_demo(timeout_s, policy);
}

int cmd_guest(int argc, char** argv) {
  const std::string usage =
      "usage: pvnet guest build|run|demo [options]   (pvnet guest SUBCOMMAND --help)\n"
      "  build  the guest kernel + initramfs from Debian packages, once, into the cache\n"
      "  run    one guest under QEMU (TCG) whose NIC is pvnet's netfront (vhost-user)\n"
      "  demo   pvnet backend + two guests pinging each other through it\n";
  if (argc < 2) {
    std::cerr << usage;
    return 2;
  }
  const std::string sub = argv[1];
  if (sub == "build") return cmd_guest_build(argc - 1, argv + 1);
  if (sub == "run") return cmd_guest_run(argc - 1, argv + 1);
  if (sub == "demo") return cmd_guest_demo(argc - 1, argv + 1);
  if (sub == "-h" || sub == "--help") {
    std::cout << usage;
    return 0;
  }
  std::cerr << usage;
  return 2;
}

}  // namespace

PVNET_COMMAND(guest, "guest", "real Linux guests under QEMU with pvnet's NIC: build, run, demo", cmd_guest);

}  // namespace pvnet::tools
