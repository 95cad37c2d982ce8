// Every subcommand's --json FILE: the counters or the report, indented, one trailing newline; and reading a
// counter back from one.
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

// A counter of a --json object: 0 when absent (an older writer, a role that has no such counter) or not an
// unsigned number.
inline uint64_t json_u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace pvnet::tools
