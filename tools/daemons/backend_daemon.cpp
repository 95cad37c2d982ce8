#include "tools/daemons/backend_daemon.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "backend/null_sink.hpp"
#include "tools/trace/pcap_sink.hpp"
#include "backend/tap_sink.hpp"
#include "backend/vif_adopter.hpp"
#include "backend/vif_sink.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "tools/daemons/domain_rescan.hpp"
#include "tools/platform/open_platform.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/process/event_loop.hpp"
#include "tools/process/netns.hpp"
#include "tools/replay/json_file.hpp"
#include "tools/replay/traffic_window.hpp"

namespace pvnet::tools {
namespace {

constexpr int kIdleWaitMs = -1;  // idle: sleep until an fd wakes us (signal, server, watch, event channel, timer, TAP)

// A vif with --sink vif but no --forward (or whose destination is not there yet): its frames have nowhere to go.
class NoDestinationSink final : public Sink {
 public:
  std::string name() const override { return "no-destination"; }
  SinkResult consume(TxPacket&, PayloadPolicy&, BackendCounters&) override {
    return SinkResult::drop(netif::rsp::dropped, DropReason::dest_not_connected);
  }
};

// The toolstack half: which domains have a vif, and which sink each vif's TX goes to.
class BackendDaemon {
 public:
  explicit BackendDaemon(DaemonOptions o) : opt_(std::move(o)) {}
  int run();

 private:
  Result<void> setup();
  void rescan_domains();
  void adopt_rescan();
  std::vector<DomId> domains();
  void wire_sinks();
  std::shared_ptr<Sink> tx_sink_for(uint16_t dom);
  Result<void> stop_and_report();

