#include "tools/replay/guest_drop.hpp"

namespace pvnet {

const char* to_string(GuestDrop r) {
  switch (r) {
    case GuestDrop::stopped: return "stopped";
    case GuestDrop::frontend_refused: return "frontend_refused";
    case GuestDrop::not_connected: return "not_connected";
    case GuestDrop::rx_error_at_destination: return "rx_error_at_destination";
    case GuestDrop::rx_gso_not_tcp: return "rx_gso_not_tcp";
    case GuestDrop::tap_runt: return "tap_runt";
    case GuestDrop::tap_read_error: return "tap_read_error";
    case GuestDrop::tap_write_busy: return "tap_write_busy";
    case GuestDrop::tap_write_error: return "tap_write_error";
    case GuestDrop::backend_dropped: return "backend_dropped";
    case GuestDrop::backend_error: return "backend_error";
  }
  return "unknown";
}

}  // namespace pvnet
