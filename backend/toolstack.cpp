#include "backend/toolstack.hpp"

#include <cerrno>

#include "grant-sim/platform/store.hpp"
#include "shared-ring/negotiation/keys.hpp"

namespace pvnet {

Result<VifPaths> toolstack_create_vif(Store& store, DomId backend, DomId frontend, uint32_t handle,
                                      std::string_view mac) {
  VifPaths p = vif_paths(backend, frontend, handle);
  const std::string init = std::to_string(static_cast<int>(XenbusState::Initialising));
  // Both directories first, each handed to its end and readable by the other (libxl: frontend `n<F> r<B>`,
  // backend `n<B> r<F>`); nodes written below them inherit that. Without r<F> Linux's netfront cannot read the
  // backend's path at probe ("unable to read other end ... missing or inaccessible").
  if (auto r = store.write(p.frontend, ""); !r) return r.error();
  if (auto r = store.set_permissions(p.frontend, NodePerms{frontend, {}, {backend}});
      !r && r.error().code != ENOTSUP)
    return r.error();
  if (auto r = store.write(p.backend, ""); !r) return r.error();
  if (auto r = store.set_permissions(p.backend, NodePerms{backend, {}, {frontend}});
      !r && r.error().code != ENOTSUP)
    return r.error();
  struct Kv {
    std::string path;
    std::string value;
  };
  namespace key = netif::key;
  auto fe = [&](const char* k) { return netif::key_path(p.frontend, k); };
  auto be = [&](const char* k) { return netif::key_path(p.backend, k); };
  const Kv nodes[] = {
      {fe(key::backend), p.backend},
      {fe(key::backend_id), std::to_string(backend.value)},
      {fe(key::handle), std::to_string(handle)},
      {fe(key::mac), std::string(mac)},
      {fe(key::state), init},
      {be(key::frontend), p.frontend},
      {be(key::frontend_id), std::to_string(frontend.value)},
      {be(key::handle), std::to_string(handle)},
      {be(key::mac), std::string(mac)},
      {be(key::online), "1"},
      {be(key::state), init},
  };
  for (const auto& kv : nodes)
    if (auto r = store.write(kv.path, kv.value); !r) return r.error();
  return p;
}

namespace {

// libxl__xs_path_cleanup: a directory left with no value and no children goes too.
Result<void> remove_if_empty(Store& store, const std::string& path) {
  auto children = store.directory(path);
  if (!children) return children.error().code == ENOENT ? Result<void>{} : Result<void>(children.error());
  if (!children->empty() || !store.read_opt(path).value_or("").empty()) return {};
  if (auto r = store.remove(path); !r && r.error().code != ENOENT) return r.error();
  return {};
}

}  // namespace

Result<void> toolstack_destroy_vif(Store& store, const VifPaths& paths) {
  auto a = store.remove(paths.backend);
  auto b = store.remove(paths.frontend);
  if (!a && a.error().code != ENOENT) return a.error();
  if (!b && b.error().code != ENOENT) return b.error();
  // backend/vif/<F> goes with F's last vif (the frontend's device/vif goes with its domain's home).
  return remove_if_empty(store, paths.backend.substr(0, paths.backend.rfind('/')));
}

}  // namespace pvnet
