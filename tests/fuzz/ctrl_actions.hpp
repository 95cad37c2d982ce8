// The encoding of fuzz_ctrl inputs (a frontend's control-ring gref-mapping messages), shared by the target and the
// seed generator. Layout: actions only, each an opcode byte and its operands.
#pragma once
#include <cstdint>

namespace pvnet::fuzz::ctrl {

inline constexpr uint32_t kPool = 12;   // guest pages granted to dom0 (even: read-only, odd: writable)
inline constexpr uint32_t kTables = 2;  // guest pages holding gref tables (granted writable)

enum Op : uint8_t {
  kFillTable = 0,   // table, first entry, count, first pool page: entries name consecutive pool grants
  kWriteEntry = 1,  // table, entry (u16), gref selector (u32), flags (u16), status (u32)
  kCall = 2,        // type selector, data[0] selector, table selector (u32), count (u32)
  kRevoke = 3,      // end_access (even) or grant again (odd) of a pool page
  kSlotTx = 4,      // a header-slot packet whose slot is in a pool page (kept or not)
  kPeer = 5,        // the healthy peer sends and receives (checked)
  kPoll = 6,
  kOps = 7,
};

}  // namespace pvnet::fuzz::ctrl
