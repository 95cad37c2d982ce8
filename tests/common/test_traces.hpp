// Where tests find the real traces: the project's traces/ and the shared ones beside the work tree
// (../shared/traces), and a scratch directory per test process. One definition for every test area.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace pvnet::test_data {

namespace fs = std::filesystem;

// The source tree: $PVNET_SOURCE_DIR (set by ctest), else derived from this header's own path.
inline fs::path source_dir() {
  if (const char* s = std::getenv("PVNET_SOURCE_DIR")) return s;
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

// Every pcap/pcapng trace we have, sorted: traces/ first candidates, then ../shared/traces.
inline std::vector<fs::path> all_traces() {
  std::vector<fs::path> traces;
  for (const fs::path& dir : {source_dir() / "traces", source_dir() / ".." / "shared" / "traces"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng") traces.push_back(e.path());
  }
  std::sort(traces.begin(), traces.end());
  return traces;
}

// A gtest-safe name for a trace: bundled_<stem> or shared_<stem> (the same file may be in both places).
inline std::string trace_test_name(const fs::path& trace) {
  bool shared = trace.string().find("/shared/traces/") != std::string::npos;
  std::string n = std::string(shared ? "shared_" : "bundled_") + trace.stem().string();
  for (auto& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

// A directory of this test process's own under the temp dir, created on first use.
inline fs::path scratch(const std::string& area, const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("pvnet-" + area + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

}  // namespace pvnet::test_data
