// vhost-user framing and the guest memory table (see vhost_user.hpp).
#include "frontend/vhost_user.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace pvnet::vhost {

const char* request_name(uint32_t r) {
  switch (r) {
    case kGetFeatures: return "GET_FEATURES";
    case kSetFeatures: return "SET_FEATURES";
    case kSetOwner: return "SET_OWNER";
    case kResetOwner: return "RESET_OWNER";
    case kSetMemTable: return "SET_MEM_TABLE";
    case kSetLogBase: return "SET_LOG_BASE";
    case kSetLogFd: return "SET_LOG_FD";
    case kSetVringNum: return "SET_VRING_NUM";
    case kSetVringAddr: return "SET_VRING_ADDR";
    case kSetVringBase: return "SET_VRING_BASE";
    case kGetVringBase: return "GET_VRING_BASE";
    case kSetVringKick: return "SET_VRING_KICK";
    case kSetVringCall: return "SET_VRING_CALL";
    case kSetVringErr: return "SET_VRING_ERR";
    case kGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum: return "GET_QUEUE_NUM";
    case kSetVringEnable: return "SET_VRING_ENABLE";
    case kSendRarp: return "SEND_RARP";
    case kNetSetMtu: return "NET_SET_MTU";
    case kGetConfig: return "GET_CONFIG";
    case kSetConfig: return "SET_CONFIG";
    case kGetMaxMemSlots: return "GET_MAX_MEM_SLOTS";
    case kSetStatus: return "SET_STATUS";
    case kGetStatus: return "GET_STATUS";
    default: return "UNKNOWN";
  }
}

Result<Message> Channel::read_message() {
  // Read exactly the header, then exactly the payload: ancillary fds travel with the bytes of the sendmsg that
  // carried them, and a stream socket would otherwise hand us several messages (and the fds of a later one) in one
  // recvmsg. Reading message by message keeps each message's fds with it (as libvhost-user does).
  for (;;) {
    size_t want = sizeof(MsgHeader);
    if (in_.size() >= sizeof(MsgHeader)) {
      MsgHeader h;
      std::memcpy(&h, in_.data(), sizeof h);
      if (h.size > kMaxPayload) return make_error(EPROTO, "vhost-user message of " + std::to_string(h.size) + " bytes");
      want = sizeof h + h.size;
      if (in_.size() == want) {
        Message m;
        m.hdr = h;
        m.payload.assign(in_.begin() + sizeof h, in_.end());
        in_.clear();
        m.fds = std::move(in_fds_);
        in_fds_.clear();
        return m;
      }
    }
    const size_t have = in_.size();
    in_.resize(want);
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxRegions)];
    iovec iov{in_.data() + have, want - have};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    const ssize_t n = ::recvmsg(fd_.get(), &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    in_.resize(have + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error(EAGAIN, "no complete message");
      return make_error(errno, std::string("vhost-user recvmsg: ") + std::strerror(errno));
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < nfd; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        in_fds_.emplace_back(fd);
      }
    }
    if (mh.msg_flags & MSG_CTRUNC) return make_error(EPROTO, "vhost-user: too many fds in one message");
    if (n == 0) return make_error(ECONNRESET, "vhost-user front-end closed the connection");
  }
}

Result<void> Channel::send(uint32_t request, uint32_t flags, std::span<const std::byte> payload,
                           std::span<const int> fds) {
  MsgHeader h{request, flags, static_cast<uint32_t>(payload.size())};
  iovec iov[2] = {{&h, sizeof h}, {const_cast<std::byte*>(payload.data()), payload.size()}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxRegions)];
  if (!fds.empty()) {
    if (fds.size() > kMaxRegions) return make_error(EINVAL, "too many fds");
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const size_t want = sizeof h + payload.size();
  ssize_t n;
  do n = ::sendmsg(fd_.get(), &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return make_error(errno, std::string("vhost-user sendmsg: ") + std::strerror(errno));
  if (static_cast<size_t>(n) != want) return make_error(EIO, "vhost-user: short send");  // replies are tiny
  return {};
}

namespace {

// What the kernel says an fd is: "anon_inode:[eventfd]", "pipe:[123]", "/tmp/x", ... (empty if /proc is missing).
std::string fd_kind(int fd) {
  char buf[256];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The value of `key` in /proc/self/fdinfo/<fd> ("" if the kernel does not show it).
std::string fdinfo_field(int fd, const std::string& key) {
  const std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
  UniqueFd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!f) return {};
  char buf[1024];
  const ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  const std::string info(buf, static_cast<size_t>(n));
  const size_t at = info.find(key + ":");
  if (at == std::string::npos) return {};
  const size_t v = info.find_first_not_of(" \t", at + key.size() + 1);
  const size_t end = info.find('\n', at);
  return v == std::string::npos || v >= end ? std::string() : info.substr(v, end - v);
}

Result<void> check_ram_fd(int fd, size_t region, uint64_t end) {
  const std::string which = "SET_MEM_TABLE: region " + std::to_string(region);
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kRequiredRamSeals) != kRequiredRamSeals) {
    const std::string what = seals < 0 ? " is not a sealable memfd (" + fd_kind(fd) + ")"
                                       : " is a memfd without F_SEAL_SHRINK|F_SEAL_GROW";
    return make_error(EPERM, which + what +
                                 ": the front-end could shrink it under dom0's mappings. Give QEMU a sealed memfd: "
                                 "-object memory-backend-memfd,share=on,seal=on (libvirt: <source type='memfd'/>)");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(errno, which + ": fstat: " + std::strerror(errno));
  if (static_cast<uint64_t>(st.st_size) < end)
    return make_error(EPROTO, which + " lies past the end of its memfd (" + std::to_string(st.st_size) + " < " +
                                  std::to_string(end) + " bytes)");
  return {};
}

}  // namespace

