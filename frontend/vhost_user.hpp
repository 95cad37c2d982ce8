// vhost-user, device ("back-end"/slave) side, for one virtio-net device with one RX and one TX queue. QEMU is the
// front-end: it connects to our Unix socket (or we connect to its server=on socket) and sends the messages of
// docs/interop/vhost-user.rst (QEMU 7.2): a 12-byte header {request, flags, size} + payload, file descriptors as
// SCM_RIGHTS ancillary data. We implement the subset a virtio-net vhost-user device needs (see kSupported below);
// anything else is answered as "unsupported" (an error reply where a reply is expected) and counted.
//
// The guest's RAM arrives in SET_MEM_TABLE as memfd regions; GuestMemoryTable maps them and translates guest
// physical addresses (descriptors) and QEMU's virtual addresses (vring addresses) with bounds checks.
#pragma once
#include <fcntl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::vhost {

// Request codes (vhost-user.rst, "Front-end message types").
enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetMaxMemSlots = 36,
  kSetStatus = 39,
  kGetStatus = 40,
};
const char* request_name(uint32_t request);

inline constexpr uint32_t kFlagVersion = 0x1;   // header flags bits 0-1: protocol version 1
inline constexpr uint32_t kFlagReply = 0x4;
inline constexpr uint32_t kFlagNeedReply = 0x8;  // REPLY_ACK: the front-end wants a u64 status (0 = success)
inline constexpr uint64_t kVringIdxMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1ull << 8;  // SET_VRING_KICK/CALL/ERR: no fd (polling)
inline constexpr uint32_t kMaxRegions = 8;         // VHOST_MEMORY_BASELINE_NREGIONS
inline constexpr uint32_t kMaxPayload = 4096;

// Protocol features (vhost-user.rst "Protocol features").
inline constexpr uint64_t kProtoMq = 1ull << 0;
inline constexpr uint64_t kProtoReplyAck = 1ull << 3;
inline constexpr uint64_t kProtoConfig = 1ull << 9;

// Device feature bits (virtio 1.1 + vhost).
namespace feat {
inline constexpr uint64_t kNetCsum = 1ull << 0;        // device handles partial csum (guest TX)
inline constexpr uint64_t kNetGuestCsum = 1ull << 1;   // driver handles partial csum (guest RX)
inline constexpr uint64_t kNetMtu = 1ull << 3;
inline constexpr uint64_t kNetMac = 1ull << 5;
inline constexpr uint64_t kNetGuestTso4 = 1ull << 7;
inline constexpr uint64_t kNetGuestTso6 = 1ull << 8;
inline constexpr uint64_t kNetHostTso4 = 1ull << 11;
inline constexpr uint64_t kNetHostTso6 = 1ull << 12;
inline constexpr uint64_t kNetMrgRxbuf = 1ull << 15;
inline constexpr uint64_t kNetStatus = 1ull << 16;
inline constexpr uint64_t kRingIndirectDesc = 1ull << 28;
inline constexpr uint64_t kRingEventIdx = 1ull << 29;
inline constexpr uint64_t kAnyLayout = 1ull << 27;
inline constexpr uint64_t kProtocolFeatures = 1ull << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr uint64_t kVersion1 = 1ull << 32;
}  // namespace feat

#pragma pack(push, 1)
struct MsgHeader {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
};
struct VringState {
  uint32_t index = 0;
  uint32_t num = 0;
};
struct VringAddr {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t desc_user_addr = 0;
  uint64_t used_user_addr = 0;
  uint64_t avail_user_addr = 0;
  uint64_t log_guest_addr = 0;
};
struct MemRegionDesc {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;
  uint64_t userspace_addr = 0;
  uint64_t mmap_offset = 0;
};
struct MemoryDesc {
  uint32_t nregions = 0;
  uint32_t padding = 0;
  MemRegionDesc regions[kMaxRegions];
};
#pragma pack(pop)
static_assert(sizeof(MsgHeader) == 12 && sizeof(VringAddr) == 40 && sizeof(MemRegionDesc) == 32);

