#include "tools/replay/compare.hpp"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tools/trace/pcap_io.hpp"
#include "shared-ring/packet_headers.hpp"
#include "tools/process/temp_dir.hpp"
#include "tools/replay/json_file.hpp"
#include "tools/replay/trace_compare.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {

std::vector<std::string> default_compare_policies() { return {"slots", "copy", "map", "hdrcopy", "auto"}; }

const std::vector<SizeBin>& frame_size_bins() {
  // 1518 = 1500 + Ethernet header + FCS room as in DPDK's bins; 9018 the same for a 9000-byte MTU.
  static const std::vector<SizeBin> bins = {
      {"<=64", 0, 64},          {"65-127", 65, 127},     {"128-255", 128, 255},
      {"256-511", 256, 511},    {"512-1023", 512, 1023}, {"1024-1518", 1024, 1518},
      {"jumbo", 1519, 9018},    {"gso", 9019, UINT32_MAX}};
  return bins;
}

size_t frame_size_bin(std::span<const std::byte> frame, uint32_t mtu) {
  const auto& bins = frame_size_bins();
  const size_t gso = bins.size() - 1;
  // The same rule as the guest stack's send loop (tools/replay/trace_sender.cpp): TCP longer than the MTU goes as GSO.
  HeaderInfo h = parse_headers(frame);
  if (h.ok() && frame.size() - h.l2_len > mtu && (h.is_tcpv4() || h.is_tcpv6())) return gso;
  for (size_t i = 0; i < bins.size(); ++i)
    if (frame.size() >= bins[i].lo && frame.size() <= bins[i].hi) return i;
  return gso;
}

double PolicyRow::pct_bytes_copied() const {
  return bytes_in ? 100.0 * static_cast<double>(dom0_bytes_copied()) / static_cast<double>(bytes_in) : 0.0;
}
double PolicyRow::ns_min() const {
  return ns_per_packet_runs.empty() ? 0 : *std::min_element(ns_per_packet_runs.begin(), ns_per_packet_runs.end());
}
double PolicyRow::ns_max() const {
  return ns_per_packet_runs.empty() ? 0 : *std::max_element(ns_per_packet_runs.begin(), ns_per_packet_runs.end());
}
double PolicyRow::spread_pct() const {
  return ns_per_packet > 0 ? 100.0 * (ns_max() - ns_min()) / ns_per_packet : 0.0;
}

nlohmann::json PolicyRow::to_json() const {
  return {{"policy", policy},
          {"packets_in", packets_in},
          {"bytes_in", bytes_in},
          {"packets_out", packets_out},
          {"bytes_out", bytes_out},
          {"dropped", dropped},
          {"frames_verified", frames_verified},
          {"gbit_per_s", gbit_per_s},
          {"mpps", mpps},
          {"ns_per_packet", ns_per_packet},
          {"ns_per_packet_runs", ns_per_packet_runs},
          {"ns_per_packet_min", ns_min()},
          {"ns_per_packet_max", ns_max()},
          {"ns_per_packet_spread_pct", spread_pct()},
          {"backend_memcpy_bytes", memcpy_bytes},
          {"grant_copy_bytes", grant_copy_bytes},
          {"dom0_bytes_copied", dom0_bytes_copied()},
          {"pct_bytes_copied", pct_bytes_copied()},
          {"pages_mapped", pages_mapped},
          {"pages_unmapped", pages_unmapped},
          {"tlb_shootdowns", tlb_shootdowns},
          {"faults", faults},
          {"hypercalls", hypercalls}};
}

namespace {

constexpr const char* kCsvColumns =
    "policy,packets_in,packets_out,bytes_in,bytes_out,dropped,gbit_per_s,mpps,ns_per_packet,ns_per_packet_min,"
    "ns_per_packet_max,ns_per_packet_spread_pct,backend_memcpy_bytes,grant_copy_bytes,dom0_bytes_copied,"
    "pct_bytes_copied,pages_mapped,pages_unmapped,tlb_shootdowns,faults,hypercalls";

std::string csv_row(const PolicyRow& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s,%llu,%llu,%llu,%llu,%llu,%.4f,%.4f,%.1f,%.1f,%.1f,%.1f,%llu,%llu,%llu,%.2f,%llu,%llu,%llu,%llu,%llu",
                r.policy.c_str(), (unsigned long long)r.packets_in, (unsigned long long)r.packets_out,
                (unsigned long long)r.bytes_in, (unsigned long long)r.bytes_out, (unsigned long long)r.dropped,
                r.gbit_per_s, r.mpps, r.ns_per_packet, r.ns_min(), r.ns_max(), r.spread_pct(),
                (unsigned long long)r.memcpy_bytes, (unsigned long long)r.grant_copy_bytes,
                (unsigned long long)r.dom0_bytes_copied(), r.pct_bytes_copied(), (unsigned long long)r.pages_mapped,
                (unsigned long long)r.pages_unmapped, (unsigned long long)r.tlb_shootdowns,
                (unsigned long long)r.faults, (unsigned long long)r.hypercalls);
  return buf;
}

