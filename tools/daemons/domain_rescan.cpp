#include "tools/daemons/domain_rescan.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "grant-sim/sim/sim_hypervisor.hpp"  // kFirstReservedDomId

namespace pvnet::tools {

std::string vif_mac(uint16_t dom) {
  char mac[32];
  std::snprintf(mac, sizeof mac, "00:16:3e:00:%02x:%02x", dom >> 8, dom & 0xff);
  return mac;
}

// The domains there are on Xen: the store's /local/domain (what libxl lists).
std::vector<DomId> store_domains(Store& store) {
  std::vector<DomId> out;
  auto names = store.directory("/local/domain");
  if (!names) return out;
  for (const std::string& n : *names) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(n.c_str(), &end, 10);
    if (!n.empty() && !*end && v < kFirstReservedDomId) out.push_back(DomId{static_cast<uint16_t>(v)});
  }
  return out;
}

// What libxl does on @introduceDomain/@releaseDomain: compare the domains there are with the vifs we have.
RescanResult rescan_domains(Backend& backend, std::map<uint16_t, VifId>& vifs, const std::vector<DomId>& domains,
                            const ToolstackOptions& o) {
  RescanResult out;
  std::set<uint16_t> present;
  for (DomId d : domains) {
    if (d == kDom0) continue;
    if (o.frontends && !o.frontends->count(d.value)) continue;
    present.insert(d.value);
  }
  for (auto it = vifs.begin(); it != vifs.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    const std::string name = backend.name(it->second);
    if (auto r = backend.remove_vif(it->second); !r)
      std::cerr << "pvnet backend: removing " << name << ": " << r.error().reason << "\n";
    // The removed vif's last payload pages go back in the next poll's batched unmap.
    backend.poll_until_idle();
    out.removed.push_back(name);
    it = vifs.erase(it);
  }
  for (uint16_t dom : present) {
    if (vifs.count(dom)) continue;
    VifOptions vo = o.vif;
    vo.mac = vif_mac(dom);
    auto id = backend.add_vif(DomId{dom}, kVifHandle, vo);
    if (!id) {
      std::cerr << "pvnet backend: adding a vif for domain " << dom << ": " << id.error().reason << "\n";
      continue;
    }
    vifs.emplace(dom, *id);
    out.added.push_back(backend.name(*id));
  }
  return out;
}

}  // namespace pvnet::tools
