// The toolstack's part of attaching a vif (what libxl does for `xl network-attach`): create the frontend and
// backend directories of docs/protocol.md section 1, with the frontend directory owned by the frontend domain so
// its driver can write its own keys, each directory readable by the other end (libxl: xenstore-chmod <fe> n<F>
// r<B>, <be> n<B> r<F>).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "grant-sim/platform/store.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"

namespace pvnet {

// Writes both directories (backend, backend-id, frontend, frontend-id, handle, mac, online, state = Initialising).
Result<VifPaths> toolstack_create_vif(Store& store, DomId backend, DomId frontend, uint32_t handle,
                                      std::string_view mac);
// Removes both directories (libxl's device removal after the drivers closed).
Result<void> toolstack_destroy_vif(Store& store, const VifPaths& paths);

}  // namespace pvnet