struct Message {
  MsgHeader hdr;
  std::vector<std::byte> payload;
  std::vector<UniqueFd> fds;

  template <class T>
  bool get(T* out) const {  // the payload as T (exact or larger size, as QEMU sometimes pads)
    if (payload.size() < sizeof(T)) return false;
    std::memcpy(out, payload.data(), sizeof(T));
    return true;
  }
};

// Blocking-free framing on a SOCK_STREAM Unix socket. read_message returns EAGAIN when nothing (complete) is
// there yet; partial messages are buffered. A peer that closes gives ECONNRESET.
class Channel {
 public:
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }
  Result<Message> read_message();
  Result<void> send(uint32_t request, uint32_t flags, std::span<const std::byte> payload,
                    std::span<const int> fds = {});
  template <class T>
  Result<void> reply(const Message& to, const T& value) {
    return send(to.hdr.request, kFlagVersion | kFlagReply,
                std::span<const std::byte>(reinterpret_cast<const std::byte*>(&value), sizeof(T)));
  }

 private:
  UniqueFd fd_;
  std::vector<std::byte> in_;
  std::vector<UniqueFd> in_fds_;
};

// A kick or call fd from SET_VRING_KICK / SET_VRING_CALL must be an eventfd in counter mode: any other kind would
// make the device spin (a regular file or a hung-up pipe polls readable for ever, a semaphore eventfd gives one
// kick per read of an arbitrarily large count) or block (a full pipe). `what` names the fd in the reason.
Result<void> check_eventfd(int fd, const std::string& what);

// The seals a front-end's RAM fd must carry: without F_SEAL_SHRINK it could truncate the memfd under dom0's
// mappings and turn a read into SIGBUS; F_SEAL_GROW keeps the domain's memory what it was adopted as (both are
// what QEMU's memory-backend-memfd sets with its default seal=on).
inline constexpr int kRequiredRamSeals = F_SEAL_SHRINK | F_SEAL_GROW;

// The guest's RAM as the front-end described it in SET_MEM_TABLE.
class GuestMemoryTable {
 public:
  struct Region {
    uint64_t gpa = 0, size = 0, uaddr = 0, mmap_offset = 0;
    UniqueFd fd;
    std::byte* host = nullptr;  // the byte at gpa
    void* map_base = nullptr;
    size_t map_len = 0;
  };
  GuestMemoryTable() = default;
  ~GuestMemoryTable();
  GuestMemoryTable(const GuestMemoryTable&) = delete;
  GuestMemoryTable& operator=(const GuestMemoryTable&) = delete;
  GuestMemoryTable(GuestMemoryTable&& o) noexcept { *this = std::move(o); }
  GuestMemoryTable& operator=(GuestMemoryTable&& o) noexcept;

  // Maps every region (MAP_SHARED). Fails (nothing kept) on a bad region: zero size, overlap, wrap, an fd that is
  // not a memfd sealed with kRequiredRamSeals, a region past the end of its fd, mmap error.
  static Result<GuestMemoryTable> create(std::span<const MemRegionDesc> descs, std::vector<UniqueFd> fds);

  // [gpa, gpa + len) as host bytes if it lies inside ONE region, else nullptr. len 0 is refused.
  std::byte* gpa_to_host(uint64_t gpa, uint64_t len) const;
  // A front-end virtual address range (vring addresses) to a guest physical address, if inside one region.
  bool uaddr_to_gpa(uint64_t uaddr, uint64_t len, uint64_t* gpa) const;
  const std::vector<Region>& regions() const { return regions_; }
  bool same_layout(std::span<const MemRegionDesc> descs) const;

 private:
  void unmap();
  std::vector<Region> regions_;
};

}  // namespace pvnet::vhost
