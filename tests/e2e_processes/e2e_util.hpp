// Helpers for the multi-process end-to-end tests: run the pvnet binary, capture what it says, read its JSON.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/common/test_traces.hpp"
#include "tools/process/child_process.hpp"
#include "tools/process/control_lines.hpp"

namespace pvnet::e2e {

namespace fs = std::filesystem;
using Ms = std::chrono::milliseconds;

using pvnet::test_data::all_traces;
using pvnet::test_data::source_dir;

inline fs::path scratch(const std::string& name) { return pvnet::test_data::scratch("e2e-processes", name); }

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

// Spawns `pvnet args...` (a daemon: backend, frontend, hypervisor) and waits up to 20 s for a line starting with
// `wait_for`; nullptr (and a test failure naming `name`) if it never says it.
inline std::unique_ptr<tools::ChildProcess> start_pvnet(std::vector<std::string> args, const std::string& name,
                                                        const char* wait_for, const char* exe = PVNET_EXE) {
  args.insert(args.begin(), "pvnet");
  auto c = tools::ChildProcess::spawn(exe, args, name);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().reason);
  if (!c) return nullptr;
  auto line = (*c)->wait_for_line(wait_for, Ms(20'000));
  EXPECT_TRUE(line.ok()) << name << ": " << (line.ok() ? "" : line.error().reason);
  if (!line) return nullptr;
  // What it said is a well-formed control line (tools/process/control_lines.hpp), as its readers parse it.
  auto parsed = tools::parse_control_line(*line);
  EXPECT_TRUE(parsed.ok()) << name << ": " << (parsed.ok() ? "" : parsed.error().reason);
  return std::move(c).value();
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
