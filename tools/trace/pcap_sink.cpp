#include "tools/trace/pcap_sink.hpp"

#include <cstring>
#include <ctime>

namespace pvnet {

namespace {
uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

Result<std::unique_ptr<PcapSink>> PcapSink::create(const std::string& path, Clock clock) {
  auto w = PcapWriter::create(path);
  if (!w) return w.error();
  return std::make_unique<PcapSink>(std::move(w).value(), std::move(clock));
}

PcapSink::PcapSink(PcapWriter writer, Clock clock)
    : writer_(std::move(writer)), clock_(clock ? std::move(clock) : Clock(realtime_ns)) {}

SinkResult PcapSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  if (auto ok = payload.expose(pkt); !ok) return SinkResult::drop(netif::rsp::error, DropReason::payload_unavailable);
  frame_.assign(pkt.header.begin(), pkt.header.end());
  frame_.resize(pkt.len);
  size_t at = pkt.header.size();
  for (const auto& f : pkt.frags) {
    // The read that faults the page in (slots) or reads the mapped/copied page (other policies).
    std::memcpy(frame_.data() + at, f.data, f.len);
    at += f.len;
  }
  src.backend_memcpy_bytes += pkt.payload_len();
  uint64_t touched = 0;
  auto verified = payload.verify(pkt, &touched);
  src.payload_pages_touched += touched;
  if (!verified) return SinkResult::drop(netif::rsp::error, DropReason::bad_payload_grant);
  if (auto ok = writer_.write(clock_(), frame_); !ok) return SinkResult::drop(netif::rsp::error, DropReason::pcap_write_error);
  return SinkResult::okay();
}

void PcapSink::end_poll() { (void)writer_.flush(); }

}  // namespace pvnet
