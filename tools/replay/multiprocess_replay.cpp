#include "tools/replay/multiprocess_replay.hpp"

#include "tools/replay/guest_drop.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/trace/pcap_io.hpp"
#include "frontend/netfront_counters.hpp"
#include "tools/process/child_process.hpp"
#include "tools/process/temp_dir.hpp"
#include "tools/replay/json_file.hpp"

namespace pvnet::tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDomA = "1";
constexpr const char* kDomB = "2";

Result<nlohmann::json> read_json(const std::string& path, const std::string& who) {
  std::ifstream f(path);
  if (!f) return make_error(ENOENT, who + " wrote no statistics (" + path + ")");
  auto j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(EINVAL, who + "'s statistics are not JSON (" + path + ")");
  return j;
}

void add_counts(std::map<std::string, uint64_t>& into, const nlohmann::json& j) {
  if (!j.is_object()) return;
  for (auto& [reason, n] : j.items())
    if (n.is_number_unsigned()) into[reason] += n.get<uint64_t>();
}

class ProcessReplay {
 public:
  ProcessReplay(const ReplayOptions& o, const ProcessTimeouts& t, TempDir dir)
      : opt_(o), to_(t), dir_(std::move(dir)), exe_(self_exe()) {}
  Result<ReplayStats> run();

 private:
  Result<std::unique_ptr<ChildProcess>> start_frontend(const char* domid, const char* name,
                                                       std::vector<std::string> role_args, const std::string& json);
  Result<void> expect_exit(ChildProcess& c, const char* step);
  Result<ReplayStats> merge(const nlohmann::json& be, const nlohmann::json& a, const nlohmann::json* b) const;
  static Error at(const char* step, const Error& e) { return make_error(e.code, step + std::string(": ") + e.reason); }

  const ReplayOptions& opt_;
  const ProcessTimeouts& to_;
  TempDir dir_;
  std::string exe_;
};

Result<std::unique_ptr<ChildProcess>> ProcessReplay::start_frontend(const char* domid, const char* name,
                                                                    std::vector<std::string> role_args,
                                                                    const std::string& json) {
  std::vector<std::string> args = {"pvnet",      "frontend", "--socket", dir_.file("hv.sock"),
                                   "--domid",    domid,      "--mem-mb", std::to_string(opt_.guest_mem_bytes >> 20),
                                   "--slot-size", std::to_string(opt_.slot_size),
                                   "--mtu",      std::to_string(opt_.mtu), "--json", json};
  if (!opt_.header_slots) args.push_back("--no-header-slots");
  args.insert(args.end(), role_args.begin(), role_args.end());
  auto c = ChildProcess::spawn(exe_, std::move(args), name);
  if (!c) return c.error();
  if (auto l = (*c)->wait_for(ControlLine::Kind::connected, to_.connect); !l) return l.error();
  return c;
}

Result<void> ProcessReplay::expect_exit(ChildProcess& c, const char* step) {
  auto st = c.wait(to_.exit);
  if (!st) return at(step, st.error());
  if (*st != 0) return make_error(EIO, std::string(step) + ": " + c.name() + " " + c.status_text());
  return {};
}