// The comparison's scratch files: in --work-dir if given (kept), else in a TempDir (gone when the comparison
// ends, whichever way, SIGTERM/SIGINT included).
Result<TempDir> scratch_dir(const std::string& wanted) {
  if (!wanted.empty()) return TempDir::kept(wanted);
  auto t = TempDir::create("pvnet-compare");
  if (!t) return make_error(t.error().code, "cannot create a temporary directory: " + t.error().reason);
  return t;
}

struct TraceJob {
  std::string name;  // "all" or a bin name
  std::string path;
  std::vector<std::vector<ReplayStats>> runs;  // [policy][run]
};

// Splits the trace into one temporary trace per non-empty bin, keeping each frame's timestamp and order.
Result<std::vector<BinReport>> split_by_size(const std::string& in, uint32_t mtu, const std::string& dir,
                                             std::vector<TraceJob>& jobs) {
  const auto& bins = frame_size_bins();
  std::vector<BinReport> reports(bins.size());
  std::vector<std::optional<PcapWriter>> writers(bins.size());
  auto reader = PcapReader::open(in);
  if (!reader) return reader.error();
  PcapFrame f;
  for (;;) {
    auto more = reader->next(f);
    if (!more) return more.error();
    if (!*more) break;
    size_t b = frame_size_bin(f.data, mtu);
    if (!writers[b]) {
      auto w = PcapWriter::create(dir + "/bin-" + std::to_string(b) + ".pcap");
      if (!w) return w.error();
      writers[b].emplace(std::move(w).value());
    }
    if (auto r = writers[b]->write(f); !r) return r.error();
    reports[b].frames++;
    reports[b].bytes += f.data.size();
  }
  std::vector<BinReport> out;
  for (size_t b = 0; b < bins.size(); ++b) {
    if (!writers[b]) continue;
    if (auto r = writers[b]->close(); !r) return r.error();
    reports[b].name = bins[b].name;
    reports[b].lo = bins[b].lo;
    reports[b].hi = bins[b].hi;
    out.push_back(std::move(reports[b]));
    jobs.push_back({bins[b].name, dir + "/bin-" + std::to_string(b) + ".pcap", {}});
  }
  return out;
}

// One replay of one policy on one trace, its output checked against the input.
Result<ReplayStats> replay_checked(const CompareOptions& o, const TraceJob& job, const std::string& policy,
                                   PayloadPolicyKind kind, const std::string& dir, uint64_t* verified) {
  ReplayOptions ro = o.base;
  ro.in = job.path;
  ro.policy = kind;
  ro.sink = o.sink;
  ro.progress = false;
  ro.out = o.sink == SinkKind::null ? "" : dir + "/out-" + policy + ".pcap";
  std::string where = "policy " + policy + (job.name == "all" ? "" : " (bin " + job.name + ")");
  auto r = run_replay(ro);
  if (!r) {
    std::string hint = r.error().code == ENOTSUP ? " (every policy must be implemented for the comparison)" : "";
    return make_error(r.error().code, where + ": " + r.error().reason + hint);
  }
  if (o.after_replay) o.after_replay(policy, ro.out);
  nlohmann::json j = r->to_json();
  if (!j["accounted"].get<bool>())
    return make_error(EBADMSG, where + ": " + std::to_string(r->packets_in) + " frames in but " +
                                   std::to_string(r->packets_out) + " out and " +
                                   std::to_string(r->dropped_total()) + " dropped: frames lost");
  if (j.contains("leaks")) {
    for (auto& [k, v] : j["leaks"].items())
      if (k == "closed" ? !v.get<bool>() : v.get<uint64_t>() != 0)
        return make_error(EBADMSG, where + ": leaked after teardown: " + j["leaks"].dump());
  }
  if (!ro.out.empty()) {
    auto c = compare_traces(ro.in, ro.out, ro.repeat, r->dropped_total());
    if (!c) return make_error(EBADMSG, where + ": output does not match the input: " + c.error().reason);
    *verified = c->matched;
  }
  return std::move(r).value();
}

