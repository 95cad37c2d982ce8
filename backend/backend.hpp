// pvnet's netback: serves many vifs from one poll loop, in the shape of Linux xen-netback (xenvif, its queue,
// xenvif_tx_build_gops / xenvif_rx_action) plus the header-slot extension of docs/protocol.md.
//
// Per poll: store watches (xenbus state machine per vif), control rings (static-grant registration), then the TX
// phase of every vif (requests copied to private memory, validated, headers copied out of kept slots or by one
// batched grant copy, packets handed to each vif's sink), then the RX phase of every vif (one batched grant copy
// into the guests' posted buffers), then one batched release of the payload pages touched, then each ring's
// responses published with one push (a shadow list, as DPDK's shadow used ring).
//
// It takes dom0's Platform and touches guest memory only through its GrantMapper (map, copy, lazy window).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/counters.hpp"
#include "backend/credit.hpp"
#include "backend/payload_policy.hpp"
#include "backend/sink.hpp"
#include "backend/toolstack.hpp"
#include "backend/tx_packet.hpp"
#include "grant-sim/platform/platform.hpp"
#include "shared-ring/negotiation/features.hpp"

namespace pvnet {

struct BackendOptions {
  PayloadPolicyKind payload_policy = PayloadPolicyKind::slots;
  uint32_t max_kept_pages_per_domain = 64;  // GET_GREF_MAPPING_SIZE answer: header-slot pages kept per frontend dom
  uint32_t tx_budget = 64;                  // packets taken off one vif's TX ring per poll (NAPI's weight)
  size_t lazy_window_pages = 1024;          // slots policy: payload pages exposable at once
  // Per-vif cap on TX packets taken off the ring and not yet answered (held in another guest's RX queue). The
  // TX ring bounds it at 256 already; a lower value bounds what one guest parks in dom0. At the cap the backend
  // stops consuming that ring until answers go out (back-pressure, tx_inflight_stalls).
  uint32_t max_inflight_per_vif = 256;
};

struct VifOptions {
  std::string mac = "00:16:3e:00:00:01";
  uint32_t mtu = 1500;          // largest non-GSO L3 payload forwarded; longer frames are dropped (over_mtu)
  bool offer_header_slots = true;  // feature-header-slots
  bool offer_ctrl_ring = true;     // feature-ctrl-ring
  // max-tx-ring-page-order (docs/protocol.md 9), offered only where dom0 can map pages contiguously (the
  // simulator; not the Xen mapper yet): 0 = one page, as every netback.
  uint32_t max_tx_ring_page_order = netif::kTxRingPageOrderMax;
  std::shared_ptr<Sink> sink;      // where this vif's TX packets go; a NullSink if empty
  size_t rx_queue_max = 256;       // frames held for this vif's RX before senders are held back
  // Bytes held for this vif's RX (XSA-392: a guest that never posts RX buffers must not make dom0 hold an
  // unbounded queue). Admission stops at this many bytes (one frame may overshoot it).
  size_t rx_queue_max_bytes = 4u << 20;
  // A guest that leaves frames queued without posting buffers for this long is stalled (Linux's
  // rx_drain_timeout): its queue is dropped (counted, senders answered) and frames to it are dropped at once
  // instead of holding back their senders, until it posts buffers again. 0: never.
  uint32_t rx_stall_timeout_ms = 2000;
  CreditLimits credit = {};  // TX credit scheduler (bytes and packets per second); unlimited by default
};

// Offloads a frontend accepts on its RX ring (Backend::rx_offloads): partial checksums (NETRXF_csum_blank) and
// TCP GSO super-frames.
// Backend::queue_rx's answer: queued, or why not (the sink that asked decides what that means for its packet).
enum class QueueRx : uint8_t {
  ok,
  stalled,        // the guest stopped consuming RX (rx_stall_timeout_ms): frames to it are refused at once
  full,           // its RX queue is at its bound (XSA-392)
  not_connected,  // no such vif, or not connected, or disabled
};

struct RxOffloads {
  bool csum_blank = false;
  bool gso_tcpv4 = false;
  bool gso_tcpv6 = false;
  bool operator==(const RxOffloads&) const = default;
};

struct TxBuilt;
struct TxChain;
struct TxChecked;

class Backend {
 public:
  // Fails only if the payload policy cannot be set up (e.g. no lazy window).
  static Result<std::unique_ptr<Backend>> create(Platform& dom0, BackendOptions options = {});
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // Toolstack + backend probe: creates the store directories of docs/protocol.md 1, writes the feature keys,
  // goes InitWait and watches the frontend. The vif connects when its frontend goes Connected (in poll()).
  Result<VifId> add_vif(DomId frontend, uint32_t handle, VifOptions options = {});
  // Serves a vif whose directories the toolstack wrote (libxl's `xl network-attach` or a `vif = [...]` line:
  // backend state Initialising, `frontend`, `frontend-id`, `handle`, `mac`, maybe `mtu`): reads them, writes the
  // feature keys, goes InitWait and watches the frontend, as netback's probe does. options.mac/mtu are replaced
  // by the directory's `mac` and `mtu` when present.
  Result<VifId> adopt_vif(const VifPaths& paths, VifOptions options = {});
  // Tears the vif down (as on frontend Closed). A vif of add_vif: removes both store directories; an adopted one:
  // leaves them to the toolstack, and says Closed only if its backend directory is still there.
  Result<void> remove_vif(VifId vif);
  // The toolstack took the device offline (libxl's detach: `online` 0, state Closing): release everything held
  // for the frontend and say Closed, which is what libxl waits for before it removes the directories. Not
  // waiting for the frontend: libxl gives the backend 10 s, and a frontend that never answers must not cost that.
  Result<void> offline_vif(VifId vif);
  Result<void> set_sink(VifId vif, std::shared_ptr<Sink> sink);

