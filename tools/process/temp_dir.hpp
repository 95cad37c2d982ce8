// A private directory for one run's sockets and files: mkdtemp under $TMPDIR (else /tmp), removed with everything
// in it when its TempDir goes, and also when SIGTERM, SIGINT or SIGHUP stops the process before that. The first
// TempDir installs a handler for those signals (only where the default action is in place: a subcommand that
// handles them itself keeps its own) that removes every live TempDir and then lets the signal end the process as
// it would have (status 128 + signal; children started with ChildProcess die with it, PR_SET_PDEATHSIG).
#pragma once
#include <string>
#include <string_view>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

class TempDir {
 public:
  // $TMPDIR/<prefix>-XXXXXX, e.g. create("pvnet-bench").
  static Result<TempDir> create(std::string_view prefix);
  // A directory the user named (a --work-dir): created if missing, kept when its TempDir goes.
  static Result<TempDir> kept(const std::string& path);
  TempDir() = default;  // none yet
  TempDir(TempDir&& o) noexcept;
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  void release();
  std::string path_;
  bool keep_ = false;
  int slot_ = -1;  // its entry in the signal handler's list (-1: not listed, only removed by the destructor)
};

}  // namespace pvnet::tools
