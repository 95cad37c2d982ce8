#include "tools/bench/bench_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "backend/vif_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_client.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "grant-sim/sim/sim_server.hpp"
#include "shared-ring/ring_pingpong.hpp"
#include "tools/bench/bench_frames.hpp"
#include "tools/platform/open_platform.hpp"
#include "tools/process/child_process.hpp"
#include "tools/process/control_lines.hpp"
#include "tools/replay/progress.hpp"
#include "tools/process/temp_dir.hpp"

namespace pvnet::tools {

const char* to_string(BenchMode m) { return m == BenchMode::busy ? "busy" : "event"; }

bool BenchTarget::pass() const {
  if (!value) return false;
  if (relation == ">=") return *value >= threshold;
  if (relation == "<=") return *value <= threshold;
  return *value < threshold;
}

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr uint16_t kFirstGuestA = 1;    // policy i's sending guest is domain 1 + i
constexpr uint16_t kFirstGuestB = 101;  // and its receiving guest (--sink vif) 101 + i
constexpr uint32_t kGrantEntries = 8192;
constexpr uint64_t kGuestMemMb = 128;
constexpr uint32_t kFramesPerCell = 256;  // frames the guest "stack" keeps in flight at most (one per ring slot)

// The page both processes map: the frontend says "this cell is drained" here, so dom0's poll loop learns it with
// one load instead of a syscall per idle spin.
struct BenchControl {
  std::atomic<uint64_t> done_seq;
};

uint64_t ns_since(Clock::time_point t0) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

inline void cpu_relax(uint32_t& spins) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  // As the ring benchmark: yield now and then, or a spinner whose peer is descheduled burns its whole slice.
  if (++spins % 4096 == 0) sched_yield();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double load_average() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : 0;
}

Result<BenchControl*> map_control(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0) return make_error(errno, "open " + path + ": " + std::strerror(errno));
  if (create && ::ftruncate(fd, 4096) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error(e, "ftruncate " + path + ": " + std::strerror(e));
  }
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return make_error(e, "mmap " + path + ": " + std::strerror(e));
  return static_cast<BenchControl*>(p);
}

// ---------------------------------------------------------------------------------------------------------------
// The frontend child: guest A with one netfront per policy (vif/<i> is served by policy i's backend).

struct FrontendArgs {
  std::string socket, ctl;
  uint16_t domid = 1;
  uint32_t mtu = 9000;
};

class BenchFrontend {
 public:
  explicit BenchFrontend(FrontendArgs a) : args_(std::move(a)) {}
  Result<void> setup();
  Result<std::string> run_cell(uint32_t size, BenchMode mode, double seconds, uint64_t seq);
  void close_all();

 private:
  FrontendArgs args_;
  BenchControl* ctl_ = nullptr;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<MemoryPagePool> pool_;
  std::unique_ptr<Netfront> front_;
};

Result<void> BenchFrontend::setup() {
  auto c = map_control(args_.ctl, false);
  if (!c) return c.error();
  ctl_ = *c;
  auto p = open_platform(PlatformSpec::sim_socket(args_.socket, DomId{args_.domid},
                                                  SimClientOptions::create(kGuestMemMb << 20, kGrantEntries)));
  if (!p) return make_error(p.error().code, "creating the guest: " + p.error().reason);
  platform_ = std::move(p).value();
  pool_ = std::make_unique<MemoryPagePool>(platform_->memory());
  say("domain");
  // dom0 adds this guest's vif once it sees the domain; "state" is written last.
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  const std::string dir = vif_frontend_dir(DomId{args_.domid}, 0);
  while (!platform_->store().read_opt(netif::key_path(dir, netif::key::state))) {
    if (Clock::now() > deadline) return make_error(ETIMEDOUT, dir + " was not created within 15 s");
    std::this_thread::sleep_for(Ms(2));
  }
  front_ = std::make_unique<Netfront>(*platform_, *pool_, dir, NetfrontConfig{});
  while (!front_->connected()) {
    front_->poll();
    if (front_->state() == NetfrontState::kFailed) return make_error(EPROTO, "netfront: " + front_->error());
    if (Clock::now() > deadline)
      return make_error(ETIMEDOUT, std::string("netfront did not connect within 15 s (state ") +
                                       to_string(front_->state()) + ")");
    std::this_thread::sleep_for(Ms(1));
  }
  say(connected_line(front_->using_header_slots(), std::nullopt));
  return {};
}

