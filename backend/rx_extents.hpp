// The backend's side of the RX extents extension (docs/protocol.md section 7): the frontend's extents table, mapped
// once at connect and kept like the header-slot pages, and the RX buffers taken off the ring but not yet filled.
// Internal to backend/*.cpp.
#pragma once
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>

#include "grant-sim/platform/grant_mapper.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet {

// One RX buffer as the backend uses it: the request (private copy) and the extent of its page it may write.
struct RxBuf {
  netif::RxRequest req{};
  uint16_t offset = 0;
  uint16_t length = kPageSize;
};

struct RxExtents {
  bool active = false;              // negotiated for this connection
  const std::byte* table = nullptr; // the kept read-only mapping of the frontend's extents table
  uint16_t headroom = 0;            // rx-extent-headroom: left free at the start of a frame's first buffer
  // Buffers consumed from the ring whose frame has not come yet. With extents a frame's buffer count is known only
  // after reading the extents, so requests are consumed into here (once) and used in ring order.
  std::deque<RxBuf> held;

  // The extent of request `req`, copied out of shared memory with ONE read (the guest may rewrite the table at any
  // time) and checked. nullopt: a protocol violation.
  std::optional<RxBuf> take(const netif::RxRequest& req) const {
    static_assert(netif::kRxRingSize * sizeof(netif::RxExtent) <= kPageSize);
    if (req.id >= netif::kRxRingSize) return std::nullopt;
    netif::RxExtent e;
    std::memcpy(&e, table + size_t{req.id} * sizeof(netif::RxExtent), sizeof e);
    if (e.length == 0 || e.length <= headroom || uint32_t{e.offset} + e.length > kPageSize) return std::nullopt;
    return RxBuf{req, e.offset, e.length};
  }
  void reset() { *this = RxExtents{}; }
};

}  // namespace pvnet
