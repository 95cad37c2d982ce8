// Grant-table conformance: the same checks (the GNTST_* outcomes and flag rules tests/grant/ asserts on the
// simulator) run through pvnet's interfaces against two "worlds", the simulator and real Xen (a domain granting
// to itself with gntalloc and mapping with gntdev), and their outcomes compared. `pvnet xen-selftest` runs it
// inside a Xen dom0 (docs/xen.md); the unit tests run it simulator against simulator.
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include "grant-sim/platform/grant_mapper.hpp"
#include "shared-ring/result.hpp"

namespace pvnet::tools {

struct Granted {
  GrantRef ref;
  std::span<std::byte> page;  // the granting domain's view of the page
  uint32_t id = 0;            // the world's handle for end()
};

// A granting domain and a mapping domain (which may be the same one).
class GrantWorld {
 public:
  virtual ~GrantWorld() = default;
  virtual std::string name() const = 0;
  virtual DomId granter() const = 0;
  virtual DomId mapper_dom() const = 0;
  // A fresh page filled with pattern(seed), granted to `grantee`.
  virtual Result<Granted> grant(DomId grantee, bool readonly, uint8_t seed) = 0;
  virtual Result<void> end(const Granted& g) = 0;
  virtual GrantMapper& mapper() = 0;
};

Result<std::unique_ptr<GrantWorld>> make_sim_world();
Result<std::unique_ptr<GrantWorld>> make_xen_world();  // ENOENT "no /dev/xen/gntdev: ..." off Xen

struct CheckOutcome {
  GntSt status = GntSt::general_error;
  bool data_ok = true;  // the bytes (or counters) the check looked at were right
  std::string note;
  bool operator==(const CheckOutcome& o) const { return status == o.status && data_ok == o.data_ok; }
};

struct ConformanceCheck {
  std::string name;
  std::function<CheckOutcome(GrantWorld&)> run;
  // A difference of Xen from the simulator that docs/xen.md documents: Xen's status, and why.
  std::optional<GntSt> known_xen_status;
  std::string known_reason;
};
std::vector<ConformanceCheck> conformance_checks();

struct ConformanceLine {
  std::string verdict;  // PASS, KNOWN (documented difference, exactly as documented), FAIL
  std::string name;
  CheckOutcome expected, actual;
  std::string reason;
};
struct ConformanceReport {
  std::vector<ConformanceLine> lines;
  size_t failures() const;
};
// Runs every check on `reference` (the simulator) and on `subject`, and compares.
ConformanceReport run_conformance(GrantWorld& reference, GrantWorld& subject);
void print(std::ostream& os, const ConformanceReport& r, const std::string& subject_name);

}  // namespace pvnet::tools
