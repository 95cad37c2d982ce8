// A shared ring in plain memory for the stage tests: the frontend's side pushes requests, the stage reads them
// through the backend's side. No hypervisor, no grants.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shared-ring/netif.hpp"

namespace pvnet::test {

template <class FrontRing, class BackRing>
struct RingMemory {
  alignas(4096) std::array<std::byte, 4096> page{};
  FrontRing front = *FrontRing::init(page);
  BackRing back = *BackRing::attach(page);

  template <class Req>
  uint32_t push(const std::vector<Req>& reqs) {
    for (const Req& r : reqs) front.produce_request(r);
    front.push_requests();
    return static_cast<uint32_t>(reqs.size());
  }
};

using TxRingMemory = RingMemory<netif::TxFrontRing, netif::TxBackRing>;
using RxRingMemory = RingMemory<netif::RxFrontRing, netif::RxBackRing>;

inline netif::TxRequest tx_req(uint16_t id, uint16_t size, uint16_t flags = 0, uint16_t offset = 0, uint32_t gref = 10) {
  netif::TxRequest r{};
  r.gref = GrantRef{gref};
  r.offset = offset;
  r.flags = flags;
  r.id = id;
  r.size = size;
  return r;
}

// An extra-info slot as it sits in a TX request slot.
inline netif::TxRequest tx_extra(uint8_t type, uint8_t flags = 0, uint16_t gso_size = 1448,
                                 uint8_t gso_type = netif::gso_type::tcpv4) {
  netif::ExtraInfo e{};
  e.type = type;
  e.flags = flags;
  e.u.gso.size = gso_size;
  e.u.gso.type = gso_type;
  netif::TxRequest r{};
  std::memcpy(static_cast<void*>(&r), &e, sizeof e);
  return r;
}

}  // namespace pvnet::test
