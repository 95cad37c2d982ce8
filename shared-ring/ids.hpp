// Small strong types for the numbers that cross the guest/dom0 boundary, so that a grant reference, a domain id,
// a guest frame and an event-channel port cannot be mixed up (rust-vmm's GuestAddress lesson).
#pragma once
#include <compare>
#include <cstdint>
#include <functional>

namespace pvnet {

template <class Tag, class Rep>
struct StrongId {
  Rep value{};
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value(v) {}
  constexpr auto operator<=>(const StrongId&) const = default;
};

struct DomIdTag {};
struct GrantRefTag {};
struct PfnTag {};
struct PortTag {};

using DomId = StrongId<DomIdTag, uint16_t>;      // domid_t
using GrantRef = StrongId<GrantRefTag, uint32_t>;  // grant_ref_t
using Pfn = StrongId<PfnTag, uint64_t>;           // a guest pseudo-physical frame number
using Port = StrongId<PortTag, uint32_t>;         // evtchn_port_t

inline constexpr DomId kDom0{0};
inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kPageShift = 12;

}  // namespace pvnet

template <class Tag, class Rep>
struct std::hash<pvnet::StrongId<Tag, Rep>> {
  size_t operator()(const pvnet::StrongId<Tag, Rep>& id) const noexcept { return std::hash<Rep>{}(id.value); }
};
