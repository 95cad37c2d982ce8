// Every subcommand's --json FILE: the counters or the report, indented, one trailing newline.
#pragma once
#include <cerrno>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

inline Result<void> write_json_file(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  if (!f) return make_error(EIO, "cannot write " + path);
  return {};
}

}  // namespace pvnet::tools
