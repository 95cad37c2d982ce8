#include "backend/vif_adopter.hpp"

#include <cerrno>
#include <cstdlib>
#include <iterator>

#include "shared-ring/negotiation/keys.hpp"

namespace pvnet {
namespace {

std::optional<uint32_t> parse_number(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  return static_cast<uint32_t>(std::strtoul(s.c_str(), nullptr, 10));
}

}  // namespace

VifAdopter::VifAdopter(Backend& backend, Store& store, Options options)
    : backend_(backend), store_(store), opt_(std::move(options)),
      root_(vif_backend_root(store.self())) {}

Result<void> VifAdopter::start() { return store_.watch(root_, token_); }

std::map<std::pair<uint16_t, uint32_t>, VifAdopter::Dir> VifAdopter::scan() {
  std::map<std::pair<uint16_t, uint32_t>, Dir> out;
  auto doms = store_.directory(root_);
  if (!doms) return out;  // no vif yet (ENOENT)
  for (const std::string& d : *doms) {
    auto dom = parse_number(d);
    if (!dom || *dom == 0 || *dom >= DOMID_FIRST_RESERVED) continue;
    auto handles = store_.directory(root_ + "/" + d);
    if (!handles) continue;
    for (const std::string& h : *handles) {
      auto handle = parse_number(h);
      if (!handle) continue;
      Dir dir;
      dir.path = root_ + "/" + d + "/" + h;
      dir.state = store_.read_int(netif::key_path(dir.path, netif::key::state));
      dir.online = store_.read_int(netif::key_path(dir.path, netif::key::online));
      out.emplace(std::make_pair(static_cast<uint16_t>(*dom), *handle), std::move(dir));
    }
  }
  return out;
}

std::vector<VifAdopter::Change> VifAdopter::rescan() {
  std::vector<Change> changes;
  auto dirs = scan();
  constexpr long long kInitialising = static_cast<long long>(XenbusState::Initialising);

  for (auto it = served_.begin(); it != served_.end();) {
    const auto [dom, handle] = it->first;
    const VifId vif = it->second;
    auto d = dirs.find(it->first);
    const bool gone = d == dirs.end() || !d->second.state;
    // Initialising is never the backend's own word once it adopted a vif: libxl wrote the directory again (a
    // detach and a new attach between two rescans), a new device.
    const bool reattached = !gone && d->second.state == kInitialising && backend_.state(vif) != XenbusState::Initialising;
    if (gone || reattached) {
      const std::string name = backend_.name(vif);
      (void)backend_.remove_vif(vif);  // an adopted vif whose directory is gone: nothing written
      changes.push_back({Change::Kind::removed, DomId{dom}, handle, vif, name});
      it = served_.erase(it);
      continue;
    }
    if (d->second.online == 0 && backend_.state(vif) != XenbusState::Closed) {
      (void)backend_.offline_vif(vif);
      changes.push_back({Change::Kind::offline, DomId{dom}, handle, vif, backend_.name(vif)});
    }
    ++it;
  }

  // A refused directory that libxl removed may come back right: try it again then.
  for (auto it = refused_.begin(); it != refused_.end();) {
    bool present = false;
    for (const auto& [key, dir] : dirs) present = present || (dir.path == *it && dir.state);
    it = present ? std::next(it) : refused_.erase(it);
  }
  for (const auto& [key, dir] : dirs) {
    if (served_.count(key)) continue;
    if (opt_.frontends && !opt_.frontends->count(key.first)) continue;
    // Only what a toolstack just wrote and wants online: a directory in any other state is another backend's
    // (netback, a second pvnet backend) or on its way out.
    if (dir.state != kInitialising || dir.online != 1) {
      refused_.erase(dir.path);
      continue;
    }
    if (refused_.count(dir.path)) continue;
    const std::string fe = store_.read_opt(netif::key_path(dir.path, netif::key::frontend)).value_or("");
    auto id = backend_.adopt_vif(VifPaths{fe, dir.path}, opt_.vif);
    if (!id) {
      refused_.insert(dir.path);
      changes.push_back({Change::Kind::refused, DomId{key.first}, key.second, VifId{}, id.error().reason});
      continue;
    }
    served_.emplace(key, *id);
    changes.push_back({Change::Kind::adopted, DomId{key.first}, key.second, *id, backend_.name(*id)});
  }
  return changes;
}

}  // namespace pvnet
