// pvnet xen-lab: real Xen 4.17 (PV dom0 + PV domUs, Debian's stock 6.1 kernel) under QEMU TCG, built from Debian
// packages without installing Xen on the host (tools/xen-lab/build-xen-lab.sh), running one named scenario
// (tools/xen-lab/scenarios/NAME.sh) and returning its result. Every step has a time limit (guest build, lab
// build, QEMU: also wrapped in timeout(1), because Xen does not end QEMU when dom0 powers off). The serial console
// (Xen, dom0, and every domU prefixed with its name) goes to WORKDIR/serial.log; its "XENLAB ..." lines are
// printed as they come. A run succeeds only if dom0 printed "XENLAB result ok NAME".
#pragma once
#include <cstddef>
#include <string>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

struct LabOptions {
  std::string scenario;
  std::string cache;
  std::string workdir;
  std::string pvnet;
  unsigned timeout_s = 170;
  unsigned domus_mb = 0;
  bool quiet = false;
};

// A scenario is a file tools/xen-lab/scenarios/NAME.sh: NAME is a short plain name, never a path.
inline constexpr size_t kMaxScenarioName = 64;
bool plain_scenario_name(const std::string& n);
// EINVAL with the message for the user unless `name` is a plain scenario name.
Result<void> check_scenario_name(const std::string& name);

// Prints the scenarios, one a line; the exit status (2: the source tree's scenarios cannot be listed).
int list_lab_scenarios();
// Builds and runs the lab: the exit status (0 ok, 1 the scenario failed, 2 it could not run).
int run_lab(LabOptions o);

}  // namespace pvnet::tools
