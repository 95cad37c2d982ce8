// The toolstack's half of pvnet backend (--toolstack pvnet): what libxl does on @introduceDomain and
// @releaseDomain. The domains there are are compared with the vifs dom0 has: a vif is added for a new guest
// domain (handle 0, the MAC below) and removed for one that went. --toolstack libxl leaves this to libxl and
// serves its directories instead (backend/vif_adopter.hpp).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "grant-sim/platform/store.hpp"

namespace pvnet::tools {

inline constexpr uint32_t kVifHandle = 0;

// The MAC of domain `dom`'s vif: Xen's OUI 00:16:3e, then the domain id (so a frame's source says its guest).
std::string vif_mac(uint16_t dom);

// The domains on a Xen host: the numeric names under the store's /local/domain (what libxl lists), reserved
// ids left out.
std::vector<DomId> store_domains(Store& store);

struct ToolstackOptions {
  std::optional<std::set<uint16_t>> frontends;  // absent: every guest domain gets a vif
  VifOptions vif;                // every new vif's options (mtu, limits, sink); its mac is vif_mac()
};

struct RescanResult {
  std::vector<std::string> removed;  // vif names ("vif1.0"), in the order they went
  std::vector<std::string> added;
  bool changed() const { return !removed.empty() || !added.empty(); }
};

// Brings `vifs` (frontend domain -> its vif) in line with `domains`: removes the vifs of domains that went
// (and lets netback give their last pages back), adds one for each new guest domain. dom0 never gets one. A
// failed removal is reported on stderr and the vif forgotten all the same; a failed addition is reported and
// tried again at the next rescan.
RescanResult rescan_domains(Backend& backend, std::map<uint16_t, VifId>& vifs, const std::vector<DomId>& domains,
                            const ToolstackOptions& o);

}  // namespace pvnet::tools
