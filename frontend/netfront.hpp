// netfront for one vif: xenbus negotiation (docs/protocol.md section 2), header-slot registration over the control
// ring (section 5), TX through header slots + payload grants or as plain netif, RX buffers, completion.
//
// Single-threaded and non-blocking: the owner calls poll() whenever event_fd() or store_fd() is readable (or
// whenever it likes; poll() always looks at the rings, so a stolen or lost event costs latency, never a packet).
// Takes a Platform& and a GuestPagePool&; never names the simulator.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "frontend/netfront_counters.hpp"
#include "frontend/page_pool.hpp"
#include "frontend/tx_plan.hpp"
#include "grant-sim/platform/platform.hpp"
#include "shared-ring/header_slots.hpp"
#include "shared-ring/negotiation/features.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet {

struct NetfrontConfig {
  bool header_slots = true;                               // write request-header-slots if the backend offers it
  uint32_t slot_size = netif::kHeaderSlotSizeDefault;     // header-slot-size: power of two, 64..2048
  uint32_t slot_pages = 4;                                // wanted; min'ed with GET_GREF_MAPPING_SIZE's answer
  bool split_event_channels = false;                      // if the backend offers feature-split-event-channels
  uint32_t rx_buffers = netif::kRxRingSize;               // RX buffers kept posted (capped at the ring size)
  bool feature_sg = true;                                 // frontend's feature-sg / gso keys (what it accepts)
  bool feature_gso_tcpv4 = true;
  bool feature_gso_tcpv6 = true;
  bool feature_rx_csum = true;  // takes NETRXF_csum_blank; false writes feature-no-csum-offload (and no GSO)
  int ctrl_timeout_ms = 2000;   // an unanswered control request: give up (fall back / go on closing)
  int close_timeout_ms = 2000;  // a backend that never reaches Closed: release anyway (in-use grants are kept)
  // RX extents (docs/protocol.md 7), used if the backend offers feature-rx-extents: each RX buffer is an
  // {offset, length} extent of its page. rx_headroom bytes stay free at the start of a frame's first buffer (the
  // owner's room for its own header). With rx_owner_buffers the owner posts every RX buffer (post_rx_buffer) and
  // gets frames as the buffers they landed in (on_rx_buffers); otherwise netfront posts its own whole pages.
  bool rx_extents = false;
  uint16_t rx_headroom = 0;
  bool rx_owner_buffers = false;
  // Survive a backend that dies or restarts (docs/protocol.md, "Backend restart"): when the backend leaves
  // Connected without our asking (Closed, gone, back to InitWait) or the toolstack resets our state, release
  // the connection (TX frames in flight complete as DROPPED and count as tx_lost_backend_gone), go back to
  // Initialising and connect again when a backend says InitWait. Off: the vif closes, as Linux netfront's does.
  bool reconnect = false;
  // The TX ring's size as 2^order pages (docs/protocol.md 9), if the backend offers max-tx-ring-page-order: a
  // 64 KiB GSO frame takes 17 slots, so one page holds 15 such frames in flight.
  uint32_t tx_ring_page_order = netif::kTxRingPageOrderMax;
};

// An RX buffer the owner supplies (rx_owner_buffers): a piece of one of the domain's pages.
struct RxOwnerBuffer {
  Pfn pfn;
  uint16_t offset = 0;
  uint16_t length = 0;  // > rx_headroom, offset + length <= 4096
  uint64_t cookie = 0;  // handed back with the frame that used it, or as unused
};

// A frame the backend copied straight into owner buffers: each buffer's cookie, where its data starts in the page
// (after the headroom in the first) and how many bytes it holds, in frame order.
struct ReceivedBuffers {
  struct Use {
    uint64_t cookie = 0;
    uint16_t offset = 0;
    uint16_t len = 0;
  };
  std::vector<Use> bufs;
  uint32_t len = 0;
  uint8_t gso_type = netif::gso_type::none;
  uint16_t gso_size = 0;
  bool csum_blank = false;
  bool data_validated = false;
};

// The answer to a recall (docs/protocol.md 8).
struct RecallResult {
  bool answered = false;             // the backend confirmed our request (recall-done == our seq) in time
  bool rejected = false;             // it answered "error" (it found the request malformed)
  std::vector<GrantRef> refused;     // grefs it cannot give back while connected (the ring pages)
  std::vector<GrantRef> still_in_use;  // after the answer or the deadline: grefs the hypervisor still marks in use
  std::vector<GrantRef> ended;       // recall_header_slots: slot-page grants ended (pages back in the pool)
};

