// netif.h's wire format in C++: request/response types, flags, ring types and sizes, and pvnet's header-slot
// extension. Every struct is static_assert'ed, size and each field offset, against xen/io/netif.h, and every
// constant is taken from the header rather than retyped, so a mismatch is a compile error.
// Direction names are netif.h's: TX = guest to backend, RX = backend to guest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shared-ring/ids.hpp"
#include "shared-ring/ring.hpp"
#include "shared-ring/xen_headers.hpp"

// ---- pvnet protocol extension: header slots (docs/protocol.md) -------------------------------------------------
// Set on the FIRST tx request of a packet. Its gref is then a header-slot page the frontend registered with
// XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING (kept mapped by the backend), and its offset is the offset of a slot in
// that page (slot aligned). As in plain netif, the first request's data length (its size minus the sizes of the
// following requests of the packet) is the header length; it must fit in the slot. Bit 4 is the first bit netif.h
// leaves free after NETTXF_extra_info.
#ifndef _NETTXF_header_slot
#define _NETTXF_header_slot (4)
#define NETTXF_header_slot (1U << _NETTXF_header_slot)
#endif
static_assert(NETTXF_header_slot != NETTXF_csum_blank && NETTXF_header_slot != NETTXF_data_validated &&
              NETTXF_header_slot != NETTXF_more_data && NETTXF_header_slot != NETTXF_extra_info);

