// The main job: replay a real trace through pvnet. Guest A's netfront transmits every frame of the trace; dom0's
// netback judges each one and hands it to a sink: `vif` forwards it to guest B's RX ring (B writes what it
// received), `pcap` makes dom0 write it itself, `null` drops it after header inspection. Everything runs on the
// simulated hypervisor, in this process (the same code runs across processes with `pvnet backend` / `pvnet
// frontend`). The result counts what went in, what came out, what was dropped and why, and what dom0 paid.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <nlohmann/json.hpp>

#include "backend/payload_policy.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::tools {

enum class SinkKind : uint8_t { vif, pcap, null };
const char* to_string(SinkKind k);

struct ReplayOptions {
  std::string in;    // pcap or pcapng of Ethernet frames
  std::string out;   // received frames (vif: written by guest B; pcap: written by dom0); empty for null
  PayloadPolicyKind policy = PayloadPolicyKind::slots;
  SinkKind sink = SinkKind::vif;
  bool header_slots = true;      // frontend asks for header slots (off: plain netif)
  uint32_t slot_size = 128;
  uint32_t mtu = 9000;           // vif MTU: TCP frames longer than this go as GSO, other longer ones are dropped
  uint32_t data_offset = 0;      // where the guest stack puts each frame in its first page
  uint32_t repeat = 1;           // replay the trace this many times (for measurements on small traces)
  bool progress = false;         // force the progress line even when stderr is not a terminal
  uint64_t guest_mem_bytes = 64ull << 20;
};

struct ReplayStats {
  uint64_t packets_in = 0;   // frames read from the trace (times repeat)
  uint64_t bytes_in = 0;
  uint64_t packets_out = 0;  // frames that reached the output (B's RX, dom0's pcap, or the null sink)
  uint64_t bytes_out = 0;
  std::map<std::string, uint64_t> dropped;  // reason -> frames
  uint64_t elapsed_ns = 0;   // from the first transmit to the last completion
  nlohmann::json detail;     // backend, frontend and grant counters
  nlohmann::json to_json() const;
  uint64_t dropped_total() const;
};

// Fails on bad input (unreadable trace, not Ethernet, truncated) or if the drivers cannot connect; every frame
// of a trace that loads is then either counted out or counted dropped with a reason.
Result<ReplayStats> run_replay(const ReplayOptions& options);

}  // namespace pvnet::tools
