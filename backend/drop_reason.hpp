// Why the backend dropped a packet (answered it NETIF_RSP_ERROR or _DROPPED, or lost a queued frame): one name per
// reason, and its counter key. The keys are the JSON keys of BackendCounters::dropped, so they are part of the
// output format: to_string() is the one place they are spelled.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <nlohmann/json_fwd.hpp>

namespace pvnet {

enum class DropReason : uint8_t {
  // TX, judged by the backend (an odd but legal packet: xenvif_tx_err, the vif keeps running).
  dup_id,                        // a request id still in flight
  too_many_slots,                // more than XEN_NETIF_NR_SLOTS_MIN slots
  first_size_smaller_than_rest,  // the first request's size is less than the following ones' sum
  runt,                          // shorter than an Ethernet header
  bad_header_grant,              // the header's grant copy (or map) failed
  bad_payload_grant,             // a payload grant could not be mapped, copied or read
  over_mtu,                      // a non-GSO frame longer than the vif's MTU
  // TX, at the sink.
  payload_unavailable,           // the payload policy could not expose the payload to a reading sink
  pcap_write_error,
  tap_gso_not_tcp,               // a GSO type the TAP's virtio_net_hdr cannot carry
  tap_queue_full,
  tap_write_error,
  dest_not_connected,            // vif sink: the destination guest is not connected
  dest_rx_stalled,               // vif sink: the destination stopped consuming RX
  dest_rx_full,                  // vif sink: the destination's RX queue is full
  // A frame queued for a guest's RX and lost there.
  src_gone,                      // its source disconnected (its grants are about to end)
  dest_gone,                     // the destination disconnected
  dest_disabled,                 // the destination broke the protocol
  rx_stalled,                    // the destination was found stalled, or a local frame to a stalled guest
  rx_queue_full,                 // a local frame to a full RX queue
  // RX, judged when the frame meets the guest's buffers.
  rx_bad_length,                 // empty, or longer than a netif frame can be
  rx_no_sg,                      // more than one buffer for a frontend without feature-sg
  rx_no_gso,                     // a GSO type the frontend did not ask for
  rx_too_many_slots,             // more buffers than its RX ring holds
  rx_copy_error,                 // the grant copy into the guest's buffers failed
};
inline constexpr size_t kDropReasons = static_cast<size_t>(DropReason::rx_copy_error) + 1;

// The counter key (a JSON key of BackendCounters::dropped).
std::string_view to_string(DropReason r);
// The reason whose key is `key`, if any.
std::optional<DropReason> drop_reason_from(std::string_view key);

// Packets dropped, per reason.
class DropCounts {
 public:
  uint64_t& operator[](DropReason r) { return n_[static_cast<size_t>(r)]; }
  uint64_t operator[](DropReason r) const { return n_[static_cast<size_t>(r)]; }
  uint64_t total() const;
  DropCounts& operator+=(const DropCounts& o);
  // Saturates at 0 (a window of a counter that was reset in between).
  DropCounts& operator-=(const DropCounts& o);
  bool operator==(const DropCounts&) const = default;
  // key -> count of the reasons counted at least once (for a report that merges them with other counts).
  std::map<std::string, uint64_t> by_key() const;

 private:
  std::array<uint64_t, kDropReasons> n_{};
};

// {key: count} of the reasons counted at least once, as the std::map<string, uint64_t> it replaces printed.
void to_json(nlohmann::json& j, const DropCounts& d);
std::ostream& operator<<(std::ostream& os, const DropCounts& d);  // key:count,key:count

}  // namespace pvnet
