#include "backend/policy_fixed.hpp"

#include <cerrno>
#include <string>

namespace pvnet {

namespace {

// copy (QEMU's xen_nic): every byte of the packet is grant-copied into dom0 memory, whatever the sink; the
// header's 128 bytes went in the same batch (traits), the rest goes here. Every sink then works from dom0 memory:
// the vif sink grant-copies local -> destination guest, the pcap sink reads the copy.
class CopyPolicy final : public PayloadPolicy {
 public:
  CopyPolicy(GrantMapper& mapper, size_t window_slots) : PayloadPolicy(mapper, window_slots) {}
  PayloadPolicyKind kind() const override { return PayloadPolicyKind::copy; }
  void prepare(TxPacket& pkt, bool, TxBatch& batch) override { copy_payload(pkt, batch); }
};

// map (classic netback) and hdrcopy (xen-netback since 3.14): every payload page mapped in the poll's map batch,
// whatever the sink; unmapped in one batch at the end of the poll. Under map the first page is among them (the
// TX path put the whole first piece in frags[0] and memcpy's the header out of its mapping).
class MapPolicy final : public PayloadPolicy {
 public:
  MapPolicy(PayloadPolicyKind kind, GrantMapper& mapper, size_t window_slots)
      : PayloadPolicy(mapper, window_slots), kind_(kind) {}
  PayloadPolicyKind kind() const override { return kind_; }
  void prepare(TxPacket& pkt, bool, TxBatch& batch) override { map_payload(pkt, batch); }

 private:
  PayloadPolicyKind kind_;
};

// slots (this project): nothing up front. A sink that forwards (vif) grant-copies gref -> gref; one that reads
// (pcap) has expose() put the frags behind the lazy window, one fault per page it touches.
class SlotsPolicy final : public PayloadPolicy {
 public:
  SlotsPolicy(GrantMapper& mapper, size_t window_slots) : PayloadPolicy(mapper, window_slots) {}
  PayloadPolicyKind kind() const override { return PayloadPolicyKind::slots; }
  Result<void> reserve() { return reserve_window(); }
  void prepare(TxPacket&, bool, TxBatch&) override {}
};

}  // namespace

Result<std::unique_ptr<PayloadPolicy>> make_fixed_policy(PayloadPolicyKind kind, GrantMapper& mapper,
                                                         size_t window_slots) {
  switch (kind) {
    case PayloadPolicyKind::copy: return std::unique_ptr<PayloadPolicy>(new CopyPolicy(mapper, window_slots));
    case PayloadPolicyKind::map:
    case PayloadPolicyKind::hdrcopy:
      return std::unique_ptr<PayloadPolicy>(new MapPolicy(kind, mapper, window_slots));
    case PayloadPolicyKind::slots: {
      auto p = std::unique_ptr<PayloadPolicy>(new SlotsPolicy(mapper, window_slots));
      // Reserve now: a backend that cannot have its window should fail at start, not on the first packet.
      if (auto ok = static_cast<SlotsPolicy*>(p.get())->reserve(); !ok) return ok.error();
      return p;
    }
    case PayloadPolicyKind::automatic: break;
  }
  return make_error(EINVAL, std::string("not a fixed payload policy: ") + to_string(kind));
}

}  // namespace pvnet
