#include "backend/payload_policy.hpp"

#include <cerrno>
#include <string>
#include <vector>

#include "grant-sim/lazy_window.hpp"

namespace pvnet {

const char* to_string(PayloadPolicyKind k) {
  switch (k) {
    case PayloadPolicyKind::slots: return "slots";
    case PayloadPolicyKind::copy: return "copy";
    case PayloadPolicyKind::map: return "map";
    case PayloadPolicyKind::hdrcopy: return "hdrcopy";
  }
  return "?";
}

std::optional<PayloadPolicyKind> parse_payload_policy(std::string_view name) {
  for (auto k : {PayloadPolicyKind::slots, PayloadPolicyKind::copy, PayloadPolicyKind::map,
                 PayloadPolicyKind::hdrcopy})
    if (name == to_string(k)) return k;
  return std::nullopt;
}

namespace {

// slots: each frag's page is assigned to a lazy-window slot (free: no hypercall); the sink's first read of it
// faults and maps it. Pages never read are never mapped.
class SlotsPayload final : public PayloadPolicy {
 public:
  explicit SlotsPayload(std::unique_ptr<LazyWindow> window) : window_(std::move(window)) {}
  ~SlotsPayload() override { end_poll(); }

  PayloadPolicyKind kind() const override { return PayloadPolicyKind::slots; }

  Result<void> expose(TxPacket& pkt) override {
    if (pkt.frags.size() > window_->slots())
      return make_error(E2BIG, std::to_string(pkt.frags.size()) + " frags exceed the lazy window of " +
                                   std::to_string(window_->slots()) + " pages");
    if (used_.size() + pkt.frags.size() > window_->slots()) end_poll();  // recycle: earlier packets are done
    for (auto& f : pkt.frags) {
      const size_t slot = used_.size();
      std::byte* page = window_->assign(slot, f.dom, f.gref, /*readonly=*/true);
      used_.push_back(slot);
      f.window_slot = static_cast<int32_t>(slot);
      f.data = page + f.offset;
    }
    return {};
  }

  Result<void> verify(const TxPacket& pkt, uint64_t* pages_touched) const override {
    uint64_t touched = 0;
    for (const auto& f : pkt.frags) {
      if (f.window_slot < 0) continue;
      const auto slot = static_cast<size_t>(f.window_slot);
      if (window_->mapped(slot)) ++touched;
      if (auto st = window_->status(slot); st != GntSt::okay) {
        if (pages_touched) *pages_touched = touched;
        return make_error(static_cast<int>(st), std::string("payload grant ") + std::to_string(f.gref.value) +
                                                    " of dom" + std::to_string(f.dom.value) + ": " + to_string(st));
      }
    }
    if (pages_touched) *pages_touched = touched;
    return {};
  }

  void end_poll() override {
    if (used_.empty()) return;
    window_->release(used_);
    used_.clear();
  }

 private:
  std::unique_ptr<LazyWindow> window_;
  std::vector<size_t> used_;
};

}  // namespace

Result<std::unique_ptr<PayloadPolicy>> make_payload_policy(PayloadPolicyKind kind, GrantMapper& mapper,
                                                           size_t window_slots) {
  switch (kind) {
    case PayloadPolicyKind::slots: {
      auto window = mapper.make_lazy_window(window_slots);
      if (!window) return make_error(ENOMEM, "cannot reserve a lazy window of " + std::to_string(window_slots));
      return std::unique_ptr<PayloadPolicy>(std::make_unique<SlotsPayload>(std::move(window)));
    }
    case PayloadPolicyKind::copy:
    case PayloadPolicyKind::map:
    case PayloadPolicyKind::hdrcopy:
      break;
  }
  return make_error(ENOTSUP, std::string("payload policy '") + to_string(kind) + "' is not implemented yet");
}

}  // namespace pvnet
