// pvnet replay: the main job. See tools/replay/replay.hpp and replay_command.hpp.
#include <boost/program_options.hpp>
#include <iostream>

#include "tools/command.hpp"
#include "tools/options.hpp"
#include "tools/replay/replay_command.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

constexpr uint32_t kMaxRuns = 1000;  // --runs: more is a mistyped value

// replay --compare: every payload policy on the trace, checked and measured (tools/replay/compare.hpp).
int compare_mode(const ReplayOptions& base, const po::variables_map& vm, const std::string& report_dir,
                 const std::string& json) {
  for (const char* alone : {"out", "policy", "processes"}) {
    if (vm.count(alone) && !vm[alone].defaulted()) {
      std::cerr << "pvnet replay: --compare runs every policy itself; --" << alone << " does not go with it\n";
      return 2;
    }
  }
  return run_compare_command(base, vm["runs"].as<uint32_t>(), report_dir, json);
}

int cmd_replay(int argc, char** argv) {
  ReplayOptions o;
  std::string policy = "slots", sink = "vif", json;
  std::string report_dir;
  po::options_description desc(
      "usage: pvnet replay --in TRACE.pcap [--policy P] [--sink vif|pcap|null] [--out FILE] [--json FILE]\n"
      "       pvnet replay --compare --in TRACE.pcap [--sink vif|pcap|null] [--report DIR] [--runs N]\n\n"
      "Guest A's netfront transmits every frame of TRACE (pcap or pcapng, Ethernet); dom0's netback forwards\n"
      "each to guest B's RX ring (--sink vif; B writes what it received to --out), writes it itself (--sink pcap)\n"
      "or drops it after inspecting its header (--sink null). Prints and writes what dom0 paid.\n\noptions");
  desc.add_options()("help,h", "this help")
      ("in,i", po::value(&o.in)->required(), "trace to replay (pcap or pcapng of Ethernet frames)")
      ("out,o", po::value(&o.out), "received frames, as pcap")
      ("json,j", po::value(&json), "write the statistics here as JSON")
      ("policy,p", po::value(&policy)->default_value("slots"), "backend payload policy: slots|copy|map|hdrcopy")
      ("sink,s", po::value(&sink)->default_value("vif"), "where dom0 sends each frame: vif|pcap|null")
      ("slot-size", slot_size_value(&o.slot_size)->default_value(128), "header-slot size in bytes, a power of 2")
      ("no-header-slots", po::bool_switch(), "frontend speaks plain netif (no header slots)")
      ("mtu", ranged(&o.mtu, limits::kMinMtu, limits::kMaxMtu)->default_value(9000),
       "vif MTU: longer TCP frames go as GSO, others are dropped")
      ("data-offset", ranged(&o.data_offset, 0, limits::kMaxDataOffset)->default_value(0),
       "offset of each frame in its first guest page")
      ("repeat", ranged(&o.repeat, 1, UINT32_MAX)->default_value(1), "replay the trace this many times")
      ("progress", po::bool_switch(&o.progress), "show the progress line even when stderr is not a terminal")
      ("processes", po::bool_switch(), "run dom0 and each guest as its own process (pvnet backend/frontend)")
      ("compare", po::bool_switch(), "run every payload policy on TRACE, check each output, print a table per policy")
      ("report", po::value(&report_dir), "with --compare: write report.json, report.csv and PNG charts in this DIR")
      ("runs", ranged<uint32_t>(nullptr, 1, kMaxRuns)->default_value(3),
       "with --compare: replays per policy (median reported)");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "replay")) return *status;
  o.header_slots = !vm["no-header-slots"].as<bool>();
  auto p = parse_payload_policy(policy);
  if (!p) {
    std::cerr << "pvnet replay: unknown --policy '" << policy << "' (slots, copy, map, hdrcopy)\n";
    return 2;
  }
  o.policy = *p;
  if (sink == "vif") o.sink = SinkKind::vif;
  else if (sink == "pcap") o.sink = SinkKind::pcap;
  else if (sink == "null") o.sink = SinkKind::null;
  else {
    std::cerr << "pvnet replay: unknown --sink '" << sink << "' (vif, pcap, null)\n";
    return 2;
  }

  if (vm["compare"].as<bool>()) return compare_mode(o, vm, report_dir, json);
  if (!report_dir.empty()) {
    std::cerr << "pvnet replay: --report needs --compare\n";
    return 2;
  }

  return run_replay_command(o, vm["processes"].as<bool>(), policy, sink, json);
}

}  // namespace

PVNET_COMMAND(replay, "replay", "replay a pcap trace from guest A through dom0 to a sink; report dom0's costs",
              cmd_replay);

}  // namespace pvnet::tools