Result<ReplayStats> ProcessReplay::run() {
  const std::string be_json = dir_.file("backend.json"), a_json = dir_.file("a.json"), b_json = dir_.file("b.json");
  const bool need_b = opt_.sink == SinkKind::vif;

  std::vector<std::string> be_args = {"pvnet", "backend", "--socket", dir_.file("hv.sock"),
                                      "--policy", pvnet::to_string(opt_.policy), "--sink", to_string(opt_.sink),
                                      "--mtu", std::to_string(opt_.mtu), "--json", be_json,
                                      "--frontends", need_b ? "1,2" : "1"};
  if (need_b) be_args.insert(be_args.end(), {"--forward", "1:2"});
  if (opt_.sink == SinkKind::pcap) be_args.insert(be_args.end(), {"--out", opt_.out});
  auto backend = ChildProcess::spawn(exe_, std::move(be_args), "backend");
  if (!backend) return at("starting the backend", backend.error());
  if (auto l = (*backend)->wait_for(ControlLine::Kind::ready, to_.start); !l) return at("starting the backend", l.error());

  std::unique_ptr<ChildProcess> guest_b;
  if (need_b) {
    std::vector<std::string> rx = opt_.out.empty() ? std::vector<std::string>{"--receive"}
                                                   : std::vector<std::string>{"--rx", opt_.out};
    auto b = start_frontend(kDomB, "frontend B (rx)", std::move(rx), b_json);
    if (!b) return at("connecting guest B", b.error());
    guest_b = std::move(b).value();
  }
  std::vector<std::string> tx = {"--tx", opt_.in, "--repeat", std::to_string(opt_.repeat), "--wait-go",
                                 "--data-offset", std::to_string(opt_.data_offset)};
  if (opt_.progress) tx.push_back("--progress");
  auto a = start_frontend(kDomA, "frontend A (tx)", std::move(tx), a_json);
  if (!a) return at("connecting guest A", a.error());
  ChildProcess& guest_a = **a;
  ChildProcess& be = **backend;

  // The window dom0's costs are counted over: the backend acknowledges each snapshot before we go on.
  if (auto r = be.signal(SIGUSR1); !r) return at("snapshot at traffic start", r.error());
  if (auto l = be.wait_for(ControlLine::Kind::snapshot_start, to_.snapshot); !l) return at("snapshot at traffic start", l.error());
  if (auto r = guest_a.send_line(kGoLine); !r) return at("starting the traffic", r.error());
  if (auto l = guest_a.wait_for(ControlLine::Kind::done, to_.traffic); !l) return at("sending the trace", l.error());
  if (auto r = be.signal(SIGUSR2); !r) return at("snapshot at traffic end", r.error());
  if (auto l = be.wait_for(ControlLine::Kind::snapshot_end, to_.snapshot); !l) return at("snapshot at traffic end", l.error());

  if (auto r = guest_a.send_line(kCloseLine); !r) return at("closing guest A", r.error());
  if (auto r = expect_exit(guest_a, "closing guest A"); !r) return r.error();
  if (guest_b) {
    if (auto r = guest_b->signal(SIGTERM); !r) return at("stopping guest B", r.error());
    if (auto r = expect_exit(*guest_b, "stopping guest B"); !r) return r.error();
  }
  if (auto r = be.signal(SIGTERM); !r) return at("stopping the backend", r.error());
  if (auto r = expect_exit(be, "stopping the backend"); !r) return r.error();

  auto be_stats = read_json(be_json, "the backend");
  if (!be_stats) return be_stats.error();
  auto a_stats = read_json(a_json, "guest A");
  if (!a_stats) return a_stats.error();
  std::optional<nlohmann::json> b_stats;
  if (guest_b) {
    auto b = read_json(b_json, "guest B");
    if (!b) return b.error();
    b_stats = std::move(b).value();
  }
  return merge(*be_stats, *a_stats, b_stats ? &*b_stats : nullptr);
}

