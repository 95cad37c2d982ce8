// PcapReader/PcapWriter against the real traces, a pcapng written by hand here (no pcapng writer is installed),
// non-Ethernet captures made with libpcap itself, cut files and snapped frames.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/common/test_traces.hpp"
#include "tools/trace/pcap_io.hpp"
#include "tools/process/temp_dir.hpp"

namespace pvnet {
namespace {

namespace fs = std::filesystem;

using pvnet::test_data::source_dir;

// The .pcap traces (pcapng ones are written by the tests themselves).
std::vector<fs::path> trace_files() {
  std::vector<fs::path> files;
  for (auto& p : pvnet::test_data::all_traces())
    if (p.extension() == ".pcap") files.push_back(p);
  return files;
}

// The command's TempDir (tools/process/temp_dir.hpp): one way to make a scratch directory.
pvnet::tools::TempDir scratch_dir() {
  auto t = pvnet::tools::TempDir::create("pvnet-pcap");
  if (!t) throw std::runtime_error(t.error().reason);
  return std::move(t).value();
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
uint32_t le32(const std::vector<uint8_t>& b, size_t off) {
  return b[off] | b[off + 1] << 8 | b[off + 2] << 16 | static_cast<uint32_t>(b[off + 3]) << 24;
}

// An independent walk over a little-endian classic pcap file: one entry per record.
struct RawRecord {
  size_t offset;
  uint64_t ts_ns;
  uint32_t caplen, len;
};
std::vector<RawRecord> walk_pcap(const std::vector<uint8_t>& file) {
  std::vector<RawRecord> recs;
  if (file.size() < 24) return recs;
  const bool nano = le32(file, 0) == 0xa1b23c4d;
  for (size_t off = 24; off + 16 <= file.size();) {
    RawRecord r{off, le32(file, off) * 1'000'000'000ull + le32(file, off + 4) * (nano ? 1ull : 1000ull),
                le32(file, off + 8), le32(file, off + 12)};
    if (off + 16 + r.caplen > file.size()) break;
    recs.push_back(r);
    off += 16 + r.caplen;
  }
  return recs;
}

// A minimal pcapng writer: section header, one interface description (with if_tsresol), enhanced packet blocks.
class PcapngBuilder {
 public:
  explicit PcapngBuilder(uint16_t linktype, uint8_t tsresol_exp10 = 9) {
    block(0x0A0D0D0A, [&] {
      put32(0x1A2B3C4D);
      put16(1);
      put16(0);
      put32(0xffffffff);
      put32(0xffffffff);  // section length: unknown
    });
    block(0x00000001, [&] {
      put16(linktype);
      put16(0);
      put32(262144);
      put16(9);  // if_tsresol
      put16(1);
      b_.push_back(tsresol_exp10);
      pad();
      put32(0);  // opt_endofopt
    });
  }
  void packet(uint64_t ts_units, const std::vector<std::byte>& data, uint32_t orig_len) {
    block(0x00000006, [&] {
      put32(0);
      put32(static_cast<uint32_t>(ts_units >> 32));
      put32(static_cast<uint32_t>(ts_units));
      put32(static_cast<uint32_t>(data.size()));
      put32(orig_len);
      for (std::byte x : data) b_.push_back(std::to_integer<uint8_t>(x));
      pad();
    });
  }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  template <class F>
  void block(uint32_t type, F body) {
    const size_t start = b_.size();
    put32(type);
    put32(0);
    body();
    const uint32_t total = static_cast<uint32_t>(b_.size() - start + 4);
    put32(total);
    std::memcpy(&b_[start + 4], &total, 4);
  }
  void put16(uint16_t v) { b_.push_back(static_cast<uint8_t>(v)); b_.push_back(static_cast<uint8_t>(v >> 8)); }
  void put32(uint32_t v) { put16(static_cast<uint16_t>(v)); put16(static_cast<uint16_t>(v >> 16)); }
  void pad() { while (b_.size() % 4) b_.push_back(0); }
  std::vector<uint8_t> b_;
};

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}
std::vector<std::byte> ethernet_frame(size_t len, int seed) {
  std::vector<std::byte> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<std::byte>((i * 31 + static_cast<size_t>(seed)) & 0xff);
  return f;
}

void expect_same_frames(const std::vector<PcapFrame>& a, const std::vector<PcapFrame>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].data, b[i].data) << what << " frame " << i + 1;
    ASSERT_EQ(a[i].ts_ns, b[i].ts_ns) << what << " frame " << i + 1;
    ASSERT_EQ(a[i].orig_len, b[i].orig_len) << what << " frame " << i + 1;
    ASSERT_EQ(a[i].number, b[i].number) << what;
  }
}

