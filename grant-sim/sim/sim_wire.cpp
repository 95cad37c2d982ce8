#include "grant-sim/sim/sim_wire.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace pvnet {

WireWriter& WireWriter::raw(const void* p, size_t n) {
  auto b = static_cast<const std::byte*>(p);
  buf_.insert(buf_.end(), b, b + n);
  return *this;
}

WireWriter& WireWriter::str(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  return raw(s.data(), s.size());
}

void WireReader::raw(void* p, size_t n) {
  if (failed_ || buf_.size() - pos_ < n) {
    failed_ = true;
    return;
  }
  std::memcpy(p, buf_.data() + pos_, n);
  pos_ += n;
}

std::string WireReader::str() {
  uint32_t n = u32();
  if (failed_ || buf_.size() - pos_ < n) {
    failed_ = true;
    return {};
  }
  std::string s(reinterpret_cast<const char*>(buf_.data() + pos_), n);
  pos_ += n;
  return s;
}

UniqueFd WireReader::fd() {
  if (next_fd_ >= fds_.size()) {
    failed_ = true;
    return {};
  }
  return std::move(fds_[next_fd_++]);
}

Result<void> wire_send(int sock, const WireWriter& w) {
  if (w.bytes().size() > kWireMaxMessage) return make_error(EMSGSIZE, "wire: message too large");
  if (w.fds().size() > kWireMaxFds) return make_error(EMSGSIZE, "wire: too many fds");
  iovec iov{const_cast<std::byte*>(w.bytes().data()), w.bytes().size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<std::byte> ctrl;
  if (!w.fds().empty()) {
    ctrl.resize(CMSG_SPACE(sizeof(int) * w.fds().size()));
    msg.msg_control = ctrl.data();
    msg.msg_controllen = ctrl.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * w.fds().size());
    std::memcpy(CMSG_DATA(c), w.fds().data(), sizeof(int) * w.fds().size());
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return make_error(errno, std::string("wire: sendmsg: ") + std::strerror(errno));
  return {};
}

Result<WireReader> wire_recv(int sock) {
  std::vector<std::byte> buf(kWireMaxMessage);
  alignas(cmsghdr) std::byte ctrl[CMSG_SPACE(sizeof(int) * kWireMaxFds)];
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof ctrl;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return make_error(errno, std::string("wire: recvmsg: ") + std::strerror(errno));
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfd; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if (n == 0) return make_error(ECONNRESET, "wire: peer closed the connection");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return make_error(EPROTO, "wire: truncated message or fds");
  buf.resize(static_cast<size_t>(n));
  return WireReader(std::move(buf), std::move(fds));
}

std::string privileged_socket_path(const std::string& socket_path) { return socket_path + ".priv"; }

void wire_put_shm(WireWriter& w, const DomainShm& shm, uint8_t tables) {
  if (!shm.grant_table) tables &= ~kWireGrantTable;
  if (!shm.active) tables &= ~kWireActiveTable;
  w.u16(shm.dom.value).u32(shm.nr_grant_entries).u8(tables).u32(static_cast<uint32_t>(shm.regions.size()));
  if (tables & kWireGrantTable) w.fd(shm.grant_table.get());
  if (tables & kWireActiveTable) w.fd(shm.active.get());
  for (auto& r : shm.regions) w.u64(r.first.value).u64(r.nr_pages).u64(r.fd_offset).fd(r.fd.get());
}

Result<DomainShm> wire_get_shm(WireReader& r) {
  DomainShm shm;
  shm.dom = DomId{r.u16()};
  shm.nr_grant_entries = r.u32();
  const uint8_t tables = r.u8();
  const uint32_t nregions = r.u32();
  if (r.failed() || (tables & ~(kWireGrantTable | kWireActiveTable)) != 0 || nregions == 0 ||
      nregions > kWireMaxFds - 2)
    return make_error(EPROTO, "wire: bad domain shm");
  if (auto ok = check_grant_entries(shm.nr_grant_entries); !ok) return ok.error();
  if (tables & kWireGrantTable) shm.grant_table = r.fd();
  if (tables & kWireActiveTable) shm.active = r.fd();
  for (uint32_t i = 0; i < nregions && !r.failed(); ++i) {
    MemRegion m;
    m.first = Pfn{r.u64()};
    m.nr_pages = r.u64();
    m.fd_offset = r.u64();
    m.fd = r.fd();
    if (r.failed()) break;
    if (auto ok = check_region(m.first.value, m.nr_pages, m.fd_offset); !ok) return ok.error();
    shm.regions.push_back(std::move(m));
  }
  if (r.failed()) return make_error(EPROTO, "wire: bad domain shm");
  return shm;
}

void wire_put_perms(WireWriter& w, const NodePerms& p) {
  w.u16(p.owner.value).u32(static_cast<uint32_t>(p.writers.size()));
  for (auto d : p.writers) w.u16(d.value);
  w.u32(static_cast<uint32_t>(p.readers.size()));
  for (auto d : p.readers) w.u16(d.value);
}

NodePerms wire_get_perms(WireReader& r) {
  NodePerms p;
  p.owner = DomId{r.u16()};
  uint32_t n = r.u32();
  if (n > 64) {
    r.fail();
    return p;
  }
  for (uint32_t i = 0; i < n && !r.failed(); ++i) p.writers.push_back(DomId{r.u16()});
  n = r.u32();
  if (n > 64) {
    r.fail();
    return p;
  }
  for (uint32_t i = 0; i < n && !r.failed(); ++i) p.readers.push_back(DomId{r.u16()});
  return p;
}

}  // namespace pvnet
