// pvnet backend: dom0 as its own process. Hosts the simulated hypervisor (served on --socket for the frontend
// processes), plays the toolstack (a vif for every domain that appears, as libxl does on @introduceDomain; removed
// when the domain goes, @releaseDomain) and runs netback, all in one poll loop. With --toolstack libxl it writes
// no directories: it serves the vifs libxl writes (`xl network-attach`, backend/vif_adopter.hpp). SIGUSR1/SIGUSR2
// snapshot the counters at traffic start/end; SIGTERM/SIGINT tear every vif down and write --json. Control lines
// on stdout: "ready PATH", "added vifN.0", "adopted vifN.M", "offline vifN.M", "removed vifN.M", "refused PATH:
// why", "snapshot start", "snapshot end".
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "backend/pcap_sink.hpp"
#include "backend/tap_sink.hpp"
#include "backend/vif_adopter.hpp"
#include "backend/vif_sink.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "grant-sim/xen/xen_platform.hpp"
#include "tools/command.hpp"
#include "tools/json_file.hpp"
#include "tools/options.hpp"
#include "tools/guest_env.hpp"
#include "tools/traffic_window.hpp"

namespace po = boost::program_options;

namespace pvnet::tools {
namespace {

constexpr uint32_t kVifHandle = 0;
// Option ranges (tools/options.hpp): what the backend can hold to.
constexpr uint32_t kMaxKeptPages = 4096;      // --max-kept-pages: 16 MiB of kept slot pages per domain
constexpr uint32_t kMaxInflight = 1u << 16;   // --max-inflight: more than any TX ring holds
constexpr size_t kMinRxQueueBytes = 1u << 16;  // --rx-queue-bytes: at least one frame of netif's largest size
constexpr size_t kMaxRxQueueBytes = 1u << 30;
constexpr int kIdleWaitMs = -1;  // idle: sleep until an fd wakes us (signal, server, watch, event channel, timer, TAP)

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// A vif with --sink vif but no --forward (or whose destination is not there yet): its frames have nowhere to go.
class NoDestinationSink final : public Sink {
 public:
  std::string name() const override { return "no-destination"; }
  SinkResult consume(TxPacket&, PayloadPolicy&, BackendCounters&) override {
    return SinkResult::drop(netif::rsp::dropped, "dest_not_connected");
  }
};

struct DaemonOptions {
  bool xen = false;  // --hypervisor xen: dom0 of a real Xen host (docs/xen.md)
  bool libxl = false;  // --toolstack libxl: serve the vif directories libxl writes instead of writing our own
  std::string socket;
  std::string attach;  // --hypervisor-socket: attach as dom0 to a `pvnet hypervisor` instead of serving one
  PayloadPolicyKind policy = PayloadPolicyKind::slots;
  std::string sink = "vif";
  std::string out;
  std::map<uint16_t, uint16_t> forward;     // source domain -> destination domain
  std::optional<std::set<uint16_t>> frontends;  // absent: every domain
  uint32_t mtu = 9000;
  // Per-guest limits (docs/security.md): what one guest can make dom0 hold or do.
  BackendOptions limits;  // max_kept_pages_per_domain, max_inflight_per_vif
  VifOptions vif_limits;  // rx_queue_max_bytes, rx_stall_timeout_ms, credit
  std::string json;
  // The TAP sink (dom0 -> host): domain tap_for's TX goes to TAP tap_name in namespace tap_netns, and back.
  std::string tap_netns;
  uint16_t tap_for = 0;
  std::string tap_name;
  std::vector<std::string> tap_addrs;
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
    auto d0 = XenPlatform::open(xo);
    if (!d0) return make_error(d0.error().code, "--hypervisor xen: " + d0.error().reason);
    dom0_ = std::move(d0).value();
    auto ts = XenPlatform::open(xo);
    if (!ts) return make_error(ts.error().code, "--hypervisor xen: " + ts.error().reason);
    toolstack_ = std::move(ts).value();
  } else if (!opt_.attach.empty()) {
    // dom0's backend as a driver-domain process of its own: if it dies, the hypervisor process releases what it
    // held and closes its devices; started again, it finds the guests in the store and re-creates their vifs.
    // dom0 is privileged: it attaches on the hypervisor's privileged socket (PATH.priv, mode 0600).
    const std::string priv = privileged_socket_path(opt_.attach);
    auto d0 = SimClient::connect(priv, kDom0, SimClientOptions::attach());
    if (!d0) return make_error(d0.error().code, "--hypervisor-socket: " + d0.error().reason);
    dom0_ = std::move(d0).value();
    auto ts = SimClient::connect(priv, kDom0, SimClientOptions::attach());
    if (!ts) return make_error(ts.error().code, "--hypervisor-socket: " + ts.error().reason);
    toolstack_ = std::move(ts).value();
  } else {
    auto hv = SimHypervisor::create();
    if (!hv) return hv.error();
    hv_ = std::move(hv).value();
    auto server = SimServer::listen(opt_.socket, *hv_);
    if (!server) return server.error();
    server_ = std::move(server).value();
    auto d0 = hv_->attach(kDom0);
    if (!d0) return d0.error();
    dom0_ = std::move(d0).value();
    auto ts = hv_->attach(kDom0);
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
  std::vector<DomId> out;
  auto names = toolstack_->store().directory("/local/domain");
  if (!names) return out;
  for (const std::string& n : *names) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(n.c_str(), &end, 10);
    if (!n.empty() && !*end && v < kFirstReservedDomId) out.push_back(DomId{static_cast<uint16_t>(v)});
  }
  return out;
}

// What libxl does on @introduceDomain/@releaseDomain: compare the domains there are with the vifs we have.
void BackendDaemon::rescan_domains() {
  if (adopter_) return adopt_rescan();
  std::set<uint16_t> present;
  for (DomId d : domains()) {
    if (d == kDom0) continue;
    if (opt_.frontends && !opt_.frontends->count(d.value)) continue;
    present.insert(d.value);
  }
  bool changed = false;
  for (auto it = vifs_.begin(); it != vifs_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    const std::string name = backend_->name(it->second);
    if (auto r = backend_->remove_vif(it->second); !r)
      std::cerr << "pvnet backend: removing " << name << ": " << r.error().reason << "\n";
    // The removed vif's last payload pages go back in the next poll's batched unmap.
    backend_->poll_until_idle();
    removed_gone_++;
    say("removed " + name);
    it = vifs_.erase(it);
    changed = true;
  }
  for (uint16_t dom : present) {
    if (vifs_.count(dom)) continue;
    VifOptions vo = opt_.vif_limits;
    vo.mtu = opt_.mtu;
    char mac[32];
    std::snprintf(mac, sizeof mac, "00:16:3e:00:%02x:%02x", dom >> 8, dom & 0xff);
    vo.mac = mac;
    vo.sink = nowhere_;
    auto id = backend_->add_vif(DomId{dom}, kVifHandle, vo);
    if (!id) {
      std::cerr << "pvnet backend: adding a vif for domain " << dom << ": " << id.error().reason << "\n";
      continue;
    }
    vifs_.emplace(dom, *id);
    added_++;
    say("added " + backend_->name(*id));
    changed = true;
  }
  if (changed) wire_sinks();
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
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) {
    std::perror("pvnet backend: signalfd");
    return 1;
  }
  if (auto r = setup(); !r) {
    std::cerr << "pvnet backend: " << r.error().reason << "\n";
    return 1;
  }
  say("ready " + (opt_.xen ? std::string("xen") : !opt_.attach.empty() ? opt_.attach : opt_.socket));

