// FileTail (tools/process/file_tail.hpp), the serial-console reader of `pvnet guest` and `pvnet xen-lab`: complete
// lines only, each once, line ends stripped, a file that is not there yet is no lines.
#include <gtest/gtest.h>

#include <fstream>

#include "tools/process/file_tail.hpp"
#include "tools/process/temp_dir.hpp"

namespace pvnet::tools {
namespace {

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  f << text;
}

TEST(FileTail, CompleteLinesOnceEachAsTheyAreAppended) {
  auto dir = TempDir::create("pvnet-file-tail");
  ASSERT_TRUE(dir.ok()) << dir.error().reason;
  const std::string path = dir->path() + "/serial.log";
  FileTail tail(path);
  EXPECT_TRUE(tail.new_lines().empty());  // not there yet

  append(path, "PVNET up\r\nXENLAB res");
  EXPECT_EQ(tail.new_lines(), (std::vector<std::string>{"PVNET up"}));
  EXPECT_TRUE(tail.new_lines().empty());  // nothing new; the partial line waits

  append(path, "ult ok\n\nlast");
  EXPECT_EQ(tail.new_lines(), (std::vector<std::string>{"XENLAB result ok", ""}));
  append(path, "\r\n");
  EXPECT_EQ(tail.new_lines(), (std::vector<std::string>{"last"}));
}

}  // namespace
}  // namespace pvnet::tools
