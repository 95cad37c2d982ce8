// libFuzzer target: PcapReader over any bytes (docs/fuzzing.md, "fuzz_pcap"). The bytes become a file (a memfd,
// read through /proc/self/fd: libpcap wants a path); the first byte picks the snapped-frame policy. Asserted:
// never a crash or sanitizer report; frames numbered 1, 2, ... in order; data within the snaplen; a snapped frame
// only under kKeep; an error after open names the frame it stopped at, and stays (next() repeats it).
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "tools/trace/pcap_io.hpp"
#include "tests/fuzz/fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pvnet;
  if (size == 0) return 0;
  const auto policy = static_cast<SnappedFramePolicy>(data[0] % 3);
  const int fd = memfd_create("fuzz.pcap", MFD_CLOEXEC);
  PVNET_FUZZ_CHECK(fd >= 0, "memfd_create failed");
  size_t done = 1;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    PVNET_FUZZ_CHECK(n > 0, "write to memfd failed");
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  {
    auto reader = PcapReader::open(path, PcapReaderOptions{policy});
    if (reader) {
      PcapFrame f;
      uint64_t returned = 0, last = 0;
      for (int i = 0; i < 100000; ++i) {
        auto more = reader->next(f);
        if (!more) {
          const std::string& why = more.error().reason;
          PVNET_FUZZ_CHECK(why.find("frame") != std::string::npos, "error without a frame: %s", why.c_str());
          auto again = reader->next(f);
          PVNET_FUZZ_CHECK(!again && again.error().reason == why, "a second next() after an error did not repeat it");
          break;
        }
        if (!*more) break;
        ++returned;
        PVNET_FUZZ_CHECK(f.number > last, "frame number %llu after %llu", (unsigned long long)f.number,
                         (unsigned long long)last);
        last = f.number;
        PVNET_FUZZ_CHECK(f.data.size() <= kPcapSnaplen, "frame of %zu bytes", f.data.size());
        PVNET_FUZZ_CHECK(!f.snapped() || policy == SnappedFramePolicy::kKeep, "snapped frame returned under policy %d",
                         static_cast<int>(policy));
        PVNET_FUZZ_CHECK(f.number <= reader->frames_read(), "frame %llu but %llu read", (unsigned long long)f.number,
                         (unsigned long long)reader->frames_read());
      }
      PVNET_FUZZ_CHECK(returned + reader->snapped_skipped() <= reader->frames_read(), "frames_read undercounts");
    }
  }
  close(fd);
  return 0;
}
