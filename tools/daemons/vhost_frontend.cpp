// pvnet frontend --vhost-user: a vhost-user device socket + the hypervisor socket + one poll loop.
// Control lines on stdout: "listening PATH", "vhost-user connected", "domain N adopted pfn-base=...",
// "connected slots=on|off", "guest dropped: WHY", "done".
#include "tools/daemons/vhost_frontend.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "tools/trace/pcap_io.hpp"
#include "frontend/vhost_net_bridge.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/process/event_loop.hpp"
#include "tools/replay/json_file.hpp"

namespace pvnet::tools {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kGrantEntries = 8192;  // the adopted domain's grant table

uint64_t wall_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<UniqueFd> unix_socket(const std::string& path, bool listen_mode) {
  UniqueFd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd) return make_error(errno, std::string("socket: ") + std::strerror(errno));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return make_error(ENAMETOOLONG, "socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  if (listen_mode) {
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd.get(), 4) != 0)
      return make_error(errno, "listening on " + path + ": " + std::strerror(errno));
  } else if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    return make_error(errno, "connecting to " + path + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

int run_vhost_frontend(const VhostFrontendOptions& opt) {
  const std::string me = "pvnet frontend --vhost-user (domain " + std::to_string(opt.domid) + "): ";
  auto loop = EventLoop::create({SIGINT, SIGTERM});
  if (!loop) {
    std::cerr << me << loop.error().reason << "\n";
    return 1;
  }
  EventLoop& ev = **loop;
  signal(SIGPIPE, SIG_IGN);

  std::optional<PcapWriter> cap;
  if (!opt.capture.empty()) {
    auto w = PcapWriter::create(opt.capture);
    if (!w) {
      std::cerr << me << w.error().reason << "\n";
      return 1;
    }
    cap.emplace(std::move(w).value());
  }

  VhostNetConfig cfg;
  cfg.domid = DomId{opt.domid};
  cfg.netfront.header_slots = opt.header_slots;
  cfg.netfront.slot_size = opt.slot_size;
  const std::string hv = opt.hv_socket;
  cfg.make_platform = [hv, dom = opt.domid](std::span<const GuestRamRegion> ram) -> Result<std::unique_ptr<Platform>> {
    // The backend may still be starting: retry a refused/missing socket for a few seconds (each try sends its
    // own duplicates of the RAM fds).
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (;;) {
      auto p = SimClient::connect(hv, DomId{dom}, SimClientOptions::adopt_ram(ram, kGrantEntries));
      if (p) return p;
      const int code = p.error().code;
      if ((code != ENOENT && code != ECONNREFUSED) || Clock::now() > deadline) return p.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  if (cap)
    cfg.on_frame = [&cap](FrameDir, std::span<const std::byte> f) { (void)cap->write(wall_ns(), f); };
  VhostNetBridge bridge(std::move(cfg));

  UniqueFd listener;
  if (opt.vhost_client) {
    auto c = unix_socket(opt.vhost_socket, false);
    if (!c) {
      std::cerr << me << c.error().reason << "\n";
      return 1;
    }
    bridge.attach(std::move(*c));
    say("vhost-user connected");
  } else {
    auto l = unix_socket(opt.vhost_socket, true);
    if (!l) {
      std::cerr << me << l.error().reason << "\n";
      return 1;
    }
    listener = std::move(*l);
    say("listening " + opt.vhost_socket);
  }

  bool stop = false, said_adopted = false, said_connected = false, ever_attached = opt.vhost_client;
  uint64_t drops_seen = 0;
  int rc = 0;
  while (!stop) {
    bridge.poll();
    if (!said_adopted && bridge.platform()) {
      said_adopted = true;
      say("domain " + std::to_string(opt.domid) + " adopted pfn-base=" +
          std::to_string(bridge.driver_region_first().value));
    }
    if (!said_connected && bridge.netfront_connected() &&
        (!opt.header_slots || bridge.netfront()->using_header_slots() ||
         bridge.netfront()->state() == NetfrontState::kConnected)) {
      said_connected = true;
      say(connected_line(bridge.netfront()->using_header_slots(), std::nullopt));
    }
    if (bridge.netfront() && bridge.netfront()->state() == NetfrontState::kFailed) {
      std::cerr << me << "netfront: " << bridge.netfront()->error() << "\n";
      rc = 1;
      break;
    }
    if (bridge.counters().guest_disconnects != drops_seen) {
      drops_seen = bridge.counters().guest_disconnects;
      say("guest dropped: " + bridge.error());
      if (opt.once || opt.vhost_client) break;
    }
    ev.clear();
    const size_t listener_at = ev.add(listener ? listener.get() : -1);
    for (int fd : bridge.fds()) ev.add(fd);
    if (auto n = ev.wait(VhostNetBridge::poll_interval_ms()); n && *n > 0) {
      if (!ev.take_signals().empty()) stop = true;
      if (listener && ev.ready(listener_at)) {
        UniqueFd c{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)};
        if (c) {
          if (bridge.guest_connected() && opt.once) continue;
          bridge.attach(std::move(c));
          ever_attached = true;
          drops_seen = bridge.counters().guest_disconnects;
          say("vhost-user connected");
        }
      }
    }
    if (opt.once && ever_attached && !bridge.guest_connected()) break;
  }
  // Let netfront give back what it holds.
  bridge.close();
  for (const auto deadline = Clock::now() + std::chrono::seconds(3);
       bridge.netfront() && bridge.netfront()->state() != NetfrontState::kClosed && Clock::now() < deadline;) {
    if (!bridge.poll()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (cap) (void)cap->close();
  if (listener) ::unlink(opt.vhost_socket.c_str());
  if (!opt.json.empty()) {
    nlohmann::json j;
    j["domid"] = opt.domid;
    j["acked_features"] = bridge.acked_features();
    j["vhost"] = bridge.counters();
    j["rx_queue"] = bridge.rx_queue_counters();
    j["tx_queue"] = bridge.tx_queue_counters();
    if (!bridge.error().empty()) j["guest_error"] = bridge.error();
    if (bridge.netfront()) j["frontend"] = bridge.netfront()->counters();
    if (auto w = write_json_file(opt.json, j); !w) std::cerr << "pvnet frontend: " << w.error().reason << "\n";
  }
  say(kDoneLine);
  return rc;
}

}  // namespace pvnet::tools
