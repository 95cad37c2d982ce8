// The payload policy: how a TX packet's payload (its grant references, left unmapped by the TX path) is made
// readable for a sink that must read it. This is the seam the project's comparison turns on (docs/DESIGN):
//   slots    payload pages mapped only when touched, through a lazy window (one fault = one map); this project
//   copy     grant-copy the whole payload into dom0 memory (user-space backends such as QEMU's xen_nic)
//   map      map every payload page up front, unmap in one batch when done (classic netback)
//   hdrcopy  grant-copy 128 header bytes, map the rest (Linux xen-netback TX today)
// A sink that forwards by grant copy (vif) never asks, so under every policy nothing is mapped for it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "backend/tx_packet.hpp"
#include "grant-sim/grant_mapper.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

enum class PayloadPolicyKind : uint8_t { slots, copy, map, hdrcopy };
const char* to_string(PayloadPolicyKind k);
std::optional<PayloadPolicyKind> parse_payload_policy(std::string_view name);

class PayloadPolicy {
 public:
  virtual ~PayloadPolicy() = default;
  virtual PayloadPolicyKind kind() const = 0;
  // Sets TxFrag::data for every frag of `pkt`. Under `slots` the pointers are lazy: nothing is mapped until the
  // sink reads them. Pointers stay valid until end_poll() (or until a later expose() finds the window full and
  // recycles it: sinks read a packet's payload before they take the next one).
  virtual Result<void> expose(TxPacket& pkt) = 0;
  // After the sink read the exposed bytes: whether every page really came in. A grant the guest revoked or never
  // made reads as zeros under `slots` (the fault handler maps a scratch page), so the sink must drop on error.
  // Also reports how many payload pages this packet made dom0 touch (map or fault).
  virtual Result<void> verify(const TxPacket& pkt, uint64_t* pages_touched) const = 0;
  // End of a poll: give back everything exposed in it, in one batch (one unmap hypercall, one TLB shootdown).
  virtual void end_poll() = 0;
};

// `window_slots`: pages the lazy window can stand for at once (slots policy).
Result<std::unique_ptr<PayloadPolicy>> make_payload_policy(PayloadPolicyKind kind, GrantMapper& mapper,
                                                           size_t window_slots);

}  // namespace pvnet
