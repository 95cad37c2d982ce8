// A frontend that pushes req_prod more than a ring ahead of what the backend answered is broken or hostile;
// the backend must see it (RING_REQUEST_PROD_OVERFLOW) instead of consuming stale or foreign slots. Compared
// with ring.h's macros on the same values. Also: a request copy is a private snapshot (no double fetch).
#include <gtest/gtest.h>

#include <array>

#include "shared-ring/netif.hpp"
#include "tests/ring/c_ring_driver.h"

namespace pvnet::netif {
namespace {

TEST(RingOverflow, RequestProdFarAheadIsReported) {
  alignas(4096) std::array<std::byte, 4096> cpp_page{};
  alignas(4096) std::array<std::byte, 4096> c_page{};
  TxFrontRing front = *TxFrontRing::init(cpp_page);
  TxBackRing back = *TxBackRing::init(cpp_page);
  c_tx_ring* c = c_tx_new(c_page.data(), c_page.size(), 0);

  // An honest, full ring is not an overflow.
  for (uint32_t i = 0; i < front.size(); ++i) front.produce_request(TxRequest{GrantRef{i}, 0, 0, 0, 0});
  front.push_requests();
  EXPECT_FALSE(back.request_prod_overflow(back.req_prod()));
  ASSERT_TRUE(back.checked_req_prod().ok());
  EXPECT_EQ(*back.checked_req_prod(), front.size());

  // A hostile frontend writes req_prod directly: one and many slots beyond a full ring, and "negative".
  auto& hdr = TxSharedRing::header(cpp_page);
  for (uint32_t bogus : {front.size() + 1, front.size() * 5, 0x80000000u, 0xFFFFFFFFu}) {
    hdr.req_prod = bogus;
    EXPECT_TRUE(back.request_prod_overflow(bogus)) << bogus;
    EXPECT_EQ(c_tx_request_prod_overflow(c, bogus), 1) << bogus;
    auto checked = back.checked_req_prod();
    ASSERT_FALSE(checked.ok()) << bogus;
    EXPECT_NE(checked.error().reason.find("req_prod"), std::string::npos);
    // Even a backend that ignores the check never sees more than a ring's worth of work.
    EXPECT_LE(back.unconsumed_requests(), back.size());
  }

  // After the backend consumed and answered some, the same absolute req_prod may become legal: the check is
  // relative to rsp_prod_pvt, as in ring.h.
  hdr.req_prod = front.size();
  for (int i = 0; i < 10; ++i) {
    (void)back.consume_request();
    back.produce_response(TxResponse{0, rsp::okay});
  }
  EXPECT_FALSE(back.request_prod_overflow(front.size() + 10));
  EXPECT_TRUE(back.request_prod_overflow(front.size() + 11));
  EXPECT_FALSE(back.request_cons_overflow(back.req_cons()));
  EXPECT_TRUE(back.request_cons_overflow(back.rsp_prod_pvt() + back.size()));
  c_tx_delete(c);
}

TEST(RingOverflow, ResponseProdFarAheadIsReported) {
  alignas(4096) std::array<std::byte, 4096> page{};
  TxFrontRing front = *TxFrontRing::init(page);
  EXPECT_FALSE(front.response_prod_overflow(front.size()));
  EXPECT_TRUE(front.response_prod_overflow(front.size() + 1));
}

TEST(RingCopy, CopiedRequestIsAPrivateSnapshot) {
  alignas(4096) std::array<std::byte, 4096> page{};
  TxFrontRing front = *TxFrontRing::init(page);
  TxBackRing back = *TxBackRing::init(page);
  front.produce_request(TxRequest{GrantRef{5}, 100, txf::more_data, 7, 1500});
  front.push_requests();
  const TxRequest copy = back.copy_request(0);
  // The guest rewrites the slot after the backend's copy: the copy must not change.
  front.get_request(0)->size = 60000;
  front.get_request(0)->gref = GrantRef{99};
  EXPECT_EQ(copy.size, 1500);
  EXPECT_EQ(copy.gref, GrantRef{5});
  EXPECT_EQ(copy.flags, txf::more_data);
}

TEST(RingInit, RejectsAreasWithoutRoom) {
  alignas(4096) std::array<std::byte, 4096> page{};
  EXPECT_FALSE(TxFrontRing::init(std::span(page).first(64)).ok());
  EXPECT_FALSE(TxBackRing::attach(std::span(page).subspan(1, 200)).ok());  // misaligned
  EXPECT_TRUE(TxBackRing::attach(std::span(page).first(64 + 12)).ok());     // one entry
}

}  // namespace
}  // namespace pvnet::netif