// Saturates one vif for `seconds`: every frame the guest owns is on the ring or being completed; a completed
// frame goes straight back on (the stack reuses its buffers: nothing is copied per packet on the guest side but
// what netfront itself copies). Then drains, and reports what completed in the whole interval.
Result<std::string> BenchFrontend::run_cell(uint32_t size, BenchMode mode, double seconds, uint64_t seq) {
  Netfront& f = *front_;
  if (!f.connected()) return make_error(ENOTCONN, "the vif is not connected");
  const std::vector<std::byte> frame = make_bench_frame(size);
  const TxOptions base = bench_tx_options(size, args_.mtu);
  const uint64_t pages_per_frame = (frame.size() + kPageSize - 1) / kPageSize;
  const uint64_t spare = pool_->free_pages() > 256 ? pool_->free_pages() - 256 : 0;
  const uint32_t nframes = static_cast<uint32_t>(std::min<uint64_t>(kFramesPerCell, spare / pages_per_frame));
  if (nframes == 0) return make_error(ENOMEM, "guest A has no pages for a frame of " + std::to_string(size));
  std::vector<PlacedFrame> placed;
  placed.reserve(nframes);
  std::vector<uint32_t> free_idx;
  for (uint32_t i = 0; i < nframes; ++i) {
    auto p = place_frame(*pool_, frame);
    if (!p) return p.error();
    placed.push_back(std::move(p).value());
    free_idx.push_back(i);
  }
  uint64_t packets = 0, bytes = 0, errors = 0;
  f.on_tx_complete([&](const TxDone& d) {
    if (d.status == netif::rsp::okay) {
      packets++;
      bytes += frame.size();
    } else {
      errors++;
    }
    free_idx.push_back(static_cast<uint32_t>(d.cookie));
  });
  const uint64_t kicks0 = f.counters().notifications_sent;
  uint32_t spins = 0, iter = 0;
  bool sending = true;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto drain_deadline = end + std::chrono::seconds(30);
  for (;;) {
    if ((++iter & 63) == 0) {
      const auto now = Clock::now();
      if (sending && now >= end) sending = false;
      if (now > drain_deadline) return make_error(ETIMEDOUT, "frames still in flight 30 s after the cell ended");
    }
    uint32_t queued = 0;
    while (sending && !free_idx.empty()) {
      TxOptions o = base;
      o.cookie = free_idx.back();
      o.defer_push = true;  // the whole burst is published with one push (one notify at most)
      const TxStatus st = f.transmit(placed[free_idx.back()].pieces(), o);
      if (st == TxStatus::kBusy) break;
      if (st != TxStatus::kQueued) return make_error(EPROTO, std::string("transmit: ") + to_string(st) + " " +
                                                                 f.last_error());
      free_idx.pop_back();
      ++queued;
    }
    if (queued) f.flush();
    const bool worked = f.poll();
    if (!f.connected()) return make_error(ENOTCONN, "the vif left Connected during the cell");
    if (!sending && free_idx.size() == nframes) break;
    if (queued || worked) continue;
    if (mode == BenchMode::busy) {
      cpu_relax(spins);
    } else {
      // poll() came back idle after its final checks: the backend will kick us when it answers.
      pollfd p{f.event_fd(), POLLIN, 0};
      (void)::poll(&p, 1, 100);
    }
  }
  const uint64_t elapsed = ns_since(t0);
  const uint64_t kicks = f.counters().notifications_sent - kicks0;
  f.on_tx_complete(nullptr);
  placed.clear();  // every frame completed: their pages go back to the pool
  ctl_->done_seq.store(seq, std::memory_order_release);
  std::ostringstream os;
  os << "result " << seq << " " << packets << " " << bytes << " " << errors << " " << elapsed << " " << kicks;
  return os.str();
}