Result<ReplayStats> ProcessReplay::merge(const nlohmann::json& be, const nlohmann::json& a,
                                         const nlohmann::json* b) const {
  ReplayStats s;
  s.packets_in = json_u64(a, "packets_in");
  s.bytes_in = json_u64(a, "bytes_in");
  s.elapsed_ns = json_u64(a, "elapsed_ns");
  if (a.contains("refused")) add_counts(s.dropped, a["refused"]);
  const nlohmann::json& window = be.contains("backend") ? be["backend"] : nlohmann::json::object();
  if (window.contains("dropped")) add_counts(s.dropped, window["dropped"]);
  if (b) {
    s.packets_out = json_u64(*b, "packets_out");
    s.bytes_out = json_u64(*b, "bytes_out");
    // Forwarded but lost on B's side (a malformed RX chain): counted, never silent.
    if (b->contains("frontend")) {
      if (uint64_t rx_err = json_u64((*b)["frontend"], "rx_errors"))
        count_drop(s.dropped, GuestDrop::rx_error_at_destination, rx_err);
    }
  } else {
    s.packets_out = json_u64(be, "sink_frames");
    s.bytes_out = json_u64(window, "bytes_out");
  }

  nlohmann::json j;
  j["trace"] = opt_.in;
  j["policy"] = pvnet::to_string(opt_.policy);
  j["sink"] = to_string(opt_.sink);
  j["header_slots"] = a.value("header_slots", false);
  j["slot_size"] = opt_.slot_size;
  for (const char* key : {"backend_memcpy_bytes", "header_bytes", "grant_copy_bytes", "dom0_bytes_copied",
                          "pages_mapped", "pages_unmapped", "tlb_shootdowns", "faults", "hypercalls", "slots_used",
                          "backend", "connection"}) {
    if (!be.contains(key)) return make_error(EINVAL, std::string("the backend's statistics lack '") + key + "'");
    j[key] = be[key];
  }
  j["frontend_tx"] = a.value("frontend", nlohmann::json::object());
  // Guest B only runs when it is the destination; otherwise its counters are those of a guest that did nothing.
  j["frontend_rx"] = b ? b->value("frontend", nlohmann::json::object()) : nlohmann::json(NetfrontCounters{});
  // Nothing leaks: the same checks as in one process, each made by the process that owns the thing.
  const nlohmann::json none = nlohmann::json::object();
  const nlohmann::json& la = a.contains("leaks") ? a["leaks"] : none;
  const nlohmann::json& lb = b && b->contains("leaks") ? (*b)["leaks"] : none;
  j["leaks"] = {{"closed", la.value("closed", false) && (!b || lb.value("closed", false))},
                {"guest_a_pages_outstanding", json_u64(la, "pages_outstanding")},
                {"guest_b_pages_outstanding", json_u64(lb, "pages_outstanding")},
                {"guest_a_grants_outstanding", json_u64(la, "grants_outstanding")},
                {"guest_b_grants_outstanding", json_u64(lb, "grants_outstanding")},
                {"slots_in_use", json_u64(la, "slots_in_use")},
                {"tx_frames_in_flight", json_u64(la, "tx_frames_in_flight")},
                {"grants_in_use", json_u64(la, "grants_in_use") + json_u64(lb, "grants_in_use")},
                {"grants_kept", json_u64(la, "grants_kept") + json_u64(lb, "grants_kept")},
                {"dom0_mappings_left", json_u64(be["connection"], "mappings_left_after_teardown")},
                {"dom0_kept_pages", json_u64(be, "dom0_kept_pages")},
                {"dom0_rx_queued", json_u64(be, "dom0_rx_queued")}};
  j["processes"] = {{"count", b ? 3 : 2},
                    {"vifs_added", json_u64(be, "vifs_added")},
                    {"vifs_removed_domain_gone", json_u64(be, "vifs_removed_domain_gone")},
                    {"traffic_window", be.value("traffic_window", "")}};
  s.detail = std::move(j);
  return s;
}

}  // namespace

Result<ReplayStats> run_replay_processes(const ReplayOptions& options, const ProcessTimeouts& timeouts) {
  // Refuse a bad trace before starting anything, as the in-process replay does.
  if (auto r = PcapReader::open(options.in); !r) return r.error();
  if (options.sink == SinkKind::pcap && options.out.empty())
    return make_error(EINVAL, "--sink pcap needs --out FILE (dom0 writes the frames there)");
  // The socket and the children's JSON: gone when the replay is, or with a SIGTERM/SIGINT.
  auto dir = TempDir::create("pvnet-replay");
  if (!dir) return dir.error();
  ProcessReplay r(options, timeouts, std::move(dir).value());
  return r.run();
}

}  // namespace pvnet::tools
