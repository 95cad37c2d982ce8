// pvnet xen-lab: real Xen under QEMU TCG, one named scenario (tools/lab/xen_lab.hpp).
//   pvnet xen-lab --scenario NAME [--timeout S] [--cache DIR] [--workdir DIR] [--pvnet BINARY]
//   pvnet xen-lab --list
#include <boost/program_options.hpp>
#include <iostream>
#include <string>

#include "tools/command.hpp"
#include "tools/lab/xen_lab.hpp"
#include "tools/options.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

int cmd_xen_lab(int argc, char** argv) {
  LabOptions o;
  bool list = false;
  po::options_description desc("pvnet xen-lab: Xen + dom0 + domUs under QEMU TCG, one named scenario");
  desc.add_options()("help,h", "this help")
      ("scenario", po::value(&o.scenario), "the scenario (tools/xen-lab/scenarios/NAME.sh)")
      ("list", po::bool_switch(&list), "list the scenarios")
      ("timeout", ranged(&o.timeout_s, 1, limits::kMaxTimeoutS)->default_value(170), "seconds QEMU may run")
      ("cache", po::value(&o.cache), "build cache (default $PVNET_XEN_CACHE, else <build tree>/xen-lab-cache)")
      ("workdir", po::value(&o.workdir), "where the images and serial.log go (default a fresh /tmp folder)")
      ("pvnet", po::value(&o.pvnet), "the pvnet binary put into dom0 and the domUs (default this one)")
      ("quiet,q", po::bool_switch(&o.quiet), "no build messages");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "xen-lab")) return *status;
  if (list) return list_lab_scenarios();
  if (o.scenario.empty()) {
    std::cerr << "pvnet xen-lab: --scenario NAME is required\n" << desc;
    return 2;
  }
  if (auto r = check_scenario_name(o.scenario); !r) {
    std::cerr << "pvnet xen-lab: " << r.error().reason << "\n";
    return 2;
  }
  return run_lab(std::move(o));
}

}  // namespace

PVNET_COMMAND(xen_lab, "xen-lab", "real Xen under QEMU: dom0 + domUs, a named scenario (tools/xen-lab)", cmd_xen_lab);

}  // namespace pvnet::tools
