// RAII for the two things the multi-process ring tests need: a MAP_SHARED area that survives fork(), and an
// eventfd standing in for an event channel.
#pragma once
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <stdexcept>

namespace pvnet::test {

class SharedArea {
 public:
  explicit SharedArea(size_t bytes) : bytes_(bytes) {
    p_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p_ == MAP_FAILED) throw std::runtime_error("mmap MAP_SHARED failed");
  }
  ~SharedArea() { munmap(p_, bytes_); }
  SharedArea(const SharedArea&) = delete;
  SharedArea& operator=(const SharedArea&) = delete;
  std::span<std::byte> bytes() const { return {static_cast<std::byte*>(p_), bytes_}; }
  void* data() const { return p_; }

 private:
  void* p_;
  size_t bytes_;
};

class EventFd {
 public:
  EventFd() : fd_(eventfd(0, EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~EventFd() { close(fd_); }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace pvnet::test
