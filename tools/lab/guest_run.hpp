// The labs' real Linux guests: QEMU (TCG) with its RAM in a shared memfd and a vhost-user virtio-net NIC served by
// `pvnet frontend --vhost-user` (domain N of the backend on its hypervisor socket), or the same guest started
// through libvirtd. The serial console goes to a file, its "PVNET ..." result lines to stdout. Every step has a
// time limit; a run succeeds only if the guest printed "PVNET done ok".
#pragma once
#include <string>

namespace pvnet::tools {

struct GuestRunOptions {
  std::string socket;      // the backend's hypervisor socket
  unsigned domid = 1;
  std::string ip;          // default 198.18.0.<domid>/24
  std::string ip6;         // default fd00::<domid>/64
  std::string scenario = "ping:198.18.0.254";
  unsigned mb = 20;
  unsigned timeout_s = 180;
  unsigned mem_mb = 256;
  std::string serial;      // default WORKDIR/serial.log
  std::string workdir;     // default a fresh /tmp/pvnet-guest-XXXXXX
  std::string cache;
  std::string netdev;      // instead of pvnet: a raw QEMU -netdev spec (socket, user...), to test the image alone
  std::string capture;     // passed to the frontend: --capture FILE
  bool libvirt = false;
};

// One guest (`pvnet guest run`): the exit status, 0 only if the guest printed "PVNET done ok".
int run_guest(GuestRunOptions o);

// `pvnet guest demo`: a pvnet backend and two guests that ping each other through it.
int run_guest_demo(unsigned timeout_s, const std::string& policy);

}  // namespace pvnet::tools
