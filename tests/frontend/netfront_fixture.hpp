#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "frontend/netfront.hpp"
#include "frontend/page_pool.hpp"
#include "grant-sim/sim/sim_hypervisor.hpp"
#include "tests/frontend/frames.hpp"
#include "tests/frontend/scripted_backend.hpp"

namespace pvnet::test {

inline constexpr DomId kGuest{1};

class NetfrontTest : public ::testing::Test {
 protected:
  static NetfrontConfig small_config() {
    NetfrontConfig c;
    c.rx_buffers = 32;
    c.slot_pages = 4;
    c.close_timeout_ms = 200;
    c.ctrl_timeout_ms = 200;
    return c;
  }

  void SetUp() override {
    hv = SimHypervisor::create().value();
    guest = hv->create_domain(kGuest, 1024 * kPageSize, 2048).value();
    pool = std::make_unique<MemoryPagePool>(guest->memory());
    be = std::make_unique<ScriptedBackend>(*hv, kGuest);
    be->toolstack();
    initial_grants = guest->grant_table().free_count();
    initial_pages = pool->free_pages();
  }

  void start(NetfrontConfig cfg = small_config(), BackendFeatures f = {}) {
    nf = std::make_unique<Netfront>(*guest, *pool, be->fe_dir(), cfg);
    nf->on_tx_complete([this](const TxDone& c) { done.push_back(c); });
    nf->on_rx([this](ReceivedFrame&& frame) { rx.push_back(std::move(frame)); });
    be->offer(f);
    pump();
  }

  void pump() {
    for (int i = 0; i < 100 && nf->poll(); ++i) {
    }
  }

  // Negotiation and registration with a backend that keeps up to `mapping_size` pages.
  void bring_up(NetfrontConfig cfg = small_config(), BackendFeatures f = {}, uint32_t mapping_size = 8,
                uint32_t add_status = netif::ctrl_status::success) {
    start(cfg, f);
    ASSERT_EQ(nf->state(), NetfrontState::kConnecting);
    be->connect();
    pump();
    be->serve_ctrl(mapping_size, add_status);  // GET
    pump();
    be->serve_ctrl(mapping_size, add_status);  // ADD (if any)
    pump();
    ASSERT_EQ(nf->state(), NetfrontState::kConnected) << to_string(nf->state()) << " " << nf->error();
    connected_grants = guest->grant_table().free_count();
    connected_pages = pool->free_pages();
  }

  // References not granted: the table's free ones and netfront's reserved TX pool (both ended, reusable).
  uint32_t ungranted() const { return guest->grant_table().free_count() + nf->tx_grefs_reserved(); }

  PlacedFrame place(const std::vector<std::byte>& frame, uint32_t offset = 0, uint32_t max_piece = kPageSize) {
    auto p = place_frame(*pool, frame, offset, max_piece);
    EXPECT_TRUE(p.ok());
    return std::move(p).value();
  }

  std::unique_ptr<SimHypervisor> hv;
  std::unique_ptr<Platform> guest;
  std::unique_ptr<MemoryPagePool> pool;
  std::unique_ptr<ScriptedBackend> be;
  std::unique_ptr<Netfront> nf;
  std::vector<TxDone> done;
  std::vector<ReceivedFrame> rx;
  uint32_t initial_grants = 0, connected_grants = 0;
  uint64_t initial_pages = 0, connected_pages = 0;
};

}  // namespace pvnet::test