  DaemonOptions opt_;
  // Declared so that they are destroyed backend first, hypervisor last.
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<SimServer> server_;
  std::unique_ptr<Platform> dom0_;       // netback's handle: its store watches are the backend's
  std::unique_ptr<Platform> toolstack_;  // the toolstack's own handle: @introduceDomain/@releaseDomain
  std::shared_ptr<PcapSink> pcap_;
  std::shared_ptr<NullSink> null_;
  std::shared_ptr<TapSink> tap_;
  std::shared_ptr<NoDestinationSink> nowhere_ = std::make_shared<NoDestinationSink>();
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<VifAdopter> adopter_;  // --toolstack libxl
  std::map<uint16_t, VifId> vifs_;  // frontend domain -> its vif (with --toolstack libxl: its lowest handle's)
  std::optional<BackendCounters> start_, end_;
  uint64_t added_ = 0, removed_gone_ = 0;
};

Result<void> BackendDaemon::setup() {
  if (opt_.xen) {
    // Real Xen: no simulated hypervisor to serve; dom0's pool only backs self-grants (the payload-cost probe).
    XenPlatformOptions xo;
    xo.grantee_is_self = true;
    auto d0 = open_platform(PlatformSpec::xen(xo));
    if (!d0) return make_error(d0.error().code, "--hypervisor xen: " + d0.error().reason);
    dom0_ = std::move(d0).value();
    auto ts = open_platform(PlatformSpec::xen(xo));
    if (!ts) return make_error(ts.error().code, "--hypervisor xen: " + ts.error().reason);
    toolstack_ = std::move(ts).value();
  } else if (!opt_.attach.empty()) {
    // dom0's backend as a driver-domain process of its own: if it dies, the hypervisor process releases what it
    // held and closes its devices; started again, it finds the guests in the store and re-creates their vifs.
    // dom0 is privileged: it attaches on the hypervisor's privileged socket (PATH.priv, mode 0600).
    auto d0 = open_platform(PlatformSpec::sim_socket_privileged(opt_.attach, kDom0));
    if (!d0) return make_error(d0.error().code, "--hypervisor-socket: " + d0.error().reason);
    dom0_ = std::move(d0).value();
    auto ts = open_platform(PlatformSpec::sim_socket_privileged(opt_.attach, kDom0));
    if (!ts) return make_error(ts.error().code, "--hypervisor-socket: " + ts.error().reason);
    toolstack_ = std::move(ts).value();
  } else {
    auto hv = SimHypervisor::create();
    if (!hv) return hv.error();
    hv_ = std::move(hv).value();
    auto server = SimServer::listen(opt_.socket, *hv_);
    if (!server) return server.error();
    server_ = std::move(server).value();
    auto d0 = open_platform(PlatformSpec::in_process(*hv_, kDom0));
    if (!d0) return d0.error();
    dom0_ = std::move(d0).value();
    auto ts = open_platform(PlatformSpec::in_process(*hv_, kDom0));
    if (!ts) return ts.error();
    toolstack_ = std::move(ts).value();
  }

  if (opt_.sink == "pcap") {
    if (opt_.out.empty()) return make_error(EINVAL, "--sink pcap needs --out FILE");
    auto s = PcapSink::create(opt_.out);
    if (!s) return s.error();
    pcap_ = std::shared_ptr<PcapSink>(std::move(s).value());
  } else if (opt_.sink == "null") {
    null_ = std::make_shared<NullSink>();
  } else if (opt_.sink != "vif") {
    return make_error(EINVAL, "unknown --sink '" + opt_.sink + "' (vif, pcap, null)");
  }

  if (!opt_.tap_netns.empty()) {
    auto ns = ensure_netns(opt_.tap_netns);
    if (!ns) return ns.error();
    if (opt_.tap_name.empty()) opt_.tap_name = "pvtap" + std::to_string(opt_.tap_for);
    auto t = TapSink::open(*ns, opt_.tap_name);
    if (!t) return t.error();
    tap_ = std::shared_ptr<TapSink>(std::move(t).value());
    if (auto r = configure_netns_link(opt_.tap_netns, opt_.tap_name, opt_.tap_addrs, 1500); !r) return r.error();
  }

  BackendOptions bo = opt_.limits;
  bo.payload_policy = opt_.policy;
  auto be = Backend::create(*dom0_, bo);
  if (!be) return be.error();
  backend_ = std::move(be).value();

  if (opt_.libxl) {
    VifAdopter::Options ao;
    ao.frontends = opt_.frontends;
    ao.vif = opt_.vif_limits;
    ao.vif.mtu = opt_.mtu;
    ao.vif.sink = nowhere_;
    adopter_ = std::make_unique<VifAdopter>(*backend_, toolstack_->store(), ao);
    if (auto r = adopter_->start(); !r) return r.error();
  }
  // xenstore fires a watch once at registration: the first rescan picks up domains that are already there.
  if (auto r = toolstack_->store().watch("@introduceDomain", "introduce"); !r) return r.error();
  if (auto r = toolstack_->store().watch("@releaseDomain", "release"); !r) return r.error();
  return {};
}

std::shared_ptr<Sink> BackendDaemon::tx_sink_for(uint16_t dom) {
  if (tap_ && dom == opt_.tap_for) return tap_;
  if (pcap_) return pcap_;
  if (null_) return null_;
  auto f = opt_.forward.find(dom);
  if (f == opt_.forward.end()) return nowhere_;
  auto dst = vifs_.find(f->second);
  if (dst == vifs_.end()) return nowhere_;
  return std::make_shared<VifSink>(*backend_, dst->second);
}

void BackendDaemon::wire_sinks() {
  for (auto& [dom, vif] : vifs_) {
    auto s = tx_sink_for(dom);
    if (auto r = backend_->set_sink(vif, std::move(s)); !r)
      std::cerr << "pvnet backend: set_sink " << backend_->name(vif) << ": " << r.error().reason << "\n";
  }
}

// The domains there are: the simulator's table, or on Xen the store's /local/domain (what libxl lists).
std::vector<DomId> BackendDaemon::domains() {
  if (hv_) return hv_->domains();
  return store_domains(toolstack_->store());
}

// What libxl does on @introduceDomain/@releaseDomain (domain_rescan.hpp).
void BackendDaemon::rescan_domains() {
  if (adopter_) return adopt_rescan();
  ToolstackOptions to;
  to.frontends = opt_.frontends;
  to.vif = opt_.vif_limits;
  to.vif.mtu = opt_.mtu;
  to.vif.sink = nowhere_;
  const RescanResult r = tools::rescan_domains(*backend_, vifs_, domains(), to);
  removed_gone_ += r.removed.size();
  added_ += r.added.size();
  for (const std::string& name : r.removed) say("removed " + name);
  for (const std::string& name : r.added) say("added " + name);
  if (r.changed()) wire_sinks();
}

// --toolstack libxl: the directories libxl wrote, took offline or removed since the last look.
void BackendDaemon::adopt_rescan() {
  bool changed = false;
  for (const VifAdopter::Change& c : adopter_->rescan()) {
    const std::string where = "backend/vif/" + std::to_string(c.frontend.value) + "/" + std::to_string(c.handle);
    switch (c.kind) {
      case VifAdopter::Change::Kind::adopted:
        added_++;
        say("adopted " + c.detail);
        break;
      case VifAdopter::Change::Kind::offline:
        say("offline " + c.detail);
        break;
      case VifAdopter::Change::Kind::removed:
        backend_->poll_until_idle();  // its last payload pages go back in the next poll's batched unmap
        removed_gone_++;
        say("removed " + c.detail);
        break;
      case VifAdopter::Change::Kind::refused:
        std::cerr << "pvnet backend: not serving " << where << ": " << c.detail << "\n";
        say("refused " + where + ": " + c.detail);
        break;
    }
    changed = true;
  }
  if (!changed) return;
  // The sinks are per domain: a domain's lowest-numbered vif gets them, any other one --sink's default.
  vifs_.clear();
  for (const auto& [key, vif] : adopter_->served())
    if (!vifs_.count(key.first)) vifs_.emplace(key.first, vif);
  wire_sinks();
}

Result<void> BackendDaemon::stop_and_report() {
  const BackendCounters at_stop = backend_->total();
  const BackendCounters start = start_.value_or(BackendCounters{});
  const BackendCounters end = end_.value_or(at_stop);
  // Every vif (with --toolstack libxl also a domain's second one); adopted ones say Closed and keep their
  // directories, which are libxl's to remove.
  const std::vector<VifId> all = backend_->vifs();
  const size_t vifs_at_stop = all.size();
  for (VifId vif : all) {
    if (auto r = backend_->remove_vif(vif); !r)
      std::cerr << "pvnet backend: removing " << backend_->name(vif) << ": " << r.error().reason << "\n";
  }
  vifs_.clear();
  backend_->poll_until_idle();
  const BackendCounters final = backend_->total();
  Result<void> closed;
  if (pcap_) closed = pcap_->close();

  nlohmann::json j = traffic_window_json(start, end, final);
  j["dropped"] = traffic_window(start, end).dropped;  // frames the backend answered with an error, by reason
  j["policy"] = pvnet::to_string(opt_.policy);
  j["sink"] = opt_.sink;
  j["toolstack"] = opt_.libxl ? "libxl" : "pvnet";
  j["traffic_window"] = start_ && end_ ? "snapshots" : start_ ? "start snapshot to stop" : "whole run";
  j["vifs_added"] = added_;
  j["vifs_removed_domain_gone"] = removed_gone_;
  j["vifs_at_stop"] = vifs_at_stop;
  j["dom0_kept_pages"] = final.kept_pages;
  j["dom0_rx_queued"] = final.rx_queued;
  if (pcap_) j["sink_frames"] = pcap_->frames_written();
  if (null_) j["sink_frames"] = null_->packets();
  if (tap_) {
    j["tap"] = tap_->counters();
    j["tap"].update({{"netns", opt_.tap_netns}, {"ifname", tap_->ifname()}, {"domid", opt_.tap_for},
                     {"offloads", {{"csum", tap_->offloads().csum}, {"tso4", tap_->offloads().tso4},
                                   {"tso6", tap_->offloads().tso6}}}});
  }
  j["backend_at_stop"] = at_stop;
  if (!opt_.json.empty()) {
    if (auto w = write_json_file(opt_.json, j); !w) return w;
  }
  if (!closed) return make_error(closed.error().code, "closing " + opt_.out + ": " + closed.error().reason);
  return {};
}

int BackendDaemon::run() {
  auto loop = EventLoop::create({SIGINT, SIGTERM, SIGUSR1, SIGUSR2});
  if (!loop) {
    std::cerr << "pvnet backend: " << loop.error().reason << "\n";
    return 1;
  }
  EventLoop& ev = **loop;
  if (auto r = setup(); !r) {
    std::cerr << "pvnet backend: " << r.error().reason << "\n";
    return 1;
  }
  say(ready_line(opt_.xen ? std::string("xen") : !opt_.attach.empty() ? opt_.attach : opt_.socket));

  bool stop = false;
  size_t work = 1;
  while (!stop) {
    ev.clear();
    const size_t server_at = ev.add(server_ ? server_->fd() : -1);
    const size_t watch_at = ev.add(toolstack_->store().watch_fd());
    for (int fd : backend_->fds()) ev.add(fd);
    // The TAP only while its guest can take more: a full RX queue must not make poll() spin.
    const auto tap_vif = tap_ ? vifs_.find(opt_.tap_for) : vifs_.end();
    if (tap_ && (tap_vif == vifs_.end() || backend_->rx_has_room(tap_vif->second))) ev.add(tap_->fd());
    // Idle: sleep on the fds. Busy: only look, so a loaded ring is not kept waiting.
    if (auto w = ev.wait(work ? 0 : kIdleWaitMs); !w) {
      std::cerr << "pvnet backend: " << w.error().reason << "\n";
      return 1;
    }
    // Signals first: a snapshot asked for before the traffic starts must not see any of it.
    for (int sig : ev.take_signals()) {
      if (sig == SIGUSR1) {
        backend_->poll_until_idle();
        start_ = backend_->total();
        say(kSnapshotStartLine);
      } else if (sig == SIGUSR2) {
        backend_->poll_until_idle();
        end_ = backend_->total();
        say(kSnapshotEndLine);
      } else {
        stop = true;
      }
    }
    if (stop) break;
    if (server_ && ev.ready(server_at)) server_->handle();
    if (ev.ready(watch_at) && !toolstack_->store().read_watches().empty()) rescan_domains();
    work = backend_->poll();
    if (tap_) {
      const auto tv = vifs_.find(opt_.tap_for);  // again: rescan_domains() may have changed vifs_
      if (tv != vifs_.end()) {
        work += tap_->pump_rx(*backend_, tv->second);
      } else {
        char drain[65536];  // no vif yet: the host's frames have nowhere to go
        while (::read(tap_->fd(), drain, sizeof drain) > 0) {
        }
      }
    }
  }
  if (auto r = stop_and_report(); !r) {
    std::cerr << "pvnet backend: " << r.error().reason << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

Result<std::set<uint16_t>> parse_domain_list(const std::string& s) {
  std::set<uint16_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    unsigned long v = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end || v == 0 || v >= kFirstReservedDomId)
      return make_error(EINVAL, "--frontends: '" + item + "' is not a guest domain id");
    out.insert(static_cast<uint16_t>(v));
  }
  return out;
}

Result<void> resolve_backend_options(const BackendDaemonArgs& a, DaemonOptions& o) {
  if (a.hypervisor != "sim" && a.hypervisor != "xen") return make_error(EINVAL, "--hypervisor must be sim or xen");
  o.xen = a.hypervisor == "xen";
  if (a.toolstack != "pvnet" && a.toolstack != "libxl")
    return make_error(EINVAL, "--toolstack must be pvnet or libxl");
  o.libxl = a.toolstack == "libxl";
  if (!o.xen && o.socket.empty() == o.attach.empty())
    return make_error(EINVAL,
                      "give one of --socket (serve the hypervisor) or --hypervisor-socket (attach to one)");
  auto p = parse_payload_policy(a.policy);
  if (!p) return make_error(EINVAL, "unknown --policy '" + a.policy + "' (slots, copy, map, hdrcopy)");
  o.policy = *p;
  for (const auto& f : a.forward) {
    unsigned x = 0, y = 0;
    char tail = 0;
    if (std::sscanf(f.c_str(), "%u:%u%c", &x, &y, &tail) != 2 || !x || !y || x >= kFirstReservedDomId ||
        y >= kFirstReservedDomId)
      return make_error(EINVAL, "--forward '" + f + "' is not A:B (two guest domain ids)");
    o.forward[static_cast<uint16_t>(x)] = static_cast<uint16_t>(y);
  }
  if (a.frontends) {
    auto l = parse_domain_list(*a.frontends);
    if (!l) return l.error();
    o.frontends = *l;
  }
  if (!o.tap_netns.empty() && (!o.tap_for || o.tap_for >= kFirstReservedDomId))
    return make_error(EINVAL, "--tap-netns needs --tap-for DOMID");
  if (o.tap_addrs.empty()) o.tap_addrs = {"198.18.0.254/24", "fd00::fe/64"};
  return {};
}

int run_backend_daemon(DaemonOptions o) {
  BackendDaemon d(std::move(o));
  return d.run();
}

}  // namespace pvnet::tools
