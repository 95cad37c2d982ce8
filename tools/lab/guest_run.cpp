#include "tools/lab/guest_run.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tools/lab/guest_env.hpp"
#include "tools/process/child_process.hpp"
#include "tools/process/file_tail.hpp"

namespace fs = std::filesystem;

namespace pvnet::tools {
namespace {

using Ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Prints the serial console's "PVNET ..." lines as they appear.
class SerialTail {
 public:
  SerialTail(std::string path, std::string prefix) : file_(std::move(path)), prefix_(std::move(prefix)) {}
  void pump() {
    for (std::string& line : file_.new_lines()) {
      const auto at = line.find("PVNET ");
      if (at == std::string::npos) continue;
      line = line.substr(at);
      std::cout << prefix_ << line << std::endl;
      if (line == "PVNET done ok") ok_ = true;
      if (line.rfind("PVNET done", 0) == 0) done_ = true;
    }
  }
  bool done() const { return done_; }
  bool ok() const { return ok_; }

 private:
  FileTail file_;
  std::string prefix_;
  bool done_ = false, ok_ = false;
};

std::string mac_for(unsigned domid) {
  char mac[32];
  std::snprintf(mac, sizeof mac, "52:54:00:12:%02x:%02x", (domid >> 8) & 0xff, domid & 0xff);
  return mac;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
  return s;
}

Result<void> ensure_libvirtd() {
  auto probe = [] { return run_bounded({"virsh", "-c", "qemu:///system", "version"}, std::chrono::seconds(15)); };
  if (auto r = probe(); r && r->status == 0) return {};
  // No systemd here: start the daemons by hand (docs/machine-notes.md).
  for (const char* d : {"virtlogd", "libvirtd"}) {
    if (auto p = find_program(d); !p) return p.error();
    auto r = run_bounded({d, "-d"}, std::chrono::seconds(20));
    if (!r) return r.error();
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    if (auto r = probe(); r && r->status == 0) return {};
    std::this_thread::sleep_for(Ms(500));
  }
  return make_error(ETIMEDOUT, "libvirtd did not answer within 30 s of starting it");
}

class GuestRun {
 public:
  explicit GuestRun(GuestRunOptions o) : o_(std::move(o)) {}
  int run();

 private:
  Result<void> prepare();
  Result<void> start_frontend();
  Result<void> start_qemu();
  Result<void> start_libvirt();
  bool guest_running();
  void stop_guest();
  void pump_frontend();

