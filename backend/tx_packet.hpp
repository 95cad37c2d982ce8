// A TX packet as the backend hands it to a sink: the header bytes in dom0's private memory (copied out of the
// guest, so the guest can no longer change them) and the payload as grant references, left UNMAPPED. A sink that
// must read the payload asks the payload policy for it; one that forwards it grant-copies gref to gref.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/container/static_vector.hpp>

#include "shared-ring/ids.hpp"
#include "shared-ring/netif.hpp"
#include "shared-ring/packet_headers.hpp"

namespace pvnet {

struct VifIdTag {};
using VifId = StrongId<VifIdTag, uint32_t>;  // the backend's handle for one vif (frontend domain + device handle)

// Where a payload piece's bytes are for dom0 (set by the payload policy).
enum class FragSource : uint8_t {
  grant,   // only the grant reference: forwarded gref -> gref, or exposed lazily
  lazy,    // `data` points into the lazy window: the first touch faults the page in
  mapped,  // `data` points into an eager mapping of the page (unmapped at the end of the poll)
  copied,  // `data` points into the packet's payload_copy (dom0 memory, filled by grant copy)
};

// One payload piece: `len` bytes at `offset` in the page the guest `dom` granted as `gref`. Never crosses a page.
struct TxFrag {
  DomId dom;
  GrantRef gref;
  uint16_t offset = 0;
  uint16_t len = 0;
  // Set by PayloadPolicy::expose(): where the sink may read the bytes (a lazy pointer under `slots`: the first
  // touch faults the page in). Valid until the policy's end_poll().
  const std::byte* data = nullptr;
  int32_t window_slot = -1;  // the lazy-window slot behind `data`, if any
  FragSource source = FragSource::grant;
  int32_t batch_op = -1;     // mapped/copied: its op in the poll's TxBatch (maps or copies)
};

struct GsoInfo {
  uint8_t type = netif::gso_type::none;  // XEN_NETIF_GSO_TYPE_*
  uint16_t size = 0;                     // MSS
  bool present() const { return type != netif::gso_type::none; }
};

// One request of the packet to answer: its id, and whether the slot carried an extra-info (answered NULL).
struct TxResponseSlot {
  uint16_t id = 0;
  bool extra = false;
};

// Who to answer once a packet that a sink held (vif sink) is done: the source vif, as it was when the packet was
// taken (a reconnect bumps the generation, so a stale completion is dropped instead of answering a new ring).
// Most slots one packet can have: the first request, one of each extra-info type, and the pieces below netback's
// fatal_skb_slots (20): a longer chain disables the vif before a completion exists.
inline constexpr uint32_t kTxFatalSlots = 20;
inline constexpr uint32_t kTxMaxPacketSlots = 1 + (netif::extra_type::max - 1) + (kTxFatalSlots - 1);

struct TxCompletion {
  VifId src;
  uint64_t generation = 0;
  boost::container::static_vector<TxResponseSlot, kTxMaxPacketSlots> slots;  // inline: no allocation per packet
  uint32_t len = 0;  // the packet's length, for bytes_out
  bool tracked = false;  // counted in the source vif's in-flight packets and ids (released when answered)

  // static_vector of trivially copyable slots cannot throw on move; boost does not say so, RxFrame needs it.
  TxCompletion() = default;
  TxCompletion(const TxCompletion&) = default;
  TxCompletion(TxCompletion&&) noexcept = default;
  TxCompletion& operator=(const TxCompletion&) = default;
  TxCompletion& operator=(TxCompletion&&) noexcept = default;
};

struct TxPacket {
  VifId src;
  DomId src_dom;
  std::vector<std::byte> header;  // private copy: first bytes of the frame (slot contents, or up to 128 copied)
  std::vector<TxFrag> frags;      // the rest of the frame, in order
  uint32_t len = 0;               // the whole frame: header.size() + sum of frag lengths
  HeaderInfo hdr;                 // parse_headers() over `header` (the private copy, never the slot)
  GsoInfo gso;
  uint16_t tx_flags = 0;          // NETTXF_csum_blank / NETTXF_data_validated, as the guest set them
  bool header_slot = false;       // header came from a kept header slot
  TxCompletion completion;        // the requests to answer
  std::vector<std::byte> payload_copy;  // dom0 memory the payload was grant-copied into (copied frags point here)
  uint32_t header_from_frag0 = 0;  // map policy, plain netif: header bytes still to memcpy out of frags[0]

  uint32_t payload_len() const { return len - static_cast<uint32_t>(header.size()); }
  // Empty again, as a default-constructed packet, but the vectors keep their capacity: tx_action reuses its
  // packets from one poll to the next, so the steady state allocates nothing per packet.
  void reset() {
    src = {};
    src_dom = {};
    header.clear();
    frags.clear();
    len = 0;
    hdr = HeaderInfo{};
    gso = GsoInfo{};
    tx_flags = 0;
    header_slot = false;
    completion = TxCompletion{};  // inline slots: nothing to keep
    payload_copy.clear();
    header_from_frag0 = 0;
  }
};

// A frame waiting for a guest's RX buffers: `local` bytes in dom0 memory first (a forwarded packet's header, or a
// whole frame from a local source), then `frags` grant-copied straight from the source guest's pages.
struct RxFrame {
  std::vector<std::byte> local;
  std::vector<TxFrag> frags;          // copied ones point into payload_copy, the others go gref -> gref
  std::vector<std::byte> payload_copy;  // owns the bytes of copied frags until the RX copy
  // Frags copied into dom0 when their grant was recalled. A vector of vectors: moving it keeps the inner buffers
  // (frags point into them) and keeps RxFrame nothrow-movable, so containers of frames move instead of copying.
  std::vector<std::vector<std::byte>> recall_copies;
  uint32_t len = 0;
  GsoInfo gso;
  uint16_t rx_flags = 0;  // NETRXF_csum_blank / NETRXF_data_validated
  bool has_completion = false;
  TxCompletion completion;  // the source's TX requests, answered once the frame is delivered or dropped
};

// The RX phase keeps pointers into frames' buffers while it moves them between containers.
static_assert(std::is_nothrow_move_constructible_v<RxFrame>);

}  // namespace pvnet