enum class NetfrontState : uint8_t {
  kInitialising,  // waiting for the backend's InitWait
  kConnecting,    // rings granted, keys written, we are Connected; waiting for the backend's Connected
  kRegistering,   // header-slot pages being registered over the control ring
  kConnected,     // traffic flows (with or without header slots: using_header_slots())
  kClosing,       // DEL_GREF_MAPPING, Closing, waiting for the backend's Closed
  kClosed,        // everything released (grants still in use are kept and retried by poll())
  kFailed,        // setup failed; see error(). close() still releases what was set up
};
const char* to_string(NetfrontState s);

struct TxOptions {
  uint8_t gso_type = netif::gso_type::none;  // netif::gso_type::tcpv4 / tcpv6 for a TCP super-frame
  uint16_t gso_size = 0;                     // MSS, > 0 with a gso_type
  bool csum_blank = false;                   // NETTXF_csum_blank (always set for GSO, as Linux netfront does)
  bool data_validated = false;               // NETTXF_data_validated
  uint64_t cookie = 0;                       // handed back in the TxDone
  bool defer_push = false;                   // more frames follow: publish with flush() (one notify per batch)
};

enum class TxStatus : uint8_t {
  kQueued,        // on the ring; a TxDone will follow
  kBusy,          // no room (ring, ids, slots, grants or pages): nothing posted, retry after poll()
  kNotConnected,  // state() != kConnected
  kInvalid,       // the protocol cannot carry this frame (see last_error())
};
const char* to_string(TxStatus s);

struct TxDone {
  uint64_t cookie = 0;
  int16_t status = 0;  // netif::rsp::okay / error / dropped: the worst of the frame's responses
  uint32_t bytes = 0;
};

struct ReceivedFrame {
  std::vector<std::byte> data;
  uint8_t gso_type = netif::gso_type::none;
  uint16_t gso_size = 0;
  bool csum_blank = false;      // NETRXF_csum_blank
  bool data_validated = false;  // NETRXF_data_validated
};

class Netfront {
 public:
  using TxDoneHandler = std::function<void(const TxDone&)>;
  using RxHandler = std::function<void(ReceivedFrame&&)>;
  using RxBuffersHandler = std::function<void(ReceivedBuffers&&)>;
  using RxUnusedHandler = std::function<void(uint64_t cookie)>;

  // frontend_dir: /local/domain/<self>/device/vif/<N>, created by the toolstack with backend, backend-id.
  Netfront(Platform& platform, GuestPagePool& pool, std::string frontend_dir, NetfrontConfig config = {});
  ~Netfront();  // best effort: ends what it can without waiting; pages of grants still in use are leaked
  Netfront(const Netfront&) = delete;
  Netfront& operator=(const Netfront&) = delete;

  void on_tx_complete(TxDoneHandler h) { tx_done_ = std::move(h); }
  void on_rx(RxHandler h) { rx_handler_ = std::move(h); }
  // Owner buffers (rx_owner_buffers): frames, and buffers given back without data (the GSO extra's slot, a frame
  // with an error, teardown).
  void on_rx_buffers(RxBuffersHandler h) { rx_buffers_handler_ = std::move(h); }
  void on_rx_buffer_unused(RxUnusedHandler h) { rx_unused_handler_ = std::move(h); }

  // Advances negotiation/teardown, consumes responses (delivering completions and frames), re-posts RX buffers,
  // retries grants still in use. Returns true if anything happened; false means idle (after the final checks).
  bool poll();

  TxStatus transmit(std::span<const TxPiece> pieces, const TxOptions& options = {});
  void flush();  // push deferred TX requests, notify if the backend asked for it
  void close();  // start teardown; poll() until state() == kClosed

  // Grants the buffer writable to the backend, writes its extent and puts it on the RX ring (published by
  // push_rx_buffers()). False if extents with owner buffers are not in use, the buffer is malformed, or there is
  // no room (ring, ids, grants).
  bool post_rx_buffer(const RxOwnerBuffer& b);
  void push_rx_buffers();
  // The owner takes its buffers back (its queue stopped): every posted owner buffer's grant is ended, so the
  // backend's copy into it fails; their responses are then consumed silently (no frame, no unused callback).
  void revoke_rx_buffers();
  bool using_rx_extents() const { return rx_extents_active_; }
  bool rx_owner_mode() const { return rx_extents_active_ && config_.rx_owner_buffers; }
  uint32_t rx_free_slots() const;  // owner buffers post_rx_buffer would take now