  GuestRunOptions o_;
  std::string cache_, vsock_, cmdline_, domain_name_;
  std::unique_ptr<ChildProcess> frontend_, qemu_;
  bool made_workdir_ = false;  // a fresh /tmp/pvnet-guest-XXXXXX (kept after the run: it holds the logs)
};

Result<void> GuestRun::prepare() {
  if (o_.ip.empty()) o_.ip = "198.18.0." + std::to_string(o_.domid % 250) + "/24";
  if (o_.ip6.empty()) o_.ip6 = "fd00::" + std::to_string(o_.domid) + "/64";
  for (const auto& a : {o_.ip, o_.ip6})
    if (!allowed_guest_address(a)) return make_error(EINVAL, a + " is outside 198.18.0.0/15 and fd00::/8");
  // The workdir before the (slow) guest build: a bad --workdir is refused at once.
  if (o_.workdir.empty()) {
    char tmpl[] = "/tmp/pvnet-guest-XXXXXX";
    if (!::mkdtemp(tmpl)) return make_error(errno, std::string("mkdtemp /tmp/pvnet-guest-*: ") + std::strerror(errno));
    o_.workdir = tmpl;
    made_workdir_ = true;
  } else {
    std::error_code ec;
    fs::create_directories(o_.workdir, ec);
    if (ec) return make_error(ec.value(), "--workdir " + o_.workdir + ": " + ec.message());
  }
  cache_ = o_.cache.empty() ? guest_cache_dir() : o_.cache;
  if (auto r = build_guest(cache_, false); !r) {
    if (made_workdir_) ::rmdir(o_.workdir.c_str());  // ours, still empty
    return r;
  }
  // libvirt's QEMU runs as libvirt-qemu: it must reach the vhost-user socket and the serial file.
  ::chmod(o_.workdir.c_str(), 0777);
  if (o_.serial.empty()) o_.serial = o_.workdir + "/serial-dom" + std::to_string(o_.domid) + ".log";
  ::unlink(o_.serial.c_str());
  cmdline_ = "console=ttyS0 quiet pvnet.ip=" + o_.ip + " pvnet.ip6=" + o_.ip6 + " pvnet.run=" + o_.scenario +
             " pvnet.mb=" + std::to_string(o_.mb);
  return {};
}

Result<void> GuestRun::start_frontend() {
  vsock_ = o_.workdir + "/vhost-dom" + std::to_string(o_.domid) + ".sock";
  ::unlink(vsock_.c_str());
  std::vector<std::string> args = {"pvnet", "frontend", "--vhost-user", vsock_, "--socket", o_.socket,
                                   "--domid", std::to_string(o_.domid)};
  if (!o_.capture.empty()) {
    args.push_back("--capture");
    args.push_back(o_.capture);
  }
  auto fe = ChildProcess::spawn(self_exe(), args, "frontend dom" + std::to_string(o_.domid), true);
  if (!fe) return fe.error();
  frontend_ = std::move(fe).value();
  // QEMU (the vhost-user client) fails at once if the socket is not there yet.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (::access(vsock_.c_str(), F_OK) != 0) {
    pump_frontend();
    if (!frontend_->running() || Clock::now() > deadline) {
      pump_frontend();
      return make_error(ETIMEDOUT, "pvnet frontend --vhost-user did not create " + vsock_ + " (" +
                                       frontend_->status_text() + ")");
    }
    (void)frontend_->wait(Ms(50));  // a sleep that also notices the frontend's exit
  }
  ::chmod(vsock_.c_str(), 0777);
  return {};
}

void GuestRun::pump_frontend() {
  if (!frontend_) return;
  for (;;) {
    auto l = frontend_->read_line(Ms(0));
    if (!l) break;
    std::cerr << "dom" << o_.domid << " frontend: " << *l << "\n";
  }
}

Result<void> GuestRun::start_qemu() {
  auto qemu = find_program("qemu-system-x86_64");
  if (!qemu) return qemu.error();
  const std::string mem = std::to_string(o_.mem_mb) + "M";
  std::vector<std::string> a = {"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", mem, "-smp", "1",
                                "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
                                "-serial", "file:" + o_.serial,
                                "-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on,seal=on",
                                "-numa", "node,memdev=mem",
                                "-kernel", cache_ + "/vmlinuz", "-initrd", cache_ + "/initrd.img",
                                "-append", cmdline_};
  if (o_.netdev.empty()) {
    a.insert(a.end(), {"-chardev", "socket,id=c0,path=" + vsock_, "-netdev", "vhost-user,id=n0,chardev=c0"});
  } else {
    a.insert(a.end(), {"-netdev", o_.netdev + ",id=n0"});
  }
  // vectors=0: QEMU 7.2 under TCG crashes in vhost_net_start with MSI-X (docs/machine-notes.md).
  a.insert(a.end(), {"-device", "virtio-net-pci,netdev=n0,vectors=0,mac=" + mac_for(o_.domid)});
  auto q = ChildProcess::spawn(*qemu, a, "qemu dom" + std::to_string(o_.domid), true);
  if (!q) return q.error();
  qemu_ = std::move(q).value();
  return {};
}

Result<void> GuestRun::start_libvirt() {
  if (auto r = ensure_libvirtd(); !r) return r;
  auto src = pvnet_source_dir();
  if (!src) return src.error();
  std::ifstream t(*src + "/tools/guest/domain.xml.in");
  if (!t) return make_error(ENOENT, *src + "/tools/guest/domain.xml.in is missing");
  std::stringstream ss;
  ss << t.rdbuf();
  auto qemu = find_program("qemu-system-x86_64");
  if (!qemu) return qemu.error();
  domain_name_ = "pvnet-dom" + std::to_string(o_.domid) + "-" + std::to_string(::getpid());
  std::string xml = ss.str();
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"@NAME@", domain_name_}, {"@MEM_MB@", std::to_string(o_.mem_mb)}, {"@CACHE@", cache_},
           {"@CMDLINE@", cmdline_}, {"@QEMU@", *qemu}, {"@MAC@", mac_for(o_.domid)},
           {"@VHOST_SOCKET@", vsock_}, {"@SERIAL@", o_.serial}})
    xml = replace_all(xml, k, v);
  const std::string path = o_.workdir + "/domain-dom" + std::to_string(o_.domid) + ".xml";
  std::ofstream(path) << xml;
  if (auto r = run_checked({"virsh", "-c", "qemu:///system", "create", path}, std::chrono::seconds(60)); !r)
    return r.error();
  return {};
}

bool GuestRun::guest_running() {
  if (qemu_) {
    for (;;) {  // QEMU's own messages (errors) go to our stderr
      auto l = qemu_->read_line(Ms(0));
      if (!l) break;
      std::cerr << "dom" << o_.domid << " qemu: " << *l << "\n";
    }
    return !qemu_->wait(Ms(0));
  }
  // A transient libvirt domain disappears when it powers off (on_poweroff=destroy).
  auto r = run_bounded({"virsh", "-c", "qemu:///system", "domstate", domain_name_}, std::chrono::seconds(15));
  return r && r->status == 0 && r->output.find("running") != std::string::npos;
}

void GuestRun::stop_guest() {
  if (qemu_) qemu_->kill_and_reap();
  if (!domain_name_.empty())
    (void)run_bounded({"virsh", "-c", "qemu:///system", "destroy", domain_name_}, std::chrono::seconds(30));
}

