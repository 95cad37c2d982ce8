// Writes the seed corpora of the fuzz targets from real traces (tools/fuzz.sh --seeds runs it):
//   fuzz_make_seeds OUTDIR TRACE.pcap...
// OUTDIR/tx: the traces' frames as fuzz_tx action sequences (header slot and plain netif, GSO for the big ones,
// null and reading sink) plus the protocol violations of tests/backend/violation_test.cpp as actions;
// OUTDIR/headers: frames cut to their first 256 bytes; OUTDIR/pcap: small captures (3 frames of each trace, one
// cut short, each under each snapped-frame policy); OUTDIR/ctrl, OUTDIR/store and OUTDIR/hvsock: short hand-written
// sessions.
// Deterministic: the same traces give the same files (named by content).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tools/trace/pcap_io.hpp"
#include "shared-ring/netif.hpp"
#include "shared-ring/packet_headers.hpp"
#include "tests/fuzz/ctrl_actions.hpp"
#include "tests/fuzz/hvsock_actions.hpp"
#include "tests/fuzz/store_actions.hpp"
#include "tests/fuzz/tx_actions.hpp"

namespace fs = std::filesystem;
using namespace pvnet;
using namespace pvnet::fuzz;

namespace {

fs::path g_out;

uint64_t fnv1a(const std::vector<uint8_t>& d) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : d) h = (h ^ b) * 1099511628211ull;
  return h;
}

void save(const std::string& target, const std::string& tag, const std::vector<uint8_t>& data) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  char name[64];
  std::snprintf(name, sizeof(name), "%s-%016llx", tag.c_str(), static_cast<unsigned long long>(fnv1a(data)));
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                    static_cast<std::streamsize>(data.size()));
}

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void tx_seeds(const std::string& tag, const std::vector<PcapFrame>& frames) {
  for (int variant = 0; variant < 2; ++variant) {
    FuzzWriter w;
    const uint8_t cfg = (variant == 0 ? tx::kCfgHeaderSlots : tx::kCfgReadingSink) | tx::kCfgGso | tx::kCfgSg |
                        tx::kCfgSplitEvtchn | (1 << 3) /* 128-byte slots */;
    tx::encode_config(w, cfg, 1, 0);
    for (size_t i = 0; i < std::min<size_t>(frames.size(), 4); ++i) {
      std::span<const std::byte> f = frames[i].data;
      const HeaderInfo h = parse_headers(f);
      const bool gso = f.size() > 1514 && h.is_tcp();
      f = f.first(std::min<size_t>(f.size(), 3000));
      const uint8_t mode = static_cast<uint8_t>((variant == 0 ? tx::kFrameSlot : 0) | (gso ? tx::kFrameGso : 0) |
                                                (h.l3 == L3Proto::kIpv6 ? tx::kFrameGsoV6 : 0) | ((i & 3) << 3));
      tx::encode_frame(w, f, mode, static_cast<uint16_t>(h.header_len), 1448);
    }
    tx::encode_poll(w);
    w.u8(tx::kPeer);
    save("tx", tag + "-" + std::to_string(variant), w.data());
  }
}