  // Recall (docs/protocol.md 8): ask the backend to stop using these grants of ours (a page we want back while
  // dom0 may still hold it). Writes <frontend>/recall and returns; poll() calls `done` once the backend answered
  // or timeout_ms passed (a backend that does not answer: the result says so, and which grants are still in
  // use; a page whose grant is in use must not be reused, whatever the backend said). One recall at a time
  // (EBUSY); ENOTCONN unless connected.
  using RecallHandler = std::function<void(const RecallResult&)>;
  Result<void> recall(std::span<const GrantRef> grefs, RecallHandler done, int timeout_ms = 1000);
  // Take the header-slot pages back: new frames go as plain netif at once; when no slot is on the ring any more
  // the slot pages are recalled, then their grants ended (pages back to the pool; one still in use is kept and
  // retried, never reused). `done` gets the recall's result with `ended` filled in.
  Result<void> recall_header_slots(RecallHandler done, int timeout_ms = 1000);
  bool recall_pending() const { return recall_.has_value(); }
  std::vector<GrantRef> slot_page_grefs() const;

  NetfrontState state() const { return state_; }
  bool connected() const { return state_ == NetfrontState::kConnected; }
  // Lost its backend (reconnect) and not Connected again yet.
  bool reconnecting() const { return reconnecting_; }
  bool using_header_slots() const { return slots_active_; }
  // What the connected backend said it takes on TX (feature-sg, feature-gso-tcpv4/-tcpv6): transmit() refuses a
  // GSO frame of a type not offered, and a frame above one page without feature-sg.
  bool backend_sg() const { return be_sg_; }
  bool backend_gso_tcpv4() const { return be_gso_v4_; }
  bool backend_gso_tcpv6() const { return be_gso_v6_; }
  const std::string& error() const { return error_; }
  const std::string& last_error() const { return last_error_; }
  int event_fd() const;
  int store_fd() const;
  const NetfrontCounters& counters() const { return counters_; }