void BenchFrontend::close_all() {
  if (!front_) return;
  front_->close();
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (front_->state() != NetfrontState::kClosed && Clock::now() < deadline) {
    front_->poll();
    std::this_thread::sleep_for(Ms(1));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// dom0: the hypervisor, one backend per policy, guest B (under --sink vif), and the orchestration.

// One per policy: its backend, its guest A (a process of its own: a netfront per domain, as in a real guest with
// one vif, so no netfront consumes another's store watches) and, under --sink vif, its guest B (here).
struct PolicyBackend {
  PayloadPolicyKind policy;
  std::unique_ptr<ChildProcess> guest_a;
  DomId dom_a{}, dom_b{};
  std::unique_ptr<Platform> platform_b;
  std::unique_ptr<MemoryPagePool> pool_b;
  std::unique_ptr<Platform> dom0;  // its own handle: its own event-channel ports, watches and kick counter
  std::unique_ptr<Backend> backend;
  VifId vif_a{}, vif_b{};
  std::unique_ptr<Netfront> front_b;  // --sink vif: guest B's netfront for this backend
};

class BenchRun {
 public:
  explicit BenchRun(const BenchOptions& o) : opt_(o) { report_.options = o; }
  Result<BenchReport> run();

 private:
  Result<void> setup();
  Result<void> start_frontends();
  Result<BenchSample> run_cell(size_t backend_index, uint32_t size, BenchMode mode);
  Result<double> run_ring(BenchMode mode);
  void finish();
  void compute();
  size_t poll_all();

  const BenchOptions& opt_;
  BenchReport report_;
  TempDir dir_;
  BenchControl* ctl_ = nullptr;
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<SimServer> server_;
  std::vector<PolicyBackend> backends_;
  uint64_t seq_ = 0;
};

size_t BenchRun::poll_all() {
  size_t work = 0;
  for (auto& b : backends_) {
    work += b.backend->poll();
    if (b.front_b) work += b.front_b->poll() ? 1 : 0;
  }
  return work;
}

Result<void> BenchRun::setup() {
  auto dir = TempDir::create("pvnet-bench");  // gone with the run, or with a SIGTERM/SIGINT
  if (!dir) return dir.error();
  dir_ = std::move(dir).value();
  auto c = map_control(dir_.file("ctl"), true);
  if (!c) return c.error();
  ctl_ = *c;
  auto hv = SimHypervisor::create();
  if (!hv) return hv.error();
  hv_ = std::move(hv).value();
  auto server = SimServer::listen(dir_.file("hv.sock"), *hv_);
  if (!server) return server.error();
  server_ = std::move(server).value();
  if (auto r = server_->run_in_thread(); !r) return r;
  for (PayloadPolicyKind p : opt_.policies) {
    PolicyBackend pb;
    pb.policy = p;
    pb.dom_a = DomId{static_cast<uint16_t>(kFirstGuestA + backends_.size())};
    pb.dom_b = DomId{static_cast<uint16_t>(kFirstGuestB + backends_.size())};
    if (opt_.sink == SinkKind::vif) {
      auto b = hv_->create_domain(pb.dom_b, kGuestMemMb << 20, kGrantEntries);
      if (!b) return b.error();
      pb.platform_b = std::move(b).value();
      pb.pool_b = std::make_unique<MemoryPagePool>(pb.platform_b->memory());
    }
    auto d0 = open_platform(PlatformSpec::in_process(*hv_, kDom0));
    if (!d0) return d0.error();
    pb.dom0 = std::move(d0).value();
    BackendOptions bo;
    bo.payload_policy = p;
    auto be = Backend::create(*pb.dom0, bo);
    if (!be) return make_error(be.error().code, std::string(pvnet::to_string(p)) + ": " + be.error().reason);
    pb.backend = std::move(be).value();
    backends_.push_back(std::move(pb));
  }
  return start_frontends();
}

Result<void> BenchRun::start_frontends() {
  const std::string exe = opt_.exe.empty() ? self_exe() : opt_.exe;
  for (size_t i = 0; i < backends_.size(); ++i) {
    PolicyBackend& pb = backends_[i];
    std::vector<std::string> args = {"pvnet", "bench", "--role", "frontend", "--socket", dir_.file("hv.sock"),
                                     "--ctl", dir_.file("ctl"), "--domid", std::to_string(pb.dom_a.value),
                                     "--mtu", std::to_string(opt_.mtu)};
    const std::string name = std::string("guest A (") + pvnet::to_string(pb.policy) + ")";
    auto c = ChildProcess::spawn(exe, std::move(args), name);
    if (!c) return c.error();
    pb.guest_a = std::move(c).value();
    if (auto l = pb.guest_a->wait_for_line("domain", Ms(15000)); !l) return l.error();
    VifOptions vo;
    vo.mtu = opt_.mtu;
    auto a = pb.backend->add_vif(pb.dom_a, 0, vo);
    if (!a) return a.error();
    pb.vif_a = *a;
    if (opt_.sink == SinkKind::vif) {
      VifOptions vb;
      vb.mtu = opt_.mtu;
      vb.mac = "00:16:3e:00:00:02";
      auto b = pb.backend->add_vif(pb.dom_b, 0, vb);
      if (!b) return b.error();
      pb.vif_b = *b;
      if (auto r = pb.backend->set_sink(pb.vif_a, std::make_shared<VifSink>(*pb.backend, pb.vif_b)); !r) return r;
      pb.front_b = std::make_unique<Netfront>(*pb.platform_b, *pb.pool_b,
                                              vif_frontend_dir(pb.dom_b, 0),
                                              NetfrontConfig{});
    } else {
      if (auto r = pb.backend->set_sink(pb.vif_a, std::make_shared<NullSink>()); !r) return r;
    }
    // Both sides negotiate: dom0 polls the backend (and guest B) until guest A reports its vif connected.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      poll_all();
      auto line = pb.guest_a->read_line(Ms(3));  // (a 1 ms wait truncates to 0 and never reads)
      if (line && line->rfind("connected", 0) == 0) break;
      if (!line && line.error().code != ETIMEDOUT) return line.error();
      if (Clock::now() > deadline) return make_error(ETIMEDOUT, name + "'s vif did not connect within 20 s");
    }
    while (pb.front_b && !pb.front_b->connected()) {
      poll_all();
      if (Clock::now() > deadline) return make_error(ETIMEDOUT, "guest B's vif did not connect within 20 s");
    }
  }
  return {};
}

Result<BenchSample> BenchRun::run_cell(size_t bi, uint32_t size, BenchMode mode) {
  PolicyBackend& pb = backends_[bi];
  Backend& be = *pb.backend;
  const uint64_t seq = ++seq_;
  const BackendCounters before = be.total();
  const uint64_t kicks0 = pb.dom0->evtchn().notifications_sent();
  std::ostringstream cmd;
  cmd << "cell " << size << " " << to_string(mode) << " " << opt_.seconds << " " << seq;
  if (auto r = pb.guest_a->send_line(cmd.str()); !r) return r.error();
  std::vector<pollfd> fds;
  for (int fd : be.fds()) fds.push_back({fd, POLLIN, 0});
  if (pb.front_b) fds.push_back({pb.front_b->event_fd(), POLLIN, 0});
  uint32_t spins = 0;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(opt_.seconds + 40));
  for (;;) {
    size_t work = be.poll();
    if (pb.front_b) work += pb.front_b->poll() ? 1 : 0;
    if (work) continue;
    if (ctl_->done_seq.load(std::memory_order_acquire) == seq) break;
    if (mode == BenchMode::busy) {
      cpu_relax(spins);
      if (spins % 65536 == 0 && Clock::now() > deadline) return make_error(ETIMEDOUT, "the cell did not end");
    } else {
      // Idle after the final checks: sleep until a ring kicks us (or, rarely, to look at the control page).
      (void)::poll(fds.data(), fds.size(), 5);
      if (Clock::now() > deadline) return make_error(ETIMEDOUT, "the cell did not end");
    }
  }
  const BackendCounters after = be.total();
  const uint64_t be_kicks = pb.dom0->evtchn().notifications_sent() - kicks0;
  auto line = pb.guest_a->wait_for_line("result", Ms(10000));
  if (!line) return line.error();
  std::istringstream is(*line);
  std::string word;
  uint64_t got_seq = 0;
  BenchSample s;
  is >> word >> got_seq >> s.packets >> s.bytes >> s.errors >> s.elapsed_ns >> s.fe_notifications;
  if (!is || got_seq != seq) return make_error(EPROTO, "bad result line from the frontend: " + *line);
  s.be_notifications = be_kicks;
  const GrantCounters g = after.grant - before.grant;
  s.pages_mapped = g.pages_mapped;
  s.faults = g.faults;
  s.grant_copy_bytes = g.grant_copy_bytes;
  s.hypercalls = g.hypercalls;
  s.backend_memcpy_bytes = after.backend_memcpy_bytes - before.backend_memcpy_bytes;
  return s;
}

