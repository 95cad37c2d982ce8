// libFuzzer target: the control ring's gref-mapping messages (docs/fuzzing.md, "fuzz_ctrl"): GET/ADD/DEL (and any
// other type) with any data words, any gref table content (duplicates, ungranted, revoked, writable, the table's
// own page), any sizes; header-slot packets naming pool pages whether kept or not; grants revoked and re-granted.
// Asserted: each request gets exactly one response echoing its type with a netif.h status; GET answers the
// per-domain limit; ADD is all or nothing; DEL removes what it reports; kept pages never exceed the limit; a grant
// the guest managed to end is not mapped by dom0; mapping accounting holds; the peer keeps working; teardown
// leaves nothing mapped.
#include <array>
#include <cstring>

#include "tests/fuzz/backend_world.hpp"
#include "tests/fuzz/ctrl_actions.hpp"

namespace pvnet::fuzz {
namespace {

constexpr size_t kMaxActions = 200;

class CtrlFuzzer {
 public:
  explicit CtrlFuzzer(FuzzInput& in) : in_(in) {
    WorldOptions o;
    o.register_guest_slots = false;
    world_.emplace(o);
    auto& g = world_->guest();
    for (uint32_t i = 0; i < ctrl::kPool; ++i) {
      pool_pfn_[i] = g.alloc_page();
      pool_[i] = g.grant(pool_pfn_[i], i % 2 == 0);
    }
    for (uint32_t i = 0; i < ctrl::kTables; ++i) {
      table_pfn_[i] = g.alloc_page();
      table_[i] = g.grant(table_pfn_[i], false);
    }
  }

  void run() {
    for (size_t n = 0; n < kMaxActions && !in_.empty(); ++n) step(static_cast<ctrl::Op>(in_.u8() % ctrl::kOps));
    world_->be().poll_until_idle();
    collect_tx("final");
    world_->check_mappings("end");
    world_->check_peer_alive("end");
    world_->teardown_and_check();
  }

 private:
  test::ScriptedFrontend& guest() { return world_->guest(); }
  Backend& be() { return world_->be(); }
  VifId vif() const { return world_->guest_vif(); }

  GrantRef gref_from(uint32_t v) {
    switch (v & 3) {
      case 0:
      case 1: return pool_[(v >> 2) % ctrl::kPool];
      case 2: return table_[(v >> 2) % ctrl::kTables];
      default: return GrantRef{v >> 2};
    }
  }
  netif::NetifGref* table(uint32_t t) {
    return reinterpret_cast<netif::NetifGref*>(guest().page(table_pfn_[t % ctrl::kTables]).data());
  }

  void step(ctrl::Op op) {
    auto& g = guest();
    constexpr uint32_t kEntries = kPageSize / sizeof(netif::NetifGref);
    switch (op) {
      case ctrl::kFillTable: {
        netif::NetifGref* t = table(in_.u8());
        const uint32_t first = in_.u16() % kEntries;
        const uint32_t count = in_.u8();
        const uint32_t p0 = in_.u8();
        for (uint32_t i = 0; i < count && first + i < kEntries; ++i)
          t[first + i] = netif::NetifGref{pool_[(p0 + i) % ctrl::kPool], netif::ctrlf_gref::readonly, 0};
        break;
      }
      case ctrl::kWriteEntry: {
        netif::NetifGref* t = table(in_.u8());
        netif::NetifGref& e = t[in_.u16() % kEntries];
        e.ref = gref_from(in_.u32());
        e.flags = in_.u16();
        e.status = in_.u32();
        break;
      }
      case ctrl::kCall: call(); break;
      case ctrl::kRevoke: {
        const uint8_t sel = in_.u8();
        const uint32_t i = (sel >> 1) % ctrl::kPool;
        auto& gt = g.platform().grant_table();
        if (sel & 1) {
          if (!gt.in_use(pool_[i]) && gt.end_access(pool_[i]).ok()) pool_[i] = g.grant(pool_pfn_[i], i % 2 == 0);
        } else {
          // EAGAIN while dom0 keeps it mapped; otherwise the guest has its page back and the gref goes stale.
          (void)gt.end_access(pool_[i]);
        }
        break;
      }
      case ctrl::kSlotTx: {
        const uint8_t sel = in_.u8();
        const uint16_t off = static_cast<uint16_t>((in_.u8() % 32) * 128);
        const uint16_t size = static_cast<uint16_t>(14 + in_.u8() % 115);
        const uint32_t i = sel % ctrl::kPool;
        const auto f = test::make_frame(128, 17, sel);  // make_frame writes 54 header bytes
        std::memcpy(g.page(pool_pfn_[i]).data() + off, f.data(), size);
        netif::TxRequest r{};
        r.gref = pool_[i];
        r.offset = off;
        r.flags = netif::txf::header_slot;
        r.id = next_tx_id_++;
        r.size = size;
        g.push_raw({r});
        break;
      }
      case ctrl::kPeer: world_->check_peer_alive("during"); collect_tx("peer"); break;
      case ctrl::kPoll: be().poll_until_idle(); collect_tx("poll"); break;
      case ctrl::kOps: break;
    }
  }