// The violations of tests/backend/violation_test.cpp, as fuzz_tx actions after one good frame.
void tx_violation_seeds(const std::vector<std::byte>& frame) {
  auto start = [&](FuzzWriter& w) {
    tx::encode_config(w, tx::kCfgHeaderSlots | tx::kCfgGso | tx::kCfgSg | (1 << 3), 1, 0);
    tx::encode_frame(w, frame, tx::kFrameSlot, 42, 0);
    tx::encode_poll(w);
  };
  auto mutated = [&](const char* tag, uint8_t req, uint8_t field, uint32_t value, uint8_t mode = tx::kFrameSlot) {
    FuzzWriter w;
    start(w);
    w.u8(tx::kFrame).u8(mode).u16(42).u16(0).u16(static_cast<uint16_t>(frame.size())).bytes(frame);
    w.u8(1).u8(req).u8(field).u32(value);
    tx::encode_poll(w);
    w.u8(tx::kPeer);
    save("tx", tag, w.data());
  };
  mutated("viol-cross-page", 1, 1, 3500);
  mutated("viol-first-size-small", 0, 4, 20);
  mutated("viol-slot-gref-not-kept", 0, 0, 4 /* rw page */);
  mutated("viol-slot-offset", 0, 1, 130);
  mutated("viol-slot-header-too-long", 0, 4, 4000);
  mutated("viol-gso-size-zero", 0, 3, 7, tx::kFrameSlot | tx::kFrameGso);
  {
    FuzzWriter w;
    start(w);
    w.u8(tx::kAdvance).u16(257);
    tx::encode_poll(w);
    w.u8(tx::kPeer);
    save("tx", "viol-req-prod-overflow", w.data());
  }
  {
    FuzzWriter w;
    start(w);
    w.u8(tx::kRaw).u8(0).u32(1).u16(0).u16(netif::txf::extra_info).u16(1).u16(60);
    w.u8(tx::kExtra).u8(netif::extra_type::max).u8(0).u16(0).u8(0).u8(0);
    tx::encode_poll(w);
    save("tx", "viol-unknown-extra", w.data());
  }
  {
    FuzzWriter w;
    start(w);
    w.u8(tx::kRaw).u8(3);
    for (int i = 0; i < 4; ++i) w.u32(1).u16(0).u16(netif::txf::more_data).u16(static_cast<uint16_t>(i)).u16(60);
    tx::encode_poll(w);
    save("tx", "viol-chain-past-prod", w.data());
  }
  {
    FuzzWriter w;  // the guest rewrites a published slot and its header slot between polls
    start(w);
    tx::encode_frame(w, frame, tx::kFrameSlot, 42, 0);
    w.u8(tx::kRewrite).u8(0).bytes(std::vector<std::byte>(12, std::byte{0xff}));
    w.u8(tx::kScribble).u8(0).u16(0).u8(16).bytes(std::vector<std::byte>(16, std::byte{0x41}));
    w.u8(tx::kSlotCtrl).u8(0).u8(tx::kRevoke).u8(200);
    tx::encode_poll(w, 2);
    w.u8(tx::kPeer);
    save("tx", "rewrite-scribble-del", w.data());
  }
}

void pcap_seeds(const std::string& tag, const fs::path& trace, const std::vector<PcapFrame>& frames) {
  const fs::path tmp = fs::temp_directory_path() / ("pvnet-seed-" + std::to_string(::getpid()) + ".pcap");
  {
    auto w = PcapWriter::create(tmp.string()).value();
    for (size_t i = 0; i < std::min<size_t>(frames.size(), 3); ++i) {
      std::span<const std::byte> d = frames[i].data;
      d = d.first(std::min<size_t>(d.size(), 600));
      (void)w.write(frames[i].ts_ns, d, i == 2 ? static_cast<uint32_t>(d.size() + 100) : 0);  // the third snapped
    }
    (void)w.close();
  }
  const auto bytes = read_file(tmp);
  fs::remove(tmp);
  for (uint8_t policy = 0; policy < 3; ++policy) {
    std::vector<uint8_t> d{policy};
    d.insert(d.end(), bytes.begin(), bytes.end());
    save("pcap", tag + "-p" + std::to_string(policy), d);
  }
  // The trace's own first bytes (its real format, pcapng included), cut mid-record.
  auto raw = read_file(trace);
  raw.resize(std::min<size_t>(raw.size(), 700));
  raw.insert(raw.begin(), uint8_t{2});
  save("pcap", tag + "-head", raw);
}

void header_seeds(const std::string& tag, const std::vector<PcapFrame>& frames) {
  std::vector<std::vector<uint8_t>> seen;
  for (const auto& f : frames) {
    std::vector<uint8_t> d(f.data.size() < 256 ? f.data.size() : 256);
    std::memcpy(d.data(), f.data.data(), d.size());
    const HeaderInfo h = parse_headers(f.data);
    // One frame per distinct header shape is enough.
    std::vector<uint8_t> key{static_cast<uint8_t>(h.status), static_cast<uint8_t>(h.l3), h.l4_proto, h.vlan_count,
                             h.ipv6_ext_count, h.is_fragment, static_cast<uint8_t>(h.header_len)};
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    save("headers", tag, d);
  }
}

