// pvnet bench: the copy-avoidance comparison on generated frames, across processes. See tools/bench/bench_runner.hpp.
#include <boost/program_options.hpp>
#include <cstring>
#include <iostream>
#include <sstream>

#include "tools/bench/bench_runner.hpp"
#include "tools/command.hpp"
#include "tools/replay/json_file.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

template <typename T, typename F>
bool parse_list(const std::string& text, std::vector<T>& out, F parse_one) {
  out.clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto v = parse_one(item);
    if (!v) return false;
    out.push_back(*v);
  }
  return !out.empty();
}

int cmd_bench(int argc, char** argv) {
  // The frontend child this command starts for itself (not for users).
  if (argc > 2 && !std::strcmp(argv[1], "--role") && !std::strcmp(argv[2], "frontend"))
    return bench_frontend_main(argc - 2, argv + 2);

  BenchOptions o;
  std::string sizes = "64,128,256,1514,9000,65536", policies = "copy,map,hdrcopy,slots,auto", mode = "both",
              sink = "null", json;
  po::options_description desc(
      "usage: pvnet bench [--sizes LIST] [--policies LIST] [--mode busy|event|both] [--seconds S] [--runs N]\n"
      "                   [--sink null|vif] [--json FILE]\n\n"
      "Frames of fixed sizes (65536 = a TCP GSO super-frame, sent as 65535 bytes, netif's largest) go from a\n"
      "guest's netfront in one process to dom0's netback in this one, which hosts the simulated hypervisor and one\n"
      "backend per payload policy. Busy-poll (both sides spin) and event-driven (both sleep on their event channel\n"
      "when idle; ring.h notification suppression). Prints each policy's Mpps, Gbit/s, ns/packet, its ratio to\n"
      "copy in the same run, notifications per packet, the bare ring's descriptor rate (the ceiling) and the\n"
      "targets with PASS/MISS. Cells are interleaved; each figure is the median of --runs runs.\n\noptions");
  desc.add_options()("help,h", "this help")(
      "sizes", po::value(&sizes)->default_value(sizes), "frame sizes in bytes, comma-separated (54..65536)")(
      "policies", po::value(&policies)->default_value(policies), "payload policies: copy,map,hdrcopy,slots,auto")(
      "mode", po::value(&mode)->default_value(mode), "busy, event or both")(
      "seconds", ranged(&o.seconds, 0.0, 600.0)->default_value(o.seconds), "seconds per cell and run")(
      "runs", ranged(&o.runs, 1, 1000)->default_value(o.runs), "interleaved runs; figures are their medians")(
      "sink", po::value(&sink)->default_value(sink), "null (headers inspected, payload untouched) or vif "
                                                      "(forwarded to guest B)")(
      "json", po::value(&json), "write every cell, run and target as JSON")(
      "progress", po::bool_switch(&o.progress), "show the progress line even when stderr is not a terminal");
  po::variables_map vm;
  if (auto done = parse_options(argc, argv, desc, vm, "bench")) return *done;
  auto bad = [&](const std::string& what) {
    std::cerr << "pvnet bench: " << what << "\n";
    return 2;
  };
  if (!parse_list(sizes, o.sizes, [](const std::string& s) -> std::optional<uint32_t> {
        try {
          size_t used = 0;
          unsigned long v = std::stoul(s, &used);
          if (used != s.size() || v < 54 || v > 65536) return std::nullopt;
          return static_cast<uint32_t>(v);
        } catch (...) {
          return std::nullopt;
        }
      }))
    return bad("--sizes: a comma-separated list of frame sizes in 54..65536");
  if (!parse_list(policies, o.policies, [](const std::string& s) { return parse_payload_policy(s); }))
    return bad("--policies: a comma-separated list of copy, map, hdrcopy, slots, auto");
  if (mode == "busy") o.modes = {BenchMode::busy};
  else if (mode == "event") o.modes = {BenchMode::event};
  else if (mode == "both") o.modes = {BenchMode::busy, BenchMode::event};
  else return bad("--mode: busy, event or both");
  if (sink == "null") o.sink = SinkKind::null;
  else if (sink == "vif") o.sink = SinkKind::vif;
  else return bad("--sink: null or vif");
  if (!(o.seconds > 0) || o.seconds > 600) return bad("--seconds: more than 0, at most 600");

  auto rep = run_bench(o);
  if (!rep) {
    std::cerr << "pvnet bench: FAILED: " << rep.error().reason << "\n";
    return 1;
  }
  std::cout << rep->table();
  if (!json.empty()) {
    if (auto w = write_json_file(json, rep->to_json()); !w) {
      std::cerr << "pvnet bench: " << w.error().reason << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

PVNET_COMMAND(bench, "bench", "copy-avoidance benchmark: every payload policy on generated frames, across processes",
              cmd_bench);

}  // namespace pvnet::tools
