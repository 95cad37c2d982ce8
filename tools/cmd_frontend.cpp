// pvnet frontend: a guest as its own process. Creates its domain on a `pvnet backend`'s hypervisor socket, waits
// for the toolstack to write its device directory, runs netfront, and then either transmits a trace (--tx, through
// the same TraceSender as the in-process replay) or writes what it receives (--rx). Control lines on stdout:
// "connected slots=on|off tx-ring=N", "done" ("stopped" when SIGTERM/SIGINT ends --tx early: it sends no more,
// waits briefly for the frames in flight, writes --json and closes the vif); on stdin (with --wait-go): "go",
// "close". --tap: the vif becomes a network interface of this namespace (tools/tap_frontend.hpp) until
// SIGTERM/SIGINT; says "tap NAME up".
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/pcap_io.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "grant-sim/xen/xen_store.hpp"
#include "tools/command.hpp"
#include "tools/json_file.hpp"
#include "tools/options.hpp"
#include "tools/tap_frontend.hpp"
#include "tools/trace_sender.hpp"
#include "tools/vhost_frontend.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

constexpr uint32_t kGrantEntries = 8192;
constexpr uint64_t kMaxMemMb = 65536;  // --mem-mb: 16 Mi pages (the Xen pool's page count is 32 bits)
constexpr uint32_t kMaxTapMtu = 0xFFFF - 14;  // a frame of netif's largest size, its Ethernet header included
constexpr auto kConnectRetry = std::chrono::seconds(5);   // the backend may still be starting
constexpr auto kSetupTimeout = std::chrono::seconds(15);  // device directory + xenbus + slot registration
constexpr auto kCloseTimeout = std::chrono::seconds(5);
constexpr auto kLivenessEvery = Ms(250);
constexpr auto kSignalCheckEvery = Ms(10);  // while busy (when idle, the signalfd is among the fds slept on)
// --tap idle: only the liveness check needs a timeout (the tests pass with an hour); a wake a second, not 5: under
// Xen each wake, and each liveness read of xenstore, costs the domU and dom0 CPU.
constexpr int kTapIdleWaitMs = 1000;

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

uint64_t wall_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

struct FrontendOptions {
  std::string socket;
  uint16_t domid = 0;
  uint64_t mem_mb = 64;
  std::string tx;
  uint32_t repeat = 1;
  bool wait_go = false;
  std::string rx;
  bool receive = false;
  bool header_slots = true;
  uint32_t slot_size = 128;
  uint32_t mtu = 9000;
  uint32_t data_offset = 0;
  uint32_t reconnect_timeout_s = 10;  // 0: no reconnect (the vif closes with its backend)
  bool progress = false;
  std::string json;
  bool xen = false;            // --hypervisor xen: a real domU (docs/xen.md)
  uint16_t backend_domid = 0;  // --hypervisor xen: who the gntalloc pool is shared with
  TapFrontendOptions tap;      // --tap: ifname set
};

