// Store over libxenstore (xs_open/xs_read/xs_write/xs_rm/xs_directory/xs_watch, xs_fileno + xs_check_watch), for
// pvnet on a real Xen host, with xs_set_permissions / xs_get_permissions behind Store's permission operations.
#pragma once
#include <memory>
#include <vector>
#include "grant-sim/platform/store.hpp"

namespace pvnet {

// NodePerms <-> xenstore's permission list: entry 0 is the owner (and what everyone else may do: nothing), each
// writer gets read+write ("b"), each reader read ("r"), as libxl's `xenstore-chmod <dir> n<F> r<B>` writes it.
struct XsPerm {
  uint32_t id = 0;
  int perms = 0;  // XS_PERM_* bits
  bool operator==(const XsPerm&) const = default;
};
std::vector<XsPerm> to_xs_perms(const NodePerms& p);
NodePerms from_xs_perms(const std::vector<XsPerm>& v);

// Opens a connection to xenstored (socket in dom0, /dev/xen/xenbus in a guest). `self` is this domain's id.
Result<std::unique_ptr<Store>> open_xen_store(DomId self);
// This domain's id, as xenstore knows it (the relative node "domid"); dom0 if the node is missing.
Result<DomId> xen_store_self_domid();

}  // namespace pvnet
