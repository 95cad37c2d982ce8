#include "tools/replay/replay.hpp"

#include "tools/replay/guest_drop.hpp"

#include <chrono>
#include <optional>

#include "backend/backend.hpp"
#include "backend/null_sink.hpp"
#include "tools/trace/pcap_io.hpp"
#include "tools/trace/pcap_sink.hpp"
#include "backend/vif_sink.hpp"
#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "shared-ring/packet_headers.hpp"
#include "tools/platform/open_platform.hpp"
#include "tools/replay/trace_sender.hpp"
#include "tools/replay/traffic_window.hpp"

namespace pvnet::tools {

const char* to_string(SinkKind k) {
  switch (k) {
    case SinkKind::vif: return "vif";
    case SinkKind::pcap: return "pcap";
    case SinkKind::null: return "null";
  }
  return "?";
}

uint64_t ReplayStats::dropped_total() const {
  uint64_t n = 0;
  for (auto& [reason, count] : dropped) n += count;
  return n;
}

nlohmann::json ReplayStats::to_json() const {
  nlohmann::json j = detail;
  j["packets_in"] = packets_in;
  j["bytes_in"] = bytes_in;
  j["packets_out"] = packets_out;
  j["bytes_out"] = bytes_out;
  j["dropped"] = dropped;
  j["dropped_total"] = dropped_total();
  j["accounted"] = packets_in == packets_out + dropped_total();
  j["elapsed_ns"] = elapsed_ns;
  j["ns_per_packet"] = packets_in ? static_cast<double>(elapsed_ns) / static_cast<double>(packets_in) : 0.0;
  double secs = static_cast<double>(elapsed_ns) / 1e9;
  j["mpps"] = secs > 0 ? static_cast<double>(packets_out) / secs / 1e6 : 0.0;
  j["gbit_per_s"] = secs > 0 ? static_cast<double>(bytes_out) * 8 / secs / 1e9 : 0.0;
  return j;
}

namespace {

constexpr DomId kDomA{1};
constexpr DomId kDomB{2};
constexpr uint32_t kGrantEntries = 8192;
uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

class Replay {
 public:
  explicit Replay(const ReplayOptions& o) : opt_(o) {}

  Result<ReplayStats> run();

 private:
  Result<void> setup();
  Result<void> connect();
  size_t poll_all();
  Result<void> transmit_all();
  void collect();

