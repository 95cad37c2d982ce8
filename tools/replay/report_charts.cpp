#include "tools/replay/report_charts.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tools/process/spawn.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

const char* kInstallHint = "gnuplot is needed to draw the report's charts: run tools/setup.sh (it installs gnuplot-nox)";

// Runs argv (bounded: a gnuplot that hangs must not hang the report) with stdin from /dev/null and its output
// written to `log` (if any); returns its exit status.
constexpr auto kGnuplotTimeout = std::chrono::minutes(2);
Result<int> run_program(const std::vector<std::string>& argv, const std::string& log) {
  auto r = run_bounded(argv, kGnuplotTimeout);
  if (!r) return make_error(r.error().code, "cannot run " + argv[0] + ": " + r.error().reason);
  if (!log.empty()) {
    std::ofstream f(log, std::ios::trunc);
    f << r->output;
  }
  return r->status;
}

// A byte count in the largest decimal unit that keeps the biggest value >= 1, for an axis.
struct ByteUnit {
  double div;
  const char* name;
};
ByteUnit byte_unit(double max_bytes) {
  if (max_bytes >= 1e9) return {1e9, "GB"};
  if (max_bytes >= 1e6) return {1e6, "MB"};
  if (max_bytes >= 1e3) return {1e3, "kB"};
  return {1, "bytes"};
}

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// A title: double quotes, so "\n" breaks the line.
std::string title(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\\\"") : std::string(1, c);
  return q + "\"";
}

Result<void> put(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) return make_error(EIO, "cannot write " + path);
  return {};
}

}  // namespace

Result<void> check_gnuplot(const std::string& gnuplot) {
  auto r = run_program({gnuplot, "-e", "set terminal pngcairo"}, "");
  if (!r) return make_error(ENOENT, std::string(kInstallHint) + " (" + r.error().reason + ")");
  if (*r == 127) return make_error(ENOENT, std::string(kInstallHint) + " (" + gnuplot + " not found)");
  if (*r != 0)
    return make_error(ENOTSUP, std::string(kInstallHint) + " (" + gnuplot + " exited " + std::to_string(*r) +
                                   ": no pngcairo terminal?)");
  return {};
}

