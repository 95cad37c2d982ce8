// run_command: an exception that escapes a subcommand (the last line of defence: a std::filesystem call that
// throws, a JSON read of the wrong type) ends in a message naming the subcommand and the error, and an exit status,
// never in std::terminate (an abort that skips every destructor: temporary directories, children).
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "tools/command.hpp"

namespace pvnet::tools {
namespace {

int throws_filesystem(int, char**) {
  std::filesystem::create_directories(std::filesystem::path("/proc/self/status/child"));
  return 0;
}
int throws_runtime(int, char**) { throw std::runtime_error("something odd"); }
int throws_int(int, char**) { throw 42; }
int returns_3(int, char**) { return 3; }

TEST(RunCommand, AnEscapedExceptionIsAMessageAndAStatus) {
  char arg0[] = "x";
  char* argv[] = {arg0, nullptr};
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_command(Command{"guest", "", throws_filesystem}, 1, argv), kUnexpectedErrorStatus);
  std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("pvnet guest: "), std::string::npos) << said;
  EXPECT_NE(said.find("filesystem error"), std::string::npos) << said;

  testing::internal::CaptureStderr();
  EXPECT_EQ(run_command(Command{"replay", "", throws_runtime}, 1, argv), kUnexpectedErrorStatus);
  said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("pvnet replay: something odd"), std::string::npos) << said;

  testing::internal::CaptureStderr();
  EXPECT_EQ(run_command(Command{"bench", "", throws_int}, 1, argv), kUnexpectedErrorStatus);
  said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("pvnet bench: an unknown exception"), std::string::npos) << said;
}

TEST(RunCommand, AStatusIsPassedOn) {
  char arg0[] = "x";
  char* argv[] = {arg0, nullptr};
  EXPECT_EQ(run_command(Command{"frontend", "", returns_3}, 1, argv), 3);
}

}  // namespace
}  // namespace pvnet::tools
