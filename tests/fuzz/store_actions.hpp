// The encoding of fuzz_store inputs (a frontend's xenbus keys and states), shared by the target and the seed
// generator. Layout: actions only, each an opcode byte and its operands.
#pragma once
#include <cstdint>

#include "shared-ring/negotiation/keys.hpp"

namespace pvnet::fuzz::store {

// The frontend keys of docs/protocol.md 1-2 (and a few that are not: multi-queue, which pvnet does not speak, and
// a backend key in the wrong directory), written raw with fuzzed values under the guest's vif directory: the lies
// the module's writer would never tell. The order is the seed corpus's encoding: append only.
namespace k = netif::key;
inline constexpr const char* kKeys[] = {
    k::tx_ring_ref, k::rx_ring_ref, k::event_channel, k::event_channel_tx, k::event_channel_rx, k::ctrl_ring_ref,
    k::event_channel_ctrl, k::request_rx_copy, k::feature_rx_notify, k::feature_sg, k::feature_gso_tcpv4,
    k::feature_gso_tcpv6, k::request_header_slots, k::header_slot_size, k::state, "multi-queue-num-queues",
    "queue-0/tx-ring-ref", k::feature_ctrl_ring};
inline constexpr uint32_t kNumKeys = sizeof(kKeys) / sizeof(kKeys[0]);

enum Op : uint8_t {
  kWrite = 0,        // key selector, value selector (+ operands of the value)
  kRemove = 1,       // key selector; 255 removes the whole vif directory
  kState = 2,        // switch_state to any value 0..8 (others: a raw "state" string)
  kConnect = 3,      // the scripted frontend's full, valid connect (fresh rings, ports, keys, Connected), options
  kPoll = 4,
  kPeer = 5,         // the healthy peer sends and receives (checked)
  kForeignWrite = 6, // the guest tries to write outside its own directory (must fail)
  kRegister = 7,     // GET + ADD of header-slot pages, if the vif is connected with header slots
  kOps = 8,
};

// Value selectors for kWrite.
enum Value : uint8_t {
  kZero, kOne, kTwo, kMinusOne, kU32Max, kU32MaxPlus1, kHuge, k64, k2048, k4096, k100, kEmpty, kJunk, kSpaceOne,
  kHex, kCopyKey /* + key selector: another key's current value */, kRawBytes /* + len + bytes */, kSmall /* + u8 */,
  kValues
};

}  // namespace pvnet::fuzz::store
