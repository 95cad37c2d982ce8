// A xenstore-like store: a tree of paths with string values, watches, and the xenbus state machine's states.
// Shaped like libxenstore (xs_read/xs_write/xs_directory/xs_watch), so a xenstore-backed one drops in.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"
#include "shared-ring/xen_headers.hpp"

namespace pvnet {

// xen/io/xenbus.h's enum xenbus_state, as a type.
enum class XenbusState : int {
  Unknown = XenbusStateUnknown,
  Initialising = XenbusStateInitialising,
  InitWait = XenbusStateInitWait,
  Initialised = XenbusStateInitialised,
  Connected = XenbusStateConnected,
  Closing = XenbusStateClosing,
  Closed = XenbusStateClosed,
  Reconfiguring = XenbusStateReconfiguring,
  Reconfigured = XenbusStateReconfigured,
};
const char* to_string(XenbusState s);

// xenstore's permission list (xenstore-chmod's "n<owner> b<id>... r<id>..."): the owner may read, write and change
// the permissions; every other domain may do nothing unless listed; dom0 may do anything.
struct NodePerms {
  DomId owner;                      // may read and write, and may change the permissions
  std::vector<DomId> writers;       // may also read and write ("b")
  std::vector<DomId> readers = {};  // may read, not write ("r"); the initializer keeps NodePerms{o, {w}} valid
  bool operator==(const NodePerms&) const = default;
};

struct WatchEvent {
  std::string path;   // the path that changed (at or below the watched path)
  std::string token;  // the token given to watch()
};

class Store {
 public:
  virtual ~Store() = default;
  virtual DomId self() const = 0;
  virtual Result<std::string> read(std::string_view path) = 0;  // fails with ENOENT if absent
  virtual Result<void> write(std::string_view path, std::string_view value) = 0;  // creates parents
  virtual Result<void> remove(std::string_view path) = 0;  // the node and everything below it
  virtual Result<std::vector<std::string>> directory(std::string_view path) = 0;  // child names
  // Fires once at registration (as xenstore does) and then on every write/remove at or below `path`.
  virtual Result<void> watch(std::string_view path, std::string_view token) = 0;
  virtual Result<void> unwatch(std::string_view path, std::string_view token) = 0;
  virtual int watch_fd() const = 0;                    // readable when watch events are queued
  virtual std::vector<WatchEvent> read_watches() = 0;  // drain, non-blocking
  // Block until a watch fires or timeout_ms passes. Returns the drained events.
  virtual std::vector<WatchEvent> wait_watches(int timeout_ms) = 0;
  // xs_set_permissions / xs_get_permissions: what a toolstack needs beyond reads and writes. A store without
  // permissions fails them with ENOTSUP (the default).
  virtual Result<void> set_permissions(std::string_view path, const NodePerms& perms);
  virtual Result<NodePerms> get_permissions(std::string_view path);

  // Helpers over the primitives above.
  std::optional<std::string> read_opt(std::string_view path);
  std::optional<long long> read_int(std::string_view path);
  Result<void> write_int(std::string_view path, long long v);
  XenbusState read_state(std::string_view dir);  // dir + "/state"; Unknown if absent or malformed
  Result<void> switch_state(std::string_view dir, XenbusState s);
};

}  // namespace pvnet
