// The fuzzer's bytes as a stream of small integers: every read succeeds (zeros once the input is used up), so any
// byte string decodes to some action sequence, and a short input is a short sequence. The seed generator writes
// with FuzzWriter, the targets read with FuzzInput: one encoding, defined here.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace pvnet::fuzz {

// An invariant of the code under test does not hold: print it and abort, which libFuzzer reports as a crash (and
// saves the input). Not assert(): the check must not vanish under NDEBUG.
#define PVNET_FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "\nINVARIANT VIOLATED at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                   \
      std::fprintf(stderr, "\n");                                                          \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - std::min(pos_, size_); }

  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (uint16_t{u8()} << 8)); }
  uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }
  bool flag() { return (u8() & 1) != 0; }
  // Up to n bytes (fewer if the input ends).
  std::vector<std::byte> bytes(size_t n) {
    n = std::min(n, remaining());
    std::vector<std::byte> out(n);
    if (n != 0) std::memcpy(out.data(), data_ + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The inverse of FuzzInput, for seeds and regression inputs.
class FuzzWriter {
 public:
  FuzzWriter& u8(uint8_t v) { out_.push_back(v); return *this; }
  FuzzWriter& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
  FuzzWriter& u32(uint32_t v) { return u16(static_cast<uint16_t>(v)).u16(static_cast<uint16_t>(v >> 16)); }
  FuzzWriter& bytes(std::span<const std::byte> b) {
    for (std::byte x : b) out_.push_back(static_cast<uint8_t>(x));
    return *this;
  }
  const std::vector<uint8_t>& data() const { return out_; }

 private:
  std::vector<uint8_t> out_;
};

}  // namespace pvnet::fuzz
