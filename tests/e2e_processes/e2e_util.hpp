// Helpers for the multi-process end-to-end tests: run the pvnet binary, capture what it says, read its JSON.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/child_process.hpp"

namespace pvnet::e2e {

namespace fs = std::filesystem;
using Ms = std::chrono::milliseconds;

inline fs::path source_dir() {
  const char* s = std::getenv("PVNET_SOURCE_DIR");
  return s ? fs::path(s) : fs::path(PVNET_TEST_SOURCE_DIR);
}

// Every trace we have: the project's traces/ and the shared ones next to the work tree.
inline std::vector<fs::path> all_traces() {
  std::vector<fs::path> traces;
  for (auto dir : {source_dir() / "traces", source_dir() / ".." / "shared" / "traces"}) {
    if (!fs::exists(dir)) continue;
    for (auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng") traces.push_back(e.path());
  }
  std::sort(traces.begin(), traces.end());
  return traces;
}

inline fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("pvnet-e2e-processes-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

struct PvnetRun {
  int status = -1;     // exit status (128 + signal if killed)
  std::string output;  // stdout and stderr, interleaved
};

// Runs `pvnet args...` to completion (at most `timeout`), capturing stdout and stderr.
inline PvnetRun run_pvnet(std::vector<std::string> args, Ms timeout = Ms(120'000)) {
  args.insert(args.begin(), "pvnet");
  PvnetRun run;
  auto c = tools::ChildProcess::spawn(PVNET_EXE, args, "pvnet " + args[1], /*capture_stderr=*/true);
  if (!c) {
    run.output = c.error().reason;
    return run;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    auto line = (*c)->read_line(std::max(left, Ms(0)));
    if (!line) break;  // closed (exited) or timed out
    run.output += *line + "\n";
  }
  auto st = (*c)->wait(Ms(5'000));
  run.status = st ? *st : -1;
  if (!st) run.output += "[test: " + st.error().reason + "; killed]\n";
  return run;
}

inline nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  auto j = nlohmann::json::parse(f, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << p;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

inline uint64_t u(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  EXPECT_TRUE(it != j.end() && it->is_number_unsigned()) << "missing " << k << " in " << j.dump().substr(0, 200);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : ~0ull;
}

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace pvnet::e2e
