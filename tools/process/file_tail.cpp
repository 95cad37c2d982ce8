#include "tools/process/file_tail.hpp"

#include <fstream>
#include <iterator>

namespace pvnet::tools {

std::vector<std::string> FileTail::new_lines() {
  std::vector<std::string> lines;
  std::ifstream f(path_, std::ios::binary);
  if (!f) return lines;
  f.seekg(static_cast<std::streamoff>(pos_));
  std::string chunk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  pos_ += chunk.size();
  partial_ += chunk;
  size_t nl;
  while ((nl = partial_.find('\n')) != std::string::npos) {
    std::string line = partial_.substr(0, nl);
    partial_.erase(0, nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace pvnet::tools
