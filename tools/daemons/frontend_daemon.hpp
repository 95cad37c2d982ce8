// pvnet frontend: a guest as its own process. Creates its domain on a `pvnet backend`'s hypervisor socket, waits
// for the toolstack to write its device directory, runs netfront, and then either transmits a trace (--tx, through
// the same TraceSender as the in-process replay) or writes what it receives (--rx). Control lines on stdout
// (tools/process/control_lines.hpp): "connected slots=on|off tx-ring=N", "done" ("stopped" when SIGTERM/SIGINT
// ends --tx early: it sends no more, waits briefly for the frames in flight, writes --json and closes the vif); on
// stdin (with --wait-go): "go", "close". --tap: the vif becomes a network interface of this namespace
// (tap_frontend.hpp) until SIGTERM/SIGINT; says "tap NAME up". --vhost-user: the NIC of a QEMU guest
// (vhost_frontend.hpp).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "tools/daemons/tap_frontend.hpp"

namespace pvnet::tools {

inline constexpr uint64_t kMaxMemMb = 65536;  // --mem-mb: 16 Mi pages (the Xen pool's page count is 32 bits)
inline constexpr uint32_t kMaxTapMtu = 0xFFFF - 14;  // a frame of netif's largest size, its Ethernet header included

struct FrontendOptions {
  std::string socket;
  uint16_t domid = 0;
  uint64_t mem_mb = 64;
  std::string tx;
  uint32_t repeat = 1;
  bool wait_go = false;
  std::string rx;
  bool receive = false;
  bool header_slots = true;
  uint32_t slot_size = 128;
  uint32_t mtu = 9000;
  uint32_t data_offset = 0;
  uint32_t reconnect_timeout_s = 10;  // 0: no reconnect (the vif closes with its backend)
  bool progress = false;
  std::string json;
  bool xen = false;            // --hypervisor xen: a real domU (docs/xen.md)
  uint16_t backend_domid = 0;  // --hypervisor xen: who the gntalloc pool is shared with
  TapFrontendOptions tap;      // --tap: ifname set
};

// What the command line gave, before it is checked.
struct FrontendArgs {
  std::string hypervisor = "sim";
  std::optional<uint32_t> domid;  // --hypervisor xen: default xenstore's
  bool mem_mb_defaulted = true;
  bool no_header_slots = false;
  std::optional<std::string> vhost_user, capture;
  bool vhost_user_client = false, vhost_user_once = false;
};

// Checks the options (the message on stderr and status 2 for a bad one), then runs the guest: the vhost-user
// NIC (run_vhost_frontend) or the frontend daemon. The exit status.
int run_frontend(FrontendOptions o, const FrontendArgs& args);

// The frontend daemon itself, on checked options.
int run_frontend_daemon(FrontendOptions o);

}  // namespace pvnet::tools
