// pvnet xen-selftest: the grant-table conformance checks (tools/lab/xen_selftest.hpp) against real Xen, compared
// with the simulator. Run it as root in a Xen dom0 with xen-gntdev and xen-gntalloc loaded (docs/xen.md).
#include <cstring>
#include <iostream>
#include <string>

#include "tools/command.hpp"
#include "tools/lab/xen_selftest.hpp"

namespace pvnet::tools {
namespace {

int cmd_xen_selftest(int argc, char** argv) {
  std::string hv = "xen";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << "usage: pvnet xen-selftest [--hypervisor xen|sim]\n\n"
                   "Runs the grant-table conformance checks (every GNTST_* outcome and flag rule tests/grant checks on\n"
                   "the simulator) through pvnet's interfaces on the simulator and on real Xen (this domain grants to\n"
                   "itself with gntalloc and maps/copies with gntdev), and prints one line per check:\n"
                   "PASS (same outcome), KNOWN (a difference docs/xen.md documents, exactly as documented), FAIL.\n"
                   "Exits 0 if nothing FAILs, 1 otherwise, 2 if it cannot run (not on Xen).\n"
                   "--hypervisor sim compares the simulator with itself (checks the checks).\n";
      return 0;
    }
    if (!std::strcmp(argv[i], "--hypervisor") && i + 1 < argc) {
      hv = argv[++i];
    } else {
      std::cerr << "pvnet xen-selftest: unknown argument '" << argv[i] << "'\n";
      return 2;
    }
  }
  if (hv != "xen" && hv != "sim") {
    std::cerr << "pvnet xen-selftest: --hypervisor must be xen or sim\n";
    return 2;
  }
  auto ref = make_sim_world();
  if (!ref) {
    std::cerr << "pvnet xen-selftest: simulator: " << ref.error().reason << "\n";
    return 2;
  }
  auto subject = hv == "xen" ? make_xen_world() : make_sim_world();
  if (!subject) {
    std::cerr << "pvnet xen-selftest: " << subject.error().reason << "\n";
    return 2;
  }
  ConformanceReport r = run_conformance(**ref, **subject);
  print(std::cout, r, hv);
  return r.failures() ? 1 : 0;
}

}  // namespace

PVNET_COMMAND(xen_selftest, "xen-selftest", "grant-table conformance of real Xen against the simulator (run in dom0)",
              cmd_xen_selftest);

}  // namespace pvnet::tools
