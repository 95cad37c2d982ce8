// pvnet frontend: a guest as its own process (tools/daemons/frontend_daemon.hpp): the options, then the guest.
#include <boost/program_options.hpp>
#include <string>

#include "tools/command.hpp"
#include "tools/daemons/frontend_daemon.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

int cmd_frontend(int argc, char** argv) {
  FrontendOptions o;
  FrontendArgs a;
  uint32_t domid = 0;
  po::options_description desc(
      "usage: pvnet frontend [--hypervisor sim|xen] --socket PATH --domid N [--mem-mb 64] [--tx TRACE [--repeat K] [--wait-go]]\n"
      "                      [--rx OUT.pcap | --receive] [--no-header-slots] [--slot-size 128] [--mtu 9000]\n"
      "                      [--tap NAME [--tap-addr 198.18.0.1/24] [--tap-mtu 1500]] [--json FILE]\n"
      "       pvnet frontend --vhost-user SOCKET [--vhost-user-client] --socket PATH --domid N [--capture F.pcap]\n\n"
      "A guest as a process: creates domain N on a `pvnet backend`'s socket, waits for its vif, connects netfront\n"
      "and says \"connected slots=on|off tx-ring=N\" (N: the TX ring's entries, 256 a page). --tx: sends the\n"
      "trace (after a \"go\" line on stdin with --wait-go), says \"done\" (then waits for \"close\" with\n"
      "--wait-go). --rx: writes every received frame to OUT until SIGTERM/SIGINT. Exits 0, or 1 with the reason on\n"
      "stderr.\n\noptions");
  desc.add_options()("help,h", "this help")
      ("hypervisor", po::value(&a.hypervisor)->default_value("sim"),
       "sim: a domain on a `pvnet backend`'s socket; xen: this real Xen domU (gntalloc/gntdev/evtchn/xenstore, "
       "docs/xen.md)")
      ("backend-domid", ranged(&o.backend_domid, 0, limits::kMaxGuestDomId)->default_value(0),
       "--hypervisor xen: the backend's domain")
      ("socket,s", po::value(&o.socket), "the backend's hypervisor socket (--hypervisor sim)")
      ("domid", ranged(&domid, 1, limits::kMaxGuestDomId),
       "this guest's domain id; --hypervisor xen: default xenstore's")
      ("mem-mb", ranged(&o.mem_mb, 1, kMaxMemMb)->default_value(64), "guest memory in MiB")
      ("tx", po::value(&o.tx), "trace to transmit (pcap or pcapng of Ethernet frames)")
      ("repeat", ranged(&o.repeat, 1, UINT32_MAX)->default_value(1), "--tx: send the trace this many times")
      ("wait-go", po::bool_switch(&o.wait_go), "--tx: wait for \"go\" on stdin first, \"close\" after \"done\"")
      ("rx", po::value(&o.rx), "write every received frame to this pcap (until SIGTERM/SIGINT)")
      ("receive", po::bool_switch(&o.receive), "receive (and count) frames without writing them")
      ("no-header-slots", po::bool_switch(&a.no_header_slots), "speak plain netif")
      ("slot-size", slot_size_value(&o.slot_size)->default_value(128), "header-slot size in bytes, a power of 2")
      ("mtu", ranged(&o.mtu, limits::kMinMtu, limits::kMaxMtu)->default_value(9000),
       "--tx: longer TCP frames are sent as GSO")
      ("data-offset", ranged(&o.data_offset, 0, limits::kMaxDataOffset)->default_value(0),
       "--tx: offset of each frame in its first page")
      ("progress", po::bool_switch(&o.progress), "--tx: show the progress line")
      ("reconnect-timeout", ranged(&o.reconnect_timeout_s, 0, limits::kMaxTimeoutS)->default_value(10),
       "seconds to wait for a backend that died or restarted to come back (frames in flight are counted lost, "
       "tx_lost_backend_gone; says \"reconnected lost=N\"); 0: close with the backend instead")
      ("tap", po::value(&o.tap.ifname), "be network interface NAME (a TAP in this namespace) until SIGTERM/SIGINT: "
                                        "what the kernel sends goes out through netfront, what arrives goes in")
      ("tap-addr", po::value(&o.tap.addr), "--tap: IPv4 address/prefix of the interface")
      ("tap-mtu", ranged(&o.tap.mtu, limits::kMinMtu, kMaxTapMtu)->default_value(1500), "--tap: the interface's MTU")
      ("json,j", po::value(&o.json), "write the counters here on exit")
      ("vhost-user", po::value<std::string>(), "be the virtio-net device of a QEMU guest on this vhost-user socket "
                                               "(we listen; QEMU -chardev socket,path=SOCKET): the guest's RAM "
                                               "becomes domain N (docs/vhost-user.md)")
      ("vhost-user-client", po::bool_switch(&a.vhost_user_client), "--vhost-user: connect to QEMU's socket (chardev server=on)")
      ("vhost-user-once", po::bool_switch(&a.vhost_user_once), "--vhost-user: exit when QEMU disconnects")
      ("capture", po::value<std::string>(), "--vhost-user: write every frame the guest sends and receives here");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "frontend")) return *status;
  if (vm.count("domid")) a.domid = domid;
  a.mem_mb_defaulted = vm["mem-mb"].defaulted();
  if (vm.count("vhost-user")) a.vhost_user = vm["vhost-user"].as<std::string>();
  if (vm.count("capture")) a.capture = vm["capture"].as<std::string>();
  return run_frontend(std::move(o), a);
}

}  // namespace

PVNET_COMMAND(frontend, "frontend", "a guest as a process: netfront on a backend's socket, transmits or receives",
              cmd_frontend);

}  // namespace pvnet::tools
