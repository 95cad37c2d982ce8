// The pcap sink: writes each frame (header bytes + payload) to a capture file. It must read the payload, so under
// the `slots` policy every payload page it touches costs one lazy map (a fault); the pages are given back, in one
// batched unmap, at the end of the poll.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tools/trace/pcap_io.hpp"
#include "backend/sink.hpp"

namespace pvnet {

class PcapSink final : public Sink {
 public:
  using Clock = std::function<uint64_t()>;  // timestamp for each written frame, ns since the epoch
  static Result<std::unique_ptr<PcapSink>> create(const std::string& path, Clock clock = {});
  PcapSink(PcapWriter writer, Clock clock);

  std::string name() const override { return "pcap"; }
  bool reads_payload() const override { return true; }  // it writes every byte
  SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) override;
  void end_poll() override;
  Result<void> close() { return writer_.close(); }
  uint64_t frames_written() const { return writer_.frames_written(); }

 private:
  PcapWriter writer_;
  Clock clock_;
  std::vector<std::byte> frame_;  // reused gather buffer
};

}  // namespace pvnet
