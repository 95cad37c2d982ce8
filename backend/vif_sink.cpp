#include "backend/vif_sink.hpp"

#include <cerrno>

namespace pvnet {

bool VifSink::ready(VifId src) const {
  (void)src;
  return backend_.rx_has_room(dst_);
}

SinkResult VifSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  (void)payload;  // forwarded gref -> gref: the payload is never made readable in dom0
  (void)src;
  if (!backend_.rx_connected(dst_)) return SinkResult::drop(netif::rsp::dropped, "dest_not_connected");
  RxFrame f;
  f.len = pkt.len;
  f.gso = pkt.gso;
  if (pkt.tx_flags & netif::txf::csum_blank) f.rx_flags |= netif::rxf::csum_blank;
  if (pkt.tx_flags & netif::txf::data_validated) f.rx_flags |= netif::rxf::data_validated;
  f.local = std::move(pkt.header);
  f.frags = std::move(pkt.frags);
  f.payload_copy = std::move(pkt.payload_copy);  // a policy that copied the payload (copy): sent from dom0 memory
  f.has_completion = true;
  f.completion = pkt.completion;  // copied (inline, small): a refused frame is answered from pkt.completion
  if (auto ok = backend_.queue_rx(dst_, std::move(f)); !ok) {
    const int code = ok.error().code;
    return SinkResult::drop(netif::rsp::dropped, code == EPIPE     ? "dest_rx_stalled"
                                                 : code == ENOBUFS ? "dest_rx_full"
                                                                   : "dest_not_connected");
  }
  return SinkResult::held();
}

}  // namespace pvnet
