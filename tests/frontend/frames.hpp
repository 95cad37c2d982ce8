// Test frames: Ethernet + IPv4/IPv6 + TCP/UDP with a recognisable payload.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pvnet::test {

inline std::vector<std::byte> make_frame(size_t total, bool ipv6 = false, bool udp = false, uint8_t seed = 1) {
  std::vector<std::byte> f(total);
  for (size_t i = 0; i < total; ++i) f[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  auto put8 = [&](size_t at, uint8_t v) { if (at < total) f[at] = std::byte(v); };
  auto put16 = [&](size_t at, uint16_t v) { put8(at, v >> 8); put8(at + 1, v & 0xFF); };
  for (int i = 0; i < 12; ++i) put8(i, static_cast<uint8_t>(0xA0 + i));
  size_t l4 = 0;
  const uint8_t proto = udp ? 17 : 6;
  if (!ipv6) {
    put16(12, 0x0800);
    put8(14, 0x45);
    put8(15, 0);
    put16(16, static_cast<uint16_t>(total - 14 > 0xFFFF ? 0 : total - 14));
    put16(18, 0);
    put16(20, 0x4000);  // DF, no fragment
    put8(22, 64);
    put8(23, proto);
    l4 = 34;
  } else {
    put16(12, 0x86DD);
    put8(14, 0x60);
    put8(15, 0);
    put16(16, 0);
    put16(18, static_cast<uint16_t>(total - 54 > 0xFFFF ? 0 : total - 54));
    put8(20, proto);
    put8(21, 64);
    l4 = 54;
  }
  if (udp) {
    put16(l4 + 4, static_cast<uint16_t>(total - l4));
  } else {
    put8(l4 + 12, 0x50);  // data offset 5
    put8(l4 + 13, 0x18);  // PSH ACK
  }
  return f;
}

}  // namespace pvnet::test