// Lines from stdin, read only when poll says so (the netfront keeps being polled while we wait for "go").
class StdinLines {
 public:
  int fd() const { return 0; }
  bool eof() const { return eof_; }
  void on_readable() {
    char buf[256];
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n <= 0) {
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) eof_ = true;
      return;
    }
    buf_.append(buf, static_cast<size_t>(n));
  }
  std::optional<std::string> next() {
    auto nl = buf_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    return line;
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

class FrontendDaemon {
 public:
  explicit FrontendDaemon(FrontendOptions o) : opt_(std::move(o)) {
    dir_ = "/local/domain/" + std::to_string(opt_.domid) + "/device/vif/0";
  }
  int run();

 private:
  Result<void> connect_platform();
  Result<void> wait_device_dir();
  Result<void> connect_netfront();
  Result<void> transmit();
  Result<void> receive();
  Result<void> run_tap();
  Result<void> wait_line(const std::string& want, bool eof_is_ok);
  // Polls the netfront once; when idle, sleeps on its fds (and stdin/signals) for up to wait_ms.
  size_t step(int wait_ms, bool watch_stdin = false);
  void check_backend();
  void check_signals();
  // While netfront reconnects to a restarted backend: true until --reconnect-timeout expires (then the reason).
  bool await_reconnect();
  void close_netfront();
  void write_json();

  FrontendOptions opt_;
  std::string dir_;
  UniqueFd sfd_;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<MemoryPagePool> pool_;
  std::unique_ptr<Netfront> front_;
  StdinLines stdin_;
  bool stop_requested_ = false;      // SIGTERM/SIGINT
  std::string backend_gone_;          // why we think the backend went away
  Clock::time_point next_liveness_ = Clock::now();
  Clock::time_point next_signal_check_ = Clock::now();
  std::optional<PcapWriter> rx_out_;
  std::string rx_error_;
  uint64_t packets_out_ = 0, bytes_out_ = 0;
  std::optional<SendStats> sent_;
  uint64_t elapsed_ns_ = 0;
  std::optional<NetfrontCounters> before_close_;
  // Lives until netfront is closed: its completion handler runs for every frame still in flight, and it holds
  // the frames' pages, which stay granted until then.
  std::optional<TraceSender> sender_;
  std::unique_ptr<TapFrontend> tap_;  // --tap; its handlers point into it: reset before the netfront goes
  std::optional<Clock::time_point> reconnect_deadline_;
  std::string reconnect_error_;
  bool used_header_slots_ = false;
  uint32_t connected_tx_ring_ = 0;  // the TX ring's entries when netfront connected (json tx_ring_size)
  uint32_t grants_free_before_ = 0;  // before the netfront existed: what it must give back
};

Result<void> FrontendDaemon::connect_platform() {
  if (opt_.xen) {
    XenPlatformOptions xo;
    xo.self = DomId{opt_.domid};
    xo.grantee = DomId{opt_.backend_domid};
    xo.pool_pages = static_cast<uint32_t>(opt_.mem_mb * (1u << 20) / kPageSize);
    auto p = XenPlatform::open(xo);
    if (!p) return make_error(p.error().code, "--hypervisor xen: " + p.error().reason);
    platform_ = std::move(p).value();
    return {};
  }
  const auto deadline = Clock::now() + kConnectRetry;
  for (;;) {
    auto p = SimClient::connect(opt_.socket, DomId{opt_.domid},
                                SimClientOptions::create(opt_.mem_mb << 20, kGrantEntries));
    if (p) {
      platform_ = std::move(p).value();
      return {};
    }
    const int code = p.error().code;
    if ((code != ENOENT && code != ECONNREFUSED) || Clock::now() > deadline) {
      if (code == ENOENT || code == ECONNREFUSED)
        return make_error(code, "no backend on " + opt_.socket + " after " +
                                    std::to_string(std::chrono::seconds(kConnectRetry).count()) +
                                    " s: " + p.error().reason);
      return make_error(code, "creating domain " + std::to_string(opt_.domid) + " on " + opt_.socket + ": " +
                                  p.error().reason);
    }
    std::this_thread::sleep_for(Ms(20));
  }
}

// The toolstack writes the device directory when it sees our domain; its "state" key is written last.
Result<void> FrontendDaemon::wait_device_dir() {
  Store& store = platform_->store();
  if (auto r = store.watch(dir_, "device"); !r) return r.error();
  const auto deadline = Clock::now() + kSetupTimeout;
  while (!store.read_opt(dir_ + "/state")) {
    if (Clock::now() > deadline)
      return make_error(ETIMEDOUT, "the toolstack did not create " + dir_ + " within " +
                                       std::to_string(std::chrono::seconds(kSetupTimeout).count()) +
                                       " s (is this domain in the backend's --frontends?)");
    (void)store.wait_watches(50);
    if (auto alive = store.read_opt("/local/domain/" + std::to_string(opt_.domid)); !alive) {
      // Our own home is always readable while the hypervisor is there.
      if (auto r = store.read("/local/domain/" + std::to_string(opt_.domid)); !r && r.error().code != ENOENT)
        return make_error(r.error().code, "backend gone while waiting for " + dir_ + ": " + r.error().reason);
    }
  }
  (void)store.unwatch(dir_, "device");
  return {};
}

void FrontendDaemon::check_backend() {
  if (!backend_gone_.empty() || Clock::now() < next_liveness_) return;
  next_liveness_ = Clock::now() + kLivenessEvery;
  auto r = platform_->store().read(dir_ + "/backend");
  if (r) return;
  if (r.error().code == ENOENT)
    backend_gone_ = "the backend removed " + dir_;
  else
    backend_gone_ = "backend gone (" + r.error().reason + ")";
  // Further transmits see kNotConnected; close() releases what can be released without the backend.
  front_->close();
}

bool FrontendDaemon::await_reconnect() {
  if (!front_->reconnecting() || stop_requested_ || !backend_gone_.empty()) return false;
  if (front_->state() == NetfrontState::kFailed) return false;
  if (!reconnect_deadline_) {
    reconnect_deadline_ = Clock::now() + std::chrono::seconds(opt_.reconnect_timeout_s);
    std::cerr << "pvnet frontend (domain " << opt_.domid << "): backend lost; reconnecting (up to "
              << opt_.reconnect_timeout_s << " s)\n";
  }
  if (Clock::now() > *reconnect_deadline_) {
    reconnect_error_ = "the backend did not come back within " + std::to_string(opt_.reconnect_timeout_s) +
                       " s (netfront " + to_string(front_->state()) + ")";
    return false;
  }
  step(2);
  return true;
}

void FrontendDaemon::check_signals() {
  if (Clock::now() < next_signal_check_) return;
  next_signal_check_ = Clock::now() + kSignalCheckEvery;
  signalfd_siginfo si;
  while (::read(sfd_.get(), &si, sizeof si) == sizeof si) stop_requested_ = true;
}

size_t FrontendDaemon::step(int wait_ms, bool watch_stdin) {
  size_t work = front_->poll() ? 1 : 0;
  if (reconnect_deadline_ && front_->connected()) {
    reconnect_deadline_.reset();
    say("reconnected lost=" + std::to_string(front_->counters().tx_lost_backend_gone));
  }
  check_backend();
  if (work || wait_ms <= 0) {
    check_signals();  // a sender that is never idle must still hear SIGTERM
    return work;
  }
  pollfd p[5] = {{front_->event_fd(), POLLIN, 0},
                 {front_->store_fd(), POLLIN, 0},
                 {sfd_.get(), POLLIN, 0},
                 {watch_stdin && !stdin_.eof() ? stdin_.fd() : -1, POLLIN, 0},
                 {tap_ && tap_->wants_read() ? tap_->fd() : -1, POLLIN, 0}};
  if (::poll(p, 5, wait_ms) > 0) {
    if (p[2].revents) {
      signalfd_siginfo si;
      while (::read(sfd_.get(), &si, sizeof si) == sizeof si) stop_requested_ = true;
    }
    if (p[3].revents) stdin_.on_readable();
  }
  return work;
}

Result<void> FrontendDaemon::connect_netfront() {
  pool_ = std::make_unique<MemoryPagePool>(platform_->memory());
  grants_free_before_ = platform_->grant_table().free_count();
  NetfrontConfig fc;
  fc.header_slots = opt_.header_slots;
  fc.slot_size = opt_.slot_size;
  fc.reconnect = opt_.reconnect_timeout_s > 0 && !opt_.xen;
  front_ = std::make_unique<Netfront>(*platform_, *pool_, dir_, fc);
  const auto deadline = Clock::now() + kSetupTimeout;
  for (;;) {
    step(10);
    if (front_->state() == NetfrontState::kFailed) return make_error(EPROTO, "netfront: " + front_->error());
    if (!backend_gone_.empty()) return make_error(ENOTCONN, backend_gone_);
    if (stop_requested_) return make_error(EINTR, "stopped before the vif connected");
    // netfront reports Connected only once header-slot registration succeeded or fell back to plain netif (a
    // backend whose payload policy does not offer header slots), so traffic never starts half-registered.
    if (front_->connected()) {
      used_header_slots_ = front_->using_header_slots();
      connected_tx_ring_ = front_->tx_ring_size();
      return {};
    }
    if (Clock::now() > deadline)
      return make_error(ETIMEDOUT, std::string("netfront did not connect within ") +
                                       std::to_string(std::chrono::seconds(kSetupTimeout).count()) + " s (state " +
                                       to_string(front_->state()) + ")");
  }
}

Result<void> FrontendDaemon::wait_line(const std::string& want, bool eof_is_ok) {
  for (;;) {
    while (auto line = stdin_.next())
      if (*line == want) return {};
    if (stdin_.eof()) {
      if (eof_is_ok) return {};
      return make_error(EPIPE, "stdin closed before '" + want + "'");
    }
    if (stop_requested_) return make_error(EINTR, "stopped while waiting for '" + want + "'");
    if (!backend_gone_.empty()) return make_error(ENOTCONN, backend_gone_);
    step(10, true);
  }
}

Result<void> FrontendDaemon::transmit() {
  if (opt_.wait_go) {
    if (auto r = wait_line("go", false); !r) return r;
  }
  SendOptions so;
  so.trace = opt_.tx;
  so.repeat = opt_.repeat;
  so.mtu = opt_.mtu;
  so.data_offset = opt_.data_offset;
  so.progress = opt_.progress;
  so.await_reconnect = [this] { return await_reconnect(); };
  so.stop = [this] { return stop_requested_; };
  TraceSender& sender = sender_.emplace(*front_, *pool_, so);
  const auto t0 = Clock::now();
  auto r = sender.run([this] {
    // The backend is another process: when there is nothing to do, wait for its kick instead of spinning.
    return step(stop_requested_ ? 0 : 2);
  });
  elapsed_ns_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  sent_ = sender.stats();
  before_close_ = front_->counters();
  if (!r) {
    if (!reconnect_error_.empty()) return make_error(ETIMEDOUT, reconnect_error_ + " while transmitting");
    if (!backend_gone_.empty()) return make_error(ENOTCONN, backend_gone_ + " while transmitting: " + r.error().reason);
    if (stop_requested_) return make_error(EINTR, "stopped while transmitting: " + r.error().reason);
    return r;
  }
  if (sent_->stopped) {
    std::cerr << "pvnet frontend (domain " << opt_.domid << "): stopped by a signal after " << sent_->queued
              << " frames queued, " << sent_->queued - sent_->completed << " still in flight\n";
    say("stopped");
    return {};
  }
  say("done");
  if (opt_.wait_go) return wait_line("close", true);
  return {};
}

Result<void> FrontendDaemon::receive() {
  while (!stop_requested_) {
    step(10);
    if (!backend_gone_.empty()) return make_error(ENOTCONN, backend_gone_);
    if (front_->state() != NetfrontState::kConnected && !await_reconnect()) {
      if (!reconnect_error_.empty()) return make_error(ETIMEDOUT, reconnect_error_);
      if (stop_requested_) break;
      return make_error(ENOTCONN, std::string("the vif left Connected (") + to_string(front_->state()) + ")");
    }
  }
  // Frames the backend already copied into our buffers are ours: take them all before closing.
  for (int idle = 0; idle < 3;) idle = step(1) == 0 ? idle + 1 : 0;
  before_close_ = front_->counters();
  if (!rx_error_.empty()) return make_error(EIO, "writing " + opt_.rx + ": " + rx_error_);
  if (rx_out_) return rx_out_->close();
  return {};
}

// Event-driven: sleeps on netfront's event channel, the store, the TAP (while its queue has room) and signals.
Result<void> FrontendDaemon::run_tap() {
  auto t = TapFrontend::open(*front_, *pool_, opt_.tap);
  if (!t) return make_error(t.error().code, "--tap " + opt_.tap.ifname + ": " + t.error().reason);
  tap_ = std::move(t).value();
  say("tap " + opt_.tap.ifname + " up");
  while (!stop_requested_) {
    const size_t work = tap_->pump();
    step(work ? 0 : kTapIdleWaitMs);
    if (!backend_gone_.empty()) return make_error(ENOTCONN, backend_gone_);
    if (front_->state() != NetfrontState::kConnected)
      return make_error(ENOTCONN, std::string("the vif left Connected (") + to_string(front_->state()) + ")");
  }
  before_close_ = front_->counters();
  return {};
}

void FrontendDaemon::close_netfront() {
  if (!front_) return;
  if (!before_close_) before_close_ = front_->counters();
  front_->close();
  const auto deadline = Clock::now() + kCloseTimeout;
  while (front_->state() != NetfrontState::kClosed && Clock::now() < deadline) step(5);
}

void FrontendDaemon::write_json() {
  if (opt_.json.empty()) return;
  nlohmann::json j;
  j["domid"] = opt_.domid;
  j["role"] = !opt_.tx.empty() ? "tx" : opt_.receive ? "rx" : !opt_.tap.ifname.empty() ? "tap" : "idle";
  j["header_slots"] = used_header_slots_;
  j["slot_size"] = opt_.slot_size;
  if (front_) {
    j["tx_ring_size"] = connected_tx_ring_;
    const NetfrontCounters& c = front_->counters();
    j["frontend"] = before_close_.value_or(c);
    j["frontend_after_close"] = c;
    j["state_at_exit"] = to_string(front_->state());
    // Once closed, every page, grant and slot netfront used is back (grants the backend still held are kept).
    j["leaks"] = {{"closed", front_->state() == NetfrontState::kClosed},
                  {"pages_outstanding", pool_->capacity() - pool_->free_pages()},
                  {"grants_outstanding", grants_free_before_ - platform_->grant_table().free_count()},
                  {"slots_in_use", c.slots_in_use},
                  {"tx_frames_in_flight", front_->tx_frames_in_flight()},
                  {"grants_in_use", c.grants_in_use},
                  {"grants_kept", c.grants_kept}};
  }
  if (sent_) {
    j["packets_in"] = sent_->packets_in;
    j["bytes_in"] = sent_->bytes_in;
    j["queued"] = sent_->queued;
    j["completed"] = sent_->completed;
    j["completed_ok"] = sent_->completed_ok;
    j["lost"] = sent_->completed - sent_->completed_ok;  // answered with an error/drop, or never (backend gone)
    j["refused"] = sent_->refused;
    j["stopped"] = sent_->stopped;  // SIGTERM/SIGINT ended the run early
    if (sent_->stopped) j["in_flight_at_stop"] = sent_->queued - sent_->completed;  // unanswered at close
    j["elapsed_ns"] = elapsed_ns_;
  }
  if (opt_.receive) {
    j["packets_out"] = packets_out_;
    j["bytes_out"] = bytes_out_;
  }
  if (tap_) {
    const TapFrontendCounters& t = tap_->counters();
    j["tap"] = t;
    j["tap"].update({{"ifname", opt_.tap.ifname},
                     {"offloads", {{"csum", tap_->offloads().csum}, {"tso4", tap_->offloads().tso4},
                                   {"tso6", tap_->offloads().tso6}}}});
  }
  if (!backend_gone_.empty()) j["backend_gone"] = backend_gone_;
  if (auto w = write_json_file(opt_.json, j); !w) std::cerr << "pvnet frontend: " << w.error().reason << "\n";
}

int FrontendDaemon::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  sfd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd_) {
    std::perror("pvnet frontend: signalfd");
    return 1;
  }
  const std::string me = "pvnet frontend (domain " + std::to_string(opt_.domid) + "): ";
  // A bad trace is refused before anything is built: the reason names the problem (not Ethernet, truncated...).
  if (!opt_.tx.empty()) {
    if (auto r = PcapReader::open(opt_.tx); !r) {
      std::cerr << me << r.error().reason << "\n";
      return 1;
    }
  }
  if (!opt_.rx.empty()) {
    auto w = PcapWriter::create(opt_.rx);
    if (!w) {
      std::cerr << me << w.error().reason << "\n";
      return 1;
    }
    rx_out_.emplace(std::move(w).value());
  }
  Result<void> r = connect_platform();
  if (r) r = wait_device_dir();
  if (r) r = connect_netfront();
  if (r) {
    front_->on_rx([this](ReceivedFrame&& f) {
      packets_out_++;
      bytes_out_ += f.data.size();
      if (rx_out_ && rx_error_.empty()) {
        if (auto w = rx_out_->write(wall_ns(), f.data); !w) rx_error_ = w.error().reason;
      }
    });
    // tx-ring: the TX ring's entries (256 a page; 512/1024 when the backend offered a multi-page ring).
    say(std::string("connected slots=") + (front_->using_header_slots() ? "on" : "off") +
        " tx-ring=" + std::to_string(connected_tx_ring_));
    if (!opt_.tx.empty())
      r = transmit();
    else if (opt_.receive)
      r = receive();
    else if (!opt_.tap.ifname.empty())
      r = run_tap();
    else
      r = wait_line("close", true);
  }
  close_netfront();
  write_json();
  tap_.reset();
  if (front_) front_->on_tx_complete([](const TxDone&) {});
  sender_.reset();
  if (!r) {
    std::cerr << me << r.error().reason << "\n";
    return 1;
  }
  return 0;
}

