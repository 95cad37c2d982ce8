#include "tools/replay/replay_command.hpp"

#include <cstdio>
#include <iostream>

#include "tools/replay/compare.hpp"
#include "tools/replay/json_file.hpp"
#include "tools/replay/multiprocess_replay.hpp"
#include "tools/replay/report_charts.hpp"
#include "tools/replay/trace_compare.hpp"

namespace pvnet::tools {

int run_compare_command(const ReplayOptions& base, uint32_t runs, const std::string& report_dir,
                        const std::string& json) {
  CompareOptions co;
  co.in = base.in;
  co.sink = base.sink;
  co.base = base;
  co.runs = runs;
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

int run_replay_command(const ReplayOptions& o, bool processes, const std::string& policy, const std::string& sink,
                       const std::string& json) {
  auto r = processes ? run_replay_processes(o) : run_replay(o);
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

}  // namespace pvnet::tools