PolicyRow make_row(const std::string& policy, std::vector<ReplayStats>& runs, uint64_t verified) {
  // The median run by ns/packet; with an even count the lower middle, so every figure comes from one real run.
  std::vector<size_t> order(runs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto ns = [&](size_t i) {
    return runs[i].packets_in ? static_cast<double>(runs[i].elapsed_ns) / static_cast<double>(runs[i].packets_in)
                              : 0.0;
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ns(a) < ns(b); });
  const ReplayStats& m = runs[order[(order.size() - 1) / 2]];
  nlohmann::json j = m.to_json();
  PolicyRow row;
  row.policy = policy;
  row.packets_in = m.packets_in;
  row.bytes_in = m.bytes_in;
  row.packets_out = m.packets_out;
  row.bytes_out = m.bytes_out;
  row.dropped = m.dropped_total();
  row.gbit_per_s = j["gbit_per_s"].get<double>();
  row.mpps = j["mpps"].get<double>();
  row.ns_per_packet = j["ns_per_packet"].get<double>();
  for (size_t i = 0; i < runs.size(); ++i) row.ns_per_packet_runs.push_back(ns(i));
  row.memcpy_bytes = json_u64(j, "backend_memcpy_bytes");
  row.grant_copy_bytes = json_u64(j, "grant_copy_bytes");
  row.pages_mapped = json_u64(j, "pages_mapped");
  row.pages_unmapped = json_u64(j, "pages_unmapped");
  row.tlb_shootdowns = json_u64(j, "tlb_shootdowns");
  row.faults = json_u64(j, "faults");
  row.hypercalls = json_u64(j, "hypercalls");
  row.frames_verified = verified;
  return row;
}

}  // namespace

Result<CompareReport> run_compare(const CompareOptions& o) {
  if (o.policies.empty()) return make_error(EINVAL, "no policies to compare");
  if (o.runs == 0) return make_error(EINVAL, "--runs must be at least 1");
  std::vector<PayloadPolicyKind> kinds;
  for (auto& p : o.policies) {
    auto k = parse_payload_policy(p);
    if (!k)
      return make_error(ENOTSUP, "policy " + p + ": not known to this build (backend/payload_policy.hpp); " +
                                     "the comparison runs every policy and skips none");
    kinds.push_back(*k);
  }
  if (auto r = PcapReader::open(o.in); !r) return r.error();
  auto scratch = scratch_dir(o.work_dir);
  if (!scratch) return scratch.error();
  const std::string dir = scratch->path();

  CompareReport rep;
  rep.trace = o.in;
  rep.sink = o.sink;
  rep.runs = o.runs;
  rep.repeat = o.base.repeat;
  std::vector<TraceJob> jobs{{"all", o.in, {}}};
  if (o.by_size) {
    auto bins = split_by_size(o.in, o.base.mtu, dir, jobs);
    if (!bins) return bins.error();
    rep.bins = std::move(bins).value();
  }
  for (auto& job : jobs) job.runs.resize(o.policies.size());

  // Run r replays every trace under every policy, starting each round one policy later, so that whatever the
  // machine does meanwhile (the other engineers' builds, frequency changes) falls on every policy alike.
  const size_t np = o.policies.size();
  std::vector<std::vector<uint64_t>> verified(jobs.size(), std::vector<uint64_t>(np, 0));
  for (uint32_t run = 0; run < o.runs; ++run) {
    for (size_t t = 0; t < jobs.size(); ++t) {
      for (size_t i = 0; i < np; ++i) {
        size_t p = (i + run) % np;
        auto r = replay_checked(o, jobs[t], o.policies[p], kinds[p], dir, &verified[t][p]);
        if (!r) return r.error();
        jobs[t].runs[p].push_back(std::move(r).value());
      }
    }
  }

  // Every policy must deliver the same frames: one that drops what another delivers has lost them.
  for (size_t t = 0; t < jobs.size(); ++t) {
    const auto& ref = jobs[t].runs[0][0];
    for (size_t p = 0; p < np; ++p) {
      for (const auto& s : jobs[t].runs[p]) {
        if (s.dropped != ref.dropped || s.packets_out != ref.packets_out) {
          nlohmann::json a = s.dropped, b = ref.dropped;
          return make_error(EBADMSG, "policy " + o.policies[p] + (t ? " (bin " + jobs[t].name + ")" : "") +
                                         ": delivered " + std::to_string(s.packets_out) + " frames, dropped " +
                                         a.dump() + ", but policy " + o.policies[0] + " delivered " +
                                         std::to_string(ref.packets_out) + ", dropped " + b.dump());
        }
      }
    }
  }

  for (size_t p = 0; p < np; ++p) rep.rows.push_back(make_row(o.policies[p], jobs[0].runs[p], verified[0][p]));
  for (size_t b = 0; b < rep.bins.size(); ++b)
    for (size_t p = 0; p < np; ++p)
      rep.bins[b].rows.push_back(make_row(o.policies[p], jobs[b + 1].runs[p], verified[b + 1][p]));

  rep.verification =
      o.sink == SinkKind::null
          ? "null sink: nothing comes out to compare; every frame counted delivered or dropped, and every policy "
            "must deliver and drop the same frames"
          : std::string(o.sink == SinkKind::vif ? "guest B's received frames" : "dom0's pcap") +
                " compared with the input frame by frame, byte for byte, in order, after every run; every policy "
                "must deliver and drop the same frames";
  rep.method = "Each frame-size bin is measured by replaying a temporary trace holding only that bin's frames (in "
               "their original order) under every policy, as many runs as the whole trace; a frame the guest "
               "stack sends as a GSO super-frame (TCP longer than the MTU) is in bin gso whatever its length. "
               "Within each run the policies are interleaved and the starting policy rotates from run to run; "
               "each figure is from the median run by ns/packet (the lower middle one for an even count), and "
               "ns_per_packet_runs lists every run.";
  return rep;
}

