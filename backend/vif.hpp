// One vif as the backend holds it (Linux's struct xenvif with its single queue): xenbus state, the rings and
// event channels it mapped and bound on connect, the kept header-slot mappings, the RX queue, the TX shadow
// responses, counters. Internal to backend/*.cpp.
#pragma once
#include <bitset>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <type_traits>
#include <vector>

#include "backend/backend.hpp"
#include "backend/grant_ops.hpp"
#include "backend/payload_policy.hpp"
#include "backend/tx_packet.hpp"
#include "backend/tx_stages.hpp"
#include "backend/rx_extents.hpp"
#include "backend/rx_stages.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet {

struct Backend::Vif {
  VifId id;
  DomId fe_dom;
  uint32_t handle = 0;
  VifOptions opts;
  std::string name;  // vif<F>.<N>
  VifPaths paths;
  std::string token;  // the store watch token
  XenbusState be_state = XenbusState::Initialising;
  // The directories are the toolstack's (libxl wrote them; adopt_vif): the backend never creates or removes them,
  // and once they are gone it writes nothing there (a write would re-create a node libxl just removed).
  bool adopted = false;
  bool offline = false;  // offline_vif: the toolstack is removing it; a frontend coming back gets no InitWait

  // Set at connect, cleared at disconnect.
  bool connected = false;
  bool disabled = false;     // fatal_protocol_error: stays until the frontend reconnects
  uint64_t generation = 0;   // bumped per connect; stale TxCompletions of an older connection are ignored
  bool header_slots = false;
  uint32_t slot_size = netif::kHeaderSlotSizeDefault;
  bool fe_sg = false, fe_gso_tcpv4 = false, fe_gso_tcpv6 = false;
  bool fe_no_csum_offload = false;  // feature-no-csum-offload: it wants complete checksums on RX
  std::optional<netif::TxBackRing> tx;
  std::optional<netif::RxBackRing> rx;
  std::optional<netif::CtrlBackRing> ctrl;
  std::vector<MapHandle> ring_handles;
  std::vector<GrantRef> ring_grefs;  // refused by a recall while connected
  Port tx_port, rx_port, ctrl_port;
  bool split_evtchn = false;
  std::vector<Port> bound_ports;

  KeptMappings kept;                               // gref -> kept header-slot mapping
  std::deque<RxFrame> rx_queue;                    // frames waiting for this guest's RX buffers
  RxExtents rx_ext;                                // RX extents (docs/protocol.md 7): table, held buffers
  size_t rx_queue_bytes = 0;                       // sum of their lengths (XSA-392 bound)
  bool rx_stalled = false;                         // rx_drain_timeout passed: frames to it are dropped
  std::chrono::steady_clock::time_point rx_progress;  // last time its RX queue was empty or moved

  CreditBucket credit;                             // TX credit scheduler
  bool credit_stalled = false;                     // stopped by credit this poll: the timer resumes it
  uint32_t inflight = 0;                           // TX packets taken and not yet answered
  std::bitset<1u << 16> inflight_ids;              // their request ids (a reused id is odd: dropped)
  std::string recall_seen;                         // the last recall request handled
  std::vector<netif::TxResponse> tx_shadow;        // answers waiting for this poll's single push

  BackendCounters counters;
};

// One packet tx_action took off a ring this poll, on its way to the sink (xenvif_tx_build_gops' pending entry).
struct TxBuilt {
  Backend::Vif* vif = nullptr;
  TxPacket pkt;
  size_t copy_op = SIZE_MAX;       // plain netif: index of its header copy in this poll's batch
  std::optional<DropReason> drop;  // an odd but legal packet: answered NETIF_RSP_ERROR, counted as this

  void reset() {
    vif = nullptr;
    copy_op = SIZE_MAX;
    drop.reset();
    pkt.reset();
  }
};
// The poll's copy ops point into packets' header buffers: growing the vector of packets must move them (buffers
// stay put), never copy them.
static_assert(std::is_nothrow_move_constructible_v<TxBuilt>);

// tx_action's buffers, kept across polls: a packet's vectors keep their capacity from one poll to the next (a
// sink that holds a packet takes them along), so the steady state allocates nothing per packet.
struct Backend::TxScratch {
  std::vector<TxBuilt> built;
  size_t used = 0;
  TxBatch batch;
  std::vector<Sink*> sinks;  // poll(): the distinct sinks, for end_poll

  TxBuilt& next() {
    if (used == built.size()) built.emplace_back();
    TxBuilt& b = built[used++];
    b.reset();
    return b;
  }
  void reset() {
    used = 0;
    batch.copies.clear();
    batch.maps.clear();
  }
};

}  // namespace pvnet
