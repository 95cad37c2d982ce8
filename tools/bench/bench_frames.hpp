// The frames `pvnet bench` sends: Ethernet + IPv4 + TCP of a fixed size, as a guest stack would hand them to
// netfront (a frame whose L3 length exceeds the MTU goes as a TCP GSO super-frame, NETTXF_csum_blank set).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "frontend/netfront.hpp"

namespace pvnet::tools {

inline constexpr uint32_t kBenchMinFrame = 54;       // Ethernet + IPv4 + TCP headers, no payload
inline constexpr uint32_t kBenchMaxFrame = 0xFFFF;   // netif_tx_request.size is 16 bits
inline constexpr uint16_t kBenchGsoMss = 1448;       // what a TCP stack with TSO uses behind a 1500-byte MTU

// A well-formed TCPv4 frame of exactly `size` bytes (kBenchMinFrame..kBenchMaxFrame), payload a byte pattern.
std::vector<std::byte> make_bench_frame(uint32_t size);
// How the frame goes to netfront under a vif MTU of `mtu`: GSO (tcpv4, MSS kBenchGsoMss) when L3 > mtu.
TxOptions bench_tx_options(uint32_t size, uint32_t mtu);
// The size a requested one becomes: 65536 ("64 KiB GSO") is carried as 65535, the largest netif size.
uint32_t bench_wire_size(uint32_t requested);

}  // namespace pvnet::tools
