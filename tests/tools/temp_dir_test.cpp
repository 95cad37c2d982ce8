// TempDir: a private directory under $TMPDIR that is gone, with what is in it, when its TempDir goes (moved ones
// once). Its removal on SIGTERM/SIGINT is checked on the real command (tests/e2e_processes/e2e_cli_test.cpp,
// StoppedBySignal).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/common/test_traces.hpp"
#include "tools/process/temp_dir.hpp"

namespace pvnet::tools {
namespace {

namespace fs = std::filesystem;

TEST(TempDir, IsUnderTmpdirAndGoesWithEverythingInIt) {
  const fs::path base = pvnet::test_data::scratch("tools", "tmpdir");
  fs::remove_all(base);
  fs::create_directories(base);
  ::setenv("TMPDIR", base.c_str(), 1);
  std::string path;
  {
    auto d = TempDir::create("pvnet-test");
    ASSERT_TRUE(d.ok()) << d.error().reason;
    path = d->path();
    EXPECT_EQ(fs::path(path).parent_path(), base);
    EXPECT_EQ(fs::path(path).filename().string().rfind("pvnet-test-", 0), 0u) << path;
    fs::create_directories(d->file("sub/deeper"));
    std::ofstream(d->file("sub/deeper/f")) << "x";
    std::ofstream(d->file("g")) << "y";
    TempDir moved = std::move(d).value();
    EXPECT_TRUE(fs::exists(moved.file("sub/deeper/f")));
  }
  ::unsetenv("TMPDIR");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(base));
}

TEST(TempDir, CreateFailsCleanlyWhereItCannot) {
  ::setenv("TMPDIR", "/nonexistent/dir", 1);
  auto d = TempDir::create("pvnet-test");
  ::unsetenv("TMPDIR");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().reason.find("/nonexistent/dir/pvnet-test-"), std::string::npos) << d.error().reason;
}

}  // namespace
}  // namespace pvnet::tools
