#include "tools/replay/source.hpp"

namespace pvnet::tools {

Source::Source(Netfront& front, std::function<void(const TxDone&)> on_done)
    : front_(front), on_done_(std::move(on_done)) {
  front_.on_tx_complete([this](const TxDone& done) {
    in_flight_.release(done.cookie);  // the guest gets its pages back
    if (on_done_) on_done_(done);
  });
}

Source::~Source() { front_.on_tx_complete([](const TxDone&) {}); }

TxStatus Source::transmit(std::optional<PlacedFrame>& placed, TxOptions& tx) {
  tx.cookie = in_flight_.next_cookie();
  const TxStatus st = front_.transmit(placed->pieces(), tx);
  if (st == TxStatus::kQueued) {
    in_flight_.hold(tx.cookie, std::move(*placed));
    placed.reset();
  }
  return st;
}

}  // namespace pvnet::tools
