// Why the guest side (a trace sender, the TAP frontend, the receiving guest of a replay) did not carry a frame:
// the frontend-side counterpart of the backend's DropReason (backend/drop_reason.hpp). The counters stay maps
// keyed by the reason's name, so the JSON is what it was; to_string is the one place a name is spelled.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace pvnet {

enum class GuestDrop : uint8_t {
  stopped,                  // read from the trace, never queued: SIGTERM/SIGINT came first
  frontend_refused,         // Netfront::transmit refused the frame (its error says why)
  not_connected,            // the TAP frontend had a frame while netfront was not connected
  rx_error_at_destination,  // the receiving netfront got an error response for it
  rx_gso_not_tcp,           // received with a GSO type a TAP cannot carry
  tap_runt,                 // read from the TAP shorter than an Ethernet header
  tap_read_error,           // read(2) on the TAP failed
  tap_write_busy,           // write(2) to the TAP said EAGAIN
  tap_write_error,          // write(2) to the TAP failed otherwise
  backend_dropped,          // the backend answered NETIF_RSP_DROPPED
  backend_error,            // the backend answered NETIF_RSP_ERROR
};
const char* to_string(GuestDrop r);

// One more frame (or `n`) dropped for `r`, in a reason -> count map.
inline void count_drop(std::map<std::string, uint64_t>& m, GuestDrop r, uint64_t n = 1) { m[to_string(r)] += n; }

}  // namespace pvnet
