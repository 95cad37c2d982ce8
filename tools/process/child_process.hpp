// A pvnet daemon started by another pvnet process (replay --processes) or by a test: spawn_process, its stdin and
// stdout a socket pair to us (the control lines of control_lines.hpp: "ready", "connected", "go", "done"), its stderr
// passed through. Every wait has a timeout. A child still running when its ChildProcess goes is killed and reaped;
// it also dies with us (PR_SET_PDEATHSIG), so a killed test leaves no daemon behind.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grant-sim/platform/unique_fd.hpp"
#include "shared-ring/result.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/process/spawn.hpp"  // self_exe

namespace pvnet::tools {

class ChildProcess {
 public:
  using Ms = std::chrono::milliseconds;
  // `name` is for messages ("backend", "frontend A"). args[0] is the program's argv[0]. capture_stderr: the
  // child's stderr goes to the same socket as its stdout (for tests that check its messages).
  static Result<std::unique_ptr<ChildProcess>> spawn(const std::string& exe, std::vector<std::string> args,
                                                     std::string name, bool capture_stderr = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line the child wrote on stdout (without the newline). ETIMEDOUT; EPIPE if it closed stdout (exited).
  Result<std::string> read_line(Ms timeout);
  // Skips lines until one starting with `prefix`; returns it.
  Result<std::string> wait_for_line(std::string_view prefix, Ms timeout);
  // Skips lines until the control line `kind` (control_lines.hpp); a line of that kind that does not parse is an
  // error (EPROTO), not skipped.
  Result<ControlLine> wait_for(ControlLine::Kind kind, Ms timeout);
  Result<void> send_line(std::string_view line);
  Result<void> signal(int sig);
  // Waits for the child to exit; returns its exit status, or 128 + the signal that killed it. ETIMEDOUT.
  Result<int> wait(Ms timeout);
  void kill_and_reap();
  bool running() const { return !status_; }
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // "exited with status 1" / "killed by signal 9" / "still running".
  std::string status_text() const;

 private:
  ChildProcess(pid_t pid, UniqueFd io, std::string name) : pid_(pid), io_(std::move(io)), name_(std::move(name)) {}
  bool try_reap();

  pid_t pid_;
  UniqueFd io_;
  std::string name_;
  std::string buf_;
  bool eof_ = false;
  std::optional<int> status_;  // raw waitpid status once reaped
};

}  // namespace pvnet::tools
