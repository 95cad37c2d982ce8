#include "tools/bench/bench_frames.hpp"

#include <algorithm>

#include "shared-ring/packet_headers.hpp"

namespace pvnet::tools {

uint32_t bench_wire_size(uint32_t requested) { return std::clamp(requested, kBenchMinFrame, kBenchMaxFrame); }

std::vector<std::byte> make_bench_frame(uint32_t size) {
  size = bench_wire_size(size);
  std::vector<std::byte> f(size);
  for (size_t i = 0; i < f.size(); ++i) f[i] = std::byte(static_cast<uint8_t>(i * 7 + 1));
  auto put8 = [&](size_t at, uint8_t v) { f[at] = std::byte(v); };
  auto put16 = [&](size_t at, uint16_t v) {
    put8(at, static_cast<uint8_t>(v >> 8));
    put8(at + 1, static_cast<uint8_t>(v & 0xFF));
  };
  const uint8_t dst[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x02}, src[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
  for (int i = 0; i < 6; ++i) {
    put8(i, dst[i]);
    put8(6 + i, src[i]);
  }
  put16(12, 0x0800);
  put8(14, 0x45);  // IPv4, IHL 5
  put8(15, 0);
  put16(16, static_cast<uint16_t>(size - 14));  // a GSO super-frame's total length, as Linux hands it down
  put16(18, 0);
  put16(20, 0x4000);  // DF
  put8(22, 64);
  put8(23, 6);  // TCP
  put16(24, 0);
  const uint8_t saddr[4] = {10, 0, 0, 1}, daddr[4] = {10, 0, 0, 2};
  for (int i = 0; i < 4; ++i) {
    put8(26 + i, saddr[i]);
    put8(30 + i, daddr[i]);
  }
  put16(34, 40000);  // source port
  put16(36, 5201);   // destination port
  for (int i = 38; i < 46; ++i) put8(i, 0);  // seq, ack
  put8(46, 0x50);  // data offset 5
  put8(47, 0x18);  // PSH ACK
  put16(48, 0xFFFF);
  put16(50, 0);
  put16(52, 0);
  return f;
}

TxOptions bench_tx_options(uint32_t size, uint32_t mtu) {
  TxOptions o;
  size = bench_wire_size(size);
  if (size - 14 > mtu) {
    o.gso_type = netif::gso_type::tcpv4;
    o.gso_size = kBenchGsoMss;
    o.csum_blank = true;
  }
  return o;
}

}  // namespace pvnet::tools
