// The guest's side of the split driver for a real Linux guest under QEMU whose NIC is virtio-net over vhost-user.
//
// The guest's RAM (SET_MEM_TABLE memfds) becomes the simulated domain's memory: each region is adopted at its
// guest-physical frame, plus one pvnet-made region above the guest's RAM for the driver's own pages (netif rings,
// header-slot pages, gref table, RX pages): only that region is handed to netfront as its GuestPagePool.
//
// TX: each virtio TX chain (virtio-net header + frame, possibly scattered) becomes one netfront transmit whose
// pieces are the guest's own pages: netfront copies the headers into a header slot and grants the pages holding
// the payload; nothing of the payload is copied here, except a frame whose partial checksum netif cannot say (not
// at the TCP/UDP header), which is finished in a private copy (shared-ring/offload.hpp; tx_payload_copy_bytes). The chain goes back to the guest (used ring) only when
// netfront reports the frame complete (TxDone): until then the backend may still read those pages.
// RX, with RX extents (docs/protocol.md 7) and mergeable buffers: the guest's RX buffers themselves are granted
// writable and posted on the netif RX ring (each chain's first page piece, the virtio-net header's 12 bytes as the
// extents' headroom), so the backend's grant copy lands in them; the bridge writes only the virtio-net header
// (num_buffers, GSO, checksum state). Without the extension (or without MRG_RXBUF) netfront receives into its own
// pages and the frame is copied into the guest's buffers, counted in rx_bounce_bytes.
//
// Single-threaded, non-blocking: the owner calls poll() when any of fds() is readable, and at least every
// poll_interval_ms() (netfront timeouts, the device directory appearing).
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>
#include <nlohmann/json_fwd.hpp>

#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "frontend/vhost_user.hpp"
#include "frontend/virtqueue.hpp"
#include "grant-sim/platform/guest_memory.hpp"
#include "grant-sim/platform/platform.hpp"
#include "shared-ring/counter_list.hpp"
#include "shared-ring/offload.hpp"

namespace pvnet {

// What the bridge did (the CLI's "vhost" JSON object).
#define PVNET_VHOST_NET_COUNTERS(X)                                                                            \
  X(messages)               /* vhost-user messages handled */                                                 \
  X(unsupported)            /* messages answered "unsupported" or ignored */                                  \
  X(tx_frames)              /* guest frames handed to netfront */                                             \
  X(tx_bytes)                                                                                                 \
  X(tx_completed)           /* chains returned to the guest after TxDone */                                   \
  X(tx_dropped)             /* frames netfront refused (invalid), the backend did not deliver, or whose      \
                               virtio-net header netif cannot carry (shared-ring/offload.hpp) */               \
  X(tx_bad_chains)          /* chains dropped by the virtqueue (loop, outside RAM, ...) or malformed here */  \
  X(tx_busy)                /* transmit() said busy: the chain waits for room */                              \
  X(tx_payload_copy_bytes)  /* bytes of guest TX frames copied by this bridge: only a frame whose partial     \
                               checksum netif cannot say, finished in a private copy (offload.hpp) */          \
  X(tx_header_copy_bytes)   /* virtio-net header bytes read out of the chain */                               \
  X(rx_frames)              /* frames written into guest buffers */                                           \
  X(rx_bytes)                                                                                                 \
  X(rx_bounce_bytes)        /* frame bytes copied into guest buffers on the guest side */                     \
  X(rx_direct_bytes)        /* frame bytes the backend's grant copy put straight into guest buffers */        \
  X(rx_header_bytes)        /* virtio-net header bytes the bridge wrote into guest buffers (direct path) */   \
  X(rx_buffers_posted)      /* guest RX buffers posted on the netif RX ring (direct path) */                  \
  X(rx_short_chains)        /* chains whose first page piece cannot hold the header: returned unused */       \
  X(rx_dropped_no_buffers)  /* backlog full, or the RX queue not running */                                   \
  X(rx_dropped_too_big)     /* frame does not fit the guest's buffers (no MRG_RXBUF, small buffers) */        \
  X(rx_bad_chains)                                                                                            \
  X(guest_disconnects)      /* a broken ring or protocol error made us drop the guest */

struct VhostNetCounters {
  PVNET_VHOST_NET_COUNTERS(PVNET_COUNTER_FIELD)
};
void to_json(nlohmann::json& j, const VhostNetCounters& c);

enum class FrameDir : uint8_t { kFromGuest, kToGuest };

struct VhostNetConfig {
  DomId domid{1};
  std::string device_dir;            // default: /local/domain/<domid>/device/vif/0
  uint64_t driver_pages = 2048;      // the extra region netfront's pool draws from (8 MiB)
  NetfrontConfig netfront;
  uint64_t features = kDefaultFeatures;
  // Makes domain `domid` of the guest's RAM and the driver region (borrowed fds: the hypervisor dups what it
  // keeps), e.g. SimClient::connect(.., SimClientOptions::adopt_ram(..)) or SimHypervisor::adopt_ram.
  std::function<Result<std::unique_ptr<Platform>>(std::span<const GuestRamRegion>)> make_platform;
  // Optional tap on every frame (the CLI's --capture).
  std::function<void(FrameDir, std::span<const std::byte>)> on_frame;
  size_t rx_backlog = 256;           // frames received while the guest has no RX buffers
  bool rx_direct = true;             // ask for RX extents and post the guest's own RX buffers (MRG_RXBUF)