  // Non-blocking: one pass over store watches, control rings, TX and RX of every vif. Returns the work done
  // (watch events, control requests, TX requests and RX buffers consumed, responses published); 0 means nothing
  // to do and every ring re-armed its event index: wait on fds() before the next poll.
  size_t poll();
  // What to wait on between polls: the event-channel fd, the store's watch fd and a timer fd (armed when credit
  // or an RX stall deadline will need a poll that no event would cause).
  std::vector<int> fds() const;
  // poll() until it returns 0, at most max_rounds times. Returns the total work.
  size_t poll_until_idle(size_t max_rounds = 1000);

  // Frames from dom0 to a vif's guest (a local source, e.g. a future TAP sink): delivered by grant copy from
  // `frame.local` (and `frame.frags`). Refused if the vif is not connected; the queue bound is rx_has_room().
  QueueRx queue_rx(VifId vif, RxFrame frame);
  bool rx_has_room(VifId vif) const;
  bool rx_connected(VifId vif) const;  // connected and not disabled
  // What the vif's frontend takes on RX (its feature-no-csum-offload, feature-sg, feature-gso-tcpv4/-tcpv6);
  // nothing while it is not rx_connected.
  RxOffloads rx_offloads(VifId vif) const;
  bool rx_stalled(VifId vif) const;    // its guest left frames unconsumed past rx_stall_timeout_ms
  size_t rx_queue_bytes(VifId vif) const;

  BackendCounters counters(VifId vif) const;
  BackendCounters total() const;  // every vif (also those removed) plus the mapper's GrantCounters
  XenbusState state(VifId vif) const;
  bool connected(VifId vif) const;
  bool disabled(VifId vif) const;     // a protocol violation disabled its TX/RX (fatal_protocol_error)
  bool header_slots(VifId vif) const; // negotiated with its frontend
  uint32_t header_slot_size(VifId vif) const;
  size_t kept_mappings(VifId vif) const;  // header-slot pages currently mapped for it
  std::string name(VifId vif) const;      // "vif<F>.<N>", as Linux names the interface
  DomId frontend_domain(VifId vif) const;
  uint32_t handle(VifId vif) const;
  VifPaths paths(VifId vif) const;
  std::vector<VifId> vifs() const;
  PayloadPolicy& payload_policy() { return *payload_; }
  Platform& platform() { return dom0_; }

  struct Vif;  // backend/vif.hpp