  bool stop = false;
  size_t work = 1;
  while (!stop) {
    std::vector<pollfd> p;
    p.push_back({sfd.get(), POLLIN, 0});
    p.push_back({server_ ? server_->fd() : -1, POLLIN, 0});
    p.push_back({toolstack_->store().watch_fd(), POLLIN, 0});
    for (int fd : backend_->fds()) p.push_back({fd, POLLIN, 0});
    // The TAP only while its guest can take more: a full RX queue must not make poll() spin.
    const auto tap_vif = tap_ ? vifs_.find(opt_.tap_for) : vifs_.end();
    if (tap_ && (tap_vif == vifs_.end() || backend_->rx_has_room(tap_vif->second)))
      p.push_back({tap_->fd(), POLLIN, 0});
    // Idle: sleep on the fds. Busy: only look, so a loaded ring is not kept waiting.
    if (::poll(p.data(), p.size(), work ? 0 : kIdleWaitMs) < 0 && errno != EINTR) {
      std::perror("pvnet backend: poll");
      return 1;
    }
    // Signals first: a snapshot asked for before the traffic starts must not see any of it.
    signalfd_siginfo si;
    while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGUSR1) {
        backend_->poll_until_idle();
        start_ = backend_->total();
        say("snapshot start");
      } else if (si.ssi_signo == SIGUSR2) {
        backend_->poll_until_idle();
        end_ = backend_->total();
        say("snapshot end");
      } else {
        stop = true;
      }
    }
    if (stop) break;
    if (server_ && p[1].revents) server_->handle();
    if (p[2].revents && !toolstack_->store().read_watches().empty()) rescan_domains();
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