int GuestRun::run() {
  const auto t0 = Clock::now();
  if (auto r = prepare(); !r) {
    std::cerr << "pvnet guest run: " << r.error().reason << "\n";
    return 1;
  }
  if (o_.netdev.empty()) {
    if (o_.socket.empty()) {
      std::cerr << "pvnet guest run: --socket (the backend's hypervisor socket) or --netdev is required\n";
      return 2;
    }
    if (auto r = start_frontend(); !r) {
      std::cerr << "pvnet guest run: " << r.error().reason << "\n";
      return 1;
    }
  }
  auto started = o_.libvirt ? start_libvirt() : start_qemu();
  if (!started) {
    std::cerr << "pvnet guest run: starting the guest: " << started.error().reason << "\n";
    return 1;
  }
  SerialTail tail(o_.serial, "dom" + std::to_string(o_.domid) + " ");
  const auto deadline = t0 + std::chrono::seconds(o_.timeout_s);
  bool timed_out = false;
  bool frontend_died = false;
  std::optional<Clock::time_point> done_at;
  while (guest_running()) {
    tail.pump();
    pump_frontend();
    if (frontend_ && frontend_->wait(Ms(0))) {  // the NIC's other end is gone: the guest cannot finish
      frontend_died = true;
      break;
    }
    if (Clock::now() > deadline) {
      timed_out = true;
      break;
    }
    // The result is in: a guest that does not power off (no ACPI) gets 10 s, then is stopped.
    if (tail.done() && !done_at) done_at = Clock::now();
    if (done_at && Clock::now() - *done_at > std::chrono::seconds(10)) break;
    std::this_thread::sleep_for(Ms(o_.libvirt ? 500 : 100));
  }
  tail.pump();
  if (timed_out || frontend_died || !tail.done() || guest_running()) stop_guest();
  if (frontend_died) {
    pump_frontend();
    std::cerr << "pvnet guest run: dom" << o_.domid << ": pvnet frontend " << frontend_->status_text()
              << " while the guest ran (serial console: " << o_.serial << ")\n";
    return 1;
  }
  if (frontend_) {
    (void)frontend_->signal(SIGTERM);
    if (!frontend_->wait(Ms(10000))) frontend_->kill_and_reap();
    pump_frontend();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (timed_out) {
    std::cerr << "pvnet guest run: dom" << o_.domid << " did not finish within " << o_.timeout_s
              << " s (serial console: " << o_.serial << ")\n";
    return 1;
  }
  if (!tail.done()) {
    std::cerr << "pvnet guest run: dom" << o_.domid << " stopped without a result (serial console: " << o_.serial
              << ")\n";
    return 1;
  }
  std::cout << "dom" << o_.domid << " finished in " << static_cast<int>(secs + 0.5) << " s: "
            << (tail.ok() ? "ok" : "FAIL") << " (serial console: " << o_.serial << ")" << std::endl;
  return tail.ok() ? 0 : 1;
}

}  // namespace

int run_guest(GuestRunOptions o) {
  GuestRun g(std::move(o));
  return g.run();
}

// The backend and two guests pinging each other through it: what the README's two commands show.
int run_guest_demo(unsigned timeout_s, const std::string& policy) {
  if (auto r = build_guest(guest_cache_dir(), true); !r) {
    std::cerr << "pvnet guest demo: " << r.error().reason << "\n";
    return 1;
  }
  char tmpl[] = "/tmp/pvnet-demo-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl, hv = dir + "/hv.sock", json = dir + "/backend.json";
  auto be = ChildProcess::spawn(self_exe(), {"pvnet", "backend", "--socket", hv, "--policy", policy, "--forward",
                                             "1:2", "--forward", "2:1", "--json", json},
                                "backend");
  if (!be || !(*be)->wait_for(ControlLine::Kind::ready, Ms(20000))) {
    std::cerr << "pvnet guest demo: the backend did not start\n";
    return 1;
  }
  std::cout << "backend up: " << hv << " (dom1 <-> dom2, policy " << policy << ")" << std::endl;
  std::vector<std::unique_ptr<ChildProcess>> guests;
  for (unsigned d : {1u, 2u}) {
    const std::string peer = "198.18.0." + std::to_string(3 - d);
    auto g = ChildProcess::spawn(self_exe(),
                                 {"pvnet", "guest", "run", "--socket", hv, "--domid", std::to_string(d), "--workdir",
                                  dir, "--timeout", std::to_string(timeout_s), "--scenario",
                                  "wait:" + peer + ",ping:" + peer + ",sleep:3"},
                                 "guest dom" + std::to_string(d));
    if (!g) {
      std::cerr << "pvnet guest demo: " << g.error().reason << "\n";
      return 1;
    }
    guests.push_back(std::move(g).value());
  }
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s + 30);
  for (auto& g : guests) {
    while (Clock::now() < deadline) {
      auto l = g->read_line(Ms(200));
      if (l) {
        std::cout << *l << std::endl;
      } else if (l.error().code == EPIPE) {
        break;
      }
    }
    auto w = g->wait(Ms(5000));
    if (!w || *w != 0) status = 1;
  }
  (void)(*be)->signal(SIGTERM);
  (void)(*be)->wait(Ms(10000));
  std::cout << "backend counters: " << json << "\n" << (status == 0 ? "demo ok" : "demo FAILED") << std::endl;
  return status;
}


}  // namespace pvnet::tools