TEST(PcapReader, ReadsEveryTraceFrameForFrameAsTheFileHoldsIt) {
  const auto files = trace_files();
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    const auto raw = slurp(file.string());
    const auto recs = walk_pcap(raw);
    auto frames = PcapReader::read_all(file.string());
    ASSERT_TRUE(frames.ok()) << frames.error().reason;
    ASSERT_EQ(frames->size(), recs.size()) << file;
    ASSERT_FALSE(recs.empty()) << file;
    for (size_t i = 0; i < recs.size(); ++i) {
      const PcapFrame& f = (*frames)[i];
      EXPECT_EQ(f.number, i + 1);
      EXPECT_EQ(f.ts_ns, recs[i].ts_ns) << file << " frame " << i + 1;
      EXPECT_EQ(f.orig_len, recs[i].len);
      ASSERT_EQ(f.data.size(), recs[i].caplen);
      ASSERT_EQ(0, std::memcmp(f.data.data(), raw.data() + recs[i].offset + 16, f.data.size())) << file;
    }
  }
}

TEST(PcapWriter, RoundTripOfEveryTraceIsByteForByte) {
  pvnet::tools::TempDir tmp = scratch_dir();
  for (const auto& file : trace_files()) {
    auto original = PcapReader::read_all(file.string());
    ASSERT_TRUE(original.ok()) << original.error().reason;
    const std::string out = tmp.file(file.filename().string());
    {
      auto w = PcapWriter::create(out);
      ASSERT_TRUE(w.ok()) << w.error().reason;
      for (const PcapFrame& f : *original) ASSERT_TRUE(w->write(f).ok());
      EXPECT_EQ(w->frames_written(), original->size());
      ASSERT_TRUE(w->close().ok());
    }
    // The file is what the writer promises: nanosecond magic, Ethernet, snaplen 262144.
    const auto raw = slurp(out);
    ASSERT_GE(raw.size(), 24u);
    EXPECT_EQ(le32(raw, 0), 0xa1b23c4du);
    EXPECT_EQ(le32(raw, 16), kPcapSnaplen);
    EXPECT_EQ(le32(raw, 20), 1u);  // LINKTYPE_ETHERNET
    auto again = PcapReader::read_all(out);
    ASSERT_TRUE(again.ok()) << again.error().reason;
    expect_same_frames(*original, *again, file.filename().string());
  }
}

TEST(PcapWriter, KeepsNanosecondsAndClosesOnDestruction) {
  pvnet::tools::TempDir tmp = scratch_dir();
  const std::string out = tmp.file("ns.pcap");
  const uint64_t ts = 1'700'000'000'123'456'789ull;
  {
    auto w = PcapWriter::create(out);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(ts, ethernet_frame(60, 1)).ok());
    ASSERT_TRUE(w->write(ts + 1, ethernet_frame(1514, 2)).ok());
  }  // no close(): the destructor must flush
  auto frames = PcapReader::read_all(out);
  ASSERT_TRUE(frames.ok()) << frames.error().reason;
  ASSERT_EQ(frames->size(), 2u);
  EXPECT_EQ((*frames)[0].ts_ns, ts);
  EXPECT_EQ((*frames)[1].ts_ns, ts + 1);
  EXPECT_EQ((*frames)[1].data, ethernet_frame(1514, 2));
}

