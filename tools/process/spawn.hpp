// Starting other programs, every one of them bounded: the one fork/exec of the command (spawn_process), under
// ChildProcess (a pvnet daemon we talk to by lines) and run_bounded (a program run to completion with a time
// limit, its output collected). A child dies with us (PR_SET_PDEATHSIG), starts with no signal blocked and
// SIGPIPE at its default, so a killed parent leaves nothing running.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

struct SpawnSpec {
  std::string exe;                // the program's path (execv: no PATH lookup here, see find_program)
  std::vector<std::string> argv;  // argv[0] first
  int stdin_fd = -1;   // -1: /dev/null
  int stdout_fd = -1;  // -1: ours
  int stderr_fd = -1;  // -1: ours
  bool own_group = false;  // its own process group, so that kill(-pid) also reaches what it starts
};
// The child's pid; the fds are dup'ed onto 0/1/2 in the child (the caller closes its copies).
Result<pid_t> spawn_process(const SpawnSpec& spec);

// The path of the running executable (/proc/self/exe resolved), for re-executing ourselves.
std::string self_exe();
// The absolute path of `program` on $PATH (also /usr/sbin and /sbin), or ENOENT with a hint to run setup.sh.
Result<std::string> find_program(const std::string& program);

struct CommandOutput {
  int status = 0;       // exit status, or 128 + signal
  std::string output;   // stdout and stderr together
};
// Runs argv (argv[0] looked up on PATH) in its own process group; kills the group after `timeout`
// (ETIMEDOUT). stdin is /dev/null.
Result<CommandOutput> run_bounded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
// The same, failing with the command's output unless it exits 0.
Result<std::string> run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

}  // namespace pvnet::tools
