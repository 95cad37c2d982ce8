#include "grant-sim/sim/sim_store.hpp"

#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pvnet {
namespace {

std::string dom_path(DomId d) { return "/local/domain/" + std::to_string(d.value); }

std::string parent_of(const std::string& abs) {
  auto slash = abs.rfind('/');
  return slash == 0 ? "/" : abs.substr(0, slash);
}

std::string name_of(const std::string& abs) { return abs.substr(abs.rfind('/') + 1); }

// `path` at or below `dir`.
bool is_at_or_below(const std::string& path, const std::string& dir) {
  if (dir == "/") return path[0] == '/';
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

bool valid_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '@' || c == '/' || c == '.';
}

}  // namespace

StoreTree::StoreTree() {
  for (const char* p : {"/", "/local", "/local/domain"}) nodes_[p].perms.owner = kDom0;
  nodes_["/"].children.insert("local");
  nodes_["/local"].children.insert("domain");
  write_locked(dom_path(kDom0), "", kDom0, true);
}

Result<std::string> StoreTree::resolve(DomId who, std::string_view path, std::string* relative_prefix) const {
  if (path.empty()) return make_error(EINVAL, "store: empty path");
  std::string abs;
  if (path[0] == '/' || path[0] == '@') {
    abs = std::string(path);
  } else {
    std::string prefix = dom_path(who) + "/";
    if (relative_prefix) *relative_prefix = prefix;
    abs = prefix + std::string(path);
  }
  if (abs.size() > kStoreMaxPath) return make_error(E2BIG, "store: path longer than " + std::to_string(kStoreMaxPath));
  for (char c : abs)
    if (!valid_char(c)) return make_error(EINVAL, "store: invalid character in path '" + abs + "'");
  if (abs[0] == '@') {
    if (abs.find('/') != std::string::npos) return make_error(EINVAL, "store: invalid special path '" + abs + "'");
    return abs;
  }
  if (abs != "/" && (abs.back() == '/' || abs.find("//") != std::string::npos))
    return make_error(EINVAL, "store: malformed path '" + abs + "'");
  return abs;
}

bool StoreTree::can_write(DomId who, const Node& n) {
  if (who == kDom0 || n.perms.owner == who) return true;
  return std::find(n.perms.writers.begin(), n.perms.writers.end(), who) != n.perms.writers.end();
}

bool StoreTree::can_read(DomId who, const NodePerms& p) {
  if (who == kDom0 || p.owner == who) return true;
  return std::find(p.writers.begin(), p.writers.end(), who) != p.writers.end() ||
         std::find(p.readers.begin(), p.readers.end(), who) != p.readers.end();
}

namespace {
Error no_read(DomId who, const std::string& abs) {
  return make_error(EACCES, "store: dom" + std::to_string(who.value) + " may not read " + abs);
}
}  // namespace

Result<std::string> StoreTree::read(DomId who, std::string_view path) const {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  auto it = nodes_.find(*abs);
  if (it == nodes_.end()) return make_error(ENOENT, "store: no node " + *abs);
  if (!can_read(who, it->second.perms)) return no_read(who, *abs);
  return it->second.value;
}

void StoreTree::write_locked(const std::string& abs, std::string_view value, DomId creator, bool privileged) {
  auto it = nodes_.find(abs);
  if (it != nodes_.end()) {
    it->second.value = std::string(value);
    return;
  }
  // Create the missing ancestors top-down, each inheriting its parent's permissions.
  std::vector<std::string> missing;
  for (std::string p = abs; nodes_.find(p) == nodes_.end(); p = parent_of(p)) missing.push_back(p);
  for (auto m = missing.rbegin(); m != missing.rend(); ++m) {
    Node& parent = nodes_.at(parent_of(*m));
    parent.children.insert(name_of(*m));
    Node n;
    n.perms = parent.perms;
    // xenstored: an unprivileged domain owns what it creates; dom0's nodes inherit the parent's owner.
    if (!privileged && creator != kDom0) n.perms.owner = creator;
    nodes_.emplace(*m, std::move(n));
  }
  nodes_.at(abs).value = std::string(value);
}

Result<void> StoreTree::write(DomId who, std::string_view path, std::string_view value) {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  if ((*abs)[0] == '@') return make_error(EINVAL, "store: cannot write special path " + *abs);
  if (value.size() > kStoreMaxValue)
    return make_error(E2BIG, "store: value for " + *abs + " longer than " + std::to_string(kStoreMaxValue));
  std::string p = *abs;
  while (nodes_.find(p) == nodes_.end()) p = parent_of(p);
  if (!can_write(who, nodes_.at(p)))
    return make_error(EACCES, "store: dom" + std::to_string(who.value) + " may not write " + *abs +
                                  (p == *abs ? "" : " (no write permission on " + p + ")"));
  write_locked(*abs, value, who, false);
  fire(*abs, false, &nodes_.at(*abs).perms);
  return {};
}

