// Store keys of the recall handshake (docs/protocol.md "Recall"), shared by both ends.
#pragma once

namespace pvnet::recall_key {
inline constexpr const char* request = "recall";           // frontend: "<seq> <gref> <gref> ..."
inline constexpr const char* done = "recall-done";         // backend: "<seq>" once those grefs are released
inline constexpr const char* refused = "recall-refused";   // backend: grefs it cannot release (rings), or empty
}  // namespace pvnet::recall_key
