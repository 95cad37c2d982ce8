// The same random script of ring operations applied to two separate memories, one driven by pvnet's C++ rings,
// one by xen/io/ring.h's C macros (c_ring_driver.c): after every step the shared memory must be byte-identical,
// and every notify decision, final-check result, count and copied request/response equal.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "shared-ring/netif.hpp"
#include "tests/ring/c_ring_driver.h"

namespace pvnet::netif {
namespace {

struct TxTraits {
  using Front = TxFrontRing;
  using Back = TxBackRing;
  using Req = TxRequest;
  using Rsp = TxResponse;
  using CReq = netif_tx_request;
  using CRsp = netif_tx_response;
  using CRing = c_tx_ring;
  static CRing* c_new(void* m, size_t b, uint32_t s) { return c_tx_new(m, b, s); }
  static void c_delete(CRing* r) { c_tx_delete(r); }
  static unsigned c_size(CRing* r) { return c_tx_size(r); }
  static unsigned c_free_requests(CRing* r) { return c_tx_free_requests(r); }
  static void c_produce_request(CRing* r, const CReq* q) { c_tx_produce_request(r, q); }
  static void c_push_requests(CRing* r) { c_tx_push_requests(r); }
  static int c_push_requests_and_check_notify(CRing* r) { return c_tx_push_requests_and_check_notify(r); }
  static unsigned c_unconsumed_responses(CRing* r) { return c_tx_unconsumed_responses(r); }
  static void c_consume_response(CRing* r, CRsp* o) { c_tx_consume_response(r, o); }
  static int c_final_check_for_responses(CRing* r) { return c_tx_final_check_for_responses(r); }
  static unsigned c_unconsumed_requests(CRing* r) { return c_tx_unconsumed_requests(r); }
  static void c_consume_request(CRing* r, CReq* o) { c_tx_consume_request(r, o); }
  static void c_produce_response(CRing* r, const CRsp* p) { c_tx_produce_response(r, p); }
  static void c_push_responses(CRing* r) { c_tx_push_responses(r); }
  static int c_push_responses_and_check_notify(CRing* r) { return c_tx_push_responses_and_check_notify(r); }
  static int c_final_check_for_requests(CRing* r) { return c_tx_final_check_for_requests(r); }
  static int c_request_prod_overflow(CRing* r, uint32_t p) { return c_tx_request_prod_overflow(r, p); }
  static int c_request_cons_overflow(CRing* r, uint32_t c) { return c_tx_request_cons_overflow(r, c); }

  static Req random_request(std::mt19937& g) {
    return Req{GrantRef{static_cast<uint32_t>(g())}, static_cast<uint16_t>(g()), static_cast<uint16_t>(g()),
               static_cast<uint16_t>(g()), static_cast<uint16_t>(g())};
  }
  static Rsp random_response(std::mt19937& g) { return Rsp{static_cast<uint16_t>(g()), static_cast<int16_t>(g())}; }
};

struct RxTraits {
  using Front = RxFrontRing;
  using Back = RxBackRing;
  using Req = RxRequest;
  using Rsp = RxResponse;
  using CReq = netif_rx_request;
  using CRsp = netif_rx_response;
  using CRing = c_rx_ring;
  static CRing* c_new(void* m, size_t b, uint32_t s) { return c_rx_new(m, b, s); }
  static void c_delete(CRing* r) { c_rx_delete(r); }
  static unsigned c_size(CRing* r) { return c_rx_size(r); }
  static unsigned c_free_requests(CRing* r) { return c_rx_free_requests(r); }
  static void c_produce_request(CRing* r, const CReq* q) { c_rx_produce_request(r, q); }
  static void c_push_requests(CRing* r) { c_rx_push_requests(r); }
  static int c_push_requests_and_check_notify(CRing* r) { return c_rx_push_requests_and_check_notify(r); }
  static unsigned c_unconsumed_responses(CRing* r) { return c_rx_unconsumed_responses(r); }
  static void c_consume_response(CRing* r, CRsp* o) { c_rx_consume_response(r, o); }
  static int c_final_check_for_responses(CRing* r) { return c_rx_final_check_for_responses(r); }
  static unsigned c_unconsumed_requests(CRing* r) { return c_rx_unconsumed_requests(r); }
  static void c_consume_request(CRing* r, CReq* o) { c_rx_consume_request(r, o); }
  static void c_produce_response(CRing* r, const CRsp* p) { c_rx_produce_response(r, p); }
  static void c_push_responses(CRing* r) { c_rx_push_responses(r); }
  static int c_push_responses_and_check_notify(CRing* r) { return c_rx_push_responses_and_check_notify(r); }
  static int c_final_check_for_requests(CRing* r) { return c_rx_final_check_for_requests(r); }
  static int c_request_prod_overflow(CRing* r, uint32_t p) { return c_rx_request_prod_overflow(r, p); }
  static int c_request_cons_overflow(CRing* r, uint32_t c) { return c_rx_request_cons_overflow(r, c); }

