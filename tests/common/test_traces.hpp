// Where tests find the real traces: the project's traces/, and any directories named in $PVNET_EXTRA_TRACES
// (colon-separated: captures of your own, or the ones a reviewer checks the work with), and a scratch directory
// per test process. One definition for every test area.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace pvnet::test_data {

namespace fs = std::filesystem;

// The source tree: $PVNET_SOURCE_DIR (set by ctest), else derived from this header's own path.
inline fs::path source_dir() {
  if (const char* s = std::getenv("PVNET_SOURCE_DIR")) return s;
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

// Every pcap/pcapng trace we have, sorted: traces/ first, then those of $PVNET_EXTRA_TRACES whose file name is not
// already among them.
inline std::vector<fs::path> all_traces() {
  auto in_dir = [](const fs::path& dir) {
    std::vector<fs::path> found;
    if (!fs::is_directory(dir)) return found;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng") found.push_back(e.path());
    std::sort(found.begin(), found.end());
    return found;
  };
  std::vector<fs::path> traces = in_dir(source_dir() / "traces");
  const char* extra = std::getenv("PVNET_EXTRA_TRACES");
  for (std::string rest = extra ? extra : ""; !rest.empty();) {
    const size_t colon = rest.find(':');
    const std::string dir = rest.substr(0, colon);
    rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    for (const fs::path& t : in_dir(dir)) {
      const bool have = std::any_of(traces.begin(), traces.end(),
                                    [&](const fs::path& p) { return p.filename() == t.filename(); });
      if (!have) traces.push_back(t);
    }
  }
  return traces;
}

// A gtest-safe name for a trace: bundled_<stem> for traces/, extra_<stem> for the others.
inline std::string trace_test_name(const fs::path& trace) {
  const bool bundled = trace.parent_path() == source_dir() / "traces";
  std::string n = std::string(bundled ? "bundled_" : "extra_") + trace.stem().string();
  for (auto& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

// A directory of this test process's own under the temp dir, created on first use and removed, with what the
// test left in it, when the process exits (a restart test's capture is ~170 MB; ctest runs a process per test).
inline fs::path scratch(const std::string& area, const std::string& name) {
  struct ScratchDirs {
    std::set<fs::path> made;
    ~ScratchDirs() {
      std::error_code ec;
      for (const auto& d : made) fs::remove_all(d, ec);
    }
  };
  static ScratchDirs dirs;
  fs::path dir = fs::temp_directory_path() / ("pvnet-" + area + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  dirs.made.insert(dir);
  return dir / name;
}

}  // namespace pvnet::test_data