void ctrl_seeds() {
  using namespace pvnet::fuzz::ctrl;
  FuzzWriter w;  // register four pages, use one, remove two, use it again, re-add
  w.u8(kFillTable).u8(0).u16(0).u8(4).u8(0);
  w.u8(kCall).u8(4).u8(0).u32(0).u32(0);      // GET
  w.u8(kCall).u8(0).u8(0).u32(0).u32(4);      // ADD 4 from table 0
  w.u8(kSlotTx).u8(0).u8(0).u8(50).u8(kPoll);
  w.u8(kCall).u8(2).u8(0).u32(0).u32(2);      // DEL 2
  w.u8(kSlotTx).u8(0).u8(1).u8(50).u8(kPoll);
  save("ctrl", "add-use-del", w.data());
  FuzzWriter d;  // duplicates, the table's own gref, a revoked grant, a count past the table
  d.u8(kFillTable).u8(1).u16(0).u8(3).u8(5);
  d.u8(kWriteEntry).u8(1).u16(3).u32(5 << 2).u16(1).u32(0);  // duplicate of entry 0
  d.u8(kCall).u8(0).u8(0).u32(1).u32(4);
  d.u8(kWriteEntry).u8(1).u16(3).u32(2).u16(1).u32(0);  // the table page itself
  d.u8(kCall).u8(0).u8(0).u32(1).u32(4);
  d.u8(kRevoke).u8(2).u8(kCall).u8(0).u8(0).u32(1).u32(3);
  d.u8(kCall).u8(0).u8(0).u32(1).u32(0x80000001u).u8(kCall).u8(3).u8(255).u32(3 | (7 << 2)).u32(1);
  d.u8(kPeer);
  save("ctrl", "bad-tables", d.data());
}

void store_seeds() {
  using namespace pvnet::fuzz::store;
  FuzzWriter w;  // a proper connect, slots, then a close and reconnect
  w.u8(kConnect).u8(0).u8(kPoll).u8(kRegister).u8(0).u8(kPeer);
  w.u8(kState).u8(5).u8(kPoll).u8(kState).u8(6).u8(kPoll).u8(kState).u8(1).u8(kPoll);
  w.u8(kConnect).u8(4).u8(kPoll).u8(kPeer);
  save("store", "connect-close-reconnect", w.data());
  FuzzWriter b;  // connect with one key broken at a time
  for (uint8_t k = 0; k < kNumKeys; ++k) {
    b.u8(kConnect).u8(static_cast<uint8_t>(k & 0x0f)).u8(kRemove).u8(k).u8(kState).u8(4).u8(kPoll);
    if (k % 3 == 2) b.u8(kState).u8(6).u8(kPoll).u8(kState).u8(1).u8(kPoll);
  }
  save("store", "remove-each-key", b.data());
  FuzzWriter c;
  c.u8(kConnect).u8(0).u8(kWrite).u8(1).u8(kCopyKey).u8(0);  // rx ring = tx ring
  c.u8(kWrite).u8(13).u8(k4096).u8(kState).u8(1).u8(kState).u8(4).u8(kPoll).u8(kForeignWrite).u8(0);
  c.u8(kRemove).u8(255).u8(kPoll).u8(kPeer);
  save("store", "shared-ring-dir-gone", c.data());
}