  static Req random_request(std::mt19937& g) {
    return Req{static_cast<uint16_t>(g()), static_cast<uint16_t>(g()), GrantRef{static_cast<uint32_t>(g())}};
  }
  static Rsp random_response(std::mt19937& g) {
    return Rsp{static_cast<uint16_t>(g()), static_cast<uint16_t>(g()), static_cast<uint16_t>(g()),
               static_cast<int16_t>(g())};
  }
};

template <class T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct Config {
  size_t bytes;
  uint32_t start;  // initial value of every index: 0, or just below 2^32 to cross the RING_IDX wrap
};

template <class Traits>
void run_lockstep(Config cfg, uint32_t seed, int steps) {
  using Req = typename Traits::Req;
  using Rsp = typename Traits::Rsp;
  SCOPED_TRACE(testing::Message() << "bytes=" << cfg.bytes << " start=" << cfg.start << " seed=" << seed);

  // Both memories start with the same garbage, so that what SHARED_RING_INIT leaves alone is compared too.
  alignas(4096) static std::byte mem_cpp_storage[4 * 4096 + 4096];
  alignas(4096) static std::byte mem_c_storage[4 * 4096 + 4096];
  ASSERT_LE(cfg.bytes, sizeof(mem_cpp_storage));
  std::span<std::byte> mem_cpp(mem_cpp_storage, cfg.bytes);
  std::span<std::byte> mem_c(mem_c_storage, cfg.bytes);
  std::mt19937 g(seed);
  for (size_t i = 0; i < cfg.bytes; ++i) mem_cpp[i] = mem_c[i] = static_cast<std::byte>(g());

  typename Traits::CRing* c = Traits::c_new(mem_c.data(), cfg.bytes, cfg.start);
  struct Free {
    typename Traits::CRing* c;
    ~Free() { Traits::c_delete(c); }
  } free_c{c};

  std::optional<typename Traits::Front> front;
  std::optional<typename Traits::Back> back;
  if (cfg.start == 0) {
    auto f = Traits::Front::init(mem_cpp);
    auto b = Traits::Back::init(mem_cpp);
    ASSERT_TRUE(f.ok() && b.ok());
    front.emplace(*f);
    back.emplace(*b);
  } else {
    Traits::Front::Layout::init(mem_cpp);
    auto& h = Traits::Front::Layout::header(mem_cpp);
    h.req_prod = h.rsp_prod = cfg.start;
    h.req_event = h.rsp_event = cfg.start + 1;
    auto f = Traits::Front::attach(mem_cpp, cfg.start);
    auto b = Traits::Back::attach(mem_cpp, cfg.start);
    ASSERT_TRUE(f.ok() && b.ok());
    front.emplace(*f);
    back.emplace(*b);
  }
  ASSERT_EQ(front->size(), Traits::c_size(c));
  ASSERT_EQ(back->size(), Traits::c_size(c));
  ASSERT_EQ(front->size(), Traits::Front::Layout::size_for_bytes(cfg.bytes));
  ASSERT_EQ(0, std::memcmp(mem_cpp.data(), mem_c.data(), cfg.bytes)) << "after init";

  std::uniform_int_distribution<int> op_dist(0, 9);
  int notifies = 0, final_more = 0, consumed = 0;
  for (int step = 0; step < steps; ++step) {
    const int op = op_dist(g);
    SCOPED_TRACE(testing::Message() << "step " << step << " op " << op);
    switch (op) {
      case 0: {  // frontend produces k requests
        const uint32_t free_reqs = front->free_requests();
        ASSERT_EQ(free_reqs, Traits::c_free_requests(c));
        const uint32_t k = free_reqs == 0 ? 0 : g() % (std::min<uint32_t>(free_reqs, 40) + 1);
        for (uint32_t i = 0; i < k; ++i) {
          const Req req = Traits::random_request(g);
          front->produce_request(req);
          const auto creq = std::bit_cast<typename Traits::CReq>(req);
          Traits::c_produce_request(c, &creq);
        }
        break;
      }
      case 1: {
        const bool n_cpp = front->push_requests_and_check_notify();
        const bool n_c = Traits::c_push_requests_and_check_notify(c) != 0;
        ASSERT_EQ(n_cpp, n_c);
        notifies += n_cpp;
        break;
      }
      case 2:
        front->push_requests();
        Traits::c_push_requests(c);
        break;
      case 3: {  // backend consumes j requests
        const uint32_t avail = back->unconsumed_requests();
        ASSERT_EQ(avail, Traits::c_unconsumed_requests(c));
        const uint32_t j = g() % (avail + 1);
        for (uint32_t i = 0; i < j; ++i) {
          ASSERT_FALSE(back->request_cons_overflow(back->req_cons()));
          ASSERT_EQ(0, Traits::c_request_cons_overflow(c, back->req_cons()));
          const Req got = back->consume_request();
          typename Traits::CReq cgot;
          Traits::c_consume_request(c, &cgot);
          ASSERT_TRUE(same_bytes(got, std::bit_cast<Req>(cgot)));
          ++consumed;
        }
        break;
      }
      case 4: {  // backend answers r of the requests it consumed
        const uint32_t owed = back->req_cons() - back->rsp_prod_pvt();
        const uint32_t r = g() % (owed + 1);
        for (uint32_t i = 0; i < r; ++i) {
          const Rsp rsp = Traits::random_response(g);
          back->produce_response(rsp);
          const auto crsp = std::bit_cast<typename Traits::CRsp>(rsp);
          Traits::c_produce_response(c, &crsp);
        }
        break;
      }
      case 5: {
        const bool n_cpp = back->push_responses_and_check_notify();
        const bool n_c = Traits::c_push_responses_and_check_notify(c) != 0;
        ASSERT_EQ(n_cpp, n_c);
        notifies += n_cpp;
        break;
      }
      case 6:
        back->push_responses();
        Traits::c_push_responses(c);
        break;
      case 7: {
        const bool m_cpp = back->final_check_for_requests();
        const bool m_c = Traits::c_final_check_for_requests(c) != 0;
        ASSERT_EQ(m_cpp, m_c);
        final_more += m_cpp;
        break;
      }
      case 8: {  // frontend consumes j responses
        const uint32_t avail = front->unconsumed_responses();
        ASSERT_EQ(avail, Traits::c_unconsumed_responses(c));
        const uint32_t j = g() % (avail + 1);
        for (uint32_t i = 0; i < j; ++i) {
          const Rsp got = front->consume_response();
          typename Traits::CRsp cgot;
          Traits::c_consume_response(c, &cgot);
          ASSERT_TRUE(same_bytes(got, std::bit_cast<Rsp>(cgot)));
        }
        break;
      }
      case 9: {
        const bool m_cpp = front->final_check_for_responses();
        const bool m_c = Traits::c_final_check_for_responses(c) != 0;
        ASSERT_EQ(m_cpp, m_c);
        final_more += m_cpp;
        break;
      }
    }
    ASSERT_EQ(0, std::memcmp(mem_cpp.data(), mem_c.data(), cfg.bytes)) << "shared memory differs";
    ASSERT_EQ(front->free_requests(), Traits::c_free_requests(c));
    ASSERT_EQ(back->unconsumed_requests(), Traits::c_unconsumed_requests(c));
    ASSERT_EQ(front->unconsumed_responses(), Traits::c_unconsumed_responses(c));
    ASSERT_EQ(back->request_prod_overflow(back->shared_req_prod()) ? 1 : 0,
              Traits::c_request_prod_overflow(c, back->shared_req_prod()));
  }
  // The script must actually have exercised the ring: traffic, both kinds of notify decision, wrap-around.
  EXPECT_GT(consumed, static_cast<int>(front->size()));
  EXPECT_GT(notifies, 0);
  EXPECT_GT(final_more, 0);
}

const Config kConfigs[] = {
    {4096, 0},          {2 * 4096, 0}, {3 * 4096, 0}, {4 * 4096, 0},
    {4096, 0xFFFFFF00}, {4 * 4096, 0xFFFFF000},
    {4096 + 100, 0},  // not a page multiple: __RING_SIZE still rounds down to a power of two
};

TEST(RingLockstep, TxRingMatchesRingH) {
  uint32_t seed = 1;
  for (const Config& cfg : kConfigs) run_lockstep<TxTraits>(cfg, seed++, 20000);
}

TEST(RingLockstep, RxRingMatchesRingH) {
  uint32_t seed = 100;
  for (const Config& cfg : kConfigs) run_lockstep<RxTraits>(cfg, seed++, 20000);
}

TEST(RingLayout, SizesFollowRingSizeRule) {
  EXPECT_EQ(TxSharedRing::size_for_bytes(4096), kTxRingSize);
  EXPECT_EQ(TxSharedRing::size_for_bytes(2 * 4096), 512u);   // (8192-64)/12 = 677 -> 512
  EXPECT_EQ(TxSharedRing::size_for_bytes(4 * 4096), 1024u);  // 1360 -> 1024
  EXPECT_EQ(RxSharedRing::size_for_bytes(2 * 4096), 512u);   // (8192-64)/8 = 1016 -> 512
  EXPECT_EQ(CtrlSharedRing::size_for_bytes(4096), 128u);     // (4096-64)/16 = 252 -> 128
  EXPECT_EQ(TxSharedRing::size_for_bytes(64 + 11), 0u);      // no room for one 12-byte entry
}

}  // namespace
}  // namespace pvnet::netif
