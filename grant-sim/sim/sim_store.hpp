// The simulated xenstore. StoreTree is xenstored: one tree of nodes with string values, each with an owner
// domain, the domains allowed to read and write it and those allowed only to read it (xenstore-chmod's
// "n<owner> b<id>... r<id>...": every other domain may do nothing with it, dom0 everything), and watches queued
// per watcher. A domain's connection to it is a Store (in the hypervisor's process: make_local_store; in another
// process: the SimClient's store).
//
// xenstore rules kept here: a watch fires once when it is registered and then on every write or remove at or
// below its path (a remove also fires watches registered below the removed node), but only to a watcher whose
// domain may read the changed node (the registration's own event always comes); a path that does not start
// with '/' or '@' is relative to /local/domain/<self>; a node created by an unprivileged domain is owned by it,
// one created by dom0 inherits its parent's permissions; "@introduceDomain"/"@releaseDomain" fire when a domain
// is created/destroyed.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>
#include "grant-sim/platform/store.hpp"
#include "grant-sim/platform/fd_wait.hpp"
#include "grant-sim/platform/unique_fd.hpp"

namespace pvnet {

inline constexpr size_t kStoreMaxValue = 4096;          // XENSTORE_PAYLOAD_MAX
inline constexpr size_t kStoreMaxPath = 3072;           // XENSTORE_ABS_PATH_MAX
inline constexpr size_t kStoreMaxWatches = 128;         // per watcher (connection)
inline constexpr size_t kStoreMaxQueuedEvents = 4096;   // per watcher; further events are dropped and counted


// Thread-safe. `who` is the domain doing the operation; dom0 may do anything.
class StoreTree {
 public:
  using WatcherId = uint64_t;
  StoreTree();

  Result<std::string> read(DomId who, std::string_view path) const;
  Result<void> write(DomId who, std::string_view path, std::string_view value);
  Result<void> remove(DomId who, std::string_view path);
  Result<std::vector<std::string>> directory(DomId who, std::string_view path) const;
  Result<NodePerms> get_perms(DomId who, std::string_view path) const;
  Result<void> set_perms(DomId who, std::string_view path, const NodePerms& perms);

  // A watcher is one connection's queue of watch events with an eventfd that is readable while it is non-empty.
  Result<WatcherId> add_watcher();
  void remove_watcher(WatcherId w);
  int watcher_fd(WatcherId w) const;  // -1 if unknown
  Result<void> watch(WatcherId w, DomId who, std::string_view path, std::string_view token);
  Result<void> unwatch(WatcherId w, DomId who, std::string_view path, std::string_view token);
  // Takes queued events while their paths and tokens add up to at most max_bytes (at least one event).
  std::vector<WatchEvent> drain(WatcherId w, size_t max_bytes = SIZE_MAX);
  // Watch events dropped because a watcher's queue was full (kStoreMaxQueuedEvents), over every watcher ever:
  // `pvnet hypervisor` reports it when it stops.
  uint64_t dropped_events() const;

  // The hypervisor's own operations: /local/domain/<id> owned by `dom`, and its removal, and the special
  // watches. No permission checks.
  void introduce_domain(DomId dom);
  void release_domain(DomId dom);

 private:
  struct Node {
    std::string value;
    NodePerms perms;
    std::set<std::string> children;
  };
  struct Watch {
    std::string path;  // absolute (or @special)
    std::string token;
    std::string relative_prefix;  // stripped from event paths when the watch was given as a relative path
    DomId who;                    // the domain that registered it: events need its read permission
  };
  struct Watcher {
    UniqueFd eventfd;
    std::vector<Watch> watches;
    std::deque<WatchEvent> queue;
    uint64_t dropped = 0;
  };

  Result<std::string> resolve(DomId who, std::string_view path, std::string* relative_prefix = nullptr) const;
  static bool can_write(DomId who, const Node& n);
  static bool can_read(DomId who, const NodePerms& p);
  // `perms`: the changed node's (as it was, for a remove); a watcher whose domain may not read it gets nothing.
  void fire(const std::string& changed, bool removed, const NodePerms* perms);
  void enqueue(Watcher& w, const Watch& watch, const std::string& path);
  void remove_locked(const std::string& abs, bool fire_watches);
  void write_locked(const std::string& abs, std::string_view value, DomId creator, bool privileged);

  mutable std::mutex mu_;
  std::map<std::string, Node> nodes_;
  std::map<WatcherId, Watcher> watchers_;
  WatcherId next_watcher_ = 1;
  uint64_t dropped_events_ = 0;
};

// Domain `self`'s connection to `tree`, in the tree's process. Its watches go when it is destroyed.
Result<std::unique_ptr<Store>> make_local_store(std::shared_ptr<StoreTree> tree, DomId self);

}  // namespace pvnet
