// Following a file another process appends to (a guest's serial console): each call returns the complete lines
// written since the last one, without their line ends; a partial last line waits for its newline.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace pvnet::tools {

class FileTail {
 public:
  explicit FileTail(std::string path) : path_(std::move(path)) {}
  // Nothing if the file is not there (yet).
  std::vector<std::string> new_lines();

 private:
  std::string path_, partial_;
  size_t pos_ = 0;
};

}  // namespace pvnet::tools
