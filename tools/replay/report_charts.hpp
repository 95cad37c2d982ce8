// Charts of a comparison, drawn by gnuplot (run as a subprocess on a script written next to the charts, so a
// reader can re-run or adjust it): dom0 bytes copied per policy, ns/packet per policy, and both per frame-size
// bin.
#pragma once
#include <string>
#include <vector>

#include "shared-ring/result.hpp"
#include "tools/replay/compare.hpp"

namespace pvnet::tools {

// Whether `gnuplot` runs (and can draw PNG). The error says how to get it: tools/setup.sh installs gnuplot-nox.
Result<void> check_gnuplot(const std::string& gnuplot = "gnuplot");

// Writes the charts as PNG into `dir` and returns their paths. Also leaves there the data files and
// charts.gnuplot, the script that drew them.
Result<std::vector<std::string>> write_charts(const CompareReport& report, const std::string& dir,
                                              const std::string& gnuplot = "gnuplot");

}  // namespace pvnet::tools
