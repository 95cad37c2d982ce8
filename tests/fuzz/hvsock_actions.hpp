// The encoding of fuzz_hvsock inputs (a hostile guest speaking the hypervisor socket's protocol itself, with real
// fds), shared by the target and the seed generator. Layout: actions only, each an opcode byte and its operands.
#pragma once
#include <cstdint>

namespace pvnet::fuzz::hvsock {

inline constexpr int kSlots = 4;  // hostile connections open at once, on the guest socket

enum Op : uint8_t {
  kConnect = 0,    // slot
  kHello = 1,      // slot, dom sel, mode (any byte), mem sel, grants sel
  kAdopt = 2,      // slot, dom sel, grants sel, tables byte, nregions (0..5), per region: first, nr, offset, fd kind
  kRaw = 3,        // slot, sel (bit 7: a u32 magic follows; low 4 bits: the op, 0: a u32 op follows), len, bytes,
                   // nfds (0..7), fd kinds
  kGetDomain = 4,  // slot, dom sel
  kStore = 5,      // slot, request (read/write/watch/set_perms/alloc_unbound/bind), path sel, u8 arg
  kTruncate = 6,   // memfd selector (of those sent this run), size sel: the sender truncates one it kept
  kGrant = 7,      // slot, u16 ref, u32 frame, u8 flags: the guest writes an entry of its own grant table
  kDom0Copy = 8,   // slot, u16 ref, u8 offset, u8 len: dom0 grant-copies into (or maps) that guest's grant
  kClose = 9,      // slot
  kCheck = 10,     // dom0 and the healthy pair still work (also run at the end)
  kOps = 11,
};

// Fd kinds (an adopt's region fds, a raw message's fds).
enum FdKind : uint8_t {
  kSealedMemfd,     // + size sel: F_SEAL_SHRINK|GROW
  kShrinkSealed,    // + size sel: F_SEAL_SHRINK only (may grow)
  kUnsealedMemfd,   // + size sel: kept, so kTruncate can shrink it later
  kWriteSealed,     // + size sel: F_SEAL_WRITE (dom0 cannot map it writable)
  kPipe,
  kEventfd,
  kDevNull,
  kOwnSocket,
  kFdKinds
};

// Selectors: index % count into these.
inline constexpr uint16_t kDoms[] = {3, 4, 5, 6, 0, 1, 2, 0x7fef, 0x7ff0, 0xffff};
inline constexpr uint64_t kMems[] = {0, 1, 4096, 16 * 4096, 3 * 4096 + 1, uint64_t{64} << 30, (uint64_t{64} << 30) + 1,
                                     ~uint64_t{0}};
inline constexpr uint32_t kGrants[] = {0, 8, 9, 32, 32768, 32769, 1u << 26, 0xffffffffu};
inline constexpr uint64_t kFirsts[] = {0, 1, 16, (uint64_t{1} << 32) - 4, uint64_t{1} << 32, uint64_t{1} << 52,
                                       ~uint64_t{0} - 3, 8};
inline constexpr uint64_t kNrPages[] = {0, 1, 4, 16, uint64_t{1} << 24, (uint64_t{1} << 24) + 1,
                                        (uint64_t{1} << 52) + 4, ~uint64_t{0}};
inline constexpr uint64_t kOffsets[] = {0, 4096, 1, uint64_t{1} << 63, ~uint64_t{0} - 4095, 2 * 4096};
inline constexpr uint64_t kSizes[] = {0, 1, 4095, 4096, 8192, 3 * 4096 + 17, 16 * 4096, 64 * 4096};

}  // namespace pvnet::fuzz::hvsock
