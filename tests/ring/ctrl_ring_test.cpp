// The netif control ring: request/response round trips as the header-slot registration uses them
// (GET_GREF_MAPPING_SIZE, ADD_GREF_MAPPING, DEL_GREF_MAPPING), including the notify decisions of each step.
#include <gtest/gtest.h>

#include <array>
#include <set>

#include "shared-ring/netif.hpp"

namespace pvnet::netif {
namespace {

// A toy backend side of the control ring: keeps a set of mapped grefs, at most kMax of them.
struct ToyCtrlBackend {
  static constexpr uint32_t kMax = 8;
  std::set<uint32_t> mapped;

  CtrlResponse handle(const CtrlRequest& req) {
    CtrlResponse rsp{req.id, req.type, ctrl_status::success, 0};
    switch (req.type) {
      case ctrl_type::get_gref_mapping_size:
        rsp.data = kMax;
        break;
      case ctrl_type::add_gref_mapping:  // data[0] = first gref, data[1] = count (a toy: consecutive grefs)
        if (mapped.size() + req.data[1] > kMax) {
          rsp.status = ctrl_status::buffer_overflow;
          break;
        }
        for (uint32_t i = 0; i < req.data[1]; ++i) mapped.insert(req.data[0] + i);
        break;
      case ctrl_type::del_gref_mapping:
        for (uint32_t i = 0; i < req.data[1]; ++i) mapped.erase(req.data[0] + i);
        break;
      default:
        rsp.status = ctrl_status::not_supported;
    }
    return rsp;
  }
};

TEST(CtrlRing, RoundTripsWithNotifyDecisions) {
  alignas(4096) std::array<std::byte, 4096> page{};
  auto f = CtrlFrontRing::init(page);
  auto b = CtrlBackRing::init(page);
  ASSERT_TRUE(f.ok() && b.ok());
  CtrlFrontRing& front = *f;
  CtrlBackRing& back = *b;
  ASSERT_EQ(front.size(), kCtrlRingSize);
  ToyCtrlBackend toy;

  uint16_t next_id = 0;
  // Many round trips, so the indices wrap the 128-entry ring several times.
  for (int round = 0; round < 1000; ++round) {
    const uint16_t type = std::array<uint16_t, 4>{ctrl_type::get_gref_mapping_size, ctrl_type::add_gref_mapping,
                                                  ctrl_type::del_gref_mapping, ctrl_type::set_hash_key}[round % 4];
    const uint16_t id = next_id++;
    // ADD and the DEL that follows it name the same two grefs.
    const uint32_t gref0 = static_cast<uint32_t>(round / 4 * 10);
    front.produce_request(CtrlRequest{id, type, {gref0, 2, 0}});
    // The backend went to sleep after its final check (req_event = req_cons + 1): the frontend must kick it.
    ASSERT_TRUE(front.push_requests_and_check_notify()) << "round " << round;

    ASSERT_EQ(back.unconsumed_requests(), 1u);
    const CtrlRequest req = back.consume_request();
    EXPECT_EQ(req.id, id);
    EXPECT_EQ(req.type, type);
    back.produce_response(toy.handle(req));
    // Round 0: rsp_event is still SHARED_RING_INIT's 1; later rounds: the frontend's final check below asked for a
    // kick at rsp_cons + 1. Either way this response must kick.
    EXPECT_TRUE(back.push_responses_and_check_notify()) << "round " << round;
    EXPECT_FALSE(back.final_check_for_requests());  // nothing more: backend sleeps, asks for a kick

    ASSERT_EQ(front.unconsumed_responses(), 1u);
    const CtrlResponse rsp = front.consume_response();
    EXPECT_EQ(rsp.id, id);
    EXPECT_EQ(rsp.type, type);
    switch (type) {
      case ctrl_type::get_gref_mapping_size:
        EXPECT_EQ(rsp.status, ctrl_status::success);
        EXPECT_EQ(rsp.data, ToyCtrlBackend::kMax);
        break;
      case ctrl_type::add_gref_mapping:
        EXPECT_EQ(rsp.status, ctrl_status::success);
        EXPECT_TRUE(toy.mapped.count(gref0) && toy.mapped.count(gref0 + 1));
        break;
      case ctrl_type::del_gref_mapping:
        EXPECT_EQ(rsp.status, ctrl_status::success);
        EXPECT_FALSE(toy.mapped.count(gref0) || toy.mapped.count(gref0 + 1));
        break;
      default:
        EXPECT_EQ(rsp.status, ctrl_status::not_supported);
    }
    EXPECT_FALSE(front.final_check_for_responses());
  }
  EXPECT_TRUE(toy.mapped.empty());
  // A registration beyond what GET_GREF_MAPPING_SIZE announced is refused, and the status travels back.
  front.produce_request(CtrlRequest{next_id, ctrl_type::add_gref_mapping, {5000, ToyCtrlBackend::kMax + 1, 0}});
  EXPECT_TRUE(front.push_requests_and_check_notify());
  back.produce_response(toy.handle(back.consume_request()));
  EXPECT_TRUE(back.push_responses_and_check_notify());
  ASSERT_EQ(front.unconsumed_responses(), 1u);
  EXPECT_EQ(front.consume_response().status, ctrl_status::buffer_overflow);
  EXPECT_EQ(front.rsp_cons(), 1001u);
  EXPECT_EQ(back.req_cons(), 1001u);
}

TEST(CtrlRing, BatchedRequestsKickOnceAndFillTheRing) {
  alignas(4096) std::array<std::byte, 4096> page{};
  CtrlFrontRing front = *CtrlFrontRing::init(page);
  CtrlBackRing back = *CtrlBackRing::init(page);
  for (uint16_t i = 0; i < front.size(); ++i) front.produce_request(CtrlRequest{i, ctrl_type::invalid, {i, 0, 0}});
  EXPECT_TRUE(front.full());
  EXPECT_EQ(front.free_requests(), 0u);
  EXPECT_TRUE(front.push_requests_and_check_notify());    // req_event = 1 lies in (0, 128]
  EXPECT_EQ(back.unconsumed_requests(), front.size());
  // Nobody consumed anything, and the backend has not asked again: a further push does not kick.
  EXPECT_FALSE(front.push_requests_and_check_notify());
  for (uint16_t i = 0; i < 5; ++i) {
    const CtrlRequest req = back.consume_request();
    EXPECT_EQ(req.data[0], i);
    back.produce_response(CtrlResponse{req.id, req.type, ctrl_status::not_supported, 0});
  }
  EXPECT_TRUE(back.push_responses_and_check_notify());  // rsp_event = 1 lies in (0, 5]
  EXPECT_EQ(front.unconsumed_responses(), 5u);
  front.advance_rsp_cons(5);
  EXPECT_EQ(front.free_requests(), 5u);
}

}  // namespace
}  // namespace pvnet::netif
