// The SimServer/SimClient socket protocol. One SOCK_SEQPACKET connection per client Platform; every message is
// one packet; fds ride along as SCM_RIGHTS. Strictly request/reply, the client always waits for its reply (so
// the server never queues output): watch events are queued by the server's StoreTree and signalled through an
// eventfd the client received at hello; the client then fetches them with store_read_watches.
//
//   request: u32 magic, u32 op, then op-specific fields
//   reply:   u32 magic, i32 code (0 = ok, else an errno/GNTST value), string reason, then op-specific fields
//   integers little-endian (host order: both ends are on one machine), string = u32 length + bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include "grant-sim/sim/domain_shm.hpp"
#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {

inline constexpr uint32_t kWireMagic = 0x70766831;        // "pvh1"
inline constexpr size_t kWireMaxMessage = 64 * 1024;
inline constexpr size_t kWireMaxFds = 64;

// A server listens on two sockets (docs/security.md, "The simulator's trust model"): the guest socket PATH, where a
// client creates or adopts a fresh domain and then acts for it alone, and the privileged one at
// privileged_socket_path(PATH) (mode 0600, peers of our own uid only), where the toolstack and driver domains
// attach to any domain, dom0 included, and reach other domains' memory.
std::string privileged_socket_path(const std::string& socket_path);

enum class WireOp : uint32_t {
  hello = 1,  // u16 dom, u8 mode (WireHelloMode), u64 mem_bytes, u32 nr_grant_entries, [adopt: shm, no tables]
              // -> shm of the domain (a guest: without the active table), fds: ..., evtchn status map (read-only),
              //    watch eventfd
  store_read,        // str path -> str value
  store_write,       // str path, str value
  store_remove,      // str path
  store_directory,   // str path -> u32 n, n * str
  store_watch,       // str path, str token
  store_unwatch,     // str path, str token
  store_read_watches,  // -> u32 n, n * (str path, str token)
  store_set_perms,   // str path, perms
  store_get_perms,   // str path -> perms
  evtchn_alloc_unbound,     // u16 remote -> binding
  evtchn_bind_interdomain,  // u16 remote, u32 remote_port -> binding
  evtchn_unbind,            // u32 port
  evtchn_peer,              // u32 port -> u32 slot, u32 gen, u8 connected, [fd peer eventfd]
  get_domain,               // u16 dom -> shm, u8 has_ledger, [u32 lock tag, fd ledger]. Privileged only (a guest: EPERM)
};

enum class WireHelloMode : uint8_t { attach = 0, create = 1, adopt = 2 };

class WireWriter {
 public:
  WireWriter& u8(uint8_t v) { return raw(&v, 1); }
  WireWriter& u16(uint16_t v) { return raw(&v, 2); }
  WireWriter& u32(uint32_t v) { return raw(&v, 4); }
  WireWriter& i32(int32_t v) { return raw(&v, 4); }
  WireWriter& u64(uint64_t v) { return raw(&v, 8); }
  WireWriter& str(std::string_view s);
  WireWriter& fd(int fd) { fds_.push_back(fd); return *this; }  // not owned: must stay open until sent
  WireWriter& fd(UniqueFd fd) {  // owned until the writer goes
    fds_.push_back(fd.get());
    owned_.push_back(std::move(fd));
    return *this;
  }
  const std::vector<std::byte>& bytes() const { return buf_; }
  const std::vector<int>& fds() const { return fds_; }

 private:
  WireWriter& raw(const void* p, size_t n);
  std::vector<std::byte> buf_;
  std::vector<int> fds_;
  std::vector<UniqueFd> owned_;
};

// Bounds-checked: a short or malformed message sets failed() and yields zeros; the fds are owned.
class WireReader {
 public:
  WireReader(std::vector<std::byte> data, std::vector<UniqueFd> fds) : buf_(std::move(data)), fds_(std::move(fds)) {}
  uint8_t u8() { uint8_t v = 0; raw(&v, 1); return v; }
  uint16_t u16() { uint16_t v = 0; raw(&v, 2); return v; }
  uint32_t u32() { uint32_t v = 0; raw(&v, 4); return v; }
  int32_t i32() { int32_t v = 0; raw(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; raw(&v, 8); return v; }
  std::string str();
  UniqueFd fd();  // the next fd in order; failed() if there is none
  bool failed() const { return failed_; }
  void fail() { failed_ = true; }
  bool at_end() const { return pos_ == buf_.size(); }
  size_t fds_left() const { return fds_.size() - next_fd_; }

 private:
  void raw(void* p, size_t n);
  std::vector<std::byte> buf_;
  std::vector<UniqueFd> fds_;
  size_t pos_ = 0;
  size_t next_fd_ = 0;
  bool failed_ = false;
};

// One packet. send: blocks unless the socket is non-blocking. recv: Error code EAGAIN when nothing is waiting
// (non-blocking sockets), ECONNRESET at end of stream, EPROTO for a truncated packet or truncated fds.
Result<void> wire_send(int sock, const WireWriter& w);
Result<WireReader> wire_recv(int sock);

// A domain's shm on the wire: u16 dom, u32 nr_grant_entries, u8 tables (WireTables, which table fds follow),
// u32 nregions, nregions * (u64 first, u64 nr_pages, u64 fd_offset); fds: [grant table], [active], one per region.
// The decoder checks every number (check_grant_entries, check_region) before anything is computed from it.
enum WireTables : uint8_t { kWireGrantTable = 1, kWireActiveTable = 2 };
void wire_put_shm(WireWriter& w, const DomainShm& shm, uint8_t tables);  // tables: which of shm's to send
Result<DomainShm> wire_get_shm(WireReader& r);
void wire_put_perms(WireWriter& w, const NodePerms& p);
NodePerms wire_get_perms(WireReader& r);

}  // namespace pvnet