Result<double> BenchRun::run_ring(BenchMode mode) {
  auto pp = netif::TxRingPingPong::start(mode == BenchMode::busy ? netif::RingWakeMode::kBusyPoll
                                                                  : netif::RingWakeMode::kSuppressed);
  if (!pp) return pp.error();
  const auto t0 = Clock::now();
  const uint64_t n = pp->run_for(opt_.seconds);
  const double secs = static_cast<double>(ns_since(t0)) / 1e9;
  if (auto r = pp->stop(); !r) return r.error();
  return static_cast<double>(n) / secs;
}

void BenchRun::finish() {
  for (auto& pb : backends_)
    if (pb.guest_a) (void)pb.guest_a->send_line("quit");
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (auto& pb : backends_) {
    if (!pb.guest_a) continue;
    while (Clock::now() < deadline) {
      poll_all();
      if (pb.guest_a->wait(Ms(1))) break;
    }
    pb.guest_a.reset();
  }
}

void BenchRun::compute() {
  auto& cells = report_.cells;
  const uint32_t runs = opt_.runs;
  // Ratios are taken run by run (both figures from the same run), then the median of those.
  auto ratio = [&](const BenchCell* a, const BenchCell* b, auto fig) -> std::optional<double> {
    if (!a || !b) return std::nullopt;
    std::vector<double> r;
    for (uint32_t i = 0; i < runs && i < a->runs.size() && i < b->runs.size(); ++i) {
      const double d = fig(b->runs[i]);
      if (d > 0) r.push_back(fig(a->runs[i]) / d);
    }
    if (r.empty()) return std::nullopt;
    return median(r);
  };
  auto pps = [](const BenchSample& s) { return s.mpps(); };
  auto nspp = [](const BenchSample& s) { return s.ns_per_packet(); };
  for (auto& c : cells) {
    std::vector<double> m, g, ns, np;
    for (auto& s : c.runs) {
      m.push_back(s.mpps());
      g.push_back(s.elapsed_ns ? static_cast<double>(s.bytes) * 8 / static_cast<double>(s.elapsed_ns) : 0);
      ns.push_back(s.ns_per_packet());
      np.push_back(s.packets ? static_cast<double>(s.fe_notifications + s.be_notifications) /
                                   static_cast<double>(s.packets)
                             : 0);
    }
    c.mpps = median(m);
    c.gbit_per_s = median(g);
    c.ns_per_packet = median(ns);
    c.notifications_per_packet = median(np);
    c.vs_copy = ratio(&c, report_.find(PayloadPolicyKind::copy, c.size, c.mode), pps).value_or(0);
  }
  for (auto& r : report_.ring) r.desc_per_s = median(r.runs);

  using P = PayloadPolicyKind;
  const BenchMode B = BenchMode::busy;
  auto& t = report_.targets;
  t.push_back({"busy: slots / copy, packets per second at 64 B", ">=", 3.6,
               ratio(report_.find(P::slots, 64, B), report_.find(P::copy, 64, B), pps)});
  t.push_back({"busy: slots / map, packets per second at 1514 B", ">=", 20,
               ratio(report_.find(P::slots, 1514, B), report_.find(P::map, 1514, B), pps)});
  t.push_back({"busy: slots / hdrcopy, packets per second at 1514 B", ">=", 10,
               ratio(report_.find(P::slots, 1514, B), report_.find(P::hdrcopy, 1514, B), pps)});
  t.push_back({"busy: slots ns/packet, 64 KiB GSO / 64 B", "<=", 2,
               ratio(report_.find(P::slots, 65536, B), report_.find(P::slots, 64, B), nspp)});
  {
    BenchTarget ceiling{"busy: slots at 64 B / bare ring descriptor rate", ">=", 0.25, std::nullopt};
    const BenchCell* s = report_.find(P::slots, 64, B);
    const BenchReport::Ring* ring = report_.ring_for(B);
    if (s && ring) {
      std::vector<double> r;
      for (size_t i = 0; i < s->runs.size() && i < ring->runs.size(); ++i)
        if (ring->runs[i] > 0) r.push_back(s->runs[i].mpps() * 1e6 / ring->runs[i]);
      if (!r.empty()) ceiling.value = median(r);
    }
    t.push_back(ceiling);
  }
  {
    BenchTarget notes{"event: notifications per packet at saturation (worst cell)", "<", 0.05, std::nullopt};
    for (auto& c : cells)
      if (c.mode == BenchMode::event) notes.value = std::max(notes.value.value_or(0), c.notifications_per_packet);
    t.push_back(notes);
  }
}

