#include "shared-ring/negotiation/vif_paths.hpp"

namespace pvnet {

std::string vif_frontend_dir(DomId frontend, uint32_t handle) {
  return "/local/domain/" + std::to_string(frontend.value) + "/device/vif/" + std::to_string(handle);
}

std::string vif_backend_root(DomId backend) {
  return "/local/domain/" + std::to_string(backend.value) + "/backend/vif";
}

VifPaths vif_paths(DomId backend, DomId frontend, uint32_t handle) {
  return VifPaths{vif_frontend_dir(frontend, handle),
                  vif_backend_root(backend) + "/" + std::to_string(frontend.value) + "/" + std::to_string(handle)};
}

std::optional<BackendDirName> backend_dir_name(std::string_view be) {
  const auto slash = be.rfind('/');
  const auto slash2 = slash == std::string_view::npos || slash == 0 ? std::string_view::npos : be.rfind('/', slash - 1);
  if (slash2 == std::string_view::npos) return std::nullopt;
  return BackendDirName{std::string(be.substr(slash2 + 1, slash - slash2 - 1)), std::string(be.substr(slash + 1))};
}

}  // namespace pvnet
