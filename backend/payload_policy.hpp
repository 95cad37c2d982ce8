// The payload policy: what dom0 does with a TX packet's bytes beyond its header. This is the seam the project's
// comparison turns on (docs/performance.md "Policies"): the same frontend, backend and traffic under
//   copy     grant-copy the whole packet into dom0 memory            QEMU's xen_nic (user-space backends)
//   map      map every page (the first one too), memcpy the header   classic netback before grant copy
//            out of the mapping, unmap in one batch when done
//   hdrcopy  grant-copy the first 128 bytes, map the rest            Linux xen-netback TX since 3.14
//   slots    header out of a kept header slot; payload unmapped,     this project
//            mapped only when a sink touches it (lazy window)
//   auto     header slots; per sink and payload size, what the costs measured at start-up say is cheapest
//
// Per poll the TX path asks the policy, for every packet, to add what it needs to the poll's batches (prepare),
// runs ONE batched map and ONE batched grant copy for the whole poll, lets the policy see the results (resolve),
// and at the end of the poll the policy gives everything back in ONE batched unmap (end_poll).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "backend/tx_packet.hpp"
#include "grant-sim/platform/grant_mapper.hpp"
#include "grant-sim/platform/lazy_window.hpp"
#include "grant-sim/platform/platform.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

enum class PayloadPolicyKind : uint8_t { slots, copy, map, hdrcopy, automatic };
const char* to_string(PayloadPolicyKind k);  // automatic is "auto"
std::optional<PayloadPolicyKind> parse_payload_policy(std::string_view name);
inline constexpr PayloadPolicyKind kAllPayloadPolicies[] = {PayloadPolicyKind::copy, PayloadPolicyKind::map,
                                                            PayloadPolicyKind::hdrcopy, PayloadPolicyKind::slots,
                                                            PayloadPolicyKind::automatic};

// Everything about a policy that the rest of the backend depends on, in one place: the TX path and the probe ask
// these instead of testing the policy's name.
struct PayloadPolicyTraits {
  // Offer feature-header-slots. copy, map and hdrcopy model backends that predate the extension: the frontend
  // falls back to plain netif by itself.
  bool offers_header_slots = false;
  // Plain netif (no header slot): how the header leaves the first request's page. Either a grant copy of the
  // first `plain_header_copy` bytes, or (map_first_page) the whole first piece is mapped with the payload and the
  // first `plain_header_copy` bytes are memcpy'd out of the mapping into private memory before anything parses
  // them (no double fetch).
  bool map_first_page = false;
  uint32_t plain_header_copy = 128;  // XEN_NETBACK_TX_COPY_LEN
};
PayloadPolicyTraits payload_policy_traits(PayloadPolicyKind k);

// The grant operations of one TX poll, each issued as one batch (one hypercall-equivalent).
struct TxBatch {
  std::vector<CopyOp> copies;  // header copies and payload copies
  std::vector<MapOp> maps;     // payload (and, under map, first-page) mappings
};

class PayloadPolicy {
 public:
  virtual ~PayloadPolicy();
  PayloadPolicy(const PayloadPolicy&) = delete;
  PayloadPolicy& operator=(const PayloadPolicy&) = delete;
  virtual PayloadPolicyKind kind() const = 0;
  PayloadPolicyTraits traits() const { return payload_policy_traits(kind()); }

  // Before the poll's batches run: add this packet's payload operations to `batch` (pkt.frags hold grant refs;
  // pkt must not move its payload_copy buffer afterwards). `sink_reads_payload`: Sink::reads_payload() of the
  // packet's sink. Frags left as FragSource::grant are forwarded by grant or made readable lazily by expose().
  virtual void prepare(TxPacket& pkt, bool sink_reads_payload, TxBatch& batch) = 0;
  // After the batches ran, once per poll: take ownership of every mapping the batch made (end_poll unmaps them).
  void batch_done(const TxBatch& batch);
  // After batch_done, per prepared packet: point the frags at their mapped or copied bytes. An error (a grant the
  // guest revoked or never made) means drop the packet; what was mapped for it is still unmapped by end_poll.
  Result<void> resolve(TxPacket& pkt, const TxBatch& batch) const;

  // For a sink that reads the payload: sets TxFrag::data for every frag still a plain grant (lazily: nothing is
  // mapped until the sink reads it, one fault per page). Pointers stay valid until end_poll() (or until a later
  // expose() finds the window full and recycles it: sinks read a packet's payload before they take the next one).
  Result<void> expose(TxPacket& pkt);
  // After the sink read the exposed bytes: whether every page really came in. A grant the guest revoked or never
  // made reads as zeros through the lazy window (the fault handler maps a scratch page), so the sink must drop on
  // error. Also reports how many payload pages this packet made dom0 map (eagerly or on a fault).
  Result<void> verify(const TxPacket& pkt, uint64_t* pages_touched) const;
  // End of a poll: give back everything mapped in it, in one batch (one unmap hypercall, one TLB shootdown).
  void end_poll();

 protected:
  PayloadPolicy(GrantMapper& mapper, size_t window_slots) : mapper_(mapper), window_slots_(window_slots) {}
  // The mechanisms the policies are made of.
  static void copy_payload(TxPacket& pkt, TxBatch& batch);  // grant-copy every frag into pkt.payload_copy
  static void map_payload(TxPacket& pkt, TxBatch& batch);   // map every frag's page
  Result<void> reserve_window() { return ensure_window(); }

  GrantMapper& mapper_;

 private:
  Result<void> ensure_window();  // the lazy window, reserved on first use (slots and auto reserve it up front)
  void release_window();

  size_t window_slots_;
  std::unique_ptr<LazyWindow> window_;  // made on first use: policies that never expose lazily never reserve it
  std::vector<size_t> window_used_;
  std::vector<UnmapOp> mapped_;  // this poll's eager mappings
};

// `window_slots`: pages the lazy window can stand for at once. `dom0` gives auto the scratch grants it measures
// costs on; the other policies only use its mapper.
Result<std::unique_ptr<PayloadPolicy>> make_payload_policy(PayloadPolicyKind kind, Platform& dom0,
                                                           size_t window_slots);

}  // namespace pvnet
