// pvnet bench end to end, briefly: two sizes, two policies, both modes, a fraction of a second in all. No timing
// assertions (the machine is shared); what must hold is the shape of the report and that every cell moved frames
// without errors, with the costs each policy is defined by.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Outcome {
  int status = -1;
  std::string out;
};

Outcome run(const std::string& args) {
  Outcome r;
  FILE* p = ::popen((std::string(PVNET_EXE) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return r;
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pvnet-bench-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(BenchTest, ShortRunWritesEveryField) {
  const std::string json = dir_ + "/bench.json";
  Outcome r = run("bench --sizes 64,1514 --policies slots,copy --mode both --seconds 0.03 --runs 2 --json " + json);
  ASSERT_EQ(r.status, 0) << r.out;
  // The table names every target with a verdict.
  EXPECT_NE(r.out.find("targets:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bare ring"), std::string::npos) << r.out;

  std::ifstream f(json);
  ASSERT_TRUE(f) << "no JSON written";
  auto j = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON";

  ASSERT_TRUE(j.contains("config"));
  EXPECT_EQ(j["config"]["sizes"], nlohmann::json({64, 1514}));
  EXPECT_EQ(j["config"]["policies"], nlohmann::json({"slots", "copy"}));
  EXPECT_EQ(j["config"]["runs"], 2);
  EXPECT_EQ(j["config"]["sink"], "null");

  ASSERT_TRUE(j["ring"].is_array());
  ASSERT_EQ(j["ring"].size(), 2u);  // busy and event
  for (auto& ring : j["ring"]) {
    EXPECT_GT(ring["desc_per_s"].get<double>(), 0);
    EXPECT_EQ(ring["runs"].size(), 2u);
  }

  ASSERT_TRUE(j["cells"].is_array());
  ASSERT_EQ(j["cells"].size(), 2u * 2u * 2u);  // sizes x policies x modes
  for (auto& c : j["cells"]) {
    SCOPED_TRACE(c.dump());
    for (const char* k : {"policy", "size", "wire_size", "mode", "mpps", "gbit_per_s", "ns_per_packet", "vs_copy",
                          "notifications_per_packet", "runs"})
      ASSERT_TRUE(c.contains(k)) << k;
    EXPECT_GT(c["mpps"].get<double>(), 0);
    EXPECT_GT(c["gbit_per_s"].get<double>(), 0);
    EXPECT_GT(c["ns_per_packet"].get<double>(), 0);
    ASSERT_EQ(c["runs"].size(), 2u);
    for (auto& s : c["runs"]) {
      EXPECT_GT(s["packets"].get<uint64_t>(), 0u);
      EXPECT_EQ(s["errors"].get<uint64_t>(), 0u);
      EXPECT_EQ(s["bytes"].get<uint64_t>(), s["packets"].get<uint64_t>() * c["wire_size"].get<uint64_t>());
      // What defines the policies: slots never maps nor copies payload under the null sink; copy grant-copies
      // every byte beyond nothing (the whole frame) and maps nothing.
      EXPECT_EQ(s["pages_mapped"].get<uint64_t>(), 0u);
      if (c["policy"] == "slots") {
        EXPECT_EQ(s["grant_copy_bytes"].get<uint64_t>(), 0u);
        EXPECT_EQ(s["faults"].get<uint64_t>(), 0u);
      } else {
        EXPECT_EQ(s["grant_copy_bytes"].get<uint64_t>(), s["bytes"].get<uint64_t>());
      }
    }
    if (c["policy"] == "copy") {
      EXPECT_DOUBLE_EQ(c["vs_copy"].get<double>(), 1.0);
    }
  }

  ASSERT_TRUE(j["targets"].is_array());
  EXPECT_EQ(j["targets"].size(), 6u);
  for (auto& t : j["targets"]) {
    SCOPED_TRACE(t.dump());
    for (const char* k : {"name", "relation", "threshold", "value", "result"}) ASSERT_TRUE(t.contains(k)) << k;
    const std::string res = t["result"];
    EXPECT_TRUE(res == "PASS" || res == "MISS" || res == "n/a");
    // Targets whose cells ran have a value; those naming map, hdrcopy or 65536 B do not.
    const std::string name = t["name"];
    const bool needs_missing = name.find("map") != std::string::npos || name.find("hdrcopy") != std::string::npos ||
                               name.find("64 KiB") != std::string::npos;
    EXPECT_EQ(t["value"].is_null(), needs_missing);
  }
}

TEST_F(BenchTest, BadOptionsAreRefused) {
  EXPECT_EQ(run("bench --sizes 10").status, 2);
  EXPECT_EQ(run("bench --policies nope").status, 2);
  EXPECT_EQ(run("bench --mode sometimes").status, 2);
  EXPECT_EQ(run("bench --sink pcap").status, 2);
  // An option boost cannot parse: one line naming it (and where to look), not the whole description.
  for (const char* args : {"bench --frobnicate", "bench --runs many"}) {
    Outcome r = run(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.out.rfind("pvnet bench: ", 0), 0u) << r.out;
    EXPECT_EQ(r.out.find("usage:"), std::string::npos) << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  }
  Outcome h = run("bench --help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--policies"), std::string::npos);
}

}  // namespace