TEST(PcapWriter, ErrorsAreValues) {
  pvnet::tools::TempDir tmp = scratch_dir();
  auto bad = PcapWriter::create(tmp.file("no/such/dir/x.pcap"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().reason.find("no/such/dir"), std::string::npos);

  auto w = PcapWriter::create(tmp.file("e.pcap"));
  ASSERT_TRUE(w.ok());
  auto short_orig = w->write(0, ethernet_frame(100, 0), 99);
  ASSERT_FALSE(short_orig.ok());
  EXPECT_NE(short_orig.error().reason.find("orig_len"), std::string::npos);
  ASSERT_TRUE(w->close().ok());
  EXPECT_FALSE(w->write(0, ethernet_frame(60, 0)).ok());
  EXPECT_FALSE(w->flush().ok());
}

TEST(PcapWriter, FrameLongerThanSnaplenIsSnappedSoTheFileStaysReadable) {
  pvnet::tools::TempDir tmp = scratch_dir();
  const std::string out = tmp.file("big.pcap");
  const auto big = ethernet_frame(kPcapSnaplen + 100, 3);
  {
    auto w = PcapWriter::create(out);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(5, big).ok());
  }
  auto frames = PcapReader::read_all(out, {SnappedFramePolicy::kKeep});
  ASSERT_TRUE(frames.ok()) << frames.error().reason;
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_EQ((*frames)[0].data.size(), kPcapSnaplen);
  EXPECT_EQ((*frames)[0].orig_len, kPcapSnaplen + 100);
  EXPECT_TRUE((*frames)[0].snapped());
}

TEST(PcapReader, ReadsPcapngWithNanosecondTimestamps) {
  pvnet::tools::TempDir tmp = scratch_dir();
  for (const auto& file : trace_files()) {
    auto frames = PcapReader::read_all(file.string());
    ASSERT_TRUE(frames.ok());
    PcapngBuilder ng(1);
    for (PcapFrame& f : *frames) {
      f.ts_ns += f.number % 1000;  // sub-microsecond digits a microsecond pcap could not hold
      ng.packet(f.ts_ns, f.data, f.orig_len);
    }
    const std::string out = tmp.file(file.stem().string() + ".pcapng");
    spit(out, ng.bytes());
    auto back = PcapReader::read_all(out);
    ASSERT_TRUE(back.ok()) << back.error().reason;
    expect_same_frames(*frames, *back, out);
  }
}

TEST(PcapReader, ReadsMicrosecondPcapngAsNanoseconds) {
  pvnet::tools::TempDir tmp = scratch_dir();
  PcapngBuilder ng(1, 6);
  ng.packet(1'700'000'000'000'001ull, ethernet_frame(60, 0), 60);
  const std::string out = tmp.file("us.pcapng");
  spit(out, ng.bytes());
  auto back = PcapReader::read_all(out);
  ASSERT_TRUE(back.ok()) << back.error().reason;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].ts_ns, 1'700'000'000'000'001'000ull);
}

void write_with_libpcap(const std::string& path, int dlt) {
  pcap_t* dead = pcap_open_dead(dlt, 65535);
  ASSERT_NE(dead, nullptr);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  ASSERT_NE(d, nullptr) << pcap_geterr(dead);
  const auto frame = bytes_of({0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2});
  pcap_pkthdr hdr{};
  hdr.caplen = hdr.len = static_cast<bpf_u_int32>(frame.size());
  pcap_dump(reinterpret_cast<u_char*>(d), &hdr, reinterpret_cast<const u_char*>(frame.data()));
  pcap_dump_close(d);
  pcap_close(dead);
}

TEST(PcapReader, RefusesNonEthernetLinkTypesByName) {
  pvnet::tools::TempDir tmp = scratch_dir();
  const struct {
    int dlt;
    const char* name;
  } cases[] = {{DLT_RAW, "RAW"}, {DLT_LINUX_SLL, "LINUX_SLL"}, {DLT_LINUX_SLL2, "LINUX_SLL2"}};
  for (const auto& c : cases) {
    const std::string path = tmp.file(std::string(c.name) + ".pcap");
    write_with_libpcap(path, c.dlt);
    auto r = PcapReader::open(path);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error().reason.find(std::string("(") + c.name + ":"), std::string::npos) << r.error().reason;
    EXPECT_NE(r.error().reason.find("DLT_EN10MB"), std::string::npos) << r.error().reason;
  }
  PcapngBuilder ng(101);  // LINKTYPE_RAW in a pcapng
  ng.packet(0, bytes_of({0x45, 0, 0, 20}), 4);
  spit(tmp.file("raw.pcapng"), ng.bytes());
  auto r = PcapReader::open(tmp.file("raw.pcapng"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("RAW"), std::string::npos) << r.error().reason;
}