int cmd_frontend(int argc, char** argv) {
  FrontendOptions o;
  uint32_t domid = 0;
  po::options_description desc(
      "usage: pvnet frontend [--hypervisor sim|xen] --socket PATH --domid N [--mem-mb 64] [--tx TRACE [--repeat K] [--wait-go]]\n"
      "                      [--rx OUT.pcap | --receive] [--no-header-slots] [--slot-size 128] [--mtu 9000]\n"
      "                      [--tap NAME [--tap-addr 198.18.0.1/24] [--tap-mtu 1500]] [--json FILE]\n"
      "       pvnet frontend --vhost-user SOCKET [--vhost-user-client] --socket PATH --domid N [--capture F.pcap]\n\n"
      "A guest as a process: creates domain N on a `pvnet backend`'s socket, waits for its vif, connects netfront\n"
      "and says \"connected slots=on|off tx-ring=N\" (N: the TX ring's entries, 256 a page). --tx: sends the\n"
      "trace (after a \"go\" line on stdin with --wait-go), says \"done\" (then waits for \"close\" with\n"
      "--wait-go). --rx: writes every received frame to OUT until SIGTERM/SIGINT. Exits 0, or 1 with the reason on\n"
      "stderr.\n\noptions");
  std::string hypervisor;
  desc.add_options()("help,h", "this help")
      ("hypervisor", po::value(&hypervisor)->default_value("sim"),
       "sim: a domain on a `pvnet backend`'s socket; xen: this real Xen domU (gntalloc/gntdev/evtchn/xenstore, "
       "docs/xen.md)")
      ("backend-domid", ranged(&o.backend_domid, 0, limits::kMaxGuestDomId)->default_value(0),
       "--hypervisor xen: the backend's domain")
      ("socket,s", po::value(&o.socket), "the backend's hypervisor socket (--hypervisor sim)")
      ("domid", ranged(&domid, 1, limits::kMaxGuestDomId),
       "this guest's domain id; --hypervisor xen: default xenstore's")
      ("mem-mb", ranged(&o.mem_mb, 1, kMaxMemMb)->default_value(64), "guest memory in MiB")
      ("tx", po::value(&o.tx), "trace to transmit (pcap or pcapng of Ethernet frames)")
      ("repeat", ranged(&o.repeat, 1, UINT32_MAX)->default_value(1), "--tx: send the trace this many times")
      ("wait-go", po::bool_switch(&o.wait_go), "--tx: wait for \"go\" on stdin first, \"close\" after \"done\"")
      ("rx", po::value(&o.rx), "write every received frame to this pcap (until SIGTERM/SIGINT)")
      ("receive", po::bool_switch(&o.receive), "receive (and count) frames without writing them")
      ("no-header-slots", po::bool_switch(), "speak plain netif")
      ("slot-size", slot_size_value(&o.slot_size)->default_value(128), "header-slot size in bytes, a power of 2")
      ("mtu", ranged(&o.mtu, limits::kMinMtu, limits::kMaxMtu)->default_value(9000),
       "--tx: longer TCP frames are sent as GSO")
      ("data-offset", ranged(&o.data_offset, 0, limits::kMaxDataOffset)->default_value(0),
       "--tx: offset of each frame in its first page")
      ("progress", po::bool_switch(&o.progress), "--tx: show the progress line")
      ("reconnect-timeout", ranged(&o.reconnect_timeout_s, 0, limits::kMaxTimeoutS)->default_value(10),
       "seconds to wait for a backend that died or restarted to come back (frames in flight are counted lost, "
       "tx_lost_backend_gone; says \"reconnected lost=N\"); 0: close with the backend instead")
      ("tap", po::value(&o.tap.ifname), "be network interface NAME (a TAP in this namespace) until SIGTERM/SIGINT: "
                                        "what the kernel sends goes out through netfront, what arrives goes in")
      ("tap-addr", po::value(&o.tap.addr), "--tap: IPv4 address/prefix of the interface")
      ("tap-mtu", ranged(&o.tap.mtu, limits::kMinMtu, kMaxTapMtu)->default_value(1500), "--tap: the interface's MTU")
      ("json,j", po::value(&o.json), "write the counters here on exit")
      ("vhost-user", po::value<std::string>(), "be the virtio-net device of a QEMU guest on this vhost-user socket "
                                               "(we listen; QEMU -chardev socket,path=SOCKET): the guest's RAM "
                                               "becomes domain N (docs/vhost-user.md)")
      ("vhost-user-client", po::bool_switch(), "--vhost-user: connect to QEMU's socket (chardev server=on)")
      ("vhost-user-once", po::bool_switch(), "--vhost-user: exit when QEMU disconnects")
      ("capture", po::value<std::string>(), "--vhost-user: write every frame the guest sends and receives here");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "frontend")) return *status;
  if (hypervisor != "sim" && hypervisor != "xen") {
    std::cerr << "pvnet frontend: --hypervisor must be sim or xen\n";
    return 2;
  }
  o.xen = hypervisor == "xen";
  if (o.xen && !vm.count("domid")) {
    auto self = xen_device_present("gntdev") ? xen_store_self_domid() : Result<DomId>(xen_device_present("gntdev").error());
    if (!self) {
      std::cerr << "pvnet frontend: --hypervisor xen: " << self.error().reason << "\n";
      return 1;
    }
    domid = self->value;
  }
  if (!o.xen && (o.socket.empty() || !vm.count("domid"))) {
    std::cerr << "pvnet frontend: --socket and --domid are required (with --hypervisor sim)\n";
    return 2;
  }
  // gntalloc's default `limit` is 1024 pages: without --mem-mb, a Xen frontend's pool fits in it.
  if (o.xen && vm["mem-mb"].defaulted()) o.mem_mb = 4;
  if (domid == 0 || domid >= 0x7FF0u) {
    std::cerr << "pvnet frontend: --domid must be a guest domain (1.." << 0x7FF0u - 1 << ")\n";
    return 2;
  }
  o.domid = static_cast<uint16_t>(domid);
  o.header_slots = !vm["no-header-slots"].as<bool>();
  if (vm.count("vhost-user") && o.xen) {
    std::cerr << "pvnet frontend: --vhost-user runs on the simulator only\n";
    return 2;
  }
  if (vm.count("vhost-user")) {
    VhostFrontendOptions v;
    v.vhost_socket = vm["vhost-user"].as<std::string>();
    v.vhost_client = vm["vhost-user-client"].as<bool>();
    v.once = vm["vhost-user-once"].as<bool>();
    v.hv_socket = o.socket;
    v.domid = o.domid;
    v.header_slots = o.header_slots;
    v.slot_size = o.slot_size;
    v.json = o.json;
    if (vm.count("capture")) v.capture = vm["capture"].as<std::string>();
    return run_vhost_frontend(v);
  }
  if (!o.rx.empty()) o.receive = true;
  if (int(!o.tx.empty()) + int(o.receive) + int(!o.tap.ifname.empty()) > 1) {
    std::cerr << "pvnet frontend: --tx, --rx/--receive and --tap are separate guests: give one\n";
    return 2;
  }
  FrontendDaemon d(std::move(o));
  return d.run();
}

}  // namespace

PVNET_COMMAND(frontend, "frontend", "a guest as a process: netfront on a backend's socket, transmits or receives",
              cmd_frontend);

}  // namespace pvnet::tools
