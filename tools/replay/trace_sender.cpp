#include "tools/replay/trace_sender.hpp"

#include "tools/replay/guest_drop.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

#include "tools/trace/pcap_io.hpp"
#include "shared-ring/packet_headers.hpp"
#include "tools/replay/progress.hpp"

namespace pvnet::tools {
namespace {

constexpr uint32_t kMaxNetifPacket = 0xFFFF;  // netif_tx_request.size is 16 bits

struct FramePlan {
  TxOptions tx;
  std::optional<std::string> refuse;  // a frame netif cannot carry at all
};

// How a guest stack would hand this frame to netfront: TCP longer than the MTU is a GSO super-frame.
FramePlan plan_frame(std::span<const std::byte> frame, uint32_t mtu) {
  FramePlan plan;
  if (frame.size() > kMaxNetifPacket) {
    plan.refuse = "too_long_for_netif";
    return plan;
  }
  HeaderInfo h = parse_headers(frame);
  uint32_t l3_len = static_cast<uint32_t>(frame.size()) - h.l2_len;
  if (h.ok() && l3_len > mtu && (h.is_tcpv4() || h.is_tcpv6())) {
    uint32_t hdrs = (h.l4_off - h.l2_len) + h.l4_len;
    plan.tx.gso_type = h.is_tcpv4() ? netif::gso_type::tcpv4 : netif::gso_type::tcpv6;
    plan.tx.gso_size = static_cast<uint16_t>(mtu > hdrs ? mtu - hdrs : 536);
    plan.tx.csum_blank = true;
  }
  return plan;
}

}  // namespace

TraceSender::TraceSender(Netfront& front, GuestPagePool& pool, SendOptions options)
    : front_(front), pool_(pool), opt_(std::move(options)), source_(front, [this](const TxDone& done) {
        stats_.completed++;
        if (done.status == netif::rsp::okay) stats_.completed_ok++;
      }) {}

bool TraceSender::stop_requested() {
  if (!stats_.stopped && opt_.stop && opt_.stop()) stats_.stopped = true;
  return stats_.stopped;
}

Result<void> TraceSender::run(const std::function<size_t()>& poll) {
  if (auto r = send_all(poll); !r) return r;
  return drain(poll);
}

Result<void> TraceSender::send_all(const std::function<size_t()>& poll) {
  Progress progress("send " + opt_.trace, 0, opt_.progress);
  for (uint32_t round = 0; round < opt_.repeat && !stop_requested(); ++round) {
    auto reader = PcapReader::open(opt_.trace);
    if (!reader) return reader.error();
    PcapFrame frame;
    while (!stop_requested()) {
      auto more = reader->next(frame);
      if (!more) return more.error();
      if (!*more) break;
      stats_.packets_in++;
      stats_.bytes_in += frame.data.size();
      FramePlan plan = plan_frame(frame.data, opt_.mtu);
      if (plan.refuse) {
        stats_.refused[*plan.refuse]++;
        continue;
      }
      std::optional<PlacedFrame> placed;
      for (;;) {
        auto p = place_frame(pool_, frame.data, opt_.data_offset);
        if (p) {
          placed.emplace(std::move(p).value());
          break;
        }
        if (poll() == 0 && source_.in_flight().empty()) return make_error(ENOMEM, "the guest ran out of pages");
        if (stop_requested()) break;
      }
      if (!placed) {
        // Read, never queued: the stop came while it waited for pages.
        count_drop(stats_.refused, GuestDrop::stopped);
        break;
      }
      bool queued = false;
      for (;;) {
        TxStatus st = source_.transmit(placed, plan.tx);
        if (st == TxStatus::kQueued) {
          queued = true;  // in flight: its pages are the Source's until the TxDone
          break;
        }
        if (st == TxStatus::kInvalid) {
          count_drop(stats_.refused, GuestDrop::frontend_refused);
          placed.reset();
          break;
        }
        if (st == TxStatus::kNotConnected && !(opt_.await_reconnect && opt_.await_reconnect())) {
          if (!stop_requested()) return make_error(ENOTCONN, "netfront lost its connection");
          count_drop(stats_.refused, GuestDrop::stopped);
          return {};
        }
        poll();  // busy: let the backend make room
        if (stop_requested()) {
          count_drop(stats_.refused, GuestDrop::stopped);
          return {};
        }
      }
      if (queued) stats_.queued++;
      if ((stats_.packets_in & 63) == 0) {
        poll();
        progress.update(stats_.packets_in);
      }
    }
  }
  progress.finish();
  return {};
}

Result<void> TraceSender::drain(const std::function<size_t()>& poll) {
  using Clock = std::chrono::steady_clock;
  auto deadline_after = [this] {
    return Clock::now() + (stats_.stopped ? std::chrono::milliseconds(opt_.stop_drain_ms)
                                          : std::chrono::milliseconds(opt_.drain_timeout_s * 1000LL));
  };
  const bool stopped_before = stats_.stopped;
  auto deadline = deadline_after();
  while (stats_.completed < stats_.queued) {
    if (!stopped_before && stop_requested()) deadline = std::min(deadline, deadline_after());
    if (poll() == 0 && Clock::now() > deadline) {
      if (stats_.stopped) return {};  // the rest is counted in flight (queued - completed)
      return make_error(ETIMEDOUT, std::to_string(stats_.queued - stats_.completed) + " frames still in flight " +
                                       std::to_string(opt_.drain_timeout_s) + " s after the last transmit");
    }
    if (front_.state() != NetfrontState::kConnected && !(opt_.await_reconnect && opt_.await_reconnect())) {
      if (stop_requested()) return {};
      return make_error(ENOTCONN, "netfront lost its connection with frames in flight");
    }
  }
  return {};
}

}  // namespace pvnet::tools