Result<void> check_eventfd(int fd, const std::string& what) {
  const std::string kind = fd_kind(fd);
  if (kind.empty()) return make_error(EPROTO, what + ": cannot tell what the fd is (no /proc/self/fd)");
  if (kind != "anon_inode:[eventfd]") return make_error(EPROTO, what + " is not an eventfd (" + kind + ")");
  if (fdinfo_field(fd, "eventfd-semaphore") == "1")
    return make_error(EPROTO, what + " is a semaphore-mode eventfd (EFD_SEMAPHORE): one kick per read");
  return {};
}

GuestMemoryTable::~GuestMemoryTable() { unmap(); }

GuestMemoryTable& GuestMemoryTable::operator=(GuestMemoryTable&& o) noexcept {
  if (this != &o) {
    unmap();
    regions_ = std::move(o.regions_);
    o.regions_.clear();
  }
  return *this;
}

void GuestMemoryTable::unmap() {
  for (auto& r : regions_)
    if (r.map_base) ::munmap(r.map_base, r.map_len);
  regions_.clear();
}

Result<GuestMemoryTable> GuestMemoryTable::create(std::span<const MemRegionDesc> descs, std::vector<UniqueFd> fds) {
  if (descs.empty() || descs.size() > kMaxRegions) return make_error(EPROTO, "SET_MEM_TABLE: bad region count");
  if (fds.size() != descs.size())
    return make_error(EPROTO, "SET_MEM_TABLE: one fd per region expected (" + std::to_string(descs.size()) +
                                  " regions, " + std::to_string(fds.size()) + " fds)");
  GuestMemoryTable t;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (size_t i = 0; i < descs.size(); ++i) {
    const MemRegionDesc& d = descs[i];
    if (d.memory_size == 0 || d.guest_phys_addr + d.memory_size < d.guest_phys_addr ||
        d.userspace_addr + d.memory_size < d.userspace_addr || d.mmap_offset + d.memory_size < d.mmap_offset)
      return make_error(EPROTO, "SET_MEM_TABLE: region " + std::to_string(i) + " is empty or wraps");
    for (const auto& o : t.regions_)
      if (d.guest_phys_addr < o.gpa + o.size && o.gpa < d.guest_phys_addr + d.memory_size)
        return make_error(EPROTO, "SET_MEM_TABLE: regions overlap");
    Region r;
    r.gpa = d.guest_phys_addr;
    r.size = d.memory_size;
    r.uaddr = d.userspace_addr;
    r.mmap_offset = d.mmap_offset;
    r.fd = std::move(fds[i]);
    if (auto ok = check_ram_fd(r.fd.get(), i, d.mmap_offset + d.memory_size); !ok) return ok.error();
    const uint64_t start = d.mmap_offset & ~(page - 1);
    r.map_len = static_cast<size_t>(d.mmap_offset - start + d.memory_size);
    void* p = ::mmap(nullptr, r.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd.get(), static_cast<off_t>(start));
    if (p == MAP_FAILED)
      return make_error(errno, "SET_MEM_TABLE: mmap of region " + std::to_string(i) + ": " + std::strerror(errno));
    r.map_base = p;
    r.host = static_cast<std::byte*>(p) + (d.mmap_offset - start);
    t.regions_.push_back(std::move(r));
  }
  return t;
}

std::byte* GuestMemoryTable::gpa_to_host(uint64_t gpa, uint64_t len) const {
  if (len == 0) return nullptr;
  for (const auto& r : regions_)
    if (gpa >= r.gpa && gpa - r.gpa < r.size && len <= r.size - (gpa - r.gpa)) return r.host + (gpa - r.gpa);
  return nullptr;
}

bool GuestMemoryTable::uaddr_to_gpa(uint64_t uaddr, uint64_t len, uint64_t* gpa) const {
  if (len == 0) return false;
  for (const auto& r : regions_)
    if (uaddr >= r.uaddr && uaddr - r.uaddr < r.size && len <= r.size - (uaddr - r.uaddr)) {
      *gpa = r.gpa + (uaddr - r.uaddr);
      return true;
    }
  return false;
}

bool GuestMemoryTable::same_layout(std::span<const MemRegionDesc> descs) const {
  if (descs.size() != regions_.size()) return false;
  for (size_t i = 0; i < descs.size(); ++i)
    if (descs[i].guest_phys_addr != regions_[i].gpa || descs[i].memory_size != regions_[i].size ||
        descs[i].userspace_addr != regions_[i].uaddr)
      return false;
  return true;
}

}  // namespace pvnet::vhost
