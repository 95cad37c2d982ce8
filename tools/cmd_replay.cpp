// pvnet replay: the main job. See tools/replay.hpp.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "tools/command.hpp"
#include "tools/json_file.hpp"
#include "tools/options.hpp"
#include "tools/compare.hpp"
#include "tools/multiprocess_replay.hpp"
#include "tools/replay.hpp"
#include "tools/report_charts.hpp"
#include "tools/trace_compare.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

constexpr uint32_t kMaxRuns = 1000;  // --runs: more is a mistyped value

// replay --compare: every payload policy on the trace, checked and measured (tools/compare.hpp).
int compare_mode(const ReplayOptions& base, const po::variables_map& vm, const std::string& report_dir,
                 const std::string& json) {
  for (const char* alone : {"out", "policy", "processes"}) {
    if (vm.count(alone) && !vm[alone].defaulted()) {
      std::cerr << "pvnet replay: --compare runs every policy itself; --" << alone << " does not go with it\n";
      return 2;
    }
  }
  CompareOptions co;
  co.in = base.in;
  co.sink = base.sink;
  co.base = base;
  co.runs = vm["runs"].as<uint32_t>();
  // Fail before the replays if the charts cannot be drawn.
  if (!report_dir.empty()) {
    if (auto g = check_gnuplot(); !g) {
      std::cerr << "pvnet replay: " << g.error().reason << "\n";
      return 1;
    }
  }
  auto rep = run_compare(co);
  if (!rep) {
    std::cerr << "pvnet replay --compare: FAILED: " << rep.error().reason << "\n";
    return 1;
  }
  std::cout << rep->table();
  if (!json.empty()) {
    if (auto w = write_json_file(json, rep->to_json()); !w) {
      std::cerr << "pvnet replay: " << w.error().reason << "\n";
      return 1;
    }
  }
  if (!report_dir.empty()) {
    if (auto w = write_report_files(*rep, report_dir); !w) {
      std::cerr << "pvnet replay: " << w.error().reason << "\n";
      return 1;
    }
    auto charts = write_charts(*rep, report_dir);
    if (!charts) {
      std::cerr << "pvnet replay: " << charts.error().reason << "\n";
      return 1;
    }
    std::cout << "report: " << report_dir << "/report.json, report.csv, report_bins.csv; charts:";
    for (auto& c : *charts) std::cout << " " << c;
    std::cout << "\n";
  }
  return 0;
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

  auto r = vm["processes"].as<bool>() ? run_replay_processes(o) : run_replay(o);
  if (!r) {
    std::cerr << "pvnet replay: " << r.error().reason << "\n";
    return 1;
  }
  nlohmann::json j = r->to_json();
  std::printf("replay %s: policy %s, sink %s, header slots %s\n", o.in.c_str(), policy.c_str(), sink.c_str(),
              j["header_slots"].get<bool>() ? "on" : "off");
  std::printf("  packets in %llu out %llu dropped %llu (%s)\n", (unsigned long long)r->packets_in,
              (unsigned long long)r->packets_out, (unsigned long long)r->dropped_total(),
              j["accounted"].get<bool>() ? "every frame accounted for" : "FRAMES UNACCOUNTED FOR");
  for (auto& [reason, n] : r->dropped) std::printf("    dropped %-28s %llu\n", reason.c_str(), (unsigned long long)n);
  std::printf("  dom0: memcpy %llu B, grant copy %llu B, pages mapped %llu unmapped %llu, TLB shootdowns %llu,\n"
              "        faults %llu, hypercalls %llu, header slots used %llu\n",
              (unsigned long long)j["backend_memcpy_bytes"].get<uint64_t>(),
              (unsigned long long)j["grant_copy_bytes"].get<uint64_t>(),
              (unsigned long long)j["pages_mapped"].get<uint64_t>(),
              (unsigned long long)j["pages_unmapped"].get<uint64_t>(),
              (unsigned long long)j["tlb_shootdowns"].get<uint64_t>(), (unsigned long long)j["faults"].get<uint64_t>(),
              (unsigned long long)j["hypercalls"].get<uint64_t>(), (unsigned long long)j["slots_used"].get<uint64_t>());
  std::printf("  %.0f ns/packet, %.3f Mpps, %.3f Gbit/s\n", j["ns_per_packet"].get<double>(), j["mpps"].get<double>(),
              j["gbit_per_s"].get<double>());
  bool leaked = false;
  if (j.contains("leaks")) {
    for (auto& [k, v] : j["leaks"].items())
      if (k == "closed" ? !v.get<bool>() : v.get<uint64_t>() != 0) leaked = true;
    std::printf("  after teardown: %s\n", leaked ? ("LEAK: " + j["leaks"].dump()).c_str()
                                                  : "every page, grant, slot and mapping is back");
  }
  bool verified = true;
  if (!o.out.empty() && o.sink != SinkKind::null) {
    auto c = compare_traces(o.in, o.out, o.repeat, r->dropped_total());
    if (c) {
      std::printf("  verified: %s holds the %llu delivered frames byte for byte, in order\n", o.out.c_str(),
                  (unsigned long long)c->matched);
    } else {
      std::printf("  VERIFY FAILED: %s\n", c.error().reason.c_str());
      verified = false;
    }
    j["verified"] = verified;
  }
  if (!json.empty()) {
    if (auto w = write_json_file(json, j); !w) {
      std::cerr << "pvnet replay: " << w.error().reason << "\n";
      return 1;
    }
  }
  return j["accounted"].get<bool>() && verified && !leaked ? 0 : 1;
}

}  // namespace

PVNET_COMMAND(replay, "replay", "replay a pcap trace from guest A through dom0 to a sink; report dom0's costs",
              cmd_replay);

}  // namespace pvnet::tools
