// The null sink: the header was copied out and parsed (that is the inspection); the payload is never touched.
// Models a header-only filter: dom0 pays nothing for the payload under any policy.
#pragma once
#include "backend/sink.hpp"

namespace pvnet {

class NullSink final : public Sink {
 public:
  std::string name() const override { return "null"; }
  bool reads_payload() const override { return false; }  // headers only
  SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) override;
  uint64_t packets() const { return packets_; }
  uint64_t malformed_headers() const { return malformed_; }

 private:
  uint64_t packets_ = 0;
  uint64_t malformed_ = 0;  // headers parse_headers() refused (still answered OKAY: a filter would pass them up)
};

}  // namespace pvnet