void StoreTree::remove_locked(const std::string& abs, bool fire_watches) {
  const NodePerms perms = nodes_.at(abs).perms;  // who may see the removal: those who could read the node
  auto first = nodes_.lower_bound(abs + "/");
  auto last = nodes_.lower_bound(abs + "0");  // '0' follows '/': the subtree is [abs/, abs0)
  nodes_.erase(first, last);
  nodes_.erase(abs);
  nodes_.at(parent_of(abs)).children.erase(name_of(abs));
  if (fire_watches) fire(abs, true, &perms);
}

Result<void> StoreTree::remove(DomId who, std::string_view path) {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  if ((*abs)[0] == '@' || *abs == "/") return make_error(EINVAL, "store: cannot remove " + *abs);
  auto it = nodes_.find(*abs);
  if (it == nodes_.end()) return make_error(ENOENT, "store: no node " + *abs);
  if (!can_write(who, it->second))
    return make_error(EACCES, "store: dom" + std::to_string(who.value) + " may not remove " + *abs);
  remove_locked(*abs, true);
  return {};
}

Result<std::vector<std::string>> StoreTree::directory(DomId who, std::string_view path) const {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  auto it = nodes_.find(*abs);
  if (it == nodes_.end()) return make_error(ENOENT, "store: no node " + *abs);
  if (!can_read(who, it->second.perms)) return no_read(who, *abs);
  return std::vector<std::string>(it->second.children.begin(), it->second.children.end());
}

Result<NodePerms> StoreTree::get_perms(DomId who, std::string_view path) const {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  auto it = nodes_.find(*abs);
  if (it == nodes_.end()) return make_error(ENOENT, "store: no node " + *abs);
  return it->second.perms;
}

Result<void> StoreTree::set_perms(DomId who, std::string_view path, const NodePerms& perms) {
  std::lock_guard lk(mu_);
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  auto it = nodes_.find(*abs);
  if (it == nodes_.end()) return make_error(ENOENT, "store: no node " + *abs);
  if (who != kDom0 && it->second.perms.owner != who)
    return make_error(EACCES, "store: only dom0 or the owner may change the permissions of " + *abs);
  if (perms.writers.size() + perms.readers.size() > 64)
    return make_error(E2BIG, "store: too many permission entries for " + *abs);
  it->second.perms = perms;
  fire(*abs, false, &it->second.perms);  // xenstored fires watches on a permission change too
  return {};
}

// ---- watches ----

Result<StoreTree::WatcherId> StoreTree::add_watcher() {
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) return make_error(errno, std::string("eventfd: ") + std::strerror(errno));
  std::lock_guard lk(mu_);
  WatcherId id = next_watcher_++;
  watchers_[id].eventfd = std::move(efd);
  return id;
}

void StoreTree::remove_watcher(WatcherId w) {
  std::lock_guard lk(mu_);
  watchers_.erase(w);
}

int StoreTree::watcher_fd(WatcherId w) const {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(w);
  return it == watchers_.end() ? -1 : it->second.eventfd.get();
}

void StoreTree::enqueue(Watcher& w, const Watch& watch, const std::string& path) {
  if (w.queue.size() >= kStoreMaxQueuedEvents) {
    ++w.dropped;
    ++dropped_events_;
    return;
  }
  std::string p = path;
  if (!watch.relative_prefix.empty() && p.compare(0, watch.relative_prefix.size(), watch.relative_prefix) == 0)
    p = p.substr(watch.relative_prefix.size());
  w.queue.push_back(WatchEvent{std::move(p), watch.token});
  uint64_t one = 1;
  (void)!::write(w.eventfd.get(), &one, sizeof one);
}

void StoreTree::fire(const std::string& changed, bool removed, const NodePerms* perms) {
  for (auto& [id, w] : watchers_) {
    for (const Watch& watch : w.watches) {
      if (perms && !can_read(watch.who, *perms)) continue;
      if (changed[0] == '@' || watch.path[0] == '@') {
        if (changed == watch.path) enqueue(w, watch, changed);
      } else if (is_at_or_below(changed, watch.path)) {
        enqueue(w, watch, changed);
      } else if (removed && is_at_or_below(watch.path, changed)) {
        enqueue(w, watch, watch.path);  // the watched node went with its removed ancestor
      }
    }
  }
}

