// pvnet frontend --vhost-user SOCKET: the guest's side of the split driver for a QEMU guest whose NIC is
// virtio-net over vhost-user (frontend/vhost_net_bridge.hpp), as a daemon.
#pragma once
#include <cstdint>
#include <string>

namespace pvnet::tools {

struct VhostFrontendOptions {
  std::string vhost_socket;     // where QEMU's chardev points
  bool vhost_client = false;    // connect to QEMU's socket (chardev server=on) instead of listening
  std::string hv_socket;        // pvnet backend's hypervisor socket
  uint16_t domid = 0;
  bool header_slots = true;
  uint32_t slot_size = 128;
  std::string capture;          // pcap of every frame the guest sends and receives
  std::string json;             // counters on exit
  bool once = false;            // exit when the vhost-user front-end disconnects (instead of waiting for another)
};

// Runs until SIGINT/SIGTERM (or, with once, the front-end's disconnect). Returns the exit code.
int run_vhost_frontend(const VhostFrontendOptions& options);

}  // namespace pvnet::tools
