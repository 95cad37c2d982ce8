#include "tools/lab/guest_env.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tools/process/spawn.hpp"

namespace pvnet::tools {

namespace fs = std::filesystem;

namespace {
// The build tree holding the running binary: the first parent folder with a CMakeCache.txt.
std::string build_tree() {
  std::error_code ec;
  fs::path p = fs::path(self_exe()).parent_path();
  for (int i = 0; i < 4 && !p.empty(); ++i, p = p.parent_path())
    if (fs::exists(p / "CMakeCache.txt", ec)) return p.string();
  return {};
}
}  // namespace

Result<std::string> pvnet_source_dir() {
  if (const char* e = std::getenv("PVNET_SOURCE_DIR"); e && *e) return std::string(e);
  const std::string tree = build_tree();
  if (!tree.empty()) {
    std::ifstream f(tree + "/CMakeCache.txt");
    std::string line;
    const std::string key = "pvnet_SOURCE_DIR:STATIC=";
    while (std::getline(f, line))
      if (line.rfind(key, 0) == 0) return line.substr(key.size());
  }
  return make_error(ENOENT, "cannot find the pvnet source tree (set PVNET_SOURCE_DIR)");
}

std::string guest_cache_dir() {
  if (const char* e = std::getenv("PVNET_GUEST_CACHE"); e && *e) return e;
  const std::string tree = build_tree();
  return (tree.empty() ? std::string("/tmp") : tree) + "/guest-cache";
}

Result<void> build_guest(const std::string& cache, bool verbose) {
  auto src = pvnet_source_dir();
  if (!src) return src.error();
  const std::string script = *src + "/tools/guest/build-guest.sh";
  if (::access(script.c_str(), X_OK) != 0) return make_error(ENOENT, script + " is missing");
  auto r = run_bounded({script, cache}, std::chrono::minutes(10));
  if (!r) return r.error();
  if (r->status != 0) return make_error(EIO, "guest build failed:\n" + r->output);
  if (verbose) std::fputs(r->output.c_str(), stdout);
  return {};
}

}  // namespace pvnet::tools
