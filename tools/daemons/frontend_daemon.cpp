#include "tools/daemons/frontend_daemon.hpp"

#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tools/trace/pcap_io.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "grant-sim/xen/xen_store.hpp"
#include "shared-ring/negotiation/keys.hpp"
#include "shared-ring/negotiation/vif_paths.hpp"
#include "tools/daemons/vhost_frontend.hpp"
#include "tools/platform/open_platform.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/process/event_loop.hpp"
#include "tools/replay/json_file.hpp"
#include "tools/replay/trace_sender.hpp"

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

uint64_t wall_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

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
    dir_ = vif_frontend_dir(DomId{opt_.domid}, 0);
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
  Result<void> close_rx();
  void write_json();

  FrontendOptions opt_;
  std::string dir_;
  std::unique_ptr<EventLoop> loop_;
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
    auto p = open_platform(PlatformSpec::xen(xo));
    if (!p) return make_error(p.error().code, "--hypervisor xen: " + p.error().reason);
    platform_ = std::move(p).value();
    return {};
  }
  auto p = open_platform(PlatformSpec::sim_socket(opt_.socket, DomId{opt_.domid},
                                                  SimClientOptions::create(opt_.mem_mb << 20, kGrantEntries),
                                                  kConnectRetry));
  if (p) {
    platform_ = std::move(p).value();
    return {};
  }
  const int code = p.error().code;
  if (no_server_yet(code))
    return make_error(code, "no backend on " + opt_.socket + " after " +
                                std::to_string(std::chrono::seconds(kConnectRetry).count()) + " s: " + p.error().reason);
  return make_error(code, "creating domain " + std::to_string(opt_.domid) + " on " + opt_.socket + ": " +
                              p.error().reason);
}

// The toolstack writes the device directory when it sees our domain; its "state" key is written last.
Result<void> FrontendDaemon::wait_device_dir() {
  Store& store = platform_->store();
  if (auto r = store.watch(dir_, "device"); !r) return r.error();
  const auto deadline = Clock::now() + kSetupTimeout;
  while (!store.read_opt(netif::key_path(dir_, netif::key::state))) {
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
  auto r = platform_->store().read(netif::key_path(dir_, netif::key::backend));
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
  if (!loop_->take_signals().empty()) stop_requested_ = true;
}

size_t FrontendDaemon::step(int wait_ms, bool watch_stdin) {
  size_t work = front_->poll() ? 1 : 0;
  if (reconnect_deadline_ && front_->connected()) {
    reconnect_deadline_.reset();
    say(reconnected_line(front_->counters().tx_lost_backend_gone));
  }
  check_backend();
  if (work || wait_ms <= 0) {
    check_signals();  // a sender that is never idle must still hear SIGTERM
    return work;
  }
  loop_->clear();
  loop_->add(front_->event_fd());
  loop_->add(front_->store_fd());
  const size_t stdin_at = loop_->add(watch_stdin && !stdin_.eof() ? stdin_.fd() : -1);
  loop_->add(tap_ && tap_->wants_read() ? tap_->fd() : -1);
  if (auto n = loop_->wait(wait_ms); n && *n > 0) {
    if (!loop_->take_signals().empty()) stop_requested_ = true;
    if (loop_->ready(stdin_at)) stdin_.on_readable();
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
    if (auto r = wait_line(std::string(kGoLine), false); !r) return r;
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
    say(kStoppedLine);
    return {};
  }
  say(kDoneLine);
  if (opt_.wait_go) return wait_line(std::string(kCloseLine), true);
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
  return {};  // --rx stays open: close_netfront() may still deliver frames; close_rx() writes them out
}

// After close_netfront(): every frame counted in packets_out was handed to the capture, whose write error (if any)
// is the daemon's.
Result<void> FrontendDaemon::close_rx() {
  if (!rx_out_) return {};
  auto closed = rx_out_->close();
  if (!rx_error_.empty()) return make_error(EIO, "writing " + opt_.rx + ": " + rx_error_);
  return closed;
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
  auto loop = EventLoop::create({SIGINT, SIGTERM});
  if (!loop) {
    std::cerr << "pvnet frontend: " << loop.error().reason << "\n";
    return 1;
  }
  loop_ = std::move(loop).value();
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
    say(connected_line(front_->using_header_slots(), connected_tx_ring_));
    if (!opt_.tx.empty())
      r = transmit();
    else if (opt_.receive)
      r = receive();
    else if (!opt_.tap.ifname.empty())
      r = run_tap();
    else
      r = wait_line(std::string(kCloseLine), true);
  }
  close_netfront();
  if (auto c = close_rx(); r && !c) r = c.error();
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

}  // namespace

int run_frontend_daemon(FrontendOptions o) {
  FrontendDaemon d(std::move(o));
  return d.run();
}

int run_frontend(FrontendOptions o, const FrontendArgs& a) {
  if (a.hypervisor != "sim" && a.hypervisor != "xen") {
    std::cerr << "pvnet frontend: --hypervisor must be sim or xen\n";
    return 2;
  }
  o.xen = a.hypervisor == "xen";
  uint32_t domid = a.domid.value_or(0);
  if (o.xen && !a.domid) {
    auto self = xen_device_present("gntdev") ? xen_store_self_domid() : Result<DomId>(xen_device_present("gntdev").error());
    if (!self) {
      std::cerr << "pvnet frontend: --hypervisor xen: " << self.error().reason << "\n";
      return 1;
    }
    domid = self->value;
  }
  if (!o.xen && (o.socket.empty() || !a.domid)) {
    std::cerr << "pvnet frontend: --socket and --domid are required (with --hypervisor sim)\n";
    return 2;
  }
  // gntalloc's default `limit` is 1024 pages: without --mem-mb, a Xen frontend's pool fits in it.
  if (o.xen && a.mem_mb_defaulted) o.mem_mb = 4;
  if (domid == 0 || domid >= 0x7FF0u) {
    std::cerr << "pvnet frontend: --domid must be a guest domain (1.." << 0x7FF0u - 1 << ")\n";
    return 2;
  }
  o.domid = static_cast<uint16_t>(domid);
  o.header_slots = !a.no_header_slots;
  if (a.vhost_user && o.xen) {
    std::cerr << "pvnet frontend: --vhost-user runs on the simulator only\n";
    return 2;
  }
  if (a.vhost_user) {
    VhostFrontendOptions v;
    v.vhost_socket = *a.vhost_user;
    v.vhost_client = a.vhost_user_client;
    v.once = a.vhost_user_once;
    v.hv_socket = o.socket;
    v.domid = o.domid;
    v.header_slots = o.header_slots;
    v.slot_size = o.slot_size;
    v.json = o.json;
    if (a.capture) v.capture = *a.capture;
    return run_vhost_frontend(v);
  }
  if (!o.rx.empty()) o.receive = true;
  if (int(!o.tx.empty()) + int(o.receive) + int(!o.tap.ifname.empty()) > 1) {
    std::cerr << "pvnet frontend: --tx, --rx/--receive and --tap are separate guests: give one\n";
    return 2;
  }
  return run_frontend_daemon(std::move(o));
}

}  // namespace pvnet::tools
