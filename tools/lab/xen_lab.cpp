#include "tools/lab/xen_lab.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tools/lab/guest_env.hpp"
#include "tools/process/child_process.hpp"
#include "tools/process/file_tail.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;


double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// $PVNET_XEN_CACHE, else xen-lab-cache next to the guest cache (the build tree).
std::string lab_cache_dir() {
  if (const char* e = std::getenv("PVNET_XEN_CACHE"); e && *e) return e;
  return fs::path(guest_cache_dir()).parent_path().string() + "/xen-lab-cache";
}

// The console's "XENLAB" lines, as they appear in the serial file.
class ConsoleTail {
 public:
  explicit ConsoleTail(std::string path) : file_(std::move(path)) {}
  // Reads what is new; prints the XENLAB lines (all lines if `all`). Returns true once the result line came.
  bool pump(bool all) {
    for (const std::string& line : file_.new_lines()) {
      const bool lab = line.find("XENLAB ") != std::string::npos;
      if (all || lab) std::cout << line << std::endl;
      // Only dom0's own line counts: a domU's output arrives prefixed with its name.
      if (line.rfind("XENLAB result ", 0) == 0) result_ = line.substr(14);
    }
    return !result_.empty();
  }
  const std::string& result() const { return result_; }

 private:
  FileTail file_;
  std::string result_;
};

// create_directories, its failure a message naming the directory.
bool make_dir(const std::string& dir, const char* what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec) return true;
  std::cerr << "pvnet xen-lab: cannot create the " << what << " " << dir << ": " << ec.message() << "\n";
  return false;
}

// Xen itself panicked before dom0 printed anything of ours.
bool xen_boot_panic(const std::string& serial) {
  std::ifstream f(serial);
  bool panic = false;
  for (std::string l; std::getline(f, l);) {
    if (l.find("XENLAB ") != std::string::npos) return false;
    panic = panic || l.find("(XEN) Panic on CPU") != std::string::npos;
  }
  return panic;
}

}  // namespace

// A scenario is a file tools/xen-lab/scenarios/NAME.sh: NAME is a short plain name, never a path.
bool plain_scenario_name(const std::string& n) {
  if (n.empty() || n.size() > kMaxScenarioName || n[0] == '.' || n[0] == '-') return false;
  for (unsigned char c : n)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

int list_lab_scenarios() {
  auto src = pvnet_source_dir();
  if (!src) {
    std::cerr << "pvnet xen-lab: " << src.error().reason << "\n";
    return 2;
  }
  const std::string dir = *src + "/tools/xen-lab/scenarios";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".sh") std::cout << e.path().stem().string() << "\n";
  if (ec) {
    std::cerr << "pvnet xen-lab: cannot list " << dir << ": " << ec.message() << "\n";
    return 2;
  }
  return 0;
}

Result<void> check_scenario_name(const std::string& name) {
  if (plain_scenario_name(name)) return {};
  const bool long_name = name.size() > kMaxScenarioName;
  return make_error(EINVAL, "--scenario '" + name.substr(0, kMaxScenarioName) + "'" +
                                (long_name ? "... (" + std::to_string(name.size()) + " characters)" : "") +
                                " is not a scenario name: letters, digits, '-', '_', '.', at most " +
                                std::to_string(kMaxScenarioName) + " characters (pvnet xen-lab --list)");
}

