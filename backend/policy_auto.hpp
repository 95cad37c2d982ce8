// auto: header slots (as `slots`), and for the payload whatever is cheapest for the packet's sink and size, from
// costs measured at start-up with the backend's own GrantMapper on scratch grants dom0 makes to itself:
//   a sink that never reads the payload (vif forwards gref -> gref, null inspects headers) -> leave it unmapped;
//   a sink that reads it (pcap) -> the cheapest of: grant-copy into dom0 memory in the poll's copy batch, map in
//   the poll's map batch, or lazy (one fault per page touched).
// On this machine class copying wins whenever dom0 reads (docs/machine-notes.md), and auto finds that out by measuring.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json_fwd.hpp>

#include "backend/payload_policy.hpp"

namespace pvnet {

// Medians, in ns. A model: cost of moving B payload bytes in P pages (P grant ops) to where dom0 can read them.
struct PayloadCosts {
  double memcpy_per_byte = 0;          // slope between a 64 B and a 4 KiB memcpy
  double grant_copy_per_call = 0;      // one GrantMapper::copy batch, beyond its ops
  double grant_copy_per_op = 0;        // one more op in the batch, beyond its bytes
  double grant_copy_per_byte = 0;
  double map_touch_unmap_per_page = 0; // map batch of one + touch + unmap batch of one
  double lazy_fault_per_page = 0;      // assign + touch (the fault maps) + release (the unmap)
  uint32_t iterations = 0;             // samples behind each median
  bool measured = false;               // false: the measurement failed, these are docs/machine-notes.md's figures
  std::string note;                    // why not measured

  // Time dom0 spends making the bytes readable (the sink's own read is the same in every case and left out).
  double copy_ns(uint32_t bytes, uint32_t pages) const;
  double map_ns(uint32_t pages) const;
  double lazy_ns(uint32_t pages) const;
};
void to_json(nlohmann::json& j, const PayloadCosts& c);

enum class PayloadChoice : uint8_t { leave, copy, map, lazy };
const char* to_string(PayloadChoice c);

// The rule: `reads` is the sink's reads_payload(), bytes and pages the packet's payload.
PayloadChoice choose_payload(const PayloadCosts& c, bool reads, uint32_t bytes, uint32_t pages);

struct PayloadDecision {
  bool reads = false;
  uint32_t bytes = 0, pages = 0;
  PayloadChoice choice = PayloadChoice::leave;
};
// The decision for typical payload sizes (64 B to 64 KiB), each with and without a reading sink.
std::vector<PayloadDecision> decision_table(const PayloadCosts& c);

// `iterations` samples per figure (a few hundred), on a handful of dom0's own pages granted to itself.
Result<PayloadCosts> measure_payload_costs(Platform& dom0, uint32_t iterations = 300);

class AutoPolicy final : public PayloadPolicy {
 public:
  AutoPolicy(GrantMapper& mapper, size_t window_slots, PayloadCosts costs);
  PayloadPolicyKind kind() const override { return PayloadPolicyKind::automatic; }
  void prepare(TxPacket& pkt, bool sink_reads_payload, TxBatch& batch) override;
  const PayloadCosts& costs() const { return costs_; }
  Result<void> reserve() { return reserve_window(); }
  // Packets per choice so far (what auto did, for reports and tests).
  uint64_t chosen(PayloadChoice c) const { return chosen_[static_cast<size_t>(c)]; }

 private:
  PayloadCosts costs_;
  uint64_t chosen_[4] = {};
};

Result<std::unique_ptr<PayloadPolicy>> make_auto_policy(Platform& dom0, size_t window_slots);

}  // namespace pvnet
