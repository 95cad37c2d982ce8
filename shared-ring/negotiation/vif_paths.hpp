// Where a vif's two store directories are (docs/protocol.md 1): the frontend's under the guest's home, the
// backend's under the driver domain's. The toolstack creates them (backend/toolstack.hpp); both drivers and every
// tool name them through these functions.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared-ring/ids.hpp"

namespace pvnet {

struct VifPaths {
  std::string frontend;  // /local/domain/F/device/vif/N
  std::string backend;   // /local/domain/B/backend/vif/F/N
};

VifPaths vif_paths(DomId backend, DomId frontend, uint32_t handle);
// /local/domain/F/device/vif/N
std::string vif_frontend_dir(DomId frontend, uint32_t handle);
// /local/domain/B/backend/vif: the directory a backend (or libxl) puts its vifs under, one per frontend domain.
std::string vif_backend_root(DomId backend);

// The two last components of a backend directory (backend/vif/<F>/<N>), as written; nullopt if it has fewer.
struct BackendDirName {
  std::string frontend;  // <F>
  std::string handle;    // <N>
};
std::optional<BackendDirName> backend_dir_name(std::string_view backend_dir);

}  // namespace pvnet