Result<void> StoreTree::watch(WatcherId wid, DomId who, std::string_view path, std::string_view token) {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(wid);
  if (it == watchers_.end()) return make_error(EINVAL, "store: unknown watcher");
  Watch w;
  auto abs = resolve(who, path, &w.relative_prefix);
  if (!abs) return abs.error();
  if (token.size() > kStoreMaxValue) return make_error(E2BIG, "store: watch token too long");
  w.path = *abs;
  w.token = std::string(token);
  w.who = who;
  Watcher& watcher = it->second;
  for (auto& x : watcher.watches)
    if (x.path == w.path && x.token == w.token) return make_error(EEXIST, "store: watch on " + w.path + " exists");
  if (watcher.watches.size() >= kStoreMaxWatches)
    return make_error(E2BIG, "store: more than " + std::to_string(kStoreMaxWatches) + " watches");
  watcher.watches.push_back(w);
  enqueue(watcher, w, w.path);  // xenstore fires every new watch once
  return {};
}

Result<void> StoreTree::unwatch(WatcherId wid, DomId who, std::string_view path, std::string_view token) {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(wid);
  if (it == watchers_.end()) return make_error(EINVAL, "store: unknown watcher");
  auto abs = resolve(who, path);
  if (!abs) return abs.error();
  auto& ws = it->second.watches;
  auto w = std::find_if(ws.begin(), ws.end(), [&](const Watch& x) { return x.path == *abs && x.token == token; });
  if (w == ws.end()) return make_error(ENOENT, "store: no watch on " + *abs + " with that token");
  ws.erase(w);
  return {};
}

std::vector<WatchEvent> StoreTree::drain(WatcherId wid, size_t max_bytes) {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(wid);
  if (it == watchers_.end()) return {};
  Watcher& w = it->second;
  uint64_t v;
  (void)!::read(w.eventfd.get(), &v, sizeof v);
  std::vector<WatchEvent> out;
  size_t bytes = 0;
  while (!w.queue.empty()) {
    size_t b = w.queue.front().path.size() + w.queue.front().token.size();
    if (!out.empty() && bytes + b > max_bytes) break;
    bytes += b;
    out.push_back(std::move(w.queue.front()));
    w.queue.pop_front();
  }
  if (!w.queue.empty()) {
    uint64_t one = 1;
    (void)!::write(w.eventfd.get(), &one, sizeof one);  // the rest stays signalled
  }
  return out;
}

uint64_t StoreTree::dropped_events() const {
  std::lock_guard lk(mu_);
  return dropped_events_;
}

void StoreTree::introduce_domain(DomId dom) {
  std::lock_guard lk(mu_);
  std::string p = dom_path(dom);
  write_locked(p, "", kDom0, true);
  nodes_.at(p).perms = NodePerms{dom, {}, {}};  // what the toolstack's xenstore-chmod does for a new guest
  fire(p, false, &nodes_.at(p).perms);
  fire("@introduceDomain", false, nullptr);
}

void StoreTree::release_domain(DomId dom) {
  std::lock_guard lk(mu_);
  std::string p = dom_path(dom);
  if (nodes_.count(p)) remove_locked(p, true);
  fire("@releaseDomain", false, nullptr);
}

// ---- a domain's connection, in-process ----

namespace {

class LocalStore final : public Store {
 public:
  LocalStore(std::shared_ptr<StoreTree> tree, DomId self, StoreTree::WatcherId w)
      : tree_(std::move(tree)), self_(self), watcher_(w) {}
  ~LocalStore() override { tree_->remove_watcher(watcher_); }
  DomId self() const override { return self_; }
  Result<std::string> read(std::string_view path) override { return tree_->read(self_, path); }
  Result<void> write(std::string_view path, std::string_view value) override {
    return tree_->write(self_, path, value);
  }
  Result<void> remove(std::string_view path) override { return tree_->remove(self_, path); }
  Result<std::vector<std::string>> directory(std::string_view path) override {
    return tree_->directory(self_, path);
  }
  Result<void> watch(std::string_view path, std::string_view token) override {
    return tree_->watch(watcher_, self_, path, token);
  }
  Result<void> unwatch(std::string_view path, std::string_view token) override {
    return tree_->unwatch(watcher_, self_, path, token);
  }
  int watch_fd() const override { return tree_->watcher_fd(watcher_); }
  std::vector<WatchEvent> read_watches() override { return tree_->drain(watcher_); }
  std::vector<WatchEvent> wait_watches(int timeout_ms) override {
    wait_readable(watch_fd(), timeout_ms);
    return read_watches();
  }
  Result<void> set_permissions(std::string_view path, const NodePerms& perms) override {
    return tree_->set_perms(self_, path, perms);
  }
  Result<NodePerms> get_permissions(std::string_view path) override { return tree_->get_perms(self_, path); }

 private:
  std::shared_ptr<StoreTree> tree_;
  DomId self_;
  StoreTree::WatcherId watcher_;
};

}  // namespace

Result<std::unique_ptr<Store>> make_local_store(std::shared_ptr<StoreTree> tree, DomId self) {
  auto w = tree->add_watcher();
  if (!w) return w.error();
  return std::unique_ptr<Store>(new LocalStore(std::move(tree), self, *w));
}

}  // namespace pvnet
