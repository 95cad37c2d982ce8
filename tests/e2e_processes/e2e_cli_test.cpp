// The pvnet command line against bad input and signals (issue 21, 11-14): a bad numeric value is refused at parse
// time naming the option and its range; a filesystem error is a message and an exit status, never an abort; a run
// stopped by SIGTERM/SIGINT leaves no temporary directory behind.
#include <signal.h>

#include <regex>
#include <thread>

#include "tests/e2e_processes/e2e_util.hpp"

namespace pvnet::e2e {
namespace {

using tools::ChildProcess;

const std::string kTrace = (source_dir() / "traces" / "tcp-1500-small.pcap").string();

void expect_no_abort(const PvnetRun& r) {
  EXPECT_NE(r.status, 128 + SIGABRT) << r.output;
  EXPECT_FALSE(contains(r.output, "terminate called")) << r.output;
}

// ---- numeric options ------------------------------------------------------------------------------------------

struct BadNumber {
  std::vector<std::string> args;  // the subcommand, what it requires, and the bad option
  std::string option;             // "--slot-size"
  std::string range;              // "64..2048", as the message says it
};

void PrintTo(const BadNumber& c, std::ostream* os) {
  for (const auto& a : c.args) *os << a << " ";
}

class BadNumericOption : public ::testing::TestWithParam<BadNumber> {};

TEST_P(BadNumericOption, IsRefusedAtParseTimeNamingTheOptionAndItsRange) {
  const BadNumber& c = GetParam();
  PvnetRun r = run_pvnet(c.args, Ms(20'000));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "for option '" + c.option + "' is invalid")) << r.output;
  EXPECT_TRUE(contains(r.output, "must be an integer in " + c.range) ||
              contains(r.output, "must be a number in " + c.range))
      << r.output;
}

std::vector<BadNumber> bad_numbers() {
  const std::vector<std::string> replay = {"replay", "--in", kTrace};
  const std::vector<std::string> frontend = {"frontend", "--socket", "/nonexistent/hv.sock", "--domid", "1"};
  const std::vector<std::string> backend = {"backend", "--socket", "/nonexistent/hv.sock"};
  const std::vector<std::string> hypervisor = {"hypervisor", "--socket", "/nonexistent/hv.sock"};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  return {
      // The two from issue 21: -1 was taken as 4294967295 (a 10 s wait), 4294967295 as an offset ran out of pages.
      {with(replay, {"--processes", "--slot-size", "-1"}), "--slot-size", "64..2048"},
      {with(replay, {"--data-offset", "4294967295"}), "--data-offset", "0..4095"},
      {with(replay, {"--slot-size", "100"}), "--slot-size", "64..2048 and a power of 2"},
      {with(replay, {"--repeat", "0"}), "--repeat", "1..4294967295"},
      {with(replay, {"--repeat", "4294967296"}), "--repeat", "1..4294967295"},
      {with(replay, {"--mtu", "70000"}), "--mtu", "68..65535"},
      {with(replay, {"--compare", "--runs", "-1"}), "--runs", "1..1000"},
      {with(frontend, {"--domid", "40000"}), "--domid", "1..32751"},
      {with(frontend, {"--mem-mb", "-1"}), "--mem-mb", "1..65536"},
      {with(frontend, {"--repeat", "-1"}), "--repeat", "1..4294967295"},
      {with(frontend, {"--data-offset", "4096"}), "--data-offset", "0..4095"},
      {with(frontend, {"--reconnect-timeout", "-1"}), "--reconnect-timeout", "0..86400"},
      {with(frontend, {"--tap-mtu", "65522"}), "--tap-mtu", "68..65521"},
      {with(frontend, {"--backend-domid", "-1"}), "--backend-domid", "0..32751"},
      {with(frontend, {"--slot-size", "+128"}), "--slot-size", "64..2048"},
      {with(backend, {"--mtu", "-1"}), "--mtu", "68..65535"},
      {with(backend, {"--max-inflight", "0"}), "--max-inflight", "1..65536"},
      {with(backend, {"--max-kept-pages", "-1"}), "--max-kept-pages", "0..4096"},
      {with(backend, {"--rx-queue-bytes", "-1"}), "--rx-queue-bytes", "65536..1073741824"},
      {with(backend, {"--rx-stall-ms", "-1"}), "--rx-stall-ms", "0..86400000"},
      {with(backend, {"--credit-bytes", "-1"}), "--credit-bytes", "0..18446744073709551615"},
      {with(backend, {"--credit-packets", "0x10"}), "--credit-packets", "0..18446744073709551615"},
      {with(backend, {"--tap-for", "0"}), "--tap-for", "1..32751"},
      {with(hypervisor, {"--dom0-mem", "-1"}), "--dom0-mem", "4096..68719476736"},
      {with(hypervisor, {"--dom0-grants", "0"}), "--dom0-grants", "9..32768"},
      {{"bench", "--runs", "0"}, "--runs", "1..1000"},
      {{"bench", "--seconds", "nan"}, "--seconds", "0..600"},
      {{"bench", "--seconds", "-1"}, "--seconds", "0..600"},
      {{"guest", "run", "--domid", "0"}, "--domid", "1..32751"},
      {{"guest", "run", "--timeout", "-1"}, "--timeout", "1..86400"},
      {{"guest", "run", "--mem-mb", "-1"}, "--mem-mb", "64..16384"},
      {{"guest", "run", "--mb", "-1"}, "--mb", "1..65536"},
      {{"guest", "demo", "--timeout", "-1"}, "--timeout", "1..86400"},
      {{"xen-lab", "--scenario", "selftest", "--timeout", "-1"}, "--timeout", "1..86400"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cli, BadNumericOption, ::testing::ValuesIn(bad_numbers()),
                         [](const ::testing::TestParamInfo<BadNumber>& i) {
                           std::string n = i.param.args[0] + (i.param.args[0] == "guest" ? "_" + i.param.args[1] : "") +
                                           "_" + i.param.option.substr(2) + "_" + std::to_string(i.index);
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// Every numeric option with a default shows its range in --help (it is declared with ranged(): tools/options.hpp);
// one declared with po::value alone shows "arg (=N)".
TEST(Cli, EveryNumericOptionWithADefaultHasARange) {
  const std::vector<std::vector<std::string>> helps = {
      {"replay", "--help"},    {"frontend", "--help"}, {"backend", "--help"},    {"bench", "--help"},
      {"hypervisor", "--help"}, {"guest", "run", "--help"}, {"guest", "demo", "--help"}, {"xen-lab", "--help"}};
  const std::regex unranged(R"((--[a-z0-9-]+) arg \(=-?[0-9][0-9.]*\))");
  for (const auto& h : helps) {
    PvnetRun r = run_pvnet(h, Ms(20'000));
    EXPECT_EQ(r.status, 0) << h[0] << ": " << r.output;
    std::smatch m;
    EXPECT_FALSE(std::regex_search(r.output, m, unranged)) << h[0] << ": " << m.str(1) << " has no range";
  }
}

// ---- filesystem errors ----------------------------------------------------------------------------------------

TEST(Cli, XenLabScenarioNameTooLongIsRefusedNotAnAbort) {
  PvnetRun r = run_pvnet({"xen-lab", "--scenario", std::string(300, 'a')}, Ms(20'000));
  expect_no_abort(r);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "is not a scenario name")) << r.output;
}

TEST(Cli, XenLabScenarioNameThatIsAPathIsRefused) {
  PvnetRun r = run_pvnet({"xen-lab", "--scenario", "../../tools/xen-lab/scenarios/selftest"}, Ms(20'000));
  expect_no_abort(r);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "is not a scenario name")) << r.output;
}

TEST(Cli, GuestWorkdirThatIsARegularFileIsAMessageNotAnAbort) {
  const fs::path file = scratch("workdir-is-a-file");
  std::ofstream(file) << "not a directory\n";
  PvnetRun r = run_pvnet({"guest", "run", "--socket", "/nonexistent/hv.sock", "--workdir", file.string()},
                         Ms(20'000));
  expect_no_abort(r);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "--workdir " + file.string())) << r.output;
}

// ---- temporary directories and signals ------------------------------------------------------------------------

struct StoppedRun {
  const char* name;
  std::vector<std::string> args;
  const char* prefix;  // of the run's temporary directory
  int sig;
};

void PrintTo(const StoppedRun& c, std::ostream* os) { *os << c.name; }

class StoppedBySignal : public ::testing::TestWithParam<StoppedRun> {};

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  return out;
}

TEST_P(StoppedBySignal, LeavesNoTemporaryDirectoryBehind) {
  const StoppedRun& c = GetParam();
  const fs::path tmp = scratch(std::string("tmpdir-") + c.name);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::vector<std::string> args = {"env", "TMPDIR=" + tmp.string(), PVNET_EXE};
  args.insert(args.end(), c.args.begin(), c.args.end());
  auto run = ChildProcess::spawn("/usr/bin/env", args, std::string("pvnet ") + c.args[0], /*capture_stderr=*/true);
  ASSERT_TRUE(run.ok()) << run.error().reason;
  auto& p = **run;
  // Its directory appears, and it is busy with it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto ours = [&] {
    for (const auto& e : entries(tmp))
      if (e.rfind(c.prefix, 0) == 0) return true;
    return false;
  };
  while (!ours() && p.running() && std::chrono::steady_clock::now() < deadline) (void)p.wait(Ms(20));
  ASSERT_TRUE(ours()) << c.prefix << "* never appeared in " << tmp << " (" << p.status_text() << ")";
  std::this_thread::sleep_for(Ms(300));
  ASSERT_TRUE(p.running()) << "it should still be running (" << p.status_text() << ")";
  ASSERT_TRUE(p.signal(c.sig).ok());
  auto st = p.wait(Ms(10'000));
  ASSERT_TRUE(st.ok()) << "still running 10 s after the signal";
  EXPECT_EQ(*st, 128 + c.sig) << "the signal still ends the process";
  const auto left = entries(tmp);
  EXPECT_TRUE(left.empty()) << left.size() << " left in " << tmp << ", first " << left.front();
}

INSTANTIATE_TEST_SUITE_P(
    Cli, StoppedBySignal,
    ::testing::Values(
        StoppedRun{"bench",
                   {"bench", "--sizes", "64", "--policies", "copy", "--mode", "busy", "--seconds", "5", "--runs", "1"},
                   "pvnet-bench-",
                   SIGTERM},
        StoppedRun{"replay_processes",
                   {"replay", "--processes", "--in", kTrace, "--sink", "null", "--repeat", "100000"},
                   "pvnet-replay-",
                   SIGTERM},
        StoppedRun{"replay_compare",
                   {"replay", "--compare", "--in", kTrace, "--repeat", "100000", "--runs", "1"},
                   "pvnet-compare-",
                   SIGTERM}),
    [](const ::testing::TestParamInfo<StoppedRun>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace pvnet::e2e