// fuzz_hvsock: each of issue 21's hostile clients, as action sequences (the selectors index hvsock_actions.hpp's
// tables), plus a well-behaved guest that dom0 copies into.
void hvsock_seeds() {
  using namespace pvnet::fuzz::hvsock;
  FuzzWriter attach;  // hello attach 0 and 5, get_domain of the pair and dom0
  attach.u8(kHello).u8(0).u8(4).u8(0).u8(0).u8(0).u8(kHello).u8(1).u8(2).u8(0).u8(0).u8(0);
  attach.u8(kHello).u8(1).u8(0).u8(1).u8(3).u8(3).u8(kGetDomain).u8(1).u8(5).u8(kGetDomain).u8(1).u8(4);
  attach.u8(kGetDomain).u8(1).u8(0).u8(kCheck);
  save("hvsock", "attach-and-get-domain", attach.data());
  FuzzWriter good;  // a proper guest: create, grant a page of its own, dom0 copies into it and maps it
  good.u8(kHello).u8(0).u8(0).u8(1).u8(3).u8(3);
  good.u8(kGrant).u8(0).u16(9).u32(2).u8(0).u8(kDom0Copy).u8(0).u16(9).u8(0).u8(63);
  good.u8(kGrant).u8(0).u16(10).u32(0xffffffffu).u8(0).u8(kDom0Copy).u8(0).u16(10).u8(3).u8(8);
  good.u8(kStore).u8(0).u8(1).u8(0).u8(7).u8(kStore).u8(0).u8(1).u8(2).u8(7).u8(kStore).u8(0).u8(4).u8(0).u8(4);
  good.u8(kCheck).u8(kClose).u8(0).u8(kCheck);
  save("hvsock", "good-guest-dom0-copies", good.data());
  FuzzWriter wrap;  // adopt: 2^52 + 4 pages, a region at 2^64 - 4, then a sane one that dom0 copies into
  wrap.u8(kAdopt).u8(0).u8(1).u8(3).u8(0).u8(1).u8(0).u8(6).u8(0).u8(kSealedMemfd).u8(6);
  wrap.u8(kAdopt).u8(1).u8(1).u8(3).u8(0).u8(2).u8(0).u8(2).u8(0).u8(kSealedMemfd).u8(6);
  wrap.u8(6).u8(2).u8(0).u8(kSealedMemfd).u8(6);
  wrap.u8(kAdopt).u8(2).u8(1).u8(3).u8(0).u8(2).u8(0).u8(2).u8(0).u8(kSealedMemfd).u8(6);
  wrap.u8(3).u8(2).u8(0).u8(kShrinkSealed).u8(6);
  wrap.u8(kGrant).u8(2).u16(9).u32(0xfffffffdu).u8(0).u8(kDom0Copy).u8(2).u16(9).u8(0).u8(63);
  wrap.u8(kGrant).u8(2).u16(11).u32(17).u8(0).u8(kDom0Copy).u8(2).u16(11).u8(0).u8(63).u8(kCheck);
  save("hvsock", "adopt-overflowing-regions", wrap.data());
  FuzzWriter unsealed;  // adopt unsealed RAM, truncate it; adopt tables; a pipe as RAM; a huge grant table
  unsealed.u8(kAdopt).u8(0).u8(2).u8(3).u8(0).u8(1).u8(0).u8(3).u8(0).u8(kUnsealedMemfd).u8(6);
  unsealed.u8(kTruncate).u8(0).u8(0).u8(kCheck);
  unsealed.u8(kAdopt).u8(1).u8(2).u8(3).u8(2 /* active table */).u8(1).u8(0).u8(2).u8(0).u8(kSealedMemfd).u8(6);
  unsealed.u8(kAdopt).u8(2).u8(2).u8(3).u8(0).u8(1).u8(0).u8(1).u8(0).u8(kPipe);
  unsealed.u8(kHello).u8(3).u8(3).u8(1).u8(3).u8(6).u8(kHello).u8(3).u8(3).u8(1).u8(3).u8(4);
  unsealed.u8(kGrant).u8(3).u16(32767).u32(1).u8(0).u8(kDom0Copy).u8(3).u16(32767).u8(0).u8(0).u8(kCheck);
  save("hvsock", "adopt-unsealed-tables-pipe-big-table", unsealed.data());
  FuzzWriter raw;  // malformed requests with fds before and after hello
  raw.u8(kRaw).u8(0).u8(1).u8(3).u8(0).u8(0).u8(0).u8(2).u8(kOwnSocket).u8(kEventfd);
  raw.u8(kRaw).u8(0).u8(0x82).u32(0xdeadbeef).u8(0).u8(1).u8(kDevNull);
  raw.u8(kHello).u8(0).u8(0).u8(1).u8(3).u8(3);
  raw.u8(kRaw).u8(0).u8(2).u8(4).u8(0xff).u8(0xff).u8(0xff).u8(0x7f).u8(1).u8(kSealedMemfd).u8(3);
  raw.u8(kRaw).u8(0).u8(14).u8(2).u8(1).u8(0).u8(0).u8(kRaw).u8(0).u8(13).u8(2).u8(3).u8(0).u8(0);
  raw.u8(kRaw).u8(0).u8(0).u32(999).u8(0).u8(0).u8(kCheck);
  save("hvsock", "malformed-with-fds", raw.data());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: fuzz_make_seeds OUTDIR TRACE.pcap...\n";
    return 2;
  }
  g_out = argv[1];
  std::vector<std::byte> good;
  for (int i = 2; i < argc; ++i) {
    const fs::path trace = argv[i];
    auto frames = PcapReader::read_all(trace.string(), PcapReaderOptions{SnappedFramePolicy::kSkip});
    if (!frames) {
      std::cerr << "fuzz_make_seeds: " << frames.error().reason << "\n";
      return 1;
    }
    const std::string tag = trace.stem().string();
    tx_seeds(tag, *frames);
    header_seeds(tag, *frames);
    pcap_seeds(tag, trace, *frames);
    for (const auto& f : *frames)
      if (good.empty() && f.data.size() >= 200 && f.data.size() <= 1514 && parse_headers(f.data).is_tcp()) good = f.data;
  }
  if (good.empty()) good.assign(200, std::byte{0});
  tx_violation_seeds(good);
  ctrl_seeds();
  store_seeds();
  hvsock_seeds();
  return 0;
}