 private:
  struct TxScratch;  // backend/vif.hpp: tx_action's per-poll buffers, reused so a poll allocates nothing
  Backend(Platform& dom0, BackendOptions options, std::unique_ptr<PayloadPolicy> payload);

  Vif* find(VifId id) const;
  Result<VifId> probe(std::unique_ptr<Vif> vif);
  netif::BackendFeatures offered_features(const Vif& vif) const;
  uint32_t tx_ring_page_order_offered(const Vif& vif) const;
  size_t process_watches();
  void frontend_changed(Vif& vif);
  Result<void> connect(Vif& vif);
  void start_connection(Vif& vif, const netif::FrontendKeys& keys);
  void disconnect(Vif& vif, const char* why);
  // The frontend broke the protocol on one of its rings: the vif is disabled until it reconnects (its RX queue
  // dropped), logged once with the interface's name, as xenvif_fatal_tx_err.
  enum class ProtocolRing : uint8_t { tx, rx, ctrl };
  void fatal_protocol_error(Vif& vif, ProtocolRing ring, const std::string& why);
  size_t ctrl_action(Vif& vif);
  size_t housekeeping();
  // TX (tx_path.cpp): tx_build per vif (tx_take_packet -> build_tx_packet -> take_tx_header), run_tx_batch, then
  // finish_tx_packet (check_tx_packet) per packet.
  enum class TxStop : uint8_t { taken, drained, sink_busy, inflight_full, credit, violation };
  size_t tx_action();
  size_t tx_build(Vif& vif, TxScratch& scratch);
  TxStop tx_take_packet(Vif& vif, uint32_t prod, std::chrono::steady_clock::time_point now, TxScratch& scratch,
                        size_t& work);
  void build_tx_packet(Vif& vif, const TxChain& chain, const TxChecked& checked, TxScratch& scratch);
  void take_tx_header(Vif& vif, TxBuilt& b, const TxChain& chain, const TxChecked& checked,
                      std::vector<CopyOp>& copies);
  void run_tx_batch(TxScratch& scratch);
  std::optional<DropReason> check_tx_packet(TxBuilt& b, TxBatch& batch);
  void finish_tx_packet(TxBuilt& b, TxBatch& batch);
  // RX (rx_path.cpp): rx_build per vif (rx_drop_reason, claim_rx_buffers, plan_rx_copies), one copy, complete_rx.
  struct RxWork;
  size_t rx_action();
  size_t rx_build(Vif& vif, std::deque<RxWork>& works, std::vector<CopyOp>& ops);
  void complete_rx(std::deque<RxWork>& works, const std::vector<CopyOp>& ops);
  size_t publish_tx_responses();
  // Answers a TX packet; false if its ring is gone (nothing answered, nothing counted).
  // A status other than OKAY with a reason is counted in `dropped` as that reason.
  bool complete_tx(const TxCompletion& c, int16_t status, std::optional<DropReason> reason = std::nullopt);
  bool complete_tx(Vif& vif, const TxCompletion& c, int16_t status, std::optional<DropReason> reason = std::nullopt);
  void drop_rx_queue(Vif& vif, DropReason reason);
  void drop_rx_frame(Vif& dest, const RxFrame& f, int16_t status, DropReason reason);
  void handle_recall(Vif& vif);  // backend/recall.cpp: docs/protocol.md "Recall"
  void check_rx_stalls();
  void arm_timer();
  uint32_t kept_pages_of(DomId dom) const;

  Platform& dom0_;
  BackendOptions options_;
  std::unique_ptr<PayloadPolicy> payload_;
  std::shared_ptr<Sink> default_sink_;
  std::map<VifId, std::unique_ptr<Vif>> vifs_;
  uint32_t next_vif_ = 1;
  BackendCounters removed_;  // counters of vifs already removed, kept in the total
  int timer_fd_ = -1;        // timerfd: credit refills and RX stall deadlines
  std::unique_ptr<TxScratch> tx_scratch_;
  static constexpr uint32_t kHousekeepingEvery = 64;
  uint32_t polls_since_housekeeping_ = 0;
  bool last_poll_idle_ = true;
  bool check_stalls_ = false;  // housekeeping ran: check RX stalls and re-arm the timer at the end of the poll
};

}  // namespace pvnet
