#include "backend/null_sink.hpp"

namespace pvnet {

SinkResult NullSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  (void)payload;
  (void)src;
  ++packets_;
  if (!pkt.hdr.ok()) ++malformed_;
  return SinkResult::okay();
}

}  // namespace pvnet