  void call() {
    const uint8_t tsel = in_.u8();
    const uint8_t d0sel = in_.u8();
    const uint32_t tref = in_.u32();
    const uint32_t count = in_.u32();
    uint16_t type;
    switch (tsel % 8) {
      case 0:
      case 1: type = netif::ctrl_type::add_gref_mapping; break;
      case 2:
      case 3: type = netif::ctrl_type::del_gref_mapping; break;
      case 4: type = netif::ctrl_type::get_gref_mapping_size; break;
      default: type = static_cast<uint16_t>(tsel >> 3); break;  // anything, hashing messages included
    }
    const uint32_t d0 = d0sel < 224 ? 0 : d0sel;
    const uint32_t d1 = (tref & 3) != 3 ? table_[tref % ctrl::kTables].value : tref >> 2;
    const uint32_t d2 = (count & 0x80000000u) ? count : count % 80;
    if (be().disabled(vif())) return;  // a disabled vif serves nothing, its control ring included
    const size_t kept_before = be().kept_mappings(vif());
    netif::CtrlResponse rsp = guest().ctrl_call(be(), type, d0, d1, d2);  // aborts unless exactly one response
    const size_t kept_after = be().kept_mappings(vif());
    PVNET_FUZZ_CHECK(rsp.type == type, "response type %u to a request of type %u", rsp.type, type);
    PVNET_FUZZ_CHECK(rsp.status == netif::ctrl_status::success || rsp.status == netif::ctrl_status::not_supported ||
                         rsp.status == netif::ctrl_status::invalid_parameter ||
                         rsp.status == netif::ctrl_status::buffer_overflow,
                     "status %u", rsp.status);
    const uint32_t limit = BackendOptions{}.max_kept_pages_per_domain;
    PVNET_FUZZ_CHECK(kept_after <= limit, "%zu kept pages, limit %u", kept_after, limit);
    if (type == netif::ctrl_type::get_gref_mapping_size && rsp.status == netif::ctrl_status::success)
      PVNET_FUZZ_CHECK(d0 == 0 && rsp.data == limit, "GET answered %u (limit %u, data[0] %u)", rsp.data, limit, d0);
    if (type == netif::ctrl_type::add_gref_mapping) {
      if (rsp.status == netif::ctrl_status::success) {
        PVNET_FUZZ_CHECK(kept_after == kept_before + d2, "ADD of %u succeeded, kept %zu -> %zu", d2, kept_before,
                         kept_after);
      } else {
        PVNET_FUZZ_CHECK(kept_after == kept_before, "ADD failed (%u) but kept %zu -> %zu", rsp.status, kept_before,
                         kept_after);
      }
    } else if (type == netif::ctrl_type::del_gref_mapping) {
      if (rsp.status == netif::ctrl_status::success) {
        PVNET_FUZZ_CHECK(rsp.data <= d2 && kept_after + rsp.data == kept_before, "DEL of %u removed %u, kept %zu -> %zu",
                         d2, rsp.data, kept_before, kept_after);
      } else {
        PVNET_FUZZ_CHECK(kept_after == kept_before, "DEL failed but kept %zu -> %zu", kept_before, kept_after);
      }
    } else {
      PVNET_FUZZ_CHECK(kept_after == kept_before, "type %u changed kept %zu -> %zu", type, kept_before, kept_after);
    }
    collect_tx("ctrl call");
    world_->check_mappings("ctrl call");
  }

  void collect_tx(const char* when) {
    auto& tx = guest().tx();
    while (tx.unconsumed_responses() != 0) {
      (void)tx.consume_response();
      ++tx_rsp_seen_;
    }
    const BackendCounters c = be().counters(vif());
    PVNET_FUZZ_CHECK(c.tx_responses == tx_rsp_seen_, "%s: backend published %llu TX responses, guest saw %llu", when,
                     (unsigned long long)c.tx_responses, (unsigned long long)tx_rsp_seen_);
    PVNET_FUZZ_CHECK(be().disabled(vif()) || c.tx_requests == c.tx_responses, "%s: TX requests unanswered", when);
    world_->check_counters(vif(), when);
  }

  FuzzInput& in_;
  std::optional<World> world_;
  std::array<Pfn, ctrl::kPool> pool_pfn_{};
  std::array<GrantRef, ctrl::kPool> pool_{};
  std::array<Pfn, ctrl::kTables> table_pfn_{};
  std::array<GrantRef, ctrl::kTables> table_{};
  uint16_t next_tx_id_ = 0;
  uint64_t tx_rsp_seen_ = 0;
};

}  // namespace
}  // namespace pvnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pvnet::fuzz::FuzzInput in(data, size);
  pvnet::fuzz::CtrlFuzzer f(in);
  f.run();
  return 0;
}
