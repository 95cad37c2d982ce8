// How the backend finds its vifs on a host whose toolstack is libxl (`xl network-attach`, a `vif = [...]` line
// with backend=0): libxl writes both directories itself (backend state Initialising, online 1, frontend,
// frontend-id, handle, mac, mtu, script ...), runs no driver, and waits LIBXL_INIT_TIMEOUT (10 s) for the backend
// to say InitWait. On detach it writes online 0 + state Closing in one transaction, waits LIBXL_DESTROY_TIMEOUT
// (10 s) for Closed, runs the hotplug script's remove and removes both directories. Linux's netback learns of
// such a directory from xenbus's watch on its backend/vif subtree; VifAdopter is that watch for pvnet's backend:
// it adopts new directories (Backend::adopt_vif), takes offline what libxl detaches (Backend::offline_vif) and
// drops what libxl removed (Backend::remove_vif, which then writes nothing).
//
// It reads the store through its own handle (the toolstack's), not the backend's: the backend's watch events are
// consumed by Backend::poll.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.hpp"

namespace pvnet {

class VifAdopter {
 public:
  struct Options {
    std::optional<std::set<uint16_t>> frontends;  // domains to serve; absent: every domain
    VifOptions vif;                               // per-vif options; mac and mtu come from the directory
  };
  struct Change {
    enum class Kind { adopted, offline, removed, refused };
    Kind kind;
    DomId frontend;
    uint32_t handle = 0;
    VifId vif;           // adopted/offline/removed
    std::string detail;  // the vif's name, or why it was refused
  };

  VifAdopter(Backend& backend, Store& store, Options options);
  // Watches /local/domain/<self>/backend/vif (xenstore fires once at registration: the first rescan() finds
  // what libxl wrote before we started).
  Result<void> start();
  const std::string& token() const { return token_; }
  // Compares the directories there are with the vifs served: call after the watch fired.
  std::vector<Change> rescan();
  // The vifs served now, by (frontend domain, handle).
  const std::map<std::pair<uint16_t, uint32_t>, VifId>& served() const { return served_; }

 private:
  struct Dir {
    std::string path;
    std::optional<long long> state, online;
  };
  std::map<std::pair<uint16_t, uint32_t>, Dir> scan();

  Backend& backend_;
  Store& store_;
  Options opt_;
  std::string root_;
  std::string token_ = "pvnet-vif-adopter";
  std::map<std::pair<uint16_t, uint32_t>, VifId> served_;
  std::set<std::string> refused_;  // directories refused once (said once, tried again only once re-created)
};

}  // namespace pvnet
