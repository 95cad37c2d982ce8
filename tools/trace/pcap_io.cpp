#include "tools/trace/pcap_io.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace pvnet {

namespace {

std::string link_type_name(int dlt) {
  const char* name = pcap_datalink_val_to_name(dlt);
  const char* desc = pcap_datalink_val_to_description(dlt);
  std::string s = "DLT " + std::to_string(dlt);
  if (name != nullptr) s += std::string(" (") + name + (desc != nullptr ? std::string(": ") + desc : "") + ")";
  return s;
}

}  // namespace

void PcapReader::Closer::operator()(pcap* p) const { pcap_close(p); }

Result<PcapReader> PcapReader::open(const std::string& path, PcapReaderOptions options) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // Asking for nanoseconds makes libpcap scale a microsecond file up, so ts is always in ns.
  pcap* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) return make_error(EINVAL, path + ": cannot open capture: " + errbuf);
  std::unique_ptr<pcap, Closer> handle(p);
  const int dlt = pcap_datalink(p);
  if (dlt != DLT_EN10MB) {
    return make_error(EPROTONOSUPPORT, path + ": link type " + link_type_name(dlt) +
                                           " is not Ethernet; pvnet reads only DLT_EN10MB (1) captures");
  }
  return PcapReader(path, std::move(handle), options);
}

Result<std::vector<PcapFrame>> PcapReader::read_all(const std::string& path, PcapReaderOptions options) {
  auto reader = open(path, options);
  if (!reader) return reader.error();
  std::vector<PcapFrame> frames;
  for (;;) {
    PcapFrame f;
    auto more = reader->next(f);
    if (!more) return more.error();
    if (!*more) return frames;
    frames.push_back(std::move(f));
  }
}

Result<bool> PcapReader::next(PcapFrame& frame) {
  if (sticky_error_) return *sticky_error_;
  for (;;) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(handle_.get(), &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) return false;  // end of file
    const uint64_t number = frames_seen_ + 1;
    if (rc != 1) {
      // libpcap says "truncated dump file; tried to read N captured bytes, only got M" and the like.
      sticky_error_ = std::make_unique<Error>(make_error(
          EIO, path_ + ": frame " + std::to_string(number) + ": " + pcap_geterr(handle_.get())));
      return *sticky_error_;
    }
    ++frames_seen_;
    if (hdr->caplen < hdr->len) {
      if (options_.on_snapped == SnappedFramePolicy::kSkip) {
        ++snapped_skipped_;
        continue;
      }
      if (options_.on_snapped == SnappedFramePolicy::kError) {
        sticky_error_ = std::make_unique<Error>(make_error(
            EMSGSIZE, path_ + ": frame " + std::to_string(number) + " is truncated by the capture: caplen " +
                          std::to_string(hdr->caplen) + " < len " + std::to_string(hdr->len)));
        return *sticky_error_;
      }
    }
    frame.number = number;
    frame.ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
    frame.orig_len = hdr->len < hdr->caplen ? hdr->caplen : hdr->len;  // a len < caplen record is nonsense
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    frame.data.assign(bytes, bytes + hdr->caplen);
    return true;
  }
}

void PcapWriter::PcapCloser::operator()(pcap* p) const { pcap_close(p); }
void PcapWriter::DumperCloser::operator()(pcap_dumper* d) const { pcap_dump_close(d); }

Result<PcapWriter> PcapWriter::create(const std::string& path) {
  std::unique_ptr<pcap, PcapCloser> dead(
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, static_cast<int>(kPcapSnaplen), PCAP_TSTAMP_PRECISION_NANO));
  if (!dead) return make_error(ENOMEM, path + ": pcap_open_dead failed");
  pcap_dumper* d = pcap_dump_open(dead.get(), path.c_str());
  if (d == nullptr) return make_error(EIO, path + ": cannot create capture: " + pcap_geterr(dead.get()));
  return PcapWriter(path, std::move(dead), std::unique_ptr<pcap_dumper, DumperCloser>(d));
}

Result<void> PcapWriter::write(uint64_t ts_ns, std::span<const std::byte> frame, uint32_t orig_len) {
  if (!dumper_) return make_error(EBADF, path_ + ": write after close");
  const uint64_t wire_len = orig_len != 0 ? orig_len : frame.size();
  if (wire_len < frame.size()) {
    return make_error(EINVAL, path_ + ": orig_len " + std::to_string(orig_len) + " < captured length " +
                                  std::to_string(frame.size()));
  }
  if (wire_len > UINT32_MAX) return make_error(EMSGSIZE, path_ + ": frame longer than 4 GiB");
  pcap_pkthdr hdr{};
  hdr.ts.tv_sec = static_cast<time_t>(ts_ns / 1'000'000'000ull);
  hdr.ts.tv_usec = static_cast<suseconds_t>(ts_ns % 1'000'000'000ull);  // ns: the dumper was opened NANO
  hdr.caplen = static_cast<bpf_u_int32>(frame.size() < kPcapSnaplen ? frame.size() : kPcapSnaplen);
  hdr.len = static_cast<bpf_u_int32>(wire_len);
  pcap_dump(reinterpret_cast<u_char*>(dumper_.get()), &hdr, reinterpret_cast<const u_char*>(frame.data()));
  if (std::ferror(pcap_dump_file(dumper_.get())) != 0) {
    return make_error(EIO, path_ + ": write failed at frame " + std::to_string(frames_written_ + 1));
  }
  ++frames_written_;
  return {};
}

Result<void> PcapWriter::flush() {
  if (!dumper_) return make_error(EBADF, path_ + ": flush after close");
  if (pcap_dump_flush(dumper_.get()) != 0) return make_error(EIO, path_ + ": flush failed: " + std::strerror(errno));
  return {};
}

Result<void> PcapWriter::close() {
  if (!dumper_) return {};
  auto flushed = flush();
  FILE* f = pcap_dump_file(dumper_.get());
  const bool had_error = std::ferror(f) != 0;
  // pcap_dump_close() fcloses and swallows the result; flush first so the error, if any, is seen above.
  dumper_.reset();
  dead_.reset();
  if (!flushed) return flushed;
  if (had_error) return make_error(EIO, path_ + ": write error");
  return {};
}

}  // namespace pvnet