  const std::string& frontend_dir() const { return fe_dir_; }
  const std::string& backend_dir() const { return be_dir_; }
  DomId backend_id() const { return be_id_; }
  uint32_t slot_size() const { return config_.slot_size; }
  uint32_t slot_pages() const { return static_cast<uint32_t>(slot_pages_.size()); }  // registered (or 0)
  uint32_t mtu() const { return mtu_; }
  uint32_t tx_free_requests() const;
  uint32_t tx_frames_in_flight() const { return netif::kTxRingSizeMax - static_cast<uint32_t>(tx_free_frames_.size()); }
  uint32_t tx_ring_size() const { return tx_ ? tx_->size() : 0; }  // entries of the connected TX ring
  // References netfront holds reserved for TX and not granted now (Linux's gref_tx_head): taken from the table in
  // batches while connected, all given back at teardown.
  uint32_t tx_grefs_reserved() const { return static_cast<uint32_t>(tx_gref_pool_.size()); }
  uint32_t rx_buffers_posted() const { return rx_posted_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct GrantedPage {
    Pfn pfn;
    GrantRef gref;
  };
  // A grant end_access refused (the backend still had it in use): kept, with what to do once it ends.
  struct KeptGrant {
    GrantRef gref;
    std::optional<Pfn> page;  // give back to the pool once ended
    int32_t tx_frame = -1;    // a TX frame waiting for this grant before it completes
    int32_t rx_id = -1;       // an RX buffer that becomes reusable
    bool reserved = false;    // one of netfront's own TX references (tx_gref_pool_): ended, it goes back there
  };
  struct TxReqState {  // per TX id (pending_idx)
    bool in_flight = false;
    uint16_t frame = 0;
    struct Grant {
      GrantRef gref;
      bool reserved = false;  // gref came from tx_gref_pool_
    };
    std::optional<Grant> grant;     // its payload page's grant, ended once the backend lets go
    std::optional<SlotIndex> slot;  // its header slot, freed on the response
    std::optional<Pfn> linear;      // a linearisation page to free after the grant ends
  };
  struct TxFrameState {
    uint64_t cookie = 0;
    uint32_t bytes = 0;
    uint16_t responses_pending = 0;
    uint16_t grants_pending = 0;
    int16_t status = netif::rsp::okay;
  };
  using Seg = TxSeg;  // one page piece of a TX frame
  struct RxBuffer {
    std::optional<Pfn> page;
    GrantRef gref;
    bool granted = false;
    bool posted = false;  // the backend owns it
    bool owner = false;   // an owner buffer (no pool page): cookie + extent
    bool revoked = false; // revoke_rx_buffers() ended its grant while posted
    uint64_t cookie = 0;
    uint16_t ext_offset = 0, ext_length = static_cast<uint16_t>(kPageSize);
  };
  struct RxPartial {  // the frame being received, between its first response and its last
    // What the next response is: a frame's first, one of its data, or one of its extra-info slots after which
    // data follows (the first said more_data) or the frame ends.
    enum class Next : uint8_t { first, data, extra_then_data, extra_then_end };
    Next next = Next::first;
    bool bad = false;  // a response was malformed: the whole frame is dropped at its end
    ReceivedFrame frame;
    ReceivedBuffers owned;  // owner buffers of the frame
  };
  enum class CloseStep : uint8_t { kNone, kWaitDel, kWaitBackendClosed };

  // xenbus (netfront.cpp)
  void on_backend_state(XenbusState be);
  bool backend_lost(XenbusState be);  // reconnect: the backend we were connected to is gone or restarted
  void lose_backend();                // release the connection, back to Initialising
  Result<void> connect();  // xennet_connect: rings, event channels, keys, RX buffers
  void take_offer(const netif::BackendFeatures& offer);  // what the backend said, for this connection
  Result<void> alloc_rings();  // TX (2^order pages if offered and in a row, else one), RX, ctrl if offered
  Result<void> alloc_ports();  // one port or split, and the control ring's
  Result<netif::FrontendKeys> own_keys();  // what to write: the rings and ports above, and what config asks for
  void begin_close(bool backend_alive);
  void after_del();
  void release_all(bool write_closed = true);
  void fail(std::string reason);
  Result<GrantedPage> alloc_granted_page(bool readonly);
  Result<void> alloc_tx_ring(uint32_t order);  // tx_ring_pages_, initialised as a ring (SHARED_RING_INIT)
  void end_grant(GrantRef gref, KeptGrant ctx);  // ctx.gref ignored
  bool retry_kept_grants();
  bool end_access_of(GrantRef gref, bool reserved);  // end_access, or end_access_ref + back to the pool
  bool tx_grefs_ready(uint32_t n);                   // tx_gref_pool_ holds n (reserving more if it must)
  void release_tx_gref_pool();
  void notify(Port p);

  // recall (netfront.cpp)
  struct PendingRecall {
    std::string seq;
    std::vector<GrantRef> grefs;
    RecallHandler done;
    Clock::time_point deadline;
    bool slots = false;       // recall_header_slots: the request is sent once no slot is in use
    bool sent = false;
    int timeout_ms = 1000;
  };
  Result<void> send_recall(PendingRecall& r);
  bool poll_recall();
  void finish_recall(bool answered, bool rejected, const std::string& refused);

  // control ring (netfront.cpp)
  void send_ctrl(uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2);
  bool process_ctrl();
  void on_ctrl_response(const netif::CtrlResponse& rsp, bool timed_out);
  void register_slot_pages(uint32_t max_pages);
  void drop_slot_pages();
  void registration_done();

  // TX (tx_path.cpp)
  bool process_tx();
  void tx_frame_grant_done(uint16_t frame);
  void maybe_complete_tx_frame(uint16_t frame);
  void tx_drop_in_flight();
  void tx_request_done(uint16_t id, int16_t status);  // its id, slot and grant back; the frame completes
  TxStatus tx_refuse(TxStatus s, std::string reason);
  // transmit's steps (tx_path.cpp): cut, plan_tx (tx_plan.hpp), reserve, linearise, grant, emit.
  Result<void> tx_cut_pieces(std::span<const TxPiece> pieces);
  Result<bool> tx_reserve(const TxPlan& plan);
  void tx_linearise(TxPlan& plan);
  Result<void> tx_grant_payload(const TxPlan& plan, bool pooled);
  void tx_emit(const TxPlan& plan, const TxOptions& o, bool pooled);
  size_t tx_emit_first(const TxPlan& plan, const TxOptions& o, uint16_t frame, bool pooled);
  uint16_t tx_take_id(uint16_t frame);

  // RX (rx_path.cpp)
  bool process_rx();
  void refill_rx();
  void rx_recycle(uint16_t id);
  void rx_finish_frame();
  void rx_release_buffers();
  void write_rx_extent(uint16_t id, uint16_t offset, uint16_t length);

  Platform& platform_;
  GuestPagePool& pool_;
  std::string fe_dir_;
  NetfrontConfig config_;
  NetfrontCounters counters_;
  std::string error_;
  std::string last_error_;
  TxDoneHandler tx_done_;
  RxHandler rx_handler_;
  RxBuffersHandler rx_buffers_handler_;
  RxUnusedHandler rx_unused_handler_;

  NetfrontState state_ = NetfrontState::kInitialising;
  CloseStep close_step_ = CloseStep::kNone;
  Clock::time_point close_deadline_{};
  std::string be_dir_;
  DomId be_id_;
  bool watching_ = false;
  bool watching_self_ = false;  // reconnect: our own state node (a toolstack reset)
  bool reconnecting_ = false;
  bool state_dirty_ = true;  // re-read the backend's state (a watch fired)

  // What the backend offered.
  bool be_sg_ = false, be_gso_v4_ = false, be_gso_v6_ = false, be_split_ = false, be_ctrl_ = false,
       be_slots_ = false, be_rx_extents_ = false;
  uint32_t be_tx_ring_order_ = 0;  // its max-tx-ring-page-order
  uint32_t mtu_ = 1500;

  std::vector<GrantedPage> tx_ring_pages_;  // 2^order frames in a row, each granted
  std::optional<GrantedPage> rx_page_, ctrl_page_;
  std::optional<netif::TxFrontRing> tx_;
  std::optional<netif::RxFrontRing> rx_;
  std::optional<netif::CtrlFrontRing> ctrl_;
  std::optional<Port> tx_port_, rx_port_, ctrl_port_;  // rx_port_ == tx_port_ unless split

  // Header slots.
  bool slots_requested_ = false;  // we wrote request-header-slots
  bool slots_active_ = false;     // ADD_GREF_MAPPING succeeded and not yet deleted
  std::vector<GrantedPage> slot_pages_;
  std::optional<GrantedPage> gref_table_;
  std::optional<HeaderSlotGeometry> geometry_;
  std::optional<SlotAllocator> slots_;

  // Control ring: one request in flight at a time.
  uint16_t ctrl_next_id_ = 0;
  bool ctrl_pending_ = false;
  uint16_t ctrl_pending_id_ = 0;
  uint16_t ctrl_pending_type_ = 0;
  Clock::time_point ctrl_deadline_{};

  // TX.
  std::array<TxReqState, netif::kTxRingSizeMax> tx_req_{};
  std::vector<uint16_t> tx_free_ids_;
  std::array<TxFrameState, netif::kTxRingSizeMax> tx_frames_{};
  std::vector<uint16_t> tx_free_frames_;
  std::vector<Seg> segs_;          // scratch, reused per frame
  TxPlan tx_plan_;                 // scratch: the frame being sent
  std::vector<Pfn> linear_pages_;  // scratch
  std::vector<GrantRef> new_grants_;  // scratch
  std::vector<TxDone> tx_done_queue_;

  // RX.
  std::array<RxBuffer, netif::kRxRingSize> rx_bufs_{};
  std::array<uint16_t, netif::kRxRingSize> rx_id_at_{};  // id posted at ring index (for GSO extra slots)
  std::vector<uint16_t> rx_free_ids_;
  uint32_t rx_posted_ = 0;
  RxPartial rx_partial_;
  std::vector<ReceivedFrame> rx_deliver_queue_;
  std::vector<ReceivedBuffers> rx_buffers_queue_;
  std::vector<uint64_t> rx_unused_queue_;
  bool rx_extents_active_ = false;            // we wrote request-rx-extents (the backend offered it)
  std::optional<GrantedPage> rx_extents_page_;  // the extents table, granted read-only

  std::vector<KeptGrant> kept_;
  // TX references reserved from the grant table in batches (Linux netfront's gref_tx_head): granting a payload
  // page is then three stores, ending it one cmpxchg, with no table lock. Off if the table keeps no such pool.
  std::vector<GrantRef> tx_gref_pool_;
  bool tx_gref_pool_ok_ = true;
  static constexpr uint32_t kTxGrefBatch = 64;
  std::optional<PendingRecall> recall_;
};

}  // namespace pvnet
