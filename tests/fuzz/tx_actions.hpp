// The encoding of fuzz_tx inputs (a hostile frontend's actions on its TX ring), shared by the target (decoder) and
// the seed generator (encoder). Layout: 3 config bytes, then actions, each an opcode byte and its operands
// (FuzzInput reads; missing bytes read as zero).
#pragma once
#include <cstdint>
#include <span>

#include "tests/fuzz/fuzz_input.hpp"

namespace pvnet::fuzz::tx {

// Config byte 0.
inline constexpr uint8_t kCfgHeaderSlots = 1 << 0;  // the guest asks for header slots (and a control ring)
inline constexpr uint8_t kCfgReadingSink = 1 << 1;  // the guest's vif reads payload through the lazy window
inline constexpr uint8_t kCfgSplitEvtchn = 1 << 2;
// bits 3-5: header-slot size 64 << n (n 0..5; 6, 7 mean 128)
inline constexpr uint8_t kCfgGso = 1 << 6;
inline constexpr uint8_t kCfgSg = 1 << 7;
// Config byte 1: slot pages 1 + b % 4. Config byte 2: MTU 1500, 9000, 68 or 576 by b % 4; payload policy by
// (b >> 2) % 5: slots, copy, map, hdrcopy, auto.

enum Op : uint8_t {
  kFrame = 0,     // a well-formed packet (ScriptedFrontend::build) from frame bytes, then field mutations
  kRaw = 1,       // 1..4 requests with any gref / offset / flags / id / size
  kExtra = 2,     // one extra-info slot: any type, flags, GSO size/type/features
  kAdvance = 3,   // req_prod += any amount, without writing the slots
  kRewrite = 4,   // overwrite an already-published ring slot with 12 raw bytes
  kScribble = 5,  // write into a header-slot page (the guest may rewrite a slot at any time)
  kNotify = 6,    // push (and notify when the ring says so)
  kPoll = 7,      // the backend polls 1..4 times
  kPeer = 8,      // the healthy peer sends a frame and receives one (checked)
  kRevoke = 9,    // the guest ends access to a payload or slot grant
  kSlotCtrl = 10, // DEL (even) or re-ADD (odd) of the guest's registered header-slot pages
  kOps = 11,
};

// Frame mode bits for kFrame.
inline constexpr uint8_t kFrameSlot = 1 << 0;  // header in a header slot (when negotiated)
inline constexpr uint8_t kFrameGso = 1 << 1;
inline constexpr uint8_t kFrameGsoV6 = 1 << 2;
// bits 3-7: payload page offset in 128-byte units

inline void encode_config(FuzzWriter& w, uint8_t cfg0, uint8_t slot_pages_m1, uint8_t mtu_sel) {
  w.u8(cfg0).u8(slot_pages_m1).u8(mtu_sel);
}

// kFrame operands: mode, header_len, mss, frame length, frame bytes, then the number of mutations (0 here).
inline void encode_frame(FuzzWriter& w, std::span<const std::byte> frame, uint8_t mode, uint16_t header_len,
                         uint16_t mss) {
  w.u8(kFrame).u8(mode).u16(header_len).u16(mss).u16(static_cast<uint16_t>(frame.size())).bytes(frame).u8(0);
}

inline void encode_poll(FuzzWriter& w, uint8_t rounds = 1) { w.u8(kPoll).u8(rounds); }

}  // namespace pvnet::fuzz::tx