  const ReplayOptions& opt_;
  ReplayStats stats_;
  std::unique_ptr<SimHypervisor> hv_;
  std::unique_ptr<Platform> dom0_, dom_a_, dom_b_;
  std::unique_ptr<MemoryPagePool> pool_a_, pool_b_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Netfront> front_a_, front_b_;
  VifId vif_a_{}, vif_b_{};
  std::shared_ptr<PcapSink> pcap_sink_;
  std::shared_ptr<NullSink> null_sink_;
  std::optional<PcapWriter> received_;
  std::string rx_error_;
  bool used_header_slots_ = false;
  uint32_t grants_free_a_ = 0, grants_free_b_ = 0;  // before the netfronts existed
  BackendCounters at_connect_;    // what setting up the connection cost (rings, kept slot mappings)
  BackendCounters at_traffic_end_;  // before teardown
};

Result<void> Replay::setup() {
  auto hv = SimHypervisor::create();
  if (!hv) return hv.error();
  hv_ = std::move(hv).value();
  auto d0 = open_platform(PlatformSpec::in_process(*hv_, kDom0));
  if (!d0) return d0.error();
  dom0_ = std::move(d0).value();
  auto a = hv_->create_domain(kDomA, opt_.guest_mem_bytes, kGrantEntries);
  if (!a) return a.error();
  dom_a_ = std::move(a).value();
  auto b = hv_->create_domain(kDomB, opt_.guest_mem_bytes, kGrantEntries);
  if (!b) return b.error();
  dom_b_ = std::move(b).value();
  grants_free_a_ = dom_a_->grant_table().free_count();
  grants_free_b_ = dom_b_->grant_table().free_count();
  pool_a_ = std::make_unique<MemoryPagePool>(dom_a_->memory());
  pool_b_ = std::make_unique<MemoryPagePool>(dom_b_->memory());

  BackendOptions bo;
  bo.payload_policy = opt_.policy;
  auto be = Backend::create(*dom0_, bo);
  if (!be) return be.error();
  backend_ = std::move(be).value();

  VifOptions va, vb;
  va.mtu = vb.mtu = opt_.mtu;
  va.mac = "00:16:3e:00:00:01";
  vb.mac = "00:16:3e:00:00:02";
  auto ida = backend_->add_vif(kDomA, 0, va);
  if (!ida) return ida.error();
  vif_a_ = *ida;
  auto idb = backend_->add_vif(kDomB, 0, vb);
  if (!idb) return idb.error();
  vif_b_ = *idb;

  switch (opt_.sink) {
    case SinkKind::vif: {
      if (auto r = backend_->set_sink(vif_a_, std::make_shared<VifSink>(*backend_, vif_b_)); !r) return r.error();
      if (!opt_.out.empty()) {
        auto w = PcapWriter::create(opt_.out);
        if (!w) return w.error();
        received_.emplace(std::move(w).value());
      }
      break;
    }
    case SinkKind::pcap: {
      if (opt_.out.empty()) return make_error(EINVAL, "--sink pcap needs --out FILE (dom0 writes the frames there)");
      auto s = PcapSink::create(opt_.out);
      if (!s) return s.error();
      pcap_sink_ = std::shared_ptr<PcapSink>(std::move(s).value());
      if (auto r = backend_->set_sink(vif_a_, pcap_sink_); !r) return r.error();
      break;
    }
    case SinkKind::null:
      null_sink_ = std::make_shared<NullSink>();
      if (auto r = backend_->set_sink(vif_a_, null_sink_); !r) return r.error();
      break;
  }

  NetfrontConfig fc;
  fc.header_slots = opt_.header_slots;
  fc.slot_size = opt_.slot_size;
  front_a_ = std::make_unique<Netfront>(*dom_a_, *pool_a_, vif_frontend_dir(DomId{1}, 0), fc);
  front_b_ = std::make_unique<Netfront>(*dom_b_, *pool_b_, vif_frontend_dir(DomId{2}, 0), fc);

  front_b_->on_rx([this](ReceivedFrame&& f) {
    stats_.packets_out++;
    stats_.bytes_out += f.data.size();
    if (received_) {
      if (auto r = received_->write(now_ns(), f.data); !r && rx_error_.empty()) rx_error_ = r.error().reason;
    }
  });
  return {};
}

size_t Replay::poll_all() {
  size_t work = 0;
  work += front_a_->poll() ? 1 : 0;
  work += backend_->poll();
  work += front_b_->poll() ? 1 : 0;
  return work;
}

Result<void> Replay::connect() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto ready = [&] {
    if (!front_a_->connected() || !front_b_->connected()) return false;
    if (!backend_->connected(vif_a_) || !backend_->connected(vif_b_)) return false;
    // Header slots registered (when asked for and offered) before traffic starts, so every frame uses them.
    // (A policy that models a backend without the extension does not offer them: plain netif then.)
    if (opt_.header_slots && payload_policy_traits(opt_.policy).offers_header_slots &&
        (!front_a_->using_header_slots() || !backend_->header_slots(vif_a_)))
      return false;
    return true;
  };
  while (!ready()) {
    poll_all();
    if (front_a_->state() == NetfrontState::kFailed) return make_error(EPROTO, "guest A: " + front_a_->error());
    if (front_b_->state() == NetfrontState::kFailed) return make_error(EPROTO, "guest B: " + front_b_->error());
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(ETIMEDOUT, "the frontends did not connect to the backend within 10 s");
  }
  return {};
}

Result<void> Replay::transmit_all() {
  SendOptions so;
  so.trace = opt_.in;
  so.repeat = opt_.repeat;
  so.mtu = opt_.mtu;
  so.data_offset = opt_.data_offset;
  so.progress = opt_.progress;
  TraceSender sender(*front_a_, *pool_a_, so);
  auto r = sender.run([this] { return poll_all(); });
  stats_.packets_in = sender.stats().packets_in;
  stats_.bytes_in = sender.stats().bytes_in;
  for (auto& [reason, n] : sender.stats().refused) stats_.dropped[reason] += n;
  if (!r) return r;
  // B may still be receiving what the last completions released.
  for (int idle = 0; idle < 3;) idle = poll_all() == 0 ? idle + 1 : 0;
  return {};
}

void Replay::collect() {
  // The traffic's own costs: what dom0 paid between "connected" and the last completion. Connecting (mapping the
  // rings and the kept header-slot pages, once per connection) and tearing down are reported apart.
  BackendCounters window = traffic_window(at_connect_, at_traffic_end_);
  // Frames the backend answered with an error or dropped, by the backend's own reason.
  for (auto& [reason, count] : window.dropped.by_key()) stats_.dropped[reason] += count;
  if (opt_.sink == SinkKind::pcap) {
    stats_.packets_out = pcap_sink_->frames_written();
    stats_.bytes_out = window.bytes_out;
  } else if (opt_.sink == SinkKind::null) {
    stats_.packets_out = null_sink_->packets();
    stats_.bytes_out = window.bytes_out;
  } else {
    // Forwarded but lost on B's side (a malformed RX chain): counted, never silent.
    uint64_t rx_err = front_b_->counters().rx_errors;
    if (rx_err) count_drop(stats_.dropped, GuestDrop::rx_error_at_destination, rx_err);
  }
  nlohmann::json j = traffic_window_json(at_connect_, at_traffic_end_, backend_->total());
  j["trace"] = opt_.in;
  j["policy"] = pvnet::to_string(opt_.policy);
  j["sink"] = to_string(opt_.sink);
  j["header_slots"] = used_header_slots_;
  j["slot_size"] = opt_.slot_size;
  j["frontend_tx"] = front_a_->counters();
  j["frontend_rx"] = front_b_->counters();
  stats_.detail = std::move(j);
}

Result<ReplayStats> Replay::run() {
  // Refuse a bad trace before building anything: not Ethernet, unreadable, truncated.
  if (auto r = PcapReader::open(opt_.in); !r) return r.error();
  if (auto r = setup(); !r) return r.error();
  if (auto r = connect(); !r) return r.error();
  used_header_slots_ = front_a_->using_header_slots();
  at_connect_ = backend_->total();
  auto t0 = std::chrono::steady_clock::now();
  if (auto r = transmit_all(); !r) return r.error();
  stats_.elapsed_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  at_traffic_end_ = backend_->total();
  if (!rx_error_.empty()) return make_error(EIO, "writing " + opt_.out + ": " + rx_error_);
  if (received_) {
    if (auto r = received_->close(); !r) return r.error();
  }
  if (pcap_sink_) {
    if (auto r = pcap_sink_->close(); !r) return r.error();
  }
  // Tear down so the counters show that every mapping, slot and grant came back.
  front_a_->close();
  front_b_->close();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((front_a_->state() != NetfrontState::kClosed || front_b_->state() != NetfrontState::kClosed) &&
         std::chrono::steady_clock::now() < deadline)
    poll_all();
  collect();
  // Nothing leaks: once both guests closed, every page, grant, slot and mapping is back.
  BackendCounters end = backend_->total();
  auto& fa = front_a_->counters();
  auto& fb = front_b_->counters();
  stats_.detail["leaks"] = {
      {"closed", front_a_->state() == NetfrontState::kClosed && front_b_->state() == NetfrontState::kClosed},
      {"guest_a_pages_outstanding", pool_a_->capacity() - pool_a_->free_pages()},
      {"guest_b_pages_outstanding", pool_b_->capacity() - pool_b_->free_pages()},
      {"guest_a_grants_outstanding", grants_free_a_ - dom_a_->grant_table().free_count()},
      {"guest_b_grants_outstanding", grants_free_b_ - dom_b_->grant_table().free_count()},
      {"slots_in_use", fa.slots_in_use},
      {"tx_frames_in_flight", front_a_->tx_frames_in_flight()},
      {"grants_in_use", fa.grants_in_use + fb.grants_in_use},
      {"grants_kept", fa.grants_kept + fb.grants_kept},
      {"dom0_mappings_left", end.grant.pages_mapped - end.grant.pages_unmapped},
      {"dom0_kept_pages", end.kept_pages},
      {"dom0_rx_queued", end.rx_queued}};
  return stats_;
}

}  // namespace

Result<ReplayStats> run_replay(const ReplayOptions& options) {
  Replay r(options);
  return r.run();
}

}  // namespace pvnet::tools
