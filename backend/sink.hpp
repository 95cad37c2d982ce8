// Where a TX packet goes once the backend has judged it. A sink answers at once (done: OKAY, or a drop with its
// reason) or keeps the packet and has the backend answer later (held: the vif sink, whose grant copy into the
// destination guest happens in the RX phase of the same or a later poll).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "backend/counters.hpp"
#include "backend/payload_policy.hpp"
#include "backend/tx_packet.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet {

struct SinkResult {
  enum class Kind : uint8_t { done, held };
  Kind kind = Kind::done;
  int16_t status = netif::rsp::okay;  // for done: NETIF_RSP_OKAY, _ERROR or _DROPPED
  std::optional<DropReason> drop_reason;  // for a done that is not OKAY: counted in BackendCounters::dropped

  static SinkResult okay() { return {}; }
  static SinkResult drop(int16_t status, DropReason reason) { return {Kind::done, status, reason}; }
  static SinkResult held() { return {Kind::held, netif::rsp::okay, std::nullopt}; }
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;
  // Back-pressure: may a packet from `src` be taken now? false: the backend stops consuming src's TX ring for
  // this poll (the requests stay on the ring; nothing is dropped).
  virtual bool ready(VifId src) const {
    (void)src;
    return true;
  }
  // Takes the packet. On held the sink has moved the packet (its completion included) away; on done the backend
  // answers pkt.completion with the result's status. `src` are the source vif's counters (the sink adds what it
  // made dom0 do: payload bytes read, pages touched).
  virtual SinkResult consume(TxPacket& pkt, PayloadPolicy& payload, BackendCounters& src) = 0;
  // Whether consume() reads the payload bytes (through PayloadPolicy::expose). The payload policy decides from it
  // before the poll's batches run: auto copies the payload of a reading sink and leaves the others' unmapped.
  // Assumed by default, which is always correct (a sink that never reads only makes auto copy for nothing).
  virtual bool reads_payload() const { return true; }
  // Once per poll, after every packet of the poll went through.
  virtual void end_poll() {}
};

}  // namespace pvnet