nlohmann::json CompareReport::to_json() const {
  nlohmann::json j;
  j["trace"] = trace;
  j["sink"] = to_string(sink);
  j["runs"] = runs;
  j["repeat"] = repeat;
  j["verification"] = verification;
  j["method"] = method;
  j["dom0_bytes_copied_means"] = "backend_memcpy_bytes + grant_copy_bytes";
  j["policies"] = nlohmann::json::array();
  for (auto& r : rows) j["policies"].push_back(r.to_json());
  j["bins"] = nlohmann::json::array();
  for (auto& b : bins) {
    nlohmann::json jb = {{"bin", b.name}, {"min_len", b.lo}, {"max_len", b.hi}, {"frames", b.frames},
                         {"bytes", b.bytes}, {"policies", nlohmann::json::array()}};
    if (b.name == "gso") jb["max_len"] = nullptr;
    for (auto& r : b.rows) jb["policies"].push_back(r.to_json());
    j["bins"].push_back(std::move(jb));
  }
  return j;
}

std::string CompareReport::to_csv() const {
  std::string s = std::string(kCsvColumns) + "\n";
  for (auto& r : rows) s += csv_row(r) + "\n";
  return s;
}

std::string CompareReport::bins_to_csv() const {
  std::string s = std::string("bin,") + kCsvColumns + "\n";
  for (auto& b : bins)
    for (auto& r : b.rows) s += b.name + "," + csv_row(r) + "\n";
  return s;
}

std::string CompareReport::table() const {
  std::ostringstream os;
  char buf[512];
  os << "compare " << trace << ": sink " << to_string(sink) << ", median of " << runs << " run(s)"
     << (repeat > 1 ? ", trace repeated " + std::to_string(repeat) + " times" : "") << "\n";
  auto header = [&](const char* first) {
    std::snprintf(buf, sizeof buf, "%-10s %-8s %9s %8s %7s %9s %7s %14s %7s %8s %8s %6s %8s %9s\n", first, "policy",
                  "packets", "Gbit/s", "Mpps", "ns/pkt", "spread", "dom0 copied B", "% in", "mapped", "unmapped",
                  "TLB", "faults", "hypercall");
    os << buf;
  };
  auto line = [&](const std::string& first, const PolicyRow& r) {
    std::snprintf(buf, sizeof buf, "%-10s %-8s %9llu %8.3f %7.3f %9.0f %6.0f%% %14llu %6.1f%% %8llu %8llu %6llu %8llu %9llu\n",
                  first.c_str(), r.policy.c_str(), (unsigned long long)r.packets_out, r.gbit_per_s, r.mpps,
                  r.ns_per_packet, r.spread_pct(), (unsigned long long)r.dom0_bytes_copied(), r.pct_bytes_copied(),
                  (unsigned long long)r.pages_mapped, (unsigned long long)r.pages_unmapped,
                  (unsigned long long)r.tlb_shootdowns, (unsigned long long)r.faults,
                  (unsigned long long)r.hypercalls);
    os << buf;
  };
  header("trace");
  for (auto& r : rows) line("all", r);
  if (!bins.empty()) {
    os << "by frame size (each bin replayed alone):\n";
    header("bin");
    for (auto& b : bins)
      for (auto& r : b.rows) line(b.name, r);
  }
  os << "verified: " << verification << "\n";
  return os.str();
}

Result<void> write_report_files(const CompareReport& report, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ec.value(), "cannot create " + dir + ": " + ec.message());
  auto put = [&](const std::string& name, const std::string& text) -> Result<void> {
    std::ofstream f(dir + "/" + name);
    f << text;
    f.close();
    if (!f) return make_error(EIO, "cannot write " + dir + "/" + name);
    return {};
  };
  if (auto r = put("report.json", report.to_json().dump(2) + "\n"); !r) return r;
  if (auto r = put("report.csv", report.to_csv()); !r) return r;
  return put("report_bins.csv", report.bins_to_csv());
}

}  // namespace pvnet::tools