Result<std::vector<std::string>> write_charts(const CompareReport& rep, const std::string& dir,
                                              const std::string& gnuplot) {
  if (auto r = check_gnuplot(gnuplot); !r) return r.error();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ec.value(), "cannot create " + dir + ": " + ec.message());
  const std::string trace = fs::path(rep.trace).filename().string();
  const std::string subtitle = trace + ", sink " + to_string(rep.sink) + ", " +
                               std::to_string(rep.rows.empty() ? 0 : rep.rows[0].packets_in) + " packets, median of " +
                               std::to_string(rep.runs) + " runs";

  // Per policy, whole trace.
  double max_copied = 0;
  for (auto& r : rep.rows) max_copied = std::max(max_copied, static_cast<double>(r.dom0_bytes_copied()));
  ByteUnit u = byte_unit(max_copied);
  std::ostringstream pol;
  pol << "# policy ns_per_packet ns_min ns_max memcpy_" << u.name << " grant_copy_" << u.name << " dom0_copied_"
      << u.name << " pct_of_bytes_in\n";
  for (auto& r : rep.rows)
    pol << r.policy << " " << r.ns_per_packet << " " << r.ns_min() << " " << r.ns_max() << " "
        << static_cast<double>(r.memcpy_bytes) / u.div << " " << static_cast<double>(r.grant_copy_bytes) / u.div << " "
        << static_cast<double>(r.dom0_bytes_copied()) / u.div << " " << r.pct_bytes_copied() << "\n";
  if (auto r = put(dir + "/chart_policies.dat", pol.str()); !r) return r.error();

  // Per bin: rows are bins, one column per policy.
  std::ostringstream bns, bcp;
  bns << "bin";
  bcp << "bin";
  for (auto& r : rep.rows) {
    bns << " " << r.policy;
    bcp << " " << r.policy;
  }
  bns << " frames\n";
  bcp << " frames\n";
  for (auto& b : rep.bins) {
    bns << b.name;
    bcp << b.name;
    for (auto& r : b.rows) {
      bns << " " << r.ns_per_packet;
      bcp << " " << r.pct_bytes_copied();
    }
    bns << " " << b.frames << "\n";
    bcp << " " << b.frames << "\n";
  }
  if (auto r = put(dir + "/chart_bins_ns.dat", bns.str()); !r) return r.error();
  if (auto r = put(dir + "/chart_bins_copied.dat", bcp.str()); !r) return r.error();

  const std::string d = dir + "/";
  std::vector<std::string> pngs = {d + "dom0_bytes_copied.png", d + "ns_per_packet.png",
                                   d + "bins_dom0_bytes_copied.png", d + "bins_ns_per_packet.png"};
  const size_t np = rep.rows.size();
  std::ostringstream g;
  g << "# Drawn by pvnet replay --compare (paths as written then); re-run with: gnuplot charts.gnuplot\n"
    << "set terminal pngcairo size 960,600 font 'sans,11' noenhanced\n"
    << "set style fill solid 0.85 border -1\n"
    << "set grid ytics\n"
    << "set key below horizontal\n"
    << "set bmargin 6\n"
    << "set yrange [0:*]\n";
  // (1) dom0 bytes copied: memcpy and grant copy stacked, the total labelled.
  g << "set output " << quoted(pngs[0]) << "\n"
    << "set title " << title("dom0 bytes copied per payload policy (memcpy + grant copy)\\n" + subtitle) << "\n"
    << "set xlabel 'payload policy'\n"
    << "set ylabel " << quoted(std::string("dom0 bytes copied (") + u.name + ")") << "\n"
    << "set style data histograms\nset style histogram rowstacked\nset boxwidth 0.6\n"
    << "plot " << quoted(d + "chart_policies.dat") << " using 5:xtic(1) title 'memcpy (dom0 CPU)', '' using 6 "
    << "title 'grant copy (hypervisor)', '' using ($0):7:(sprintf(\"%.3g " << u.name
    << "\\n%.0f%% of bytes in\", $7, $8)) with labels offset 0,1.6 notitle\n";
  // (2) ns/packet with the run-to-run range.
  g << "set output " << quoted(pngs[1]) << "\n"
    << "set title " << title("time per packet per payload policy (bar: median run, whisker: fastest..slowest)\\n" +
                                  subtitle)
    << "\n"
    << "set ylabel 'ns per packet'\n"
    << "set style histogram errorbars gap 1 lw 1\nset boxwidth 0.6\n"
    << "plot " << quoted(d + "chart_policies.dat") << " using 2:3:4:xtic(1) notitle, '' using ($0):4:(sprintf('%.0f', "
    << "$2)) with labels offset 0,0.8 notitle\n";
  if (rep.bins.empty()) {
    g << "unset output\n";
    pngs.resize(2);
  } else {
  // (3) by frame size: percent copied (linear, 0 stays visible) and ns/packet (log: bins differ by orders).
  g << "set output " << quoted(pngs[2]) << "\n"
    << "set title " << title("dom0 bytes copied by frame-size bin, each bin replayed alone\\n" + subtitle) << "\n"
    << "set xlabel 'frame-size bin, bytes' offset 0,-1\n"
    << "set ylabel 'dom0 bytes copied, % of the bin''s bytes in'\n"
    << "set style histogram clustered gap 1\nset boxwidth 0.9\n"
    << "plot for [i=2:" << np + 1 << "] " << quoted(d + "chart_bins_copied.dat")
    << " using i:xtic(strcol(1).\"\\n\".strcol(" << np + 2 << ").\" frames\") title columnheader(i)\n";
  g << "set output " << quoted(pngs[3]) << "\n"
    << "set title " << title("time per packet by frame-size bin, each bin replayed alone\\n" + subtitle) << "\n"
    << "set ylabel 'ns per packet (median run, log scale)'\n"
    << "set logscale y\nset yrange [*:*]\n"
    << "plot for [i=2:" << np + 1 << "] " << quoted(d + "chart_bins_ns.dat")
    << " using i:xtic(strcol(1).\"\\n\".strcol(" << np + 2 << ").\" frames\") title columnheader(i)\n"
    << "unset output\n";
  }
  const std::string script = d + "charts.gnuplot";
  if (auto r = put(script, g.str()); !r) return r.error();
  for (auto& p : pngs) fs::remove(p, ec);
  auto st = run_program({gnuplot, script}, d + "gnuplot.log");
  if (!st) return make_error(st.error().code, std::string(kInstallHint) + " (" + st.error().reason + ")");
  if (*st != 0)
    return make_error(EIO, "gnuplot failed on " + script + " (exit " + std::to_string(*st) + "), see " + d +
                               "gnuplot.log");
  for (auto& p : pngs)
    if (fs::file_size(p, ec) == 0 || ec) return make_error(EIO, "gnuplot did not draw " + p);
  return pngs;
}

}  // namespace pvnet::tools
