// libFuzzer target: the xenbus negotiation (docs/fuzzing.md, "fuzz_store"). The guest writes any of its keys with
// any value (valid grefs and ports, another key's value, numbers out of range, junk), removes keys or its whole
// directory, walks its state through any sequence, connects properly now and then, and tries to write where it
// may not. Asserted after every poll: the backend's state is a xenbus state and "connected" only when Connected;
// a vif that is not connected keeps no slot pages; dom0's mappings within rings + kept pages + lazy window; the
// guest cannot write outside its own directory; the peer keeps working; teardown leaves nothing mapped.
#include <string>

#include "tests/fuzz/backend_world.hpp"
#include "tests/fuzz/store_actions.hpp"

namespace pvnet::fuzz {
namespace {

constexpr size_t kMaxActions = 120;
constexpr int kMaxConnects = 6;  // each one takes fresh ring pages, grants and ports

class StoreFuzzer {
 public:
  explicit StoreFuzzer(FuzzInput& in) : in_(in) {
    WorldOptions o;
    o.guest_connects = false;
    world_.emplace(o);
  }

  void run() {
    for (size_t n = 0; n < kMaxActions && !in_.empty(); ++n) step(static_cast<store::Op>(in_.u8() % store::kOps));
    poll("final");
    world_->check_peer_alive("end");
    world_->teardown_and_check();
  }

 private:
  test::ScriptedFrontend& guest() { return world_->guest(); }
  Backend& be() { return world_->be(); }
  VifId vif() const { return world_->guest_vif(); }
  std::string key(uint8_t sel) { return guest().dir() + "/" + store::kKeys[sel % store::kNumKeys]; }

  std::string value() {
    switch (in_.u8() % store::kValues) {
      case store::kZero: return "0";
      case store::kOne: return "1";
      case store::kTwo: return "2";
      case store::kMinusOne: return "-1";
      case store::kU32Max: return "4294967295";
      case store::kU32MaxPlus1: return "4294967296";
      case store::kHuge: return "184467440737095516160";
      case store::k64: return "64";
      case store::k2048: return "2048";
      case store::k4096: return "4096";
      case store::k100: return "100";
      case store::kEmpty: return "";
      case store::kJunk: return "frob";
      case store::kSpaceOne: return " 1";
      case store::kHex: return "0x10";
      case store::kCopyKey: {
        auto v = guest().store().read(key(in_.u8()));
        return v ? *v : std::string("0");
      }
      case store::kRawBytes: {
        auto b = in_.bytes(in_.u8() % 32);
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
      }
      default: return std::to_string(in_.u8());  // small numbers: grant refs and ports near the real ones
    }
  }

  void step(store::Op op) {
    auto& st = guest().store();
    switch (op) {
      case store::kWrite: {
        const std::string k = key(in_.u8());
        (void)st.write(k, value());
        break;
      }
      case store::kRemove: {
        const uint8_t sel = in_.u8();
        (void)st.remove(sel == 255 ? guest().dir() : key(sel));
        break;
      }
      case store::kState: {
        const uint8_t s = in_.u8();
        if (s <= 8) (void)st.switch_state(guest().dir(), static_cast<XenbusState>(s));
        else (void)st.write(netif::key_path(guest().dir(), netif::key::state), std::to_string(s) + (s & 1 ? "x" : ""));
        break;
      }
      case store::kConnect: {
        const uint8_t o = in_.u8();
        if (connects_ >= kMaxConnects) break;
        ++connects_;
        // The backend maps the rings this connect makes only if it is waiting for a frontend right now.
        fresh_connect_ = !be().connected(vif()) && be().state(vif()) == XenbusState::InitWait;
        test::FrontOptions fo;
        fo.ctrl_ring = !(o & 1);
        fo.header_slots = !(o & 2);
        fo.split_evtchn = !(o & 4);
        fo.rx_copy = !(o & 8);
        fo.slot_size = 32u << ((o >> 4) % 8);  // 32 .. 4096: the ends are invalid
        guest().connect(fo);
        break;
      }
      case store::kPoll: poll("poll"); break;
      case store::kPeer: world_->check_peer_alive("during"); break;
      case store::kForeignWrite: {
        const uint8_t sel = in_.u8();
        std::string path;
        switch (sel % 4) {
          case 0: path = netif::key_path(be().paths(vif()).backend, netif::key::state); break;
          case 1: path = netif::key_path(be().paths(world_->peer_vif()).backend, netif::key::feature_sg); break;
          case 2: path = netif::key_path(world_->peer().dir(), netif::key::state); break;
          default: path = "/local/domain/0/evil"; break;
        }
        PVNET_FUZZ_CHECK(!st.write(path, "5").ok(), "dom%u could write %s", kGuestDom.value, path.c_str());
        break;
      }
      case store::kRegister: {
        (void)in_.u8();
        if (!be().connected(vif()) || be().disabled(vif()) || !be().header_slots(vif())) break;
        if (registered_ >= 2) break;
        ++registered_;
        poll("before register");
        // ctrl_call aborts unless the request gets exactly one answer; the ring the backend mapped is the one
        // the last connect made only if that connect found it waiting and no key or state changed since.
        if (fresh_connect_ && !dirty_since_connect_) (void)guest().register_slots(be(), 2);
        break;
      }
      case store::kOps: break;
    }
    if (op == store::kConnect) dirty_since_connect_ = false;
    else if (op == store::kWrite || op == store::kRemove || op == store::kState) dirty_since_connect_ = true;
  }

  void poll(const char* when) {
    be().poll_until_idle();
    const XenbusState s = be().state(vif());
    PVNET_FUZZ_CHECK(static_cast<int>(s) >= 0 && static_cast<int>(s) <= 8, "%s: backend state %d", when,
                     static_cast<int>(s));
    PVNET_FUZZ_CHECK(!be().connected(vif()) || s == XenbusState::Connected, "%s: connected in state %s", when,
                     to_string(s));
    PVNET_FUZZ_CHECK(be().connected(vif()) || be().kept_mappings(vif()) == 0,
                     "%s: a vif that is not connected keeps %zu slot pages", when, be().kept_mappings(vif()));
    PVNET_FUZZ_CHECK(be().state(world_->peer_vif()) == XenbusState::Connected, "%s: the peer left Connected",
                     when);
    world_->check_mappings(when);
  }

  FuzzInput& in_;
  std::optional<World> world_;
  int connects_ = 0;
  int registered_ = 0;
  bool dirty_since_connect_ = true;
  bool fresh_connect_ = false;
};

}  // namespace
}  // namespace pvnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pvnet::fuzz::FuzzInput in(data, size);
  pvnet::fuzz::StoreFuzzer f(in);
  f.run();
  return 0;
}