TEST(PcapReader, CutFileEndsInAnErrorNamingTheFrame) {
  pvnet::tools::TempDir tmp = scratch_dir();
  const fs::path trace = source_dir() / "traces" / "ipv4-frag-ping.pcap";
  const auto raw = slurp(trace.string());
  const auto recs = walk_pcap(raw);
  ASSERT_GE(recs.size(), 3u);
  const size_t n = recs.size();
  // Cut inside the last frame's data, and inside the last record header.
  const size_t cuts[] = {recs[n - 1].offset + 16 + recs[n - 1].caplen / 2, recs[n - 1].offset + 7};
  for (size_t cut : cuts) {
    const std::string path = tmp.file("cut.pcap");
    spit(path, std::vector<uint8_t>(raw.begin(), raw.begin() + static_cast<ptrdiff_t>(cut)));
    auto r = PcapReader::open(path);
    ASSERT_TRUE(r.ok()) << r.error().reason;
    PcapFrame f;
    for (size_t i = 0; i + 1 < n; ++i) {
      auto more = r->next(f);
      ASSERT_TRUE(more.ok()) << more.error().reason;
      ASSERT_TRUE(*more);
    }
    auto last = r->next(f);
    ASSERT_FALSE(last.ok()) << "cut at " << cut;
    EXPECT_NE(last.error().reason.find("frame " + std::to_string(n)), std::string::npos) << last.error().reason;
    EXPECT_NE(last.error().reason.find("truncated"), std::string::npos) << last.error().reason;
    EXPECT_FALSE(r->next(f).ok());  // the error sticks
  }
}

TEST(PcapReader, GarbageAndCorruptRecordsAreErrorsNotCrashes) {
  pvnet::tools::TempDir tmp = scratch_dir();
  spit(tmp.file("garbage.pcap"), std::vector<uint8_t>(100, 0x5a));
  EXPECT_FALSE(PcapReader::open(tmp.file("garbage.pcap")).ok());
  EXPECT_FALSE(PcapReader::open(tmp.file("missing.pcap")).ok());
  spit(tmp.file("empty.pcap"), {});
  EXPECT_FALSE(PcapReader::open(tmp.file("empty.pcap")).ok());

  // A valid header and first record, then a record claiming a 3 GB caplen.
  auto raw = slurp((source_dir() / "traces" / "ipv4-frag-ping.pcap").string());
  const auto recs = walk_pcap(raw);
  ASSERT_GE(recs.size(), 2u);
  raw[recs[1].offset + 8 + 3] = 0xc0;
  spit(tmp.file("corrupt.pcap"), raw);
  auto r = PcapReader::read_all(tmp.file("corrupt.pcap"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("frame 2"), std::string::npos) << r.error().reason;
}

TEST(PcapReader, SnappedFrameIsAnErrorOrSkippedOrKeptAsAsked) {
  pvnet::tools::TempDir tmp = scratch_dir();
  const std::string path = tmp.file("snapped.pcap");
  {
    auto w = PcapWriter::create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(1, ethernet_frame(60, 1)).ok());
    ASSERT_TRUE(w->write(2, ethernet_frame(96, 2), 1514).ok());  // as tcpdump -s 96 would record it
    ASSERT_TRUE(w->write(3, ethernet_frame(60, 3)).ok());
  }
  auto as_error = PcapReader::read_all(path);
  ASSERT_FALSE(as_error.ok());
  EXPECT_NE(as_error.error().reason.find("frame 2"), std::string::npos) << as_error.error().reason;
  EXPECT_NE(as_error.error().reason.find("caplen 96 < len 1514"), std::string::npos) << as_error.error().reason;

  auto skip = PcapReader::open(path, {SnappedFramePolicy::kSkip});
  ASSERT_TRUE(skip.ok());
  std::vector<uint64_t> numbers;
  PcapFrame f;
  for (;;) {
    auto more = skip->next(f);
    ASSERT_TRUE(more.ok()) << more.error().reason;
    if (!*more) break;
    numbers.push_back(f.number);
    EXPECT_FALSE(f.snapped());
  }
  EXPECT_EQ(numbers, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(skip->snapped_skipped(), 1u);
  EXPECT_EQ(skip->frames_read(), 3u);

  auto keep = PcapReader::read_all(path, {SnappedFramePolicy::kKeep});
  ASSERT_TRUE(keep.ok());
  ASSERT_EQ(keep->size(), 3u);
  EXPECT_TRUE((*keep)[1].snapped());
  EXPECT_EQ((*keep)[1].data, ethernet_frame(96, 2));
  EXPECT_EQ((*keep)[1].orig_len, 1514u);
}

}  // namespace
}  // namespace pvnet