int run_lab(LabOptions o) {
  const auto t0 = Clock::now();
  auto src = pvnet_source_dir();
  if (!src) {
    std::cerr << "pvnet xen-lab: " << src.error().reason << "\n";
    return 2;
  }
  const std::string here = *src + "/tools/xen-lab";
  std::error_code ec;
  if (!fs::exists(here + "/scenarios/" + o.scenario + ".sh", ec)) {
    std::cerr << "pvnet xen-lab: no scenario '" << o.scenario << "' (pvnet xen-lab --list)\n";
    return 2;
  }
  if (o.cache.empty()) o.cache = lab_cache_dir();
  if (!make_dir(o.cache + "/guest", "cache")) return 2;
  if (o.workdir.empty()) {
    char tmpl[] = "/tmp/pvnet-xen-lab-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("pvnet xen-lab: mkdtemp");
      return 2;
    }
    o.workdir = tmpl;
  }
  if (!make_dir(o.workdir, "--workdir")) return 2;
  if (o.pvnet.empty()) o.pvnet = self_exe();

  // The plain test guest's kernel and busybox initramfs are the first layer of both of ours.
  if (auto r = build_guest(o.cache + "/guest", false); !r) {
    std::cerr << "pvnet xen-lab: " << r.error().reason << "\n";
    return 2;
  }
  auto built = run_bounded({here + "/build-xen-lab.sh", o.cache, o.workdir, o.scenario, o.pvnet},
                           std::chrono::minutes(10));
  if (!built || built->status != 0) {
    std::cerr << "pvnet xen-lab: build failed: " << (built ? built->output : built.error().reason) << "\n";
    return 2;
  }
  if (!o.quiet) std::cout << built->output;
  const double build_s = seconds_since(t0);

  auto qemu = find_program("qemu-system-x86_64");
  auto timeout_bin = find_program("timeout");
  if (!qemu || !timeout_bin) {
    std::cerr << "pvnet xen-lab: " << (!qemu ? qemu.error().reason : timeout_bin.error().reason) << "\n";
    return 2;
  }
  const std::string serial = o.workdir + "/serial.log";
  // docs/machine-notes.md: -cpu max without SMAP/SMEP (the PV dom0 dies of them), spec-ctrl=eager-fpu (TCG gets Xen's
  // lazy FPU switching wrong), dom0 console on hvc0 relayed to com1.
  // QEMU's parent is timeout(1), which dies with us (ChildProcess: PR_SET_PDEATHSIG) without ending QEMU: setpriv
  // gives QEMU its own parent-death signal, so a lab that is stopped or killed leaves no QEMU running.
  std::vector<std::string> qemu_cmd = {*qemu};
  if (auto setpriv = find_program("setpriv")) qemu_cmd = {*setpriv, "--pdeathsig", "KILL", *qemu};
  std::vector<std::string> args = {"timeout", "--kill-after=5", std::to_string(o.timeout_s)};
  args.insert(args.end(), qemu_cmd.begin(), qemu_cmd.end());
  args.insert(args.end(), {"-accel", "tcg", "-cpu", "max,-smap,-smep",
      "-m", "2G", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot", "-serial", "file:" + serial,
      "-kernel", o.cache + "/xen",
      "-append", "console=com1 com1=115200 dom0_mem=768M,max:768M spec-ctrl=eager-fpu loglvl=warning",
      "-initrd", o.cache + "/guest/vmlinuz console=hvc0 earlyprintk=xen quiet," + o.workdir + "/dom0.img"});
  // Under a heavily loaded host Xen sometimes panics at boot ("IO-APIC + timer doesn't work!": its timer check
  // runs in emulated time that stalls). Nothing of the scenario ran yet then: one more boot, said so.
  bool done = false;
  double run_s = 0;
  std::string qemu_end, result;
  for (int attempt = 1;; ++attempt) {
    ::unlink(serial.c_str());
    auto child = ChildProcess::spawn(*timeout_bin, args, "qemu", true);
    if (!child) {
      std::cerr << "pvnet xen-lab: " << child.error().reason << "\n";
      return 2;
    }
    auto& q = *child.value();
    ConsoleTail tail(serial);
    const auto qemu_t0 = Clock::now();
    while (!done && q.running()) {
      while (auto l = q.read_line(Ms(0))) std::cerr << "qemu: " << *l << "\n";
      done = tail.pump(false);
      if (!done) (void)q.wait(Ms(200));
    }
    done = tail.pump(false);
    run_s = seconds_since(qemu_t0);
    qemu_end = q.status_text();
    q.kill_and_reap();  // Xen halts but QEMU stays: stop it ourselves
    result = tail.result();
    if (done || attempt > 1 || !xen_boot_panic(serial)) break;
    fs::rename(serial, o.workdir + "/serial.panic.log", ec);
    std::cout << "pvnet xen-lab: Xen panicked at boot before dom0 (" << o.workdir
              << "/serial.panic.log); booting once more" << std::endl;
  }
  const bool ok = done && result.rfind("ok ", 0) == 0;
  std::cout << "pvnet xen-lab: " << o.scenario << (ok ? " ok" : " FAIL") << " (build " << static_cast<int>(build_s)
            << " s, Xen+dom0+domUs " << static_cast<int>(run_s) << " s";
  if (!done) std::cout << ", no result line: QEMU " << qemu_end;
  std::cout << "; console " << serial << ")" << std::endl;
  if (!done) {
    // Without a result the end of the console is what explains it.
    std::ifstream f(serial);
    std::vector<std::string> lines;
    for (std::string l; std::getline(f, l);) lines.push_back(l);
    const size_t from = lines.size() > 40 ? lines.size() - 40 : 0;
    for (size_t i = from; i < lines.size(); ++i) std::cout << "  | " << lines[i] << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace pvnet::tools
