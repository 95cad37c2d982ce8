// Ethernet captures in and out, over libpcap. The reader takes pcap and pcapng (libpcap's pcap_open_offline
// handles both) and refuses anything but DLT_EN10MB, because every layer above starts at an Ethernet header. A
// damaged file ends in an error that names the frame, never in a crash or a silent short read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shared-ring/result.hpp"

struct pcap;
struct pcap_dumper;

namespace pvnet {

inline constexpr uint32_t kPcapSnaplen = 262144;  // libpcap's MAXIMUM_SNAPLEN; larger caplens are refused on read

struct PcapFrame {
  uint64_t number = 0;      // 1-based position in the file, counting skipped frames too
  uint64_t ts_ns = 0;       // since the epoch, nanoseconds (a microsecond file gives multiples of 1000)
  uint32_t orig_len = 0;    // length on the wire; > data.size() only for a snapped frame kept by kKeep
  std::vector<std::byte> data;
  bool snapped() const { return orig_len > data.size(); }
};

// What to do with a frame the capture cut short (caplen < len, tcpdump -s).
enum class SnappedFramePolicy : uint8_t {
  kError,  // next() fails, naming the frame
  kSkip,   // next() passes over it; snapped_skipped() counts it
  kKeep,   // next() returns it; frame.snapped() is true
};

struct PcapReaderOptions {
  SnappedFramePolicy on_snapped = SnappedFramePolicy::kError;
};

class PcapReader {
 public:
  static Result<PcapReader> open(const std::string& path, PcapReaderOptions options = {});
  // Reads every frame; the first error ends it.
  static Result<std::vector<PcapFrame>> read_all(const std::string& path, PcapReaderOptions options = {});

  // true: `frame` holds the next frame (its buffer is reused). false: end of file. Error: corrupt or truncated
  // file, or a snapped frame under kError; the reason names the frame number. After an error, next() keeps
  // returning it.
  Result<bool> next(PcapFrame& frame);

  uint64_t frames_read() const { return frames_seen_; }   // records consumed, skipped ones included
  uint64_t snapped_skipped() const { return snapped_skipped_; }
  const std::string& path() const { return path_; }

  PcapReader(PcapReader&&) noexcept = default;
  PcapReader& operator=(PcapReader&&) noexcept = default;
  ~PcapReader() = default;

 private:
  struct Closer {
    void operator()(pcap* p) const;
  };
  PcapReader(std::string path, std::unique_ptr<pcap, Closer> handle, PcapReaderOptions options)
      : path_(std::move(path)), handle_(std::move(handle)), options_(options) {}

  std::string path_;
  std::unique_ptr<pcap, Closer> handle_;
  PcapReaderOptions options_;
  uint64_t frames_seen_ = 0;
  uint64_t snapped_skipped_ = 0;
  std::unique_ptr<Error> sticky_error_;
};

// Writes a pcap file: DLT_EN10MB, nanosecond timestamps, snaplen kPcapSnaplen. Closes (and flushes) on
// destruction; call close() to see the error a destructor would have to swallow.
class PcapWriter {
 public:
  static Result<PcapWriter> create(const std::string& path);

  // orig_len 0 means frame.size(). A frame longer than kPcapSnaplen is snapped to it (orig_len kept), as
  // tcpdump would, so the file stays readable by libpcap.
  Result<void> write(uint64_t ts_ns, std::span<const std::byte> frame, uint32_t orig_len = 0);
  Result<void> write(const PcapFrame& frame) { return write(frame.ts_ns, frame.data, frame.orig_len); }
  Result<void> flush();
  Result<void> close();

  uint64_t frames_written() const { return frames_written_; }

  PcapWriter(PcapWriter&&) noexcept = default;
  PcapWriter& operator=(PcapWriter&&) noexcept = default;
  ~PcapWriter() = default;

 private:
  struct PcapCloser {
    void operator()(pcap* p) const;
  };
  struct DumperCloser {
    void operator()(pcap_dumper* d) const;
  };
  PcapWriter(std::string path, std::unique_ptr<pcap, PcapCloser> dead, std::unique_ptr<pcap_dumper, DumperCloser> d)
      : path_(std::move(path)), dead_(std::move(dead)), dumper_(std::move(d)) {}

  std::string path_;
  // Declared before dumper_ so it is destroyed after it: the dumper was opened from this handle.
  std::unique_ptr<pcap, PcapCloser> dead_;
  std::unique_ptr<pcap_dumper, DumperCloser> dumper_;
  uint64_t frames_written_ = 0;
};

}  // namespace pvnet