  static constexpr uint64_t kDefaultFeatures =
      vhost::feat::kVersion1 | vhost::feat::kProtocolFeatures | vhost::feat::kRingIndirectDesc |
      vhost::feat::kRingEventIdx | vhost::feat::kNetMrgRxbuf | vhost::feat::kNetCsum | vhost::feat::kNetGuestCsum |
      vhost::feat::kNetHostTso4 | vhost::feat::kNetHostTso6 | vhost::feat::kNetGuestTso4 |
      vhost::feat::kNetGuestTso6;
};

class VhostNetBridge {
 public:
  explicit VhostNetBridge(VhostNetConfig config);
  ~VhostNetBridge();
  VhostNetBridge(const VhostNetBridge&) = delete;
  VhostNetBridge& operator=(const VhostNetBridge&) = delete;

  // A vhost-user front-end connected (accepted, or our connect to its server socket). Replaces any previous one.
  void attach(UniqueFd conn);
  bool poll();  // one non-blocking pass; true if anything happened
  std::vector<int> fds() const;
  static constexpr int poll_interval_ms() { return 20; }

  bool guest_connected() const { return chan_.has_value(); }   // a vhost-user front-end is attached
  bool netfront_connected() const { return front_ && front_->connected(); }
  bool running() const;  // both queues started and enabled, netfront connected
  const std::string& error() const { return error_; }  // why the guest was dropped (last time)
  const VhostNetCounters& counters() const { return counters_; }
  const vhost::VirtqCounters& rx_queue_counters() const { return vq_[0].counters(); }
  const vhost::VirtqCounters& tx_queue_counters() const { return vq_[1].counters(); }
  uint64_t acked_features() const { return acked_; }
  const Netfront* netfront() const { return front_.get(); }
  Platform* platform() { return platform_.get(); }
  Pfn driver_region_first() const { return driver_first_; }
  void close();  // netfront teardown; poll() until netfront()->state() is kClosed

 private:
  struct QueueSetup {
    uint32_t num = 0;
    vhost::VringAddr addr{};
    bool have_addr = false;
    uint16_t base = 0;
    bool enabled = false;
    bool kick_set = false;
  };
  struct PendingTx {
    vhost::Chain chain;
    bool valid = false;
  };

  enum class RxFill : uint8_t { kFilled, kStarved, kTooBig };

  bool handle_messages();
  Result<void> handle(vhost::Message& m, bool* replied);
  Result<void> handle_vring_state(vhost::Message& m);
  Result<void> handle_get_vring_base(vhost::Message& m, bool* replied);
  Result<void> handle_vring_fd(vhost::Message& m);
  Result<void> set_mem_table(vhost::Message& m);
  Result<void> make_domain();
  void try_start(uint32_t q);
  bool queue_ready(uint32_t q) const;
  void drop_guest(std::string why);
  bool ensure_netfront();
  bool process_tx();
  bool tx_one(vhost::Chain& c);
  bool tx_split_chain(const vhost::Chain& c, VirtioNetHdr* h, uint64_t* len);
  std::vector<std::byte> tx_gather(std::span<const TxPiece> pieces, size_t max) const;
  void on_tx_done(const TxDone& d);
  bool deliver_rx();
  RxFill fill_rx_chains(uint64_t need, bool mrg, bool* pushed);
  void scatter_rx(VirtioNetHdr h, std::span<const std::byte> data);
  bool post_rx_direct();
  void on_rx_buffers(ReceivedBuffers&& f);
  void revoke_rx_direct();
  uint32_t hdr_len() const;

  VhostNetConfig cfg_;
  VhostNetCounters counters_;
  std::string error_;
  std::optional<vhost::Channel> chan_;
  uint64_t acked_ = 0;
  uint64_t proto_acked_ = 0;
  std::optional<vhost::GuestMemoryTable> mem_;
  std::array<QueueSetup, 2> setup_{};
  std::array<vhost::SplitVirtqueue, 2> vq_;  // 0 = receiveq1, 1 = transmitq1
  uint32_t tx_generation_ = 0;               // bumped when the TX queue stops: late TxDones are ignored

  std::unique_ptr<Platform> platform_;
  Pfn driver_first_{0};
  std::unique_ptr<MemoryPagePool> pool_;
  std::unique_ptr<Netfront> front_;
  std::chrono::steady_clock::time_point next_dir_check_{};

  PendingTx tx_stalled_;                  // popped, transmit() said busy
  // Frames finished in a private copy (a checksum netif cannot say), by cookie, until their TxDone.
  std::unordered_map<uint64_t, PlacedFrame> tx_copies_;
  std::vector<TxPiece> pieces_;           // scratch
  std::deque<ReceivedFrame> rx_backlog_;
  std::vector<vhost::Chain> rx_chains_;   // scratch (mergeable buffers of one frame)
  std::optional<vhost::Chain> rx_held_;   // a popped RX chain not used yet
  // Direct RX: chains posted to netfront by cookie, and chains to post again (a frame dropped after landing).
  std::unordered_map<uint64_t, vhost::Chain> rx_posted_;
  std::deque<vhost::Chain> rx_repost_;
  uint64_t rx_next_cookie_ = 1;
};

}  // namespace pvnet