Result<BenchReport> BenchRun::run() {
  report_.load_before = load_average();
  if (auto r = setup(); !r) {
    finish();
    return r.error();
  }
  for (BenchMode m : opt_.modes) report_.ring.push_back({m, {}, 0});
  for (BenchMode m : opt_.modes)
    for (uint32_t size : opt_.sizes)
      for (PayloadPolicyKind p : opt_.policies) report_.cells.push_back({p, size, m, {}});
  const size_t per_run = report_.cells.size() + report_.ring.size();
  Progress progress("pvnet bench", per_run * opt_.runs, opt_.progress);
  uint64_t done = 0;
  for (uint32_t run = 0; run < opt_.runs; ++run) {
    for (size_t mi = 0; mi < opt_.modes.size(); ++mi) {
      const BenchMode mode = opt_.modes[mi];
      auto ring = run_ring(mode);
      if (!ring) {
        finish();
        return make_error(ring.error().code, "bare ring: " + ring.error().reason);
      }
      report_.ring[mi].runs.push_back(*ring);
      progress.update(++done);
      for (uint32_t size : opt_.sizes) {
        // Interleaved: every policy of a size back to back, the first one rotated from run to run, so a burst of
        // load from elsewhere hits a different policy each time.
        const size_t n = backends_.size();
        for (size_t k = 0; k < n; ++k) {
          const size_t bi = (k + run) % n;
          auto s = run_cell(bi, size, mode);
          if (!s) {
            finish();
            return make_error(s.error().code, std::string(pvnet::to_string(backends_[bi].policy)) + " " +
                                                  std::to_string(size) + " B " + to_string(mode) + ": " +
                                                  s.error().reason);
          }
          for (auto& c : report_.cells)
            if (c.policy == backends_[bi].policy && c.size == size && c.mode == mode) c.runs.push_back(*s);
          progress.update(++done);
        }
      }
    }
  }
  progress.finish();
  finish();
  report_.load_after = load_average();
  compute();
  return report_;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

const BenchCell* BenchReport::find(PayloadPolicyKind p, uint32_t size, BenchMode m) const {
  for (auto& c : cells)
    if (c.policy == p && c.size == size && c.mode == m && !c.runs.empty()) return &c;
  return nullptr;
}

const BenchReport::Ring* BenchReport::ring_for(BenchMode m) const {
  for (auto& r : ring)
    if (r.mode == m && !r.runs.empty()) return &r;
  return nullptr;
}

nlohmann::json BenchReport::to_json() const {
  nlohmann::json j;
  nlohmann::json cfg;
  cfg["sizes"] = options.sizes;
  std::vector<std::string> pol, modes;
  for (auto p : options.policies) pol.push_back(pvnet::to_string(p));
  for (auto m : options.modes) modes.push_back(to_string(m));
  cfg["policies"] = pol;
  cfg["modes"] = modes;
  cfg["seconds"] = options.seconds;
  cfg["runs"] = options.runs;
  cfg["sink"] = to_string(options.sink);
  cfg["mtu"] = options.mtu;
  cfg["load_average_before"] = load_before;
  cfg["load_average_after"] = load_after;
  j["config"] = cfg;
  j["ring"] = nlohmann::json::array();
  for (auto& r : ring)
    j["ring"].push_back({{"mode", to_string(r.mode)},
                         {"ring_mode", r.mode == BenchMode::busy ? "BusyPoll" : "Suppressed"},
                         {"desc_per_s", r.desc_per_s},
                         {"runs", r.runs}});
  j["cells"] = nlohmann::json::array();
  for (auto& c : cells) {
    nlohmann::json runs = nlohmann::json::array();
    for (auto& s : c.runs)
      runs.push_back({{"packets", s.packets},
                      {"bytes", s.bytes},
                      {"errors", s.errors},
                      {"elapsed_ns", s.elapsed_ns},
                      {"mpps", s.mpps()},
                      {"ns_per_packet", s.ns_per_packet()},
                      {"fe_notifications", s.fe_notifications},
                      {"be_notifications", s.be_notifications},
                      {"pages_mapped", s.pages_mapped},
                      {"faults", s.faults},
                      {"grant_copy_bytes", s.grant_copy_bytes},
                      {"backend_memcpy_bytes", s.backend_memcpy_bytes},
                      {"hypercalls", s.hypercalls}});
    j["cells"].push_back({{"policy", pvnet::to_string(c.policy)},
                          {"size", c.size},
                          {"wire_size", bench_wire_size(c.size)},
                          {"mode", to_string(c.mode)},
                          {"mpps", c.mpps},
                          {"gbit_per_s", c.gbit_per_s},
                          {"ns_per_packet", c.ns_per_packet},
                          {"vs_copy", c.vs_copy},
                          {"notifications_per_packet", c.notifications_per_packet},
                          {"runs", runs}});
  }
  j["targets"] = nlohmann::json::array();
  for (auto& t : targets)
    j["targets"].push_back({{"name", t.name},
                            {"relation", t.relation},
                            {"threshold", t.threshold},
                            {"value", t.value ? nlohmann::json(*t.value) : nlohmann::json(nullptr)},
                            {"result", !t.value ? "n/a" : t.pass() ? "PASS" : "MISS"}});
  return j;
}

std::string BenchReport::table() const {
  std::ostringstream os;
  os << "pvnet bench: sink " << to_string(options.sink) << ", " << options.seconds << " s per cell, median of "
     << options.runs << " interleaved runs; load average " << fmt("%.1f", load_before) << " -> "
     << fmt("%.1f", load_after) << "\n";
  for (BenchMode m : options.modes) {
    const Ring* r = ring_for(m);
    os << "\nmode " << to_string(m) << ": bare ring (" << (m == BenchMode::busy ? "BusyPoll" : "Suppressed")
       << ") " << fmt("%.2f", r ? r->desc_per_s / 1e6 : 0) << " M desc/s\n";
    os << "   size  policy      Mpps   Gbit/s    ns/pkt  x copy  notif/pkt  of ring\n";
    for (uint32_t size : options.sizes) {
      for (auto p : options.policies) {
        const BenchCell* c = find(p, size, m);
        if (!c) continue;
        os << fmt("%7.0f", size) << "  " << pvnet::to_string(p);
        for (size_t pad = std::string(pvnet::to_string(p)).size(); pad < 8; ++pad) os << ' ';
        os << fmt("%8.3f", c->mpps) << fmt("%9.2f", c->gbit_per_s) << fmt("%10.0f", c->ns_per_packet)
           << fmt("%8.2f", c->vs_copy) << fmt("%11.4f", c->notifications_per_packet)
           << fmt("%8.1f%%", r && r->desc_per_s > 0 ? 100.0 * c->mpps * 1e6 / r->desc_per_s : 0) << "\n";
      }
    }
  }
  os << "\ntargets:\n";
  for (auto& t : targets) {
    os << "  " << (!t.value ? "n/a " : t.pass() ? "PASS" : "MISS") << "  " << t.name << ": "
       << (t.value ? fmt("%.3g", *t.value) : std::string("not measured")) << " (target " << t.relation << " "
       << fmt("%g", t.threshold) << ")\n";
  }
  return os.str();
}

Result<BenchReport> run_bench(const BenchOptions& options) {
  if (options.policies.empty() || options.sizes.empty() || options.modes.empty() || options.runs == 0)
    return make_error(EINVAL, "nothing to run (sizes, policies, modes and runs must not be empty)");
  if (options.sink != SinkKind::null && options.sink != SinkKind::vif)
    return make_error(EINVAL, "pvnet bench sinks: null or vif");
  for (uint32_t s : options.sizes)
    if (s < kBenchMinFrame || s > kBenchMaxFrame + 1)
      return make_error(EINVAL, "frame size " + std::to_string(s) + " out of range (54..65536)");
  BenchRun r(options);
  return r.run();
}

int bench_frontend_main(int argc, char** argv) {
  FrontendArgs a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--socket") a.socket = v;
    else if (k == "--ctl") a.ctl = v;
    else if (k == "--domid") a.domid = static_cast<uint16_t>(std::stoul(v));
    else if (k == "--mtu") a.mtu = static_cast<uint32_t>(std::stoul(v));
  }
  BenchFrontend fe(a);
  if (auto r = fe.setup(); !r) {
    std::cerr << "pvnet bench frontend: " << r.error().reason << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    std::istringstream is(line);
    std::string word, mode;
    uint32_t size = 0;
    double seconds = 0;
    uint64_t seq = 0;
    is >> word >> size >> mode >> seconds >> seq;
    if (!is || word != "cell") {
      std::cerr << "pvnet bench frontend: bad command '" << line << "'\n";
      return 1;
    }
    auto r = fe.run_cell(size, mode == "event" ? BenchMode::event : BenchMode::busy, seconds, seq);
    if (!r) {
      std::cerr << "pvnet bench frontend: " << r.error().reason << "\n";
      return 1;
    }
    say(*r);
  }
  fe.close_all();
  return 0;
}

}  // namespace pvnet::tools