int cmd_backend(int argc, char** argv) {
  DaemonOptions o;
  std::string policy, frontends, hypervisor, toolstack;
  std::vector<std::string> forward;
  po::options_description desc(
      "usage: pvnet backend [--hypervisor sim|xen] --socket PATH|--hypervisor-socket PATH [--policy P] [--sink vif|pcap|null] [--out FILE] [--forward A:B ...]\n"
      "                     [--frontends 1,2,...] [--mtu N] [--json FILE] [--tap-netns NS --tap-for DOMID]\n"
      "                     [--toolstack pvnet|libxl]\n\n"
      "dom0 as a process: serves the simulated hypervisor on PATH, gives every guest domain that appears a vif\n"
      "(the toolstack's job) and runs netback. Says \"ready PATH\" on stdout once listening. SIGUSR1/SIGUSR2:\n"
      "counters snapshot at traffic start/end; SIGTERM/SIGINT: tear every vif down, write --json, exit.\n"
      "On Xen with --toolstack libxl it serves the vifs `xl network-attach` (or a vif = [...] line) creates.\n\noptions");
  desc.add_options()("help,h", "this help")
      ("hypervisor", po::value(&hypervisor)->default_value("sim"),
       "sim: serve the simulated hypervisor on --socket; xen: be dom0's netback on a real Xen host (docs/xen.md)")
      ("socket,s", po::value(&o.socket), "Unix socket to serve the hypervisor on (--hypervisor sim)")
      ("hypervisor-socket", po::value(&o.attach),
       "instead of --socket: attach as dom0 to the `pvnet hypervisor --socket PATH` serving on this path (through\n"
       "its privileged socket PATH.priv, mode 0600); the\n"
       "backend may then die and be started again while the guests keep running (their frontends reconnect)")
      ("policy,p", po::value(&policy)->default_value("slots"), "payload policy: slots|copy|map|hdrcopy")
      ("sink", po::value(&o.sink)->default_value("vif"), "where TX frames go: vif (see --forward), pcap, null")
      ("out,o", po::value(&o.out), "--sink pcap: the capture dom0 writes every vif's frames to")
      ("forward", po::value(&forward)->composing(), "A:B: frames of domain A's vif go to domain B's vif")
      ("frontends", po::value(&frontends), "comma-separated domains to give a vif (default: every domain)")
      ("toolstack", po::value(&toolstack)->default_value("pvnet"),
       "pvnet: write a vif's directories for every domain (and remove them); libxl: write none, serve the "
       "directories libxl writes (xl network-attach, or vif = ['backend=0,script=vif-pvnet,...']), go Closed when "
       "libxl takes one offline (docs/xen.md)")
      ("mtu", ranged(&o.mtu, limits::kMinMtu, limits::kMaxMtu)->default_value(9000), "vif MTU")
      ("max-kept-pages", ranged(&o.limits.max_kept_pages_per_domain, 0, kMaxKeptPages)->default_value(64),
       "limit: header-slot pages kept mapped per guest domain")
      ("max-inflight", ranged(&o.limits.max_inflight_per_vif, 1, kMaxInflight)->default_value(256),
       "limit: TX packets of one vif held in dom0 unanswered (back-pressure beyond)")
      ("rx-queue-bytes",
       ranged(&o.vif_limits.rx_queue_max_bytes, kMinRxQueueBytes, kMaxRxQueueBytes)->default_value(4u << 20),
       "limit: bytes queued for one guest's RX (XSA-392)")
      ("rx-stall-ms", ranged(&o.vif_limits.rx_stall_timeout_ms, 0, limits::kMaxTimeoutS * 1000)->default_value(2000),
       "a guest posting no RX buffers this long has its queue dropped (0: never)")
      ("credit-bytes", ranged(&o.vif_limits.credit.bytes_per_sec, 0, UINT64_MAX)->default_value(0),
       "credit scheduler: TX bytes per second per vif (0: unlimited)")
      ("credit-packets", ranged(&o.vif_limits.credit.ops_per_sec, 0, UINT64_MAX)->default_value(0),
       "credit scheduler: TX packets per second per vif (0: unlimited)")
      ("json,j", po::value(&o.json), "write the counters here on exit")
      ("tap-netns", po::value(&o.tap_netns), "TAP sink: make the TAP in this network namespace (ip netns add)")
      ("tap-for", ranged(&o.tap_for, 1, limits::kMaxGuestDomId), "TAP sink: the domain whose vif is bridged to the TAP")
      ("tap-name", po::value(&o.tap_name), "TAP sink: interface name (default pvtapDOMID)")
      ("tap-addr", po::value(&o.tap_addrs)->composing(),
       "TAP sink: an address for the namespace's side (198.18.0.0/15, fd00::/8); default 198.18.0.254/24, fd00::fe/64");
  po::variables_map vm;
  if (auto status = parse_options(argc, argv, desc, vm, "backend")) return *status;
  if (hypervisor != "sim" && hypervisor != "xen") {
    std::cerr << "pvnet backend: --hypervisor must be sim or xen\n";
    return 2;
  }
  o.xen = hypervisor == "xen";
  if (toolstack != "pvnet" && toolstack != "libxl") {
    std::cerr << "pvnet backend: --toolstack must be pvnet or libxl\n";
    return 2;
  }
  o.libxl = toolstack == "libxl";
  if (!o.xen && o.socket.empty() == o.attach.empty()) {
    std::cerr << "pvnet backend: give one of --socket (serve the hypervisor) or --hypervisor-socket (attach to one)\n";
    return 2;
  }
  auto p = parse_payload_policy(policy);
  if (!p) {
    std::cerr << "pvnet backend: unknown --policy '" << policy << "' (slots, copy, map, hdrcopy)\n";
    return 2;
  }
  o.policy = *p;
  for (const auto& f : forward) {
    unsigned a = 0, b = 0;
    char tail = 0;
    if (std::sscanf(f.c_str(), "%u:%u%c", &a, &b, &tail) != 2 || !a || !b || a >= kFirstReservedDomId ||
        b >= kFirstReservedDomId) {
      std::cerr << "pvnet backend: --forward '" << f << "' is not A:B (two guest domain ids)\n";
      return 2;
    }
    o.forward[static_cast<uint16_t>(a)] = static_cast<uint16_t>(b);
  }
  if (vm.count("frontends")) {
    auto l = parse_domain_list(frontends);
    if (!l) {
      std::cerr << "pvnet backend: " << l.error().reason << "\n";
      return 2;
    }
    o.frontends = *l;
  }
  if (!o.tap_netns.empty() && (!o.tap_for || o.tap_for >= kFirstReservedDomId)) {
    std::cerr << "pvnet backend: --tap-netns needs --tap-for DOMID\n";
    return 2;
  }
  if (o.tap_addrs.empty()) o.tap_addrs = {"198.18.0.254/24", "fd00::fe/64"};
  BackendDaemon d(std::move(o));
  return d.run();
}

}  // namespace

PVNET_COMMAND(backend, "backend", "dom0 as a process: hypervisor socket, toolstack and netback in one poll loop",
              cmd_backend);

}  // namespace pvnet::tools
