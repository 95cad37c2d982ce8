#include "backend/vif_sink.hpp"

namespace pvnet {

bool VifSink::ready(VifId src) const {
  (void)src;
  return backend_.rx_has_room(dst_);
}

SinkResult VifSink::consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) {
  (void)payload;  // forwarded gref -> gref: the payload is never made readable in dom0
  (void)src;
  if (!backend_.rx_connected(dst_)) return SinkResult::drop(netif::rsp::dropped, DropReason::dest_not_connected);
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
  switch (backend_.queue_rx(dst_, std::move(f))) {
    case QueueRx::ok: return SinkResult::held();
    case QueueRx::stalled: return SinkResult::drop(netif::rsp::dropped, DropReason::dest_rx_stalled);
    case QueueRx::full: return SinkResult::drop(netif::rsp::dropped, DropReason::dest_rx_full);
    case QueueRx::not_connected: break;
  }
  return SinkResult::drop(netif::rsp::dropped, DropReason::dest_not_connected);
}

}  // namespace pvnet
