// `pvnet frontend --tap`: the guest's netfront as a network interface of the process's own network namespace.
// Frames the kernel sends into the TAP go out through netfront TX (placed in the guest's pages, as a stack's
// skb would be); frames netfront receives are written to the TAP. So ping, TCP and everything else of the
// namespace's stack run over the vif (docs/xen.md, "running pvnet on a real Xen host"; the same on the simulator).
//
// The TAP is opened like the backend's TAP sink (open_vnet_tap: virtio_net_hdr). While netfront is connected the
// kernel may hand us partial checksums and, if the backend offers feature-sg and feature-gso-tcpv4/-tcpv6, TCP
// super-frames of up to 64 KiB (TUNSETOFFLOAD, the features Linux netfront gives its device): they go out as
// NETTXF_csum_blank and a GSO extra, so the stack's TSO costs one netif packet, not one per MSS. A received
// frame's partial checksum or GSO goes to the kernel as a virtio_net_hdr (virtio_net_hdr_for), as Linux netfront hands
// such an skb to its stack.
//
// Bounded: at most max_pending frames wait for ring room or pages; while that queue is full the TAP is not read
// and the kernel's own TAP queue (txqueuelen) holds or drops. Every frame this class drops is counted by reason.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json_fwd.hpp>

#include "backend/tap_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/counter_list.hpp"
#include "shared-ring/result.hpp"
#include "tools/replay/source.hpp"

namespace pvnet::tools {

struct TapFrontendOptions {
  std::string ifname;     // created if missing (needs CAP_NET_ADMIN)
  std::string addr;       // IPv4 CIDR given to the TAP (e.g. 198.18.0.1/24); empty: leave it unconfigured
  uint32_t mtu = 1500;
  uint32_t max_pending = 256;  // frames read from the TAP and not yet on the ring
};

// The fields, one list (shared-ring/counter_list.hpp); `dropped` is by reason, as the backend's.
#define PVNET_TAP_FRONTEND_COUNTERS(X)                                                                \
  X(from_tap_frames)      /* read from the TAP */                                                     \
  X(from_tap_bytes)                                                                                   \
  X(from_tap_gso_frames)  /* of those, TCP super-frames (sent with a GSO extra) */                    \
  X(from_tap_csum_blank)  /* of those, with a partial checksum (NETTXF_csum_blank) */                 \
  X(offload_changes)      /* TUNSETOFFLOAD calls (connect, reconnect, backend gone) */                \
  X(offload_errors)       /* of those, refused: the kernel keeps its setting, and so do we */         \
  X(tx_queued)            /* handed to netfront */                                                    \
  X(tx_completed)                                                                                     \
  X(tx_completed_ok)                                                                                  \
  X(to_tap_frames)        /* received from netfront and written to the TAP */                         \
  X(to_tap_bytes)                                                                                     \
  X(pending_max)          /* high-water mark of the pending queue */

struct TapFrontendCounters {
  PVNET_TAP_FRONTEND_COUNTERS(PVNET_COUNTER_FIELD)
  std::map<std::string, uint64_t> dropped;  // by reason
};
void to_json(nlohmann::json& j, const TapFrontendCounters& c);

class TapFrontend {
 public:
  // Opens the TAP, configures it (address, MTU, up) and installs netfront's TX-completion and RX handlers.
  static Result<std::unique_ptr<TapFrontend>> open(Netfront& front, GuestPagePool& pool,
                                                    const TapFrontendOptions& options);
  TapFrontend(Netfront& front, GuestPagePool& pool, UniqueFd fd, TapFrontendOptions options);
  ~TapFrontend();  // netfront's handlers are reset: they point here
  TapFrontend(const TapFrontend&) = delete;
  TapFrontend& operator=(const TapFrontend&) = delete;

  int fd() const { return fd_.get(); }
  // Poll the fd for POLLIN only while this is true (the pending queue has room).
  bool wants_read() const { return pending_.size() < opt_.max_pending; }
  // Moves pending frames onto the ring, then reads the TAP while there is room. Returns frames moved or read.
  size_t pump();
  uint64_t in_flight() const { return source_.in_flight().size(); }
  const TapOffloads& offloads() const { return offloads_; }  // asked of the kernel now
  const TapFrontendCounters& counters() const { return c_; }

 private:
  struct Pending {
    std::vector<std::byte> frame;
    NetifOffload offload;
  };
  void on_rx(ReceivedFrame&& f);
  // Offloads follow the connected backend's features; none while netfront is not connected.
  void update_offloads();
  // Places and transmits the front pending frame. False: no room now (ring, ids, grants or pages).
  bool transmit_front();

  Netfront& front_;
  GuestPagePool& pool_;
  UniqueFd fd_;
  TapFrontendOptions opt_;
  std::deque<Pending> pending_;
  TapOffloads offloads_;
  std::vector<std::byte> buf_;  // one read from the TAP
  TapFrontendCounters c_;
  Source source_;  // the frames in flight: their pages stay granted until the TxDone
};

}  // namespace pvnet::tools
