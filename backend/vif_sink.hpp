// The vif sink: forwards a packet to another vif's guest (its RX). Nothing is mapped in dom0: the header goes by
// grant copy from the backend's private copy, the payload by grant copy from the source guest's grant straight
// into the destination guest's posted buffer. The source's TX requests are answered once that copy is done. When
// the destination has no buffers the packet waits in its bounded RX queue; once that is full the sink reports
// not-ready and the backend stops consuming the source's TX ring (back-pressure, nothing dropped).
#pragma once
#include "backend/backend.hpp"
#include "backend/sink.hpp"

namespace pvnet {

class VifSink final : public Sink {
 public:
  VifSink(Backend& backend, VifId destination) : backend_(backend), dst_(destination) {}
  std::string name() const override { return "vif"; }
  bool reads_payload() const override { return false; }  // forwarded by grant copy, never read by dom0's CPU
  bool ready(VifId src) const override;
  SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) override;
  VifId destination() const { return dst_; }

 private:
  Backend& backend_;
  VifId dst_;
};

}  // namespace pvnet