namespace pvnet::netif {

// ---- wire structs -----------------------------------------------------------------------------------------------

// struct netif_tx_request: one slot of a TX packet. The first request's size is the whole packet's size.
struct TxRequest {
  GrantRef gref;    // page holding this slot's data (or, with NETTXF_header_slot, the header-slot page)
  uint16_t offset;  // data offset in that page
  uint16_t flags;   // NETTXF_*
  uint16_t id;      // echoed in the response
  uint16_t size;    // first request: packet size; others: this slot's size
};

// struct netif_tx_response.
struct TxResponse {
  uint16_t id;
  int16_t status;  // NETIF_RSP_*
};

// struct netif_extra_info: follows a request flagged NETTXF_extra_info / NETRXF_extra_info in the next slot.
struct ExtraInfo {
  uint8_t type;   // XEN_NETIF_EXTRA_TYPE_*
  uint8_t flags;  // XEN_NETIF_EXTRA_FLAG_*
  union {
    struct {
      uint16_t size;      // MSS
      uint8_t type;       // XEN_NETIF_GSO_TYPE_*
      uint8_t pad;
      uint16_t features;  // XEN_NETIF_GSO_FEAT_* (none defined)
    } gso;
    struct {
      uint8_t addr[6];
    } mcast;
    struct {
      uint8_t type;       // _XEN_NETIF_CTRL_HASH_TYPE_*
      uint8_t algorithm;  // XEN_NETIF_CTRL_HASH_ALGORITHM_*
      uint8_t value[4];
    } hash;
    uint16_t pad[3];
  } u;
};

// struct netif_rx_request: a buffer the guest posts for the backend to fill.
struct RxRequest {
  uint16_t id;
  uint16_t pad;
  GrantRef gref;
};

// struct netif_rx_response.
struct RxResponse {
  uint16_t id;
  uint16_t offset;  // data offset in the granted page
  uint16_t flags;   // NETRXF_*
  int16_t status;   // > 0: bytes of data; <= 0: NETIF_RSP_*
};

// struct xen_netif_ctrl_request.
struct CtrlRequest {
  uint16_t id;
  uint16_t type;  // XEN_NETIF_CTRL_TYPE_*
  uint32_t data[3];
};

// struct xen_netif_ctrl_response.
struct CtrlResponse {
  uint16_t id;
  uint16_t type;
  uint32_t status;  // XEN_NETIF_CTRL_STATUS_*
  uint32_t data;
};

// struct xen_netif_gref: one entry of the grant-ref page passed with XEN_NETIF_CTRL_TYPE_ADD/DEL_GREF_MAPPING.
struct NetifGref {
  GrantRef ref;
  uint16_t flags;   // XEN_NETIF_CTRLF_GREF_*
  uint16_t status;  // written by the backend: a GNTST_* value
};

#define PVNET_SAME_FIELD(ours, theirs, field)                                                               \
  static_assert(offsetof(ours, field) == offsetof(theirs, field), #ours "." #field " offset != " #theirs); \
  static_assert(sizeof(ours::field) == sizeof(theirs::field), #ours "." #field " size != " #theirs)

static_assert(sizeof(TxRequest) == sizeof(netif_tx_request));
PVNET_SAME_FIELD(TxRequest, netif_tx_request, gref);
PVNET_SAME_FIELD(TxRequest, netif_tx_request, offset);
PVNET_SAME_FIELD(TxRequest, netif_tx_request, flags);
PVNET_SAME_FIELD(TxRequest, netif_tx_request, id);
PVNET_SAME_FIELD(TxRequest, netif_tx_request, size);

static_assert(sizeof(TxResponse) == sizeof(netif_tx_response));
PVNET_SAME_FIELD(TxResponse, netif_tx_response, id);
PVNET_SAME_FIELD(TxResponse, netif_tx_response, status);

static_assert(sizeof(ExtraInfo) == sizeof(netif_extra_info));
PVNET_SAME_FIELD(ExtraInfo, netif_extra_info, type);
PVNET_SAME_FIELD(ExtraInfo, netif_extra_info, flags);
PVNET_SAME_FIELD(ExtraInfo, netif_extra_info, u);
static_assert(offsetof(ExtraInfo, u.gso.size) == offsetof(netif_extra_info, u.gso.size));
static_assert(offsetof(ExtraInfo, u.gso.type) == offsetof(netif_extra_info, u.gso.type));
static_assert(offsetof(ExtraInfo, u.gso.pad) == offsetof(netif_extra_info, u.gso.pad));
static_assert(offsetof(ExtraInfo, u.gso.features) == offsetof(netif_extra_info, u.gso.features));
static_assert(offsetof(ExtraInfo, u.mcast.addr) == offsetof(netif_extra_info, u.mcast.addr));
static_assert(sizeof(ExtraInfo::u.mcast.addr) == sizeof(netif_extra_info::u.mcast.addr));
static_assert(offsetof(ExtraInfo, u.hash.type) == offsetof(netif_extra_info, u.hash.type));
static_assert(offsetof(ExtraInfo, u.hash.algorithm) == offsetof(netif_extra_info, u.hash.algorithm));
static_assert(offsetof(ExtraInfo, u.hash.value) == offsetof(netif_extra_info, u.hash.value));
static_assert(sizeof(ExtraInfo::u.hash.value) == sizeof(netif_extra_info::u.hash.value));
static_assert(offsetof(ExtraInfo, u.pad) == offsetof(netif_extra_info, u.pad));
static_assert(sizeof(ExtraInfo::u.pad) == sizeof(netif_extra_info::u.pad));

static_assert(sizeof(RxRequest) == sizeof(netif_rx_request));
PVNET_SAME_FIELD(RxRequest, netif_rx_request, id);
PVNET_SAME_FIELD(RxRequest, netif_rx_request, pad);
PVNET_SAME_FIELD(RxRequest, netif_rx_request, gref);

static_assert(sizeof(RxResponse) == sizeof(netif_rx_response));
PVNET_SAME_FIELD(RxResponse, netif_rx_response, id);
PVNET_SAME_FIELD(RxResponse, netif_rx_response, offset);
PVNET_SAME_FIELD(RxResponse, netif_rx_response, flags);
PVNET_SAME_FIELD(RxResponse, netif_rx_response, status);

static_assert(sizeof(CtrlRequest) == sizeof(xen_netif_ctrl_request));
PVNET_SAME_FIELD(CtrlRequest, xen_netif_ctrl_request, id);
PVNET_SAME_FIELD(CtrlRequest, xen_netif_ctrl_request, type);
PVNET_SAME_FIELD(CtrlRequest, xen_netif_ctrl_request, data);

static_assert(sizeof(CtrlResponse) == sizeof(xen_netif_ctrl_response));
PVNET_SAME_FIELD(CtrlResponse, xen_netif_ctrl_response, id);
PVNET_SAME_FIELD(CtrlResponse, xen_netif_ctrl_response, type);
PVNET_SAME_FIELD(CtrlResponse, xen_netif_ctrl_response, status);
PVNET_SAME_FIELD(CtrlResponse, xen_netif_ctrl_response, data);

static_assert(sizeof(NetifGref) == sizeof(xen_netif_gref));
PVNET_SAME_FIELD(NetifGref, xen_netif_gref, ref);
PVNET_SAME_FIELD(NetifGref, xen_netif_gref, flags);
PVNET_SAME_FIELD(NetifGref, xen_netif_gref, status);

#undef PVNET_SAME_FIELD

// Signedness matters for status fields (a negative NETIF_RSP_* must stay negative).
static_assert(std::is_signed_v<decltype(TxResponse::status)> ==
              std::is_signed_v<decltype(netif_tx_response::status)>);
static_assert(std::is_signed_v<decltype(RxResponse::status)> ==
              std::is_signed_v<decltype(netif_rx_response::status)>);

// ---- constants (values from netif.h) ----------------------------------------------------------------------------

inline constexpr uint32_t kNrSlotsMin = XEN_NETIF_NR_SLOTS_MIN;  // max slots per packet a backend must accept
inline constexpr uint32_t kMaxTxSize = XEN_NETIF_MAX_TX_SIZE;    // cap of the first TX request's 16-bit size

inline constexpr uint32_t kEthHeaderBytes = 14;   // ETH_HLEN
inline constexpr uint32_t kVlanHeaderBytes = 4;   // one 802.1Q tag
inline constexpr uint32_t kMaxIpPacketBytes = 65535;
// The largest frame a guest stack can hand the driver (a 64 KiB GSO packet plus its link header). Buffers are
// sized for it; on TX the 16-bit size field still caps what one packet can describe at kMaxTxSize.
inline constexpr uint32_t kMaxFrameBytes = kMaxIpPacketBytes + kEthHeaderBytes + kVlanHeaderBytes;

namespace txf {  // NETTXF_*: TxRequest::flags
inline constexpr uint16_t csum_blank = NETTXF_csum_blank;
inline constexpr uint16_t data_validated = NETTXF_data_validated;
inline constexpr uint16_t more_data = NETTXF_more_data;
inline constexpr uint16_t extra_info = NETTXF_extra_info;
inline constexpr uint16_t header_slot = NETTXF_header_slot;  // pvnet extension
}  // namespace txf

namespace rxf {  // NETRXF_*: RxResponse::flags
inline constexpr uint16_t data_validated = NETRXF_data_validated;
inline constexpr uint16_t csum_blank = NETRXF_csum_blank;
inline constexpr uint16_t more_data = NETRXF_more_data;
inline constexpr uint16_t extra_info = NETRXF_extra_info;
inline constexpr uint16_t gso_prefix = NETRXF_gso_prefix;
}  // namespace rxf

namespace rsp {  // NETIF_RSP_*: TxResponse::status / RxResponse::status
inline constexpr int16_t dropped = NETIF_RSP_DROPPED;
inline constexpr int16_t error = NETIF_RSP_ERROR;
inline constexpr int16_t okay = NETIF_RSP_OKAY;
inline constexpr int16_t null = NETIF_RSP_NULL;  // a slot that carried an extra_info, not data
}  // namespace rsp

namespace extra_type {  // XEN_NETIF_EXTRA_TYPE_*: ExtraInfo::type
inline constexpr uint8_t none = XEN_NETIF_EXTRA_TYPE_NONE;
inline constexpr uint8_t gso = XEN_NETIF_EXTRA_TYPE_GSO;
inline constexpr uint8_t mcast_add = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
inline constexpr uint8_t mcast_del = XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
inline constexpr uint8_t hash = XEN_NETIF_EXTRA_TYPE_HASH;
inline constexpr uint8_t max = XEN_NETIF_EXTRA_TYPE_MAX;
}  // namespace extra_type

namespace extra_flag {  // XEN_NETIF_EXTRA_FLAG_*: ExtraInfo::flags
inline constexpr uint8_t more = XEN_NETIF_EXTRA_FLAG_MORE;
}  // namespace extra_flag

namespace gso_type {  // XEN_NETIF_GSO_TYPE_*: ExtraInfo::u.gso.type
inline constexpr uint8_t none = XEN_NETIF_GSO_TYPE_NONE;
inline constexpr uint8_t tcpv4 = XEN_NETIF_GSO_TYPE_TCPV4;
inline constexpr uint8_t tcpv6 = XEN_NETIF_GSO_TYPE_TCPV6;
}  // namespace gso_type

namespace ctrl_type {  // XEN_NETIF_CTRL_TYPE_*: CtrlRequest::type
inline constexpr uint16_t invalid = XEN_NETIF_CTRL_TYPE_INVALID;
inline constexpr uint16_t get_hash_flags = XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS;
inline constexpr uint16_t set_hash_flags = XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS;
inline constexpr uint16_t set_hash_key = XEN_NETIF_CTRL_TYPE_SET_HASH_KEY;
inline constexpr uint16_t get_hash_mapping_size = XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE;
inline constexpr uint16_t set_hash_mapping_size = XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE;
inline constexpr uint16_t set_hash_mapping = XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING;
inline constexpr uint16_t set_hash_algorithm = XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM;
inline constexpr uint16_t get_gref_mapping_size = XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE;
inline constexpr uint16_t add_gref_mapping = XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING;
inline constexpr uint16_t del_gref_mapping = XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING;
}  // namespace ctrl_type

namespace ctrl_status {  // XEN_NETIF_CTRL_STATUS_*: CtrlResponse::status
inline constexpr uint32_t success = XEN_NETIF_CTRL_STATUS_SUCCESS;
inline constexpr uint32_t not_supported = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
inline constexpr uint32_t invalid_parameter = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
inline constexpr uint32_t buffer_overflow = XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW;
}  // namespace ctrl_status

namespace ctrlf_gref {  // XEN_NETIF_CTRLF_GREF_*: NetifGref::flags
inline constexpr uint16_t readonly = XEN_NETIF_CTRLF_GREF_readonly;
}  // namespace ctrlf_gref

// ---- header-slot extension: slot sizes (the store keys: negotiation/keys.hpp) ------------------------------
inline constexpr uint32_t kHeaderSlotSizeMin = 64;
inline constexpr uint32_t kHeaderSlotSizeMax = 2048;
inline constexpr uint32_t kHeaderSlotSizeDefault = 128;

// ---- RX extents extension (docs/protocol.md section 7) ----------------------------------------------------------
// With it, each RX request's buffer is the extent {offset, length} of its granted page, read from a table page the
// frontend granted read-only and the backend keeps mapped: entry `id` describes the buffer of the request with
// that id. The backend copies an entry out once (no double fetch) and checks it before using it.
struct RxExtent {
  uint16_t offset;  // where the buffer starts in the granted page
  uint16_t length;  // its size: offset + length <= 4096, length > the negotiated headroom
};
static_assert(sizeof(RxExtent) == 4 && std::is_trivially_copyable_v<RxExtent>);
inline constexpr uint32_t kRxExtentHeadroomMax = 256;

// ---- rings ------------------------------------------------------------------------------------------------------

using TxSharedRing = ring::SharedRing<TxRequest, TxResponse>;
using RxSharedRing = ring::SharedRing<RxRequest, RxResponse>;
using CtrlSharedRing = ring::SharedRing<CtrlRequest, CtrlResponse>;
using TxFrontRing = ring::FrontRing<TxRequest, TxResponse>;
using TxBackRing = ring::BackRing<TxRequest, TxResponse>;
using RxFrontRing = ring::FrontRing<RxRequest, RxResponse>;
using RxBackRing = ring::BackRing<RxRequest, RxResponse>;
using CtrlFrontRing = ring::FrontRing<CtrlRequest, CtrlResponse>;
using CtrlBackRing = ring::BackRing<CtrlRequest, CtrlResponse>;

// NET_TX_RING_SIZE / NET_RX_RING_SIZE are Linux's, not in the public header: derived as Linux does.
inline constexpr uint32_t kTxRingSize = __CONST_RING_SIZE(netif_tx, 4096);
inline constexpr uint32_t kRxRingSize = __CONST_RING_SIZE(netif_rx, 4096);
inline constexpr uint32_t kCtrlRingSize = __CONST_RING_SIZE(xen_netif_ctrl, 4096);

static_assert(TxSharedRing::kEntryBytes == sizeof(netif_tx_sring::ring[0]));
static_assert(RxSharedRing::kEntryBytes == sizeof(netif_rx_sring::ring[0]));
static_assert(CtrlSharedRing::kEntryBytes == sizeof(xen_netif_ctrl_sring::ring[0]));
static_assert(offsetof(netif_tx_sring, ring) == TxSharedRing::kHeaderBytes);
static_assert(offsetof(netif_rx_sring, ring) == RxSharedRing::kHeaderBytes);
static_assert(offsetof(xen_netif_ctrl_sring, ring) == CtrlSharedRing::kHeaderBytes);
static_assert(offsetof(netif_tx_sring, req_prod) == offsetof(ring::SharedRingHeader, req_prod));
static_assert(offsetof(netif_tx_sring, req_event) == offsetof(ring::SharedRingHeader, req_event));
static_assert(offsetof(netif_tx_sring, rsp_prod) == offsetof(ring::SharedRingHeader, rsp_prod));
static_assert(offsetof(netif_tx_sring, rsp_event) == offsetof(ring::SharedRingHeader, rsp_event));
static_assert(offsetof(netif_tx_sring, pvt) == offsetof(ring::SharedRingHeader, pvt_pad));
static_assert(offsetof(netif_tx_sring, __pad) == offsetof(ring::SharedRingHeader, pad));
static_assert(kTxRingSize == TxSharedRing::size_for_bytes(4096));
static_assert(kRxRingSize == RxSharedRing::size_for_bytes(4096));
static_assert(kCtrlRingSize == CtrlSharedRing::size_for_bytes(4096));
static_assert(kTxRingSize == 256 && kRxRingSize == 256 && kCtrlRingSize == 128);

// ---- multi-page TX ring (docs/protocol.md section 9) ----------------------------------------------------------
// blkif's ring-page-order, for netif's TX ring only: a 64 KiB GSO frame takes 17 slots, so one page holds 15 of
// them and a sleeping frontend is woken at least once every 15 frames; 2^order pages hold 2^order times as many.
// The backend offers max-tx-ring-page-order; a frontend that wants more than one page writes tx-ring-page-order
// and tx-ring-ref0 .. tx-ring-ref<2^order - 1> instead of tx-ring-ref. Linux's netfront ignores the offer.
inline constexpr uint32_t kTxRingPageOrderMax = 2;
inline constexpr uint32_t kTxRingSizeMax = TxSharedRing::size_for_bytes(4096u << kTxRingPageOrderMax);
static_assert(kTxRingSizeMax == 1024);

}  // namespace pvnet::netif
