#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/null_sink.hpp"
#include "tools/trace/pcap_io.hpp"
#include "tools/trace/pcap_sink.hpp"
#include "backend/vif_sink.hpp"
#include "tests/backend/scripted_frontend.hpp"

namespace pvnet::test {
namespace {

size_t count_status(const std::vector<netif::TxResponse>& rs, int16_t status) {
  size_t n = 0;
  for (const auto& r : rs) n += r.status == status;
  return n;
}

TEST(BackendDatapath, WholeInSlotAndSlotPlusPayloadToNullSinkMapNothing) {
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{1});
  auto sink = std::make_shared<NullSink>();
  VifId id = h.attach(fe, VifOptions{.sink = sink});
  const GrantCounters before = h.grants();

  fe.send(make_frame(60), 60);     // whole in its slot: one request, no payload grant
  fe.send(make_frame(1514), 42);   // header slot + 1 payload piece
  fe.send(make_frame(1000, 17, 3), 42);
  h.be->poll_until_idle();
  auto rs = fe.tx_responses();
  EXPECT_EQ(rs.size(), 5u);
  EXPECT_EQ(count_status(rs, netif::rsp::okay), 5u);
  EXPECT_EQ(sink->packets(), 3u);
  EXPECT_EQ(sink->malformed_headers(), 0u);

  const auto c = h.be->counters(id);
  EXPECT_EQ(c.packets_in, 3u);
  EXPECT_EQ(c.packets_out, 3u);
  EXPECT_EQ(c.bytes_in, 60u + 1514 + 1000);
  EXPECT_EQ(c.slots_used, 3u);
  EXPECT_EQ(c.header_bytes, 60u + 42 + 42);
  EXPECT_EQ(c.backend_memcpy_bytes, c.header_bytes);
  EXPECT_EQ(c.tx_frags, 2u);
  const GrantCounters d = h.grants() - before;
  EXPECT_EQ(d.map_ops, 0u);
  EXPECT_EQ(d.faults, 0u);
  EXPECT_EQ(d.copy_ops, 0u);
  EXPECT_EQ(d.hypercalls, 0u);
}

TEST(BackendDatapath, PcapSinkWritesIdenticalFramesFaultingOnlyTouchedPages) {
  const std::string path = "/tmp/pvnet-h6-pcap-" + std::to_string(getpid()) + ".pcap";
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{1});
  std::shared_ptr<PcapSink> sink = PcapSink::create(path).value();
  VifId id = h.attach(fe, VifOptions{.sink = sink});
  const GrantCounters before = h.grants();

  std::vector<std::vector<std::byte>> sent = {make_frame(60), make_frame(1514), make_frame(9000, 6, 5)};
  fe.send(sent[0], 60);
  fe.send(sent[1], 42);
  auto gso = ScriptedFrontend::gso_extra(netif::gso_type::tcpv4, 1448);
  fe.send(sent[2], 54, &gso);  // GSO: header slot + 3 payload pages + an extra
  h.be->poll_until_idle();
  auto rs = fe.tx_responses();
  EXPECT_EQ(count_status(rs, netif::rsp::okay), 1u + 2 + 4);
  EXPECT_EQ(count_status(rs, netif::rsp::null), 1u);
  ASSERT_TRUE(sink->close().ok());

  auto frames = PcapReader::read_all(path).value();
  ASSERT_EQ(frames.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(frames[i].data, sent[i]) << "frame " << i;
  const uint64_t payload_pages = 0 + 1 + 3;
  const GrantCounters d = h.grants() - before;
  EXPECT_EQ(d.faults, payload_pages);
  EXPECT_EQ(d.pages_mapped, payload_pages);
  EXPECT_EQ(d.pages_unmapped, payload_pages);  // every lazy mapping gone after the poll
  EXPECT_EQ(h.be->counters(id).payload_pages_touched, payload_pages);
  EXPECT_EQ(h.be->counters(id).tx_gso_packets, 1u);
  ::unlink(path.c_str());
}

TEST(BackendDatapath, PlainNetifFallbackCopiesAtMost128HeaderBytes) {
  const std::string path = "/tmp/pvnet-h6-plain-" + std::to_string(getpid()) + ".pcap";
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{2});
  std::shared_ptr<PcapSink> sink = PcapSink::create(path).value();
  VifId id = h.attach(fe, VifOptions{.sink = sink}, FrontOptions{.header_slots = false});
  EXPECT_FALSE(h.be->header_slots(id));
  std::vector<std::vector<std::byte>> sent = {make_frame(60), make_frame(1514), make_frame(1400, 6)};
  fe.send(sent[0]);
  fe.send(sent[1]);
  fe.send(sent[2], 42, nullptr, 3500);  // first piece 596 bytes at 3500, then a second page
  const GrantCounters before = h.grants();
  h.be->poll_until_idle();
  auto rs = fe.tx_responses();
  EXPECT_EQ(count_status(rs, netif::rsp::okay), 1u + 1 + 2);
  ASSERT_TRUE(sink->close().ok());
  auto frames = PcapReader::read_all(path).value();
  ASSERT_EQ(frames.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(frames[i].data, sent[i]) << "frame " << i;
  const auto c = h.be->counters(id);
  EXPECT_EQ(c.tx_plain_packets, 3u);
  EXPECT_EQ(c.slots_used, 0u);
  EXPECT_EQ(c.header_bytes, 60u + 128 + 128);
  const GrantCounters d = h.grants() - before;
  EXPECT_EQ(d.copy_ops, 3u);  // the three headers...
  EXPECT_GE(d.hypercalls, 1u);
  EXPECT_EQ(d.faults, 3u);   // ...then the rest of the long first pieces and the second page, read by pcap
  ::unlink(path.c_str());
}

TEST(BackendDatapath, VifSinkForwardsByGrantCopyWithNothingMapped) {
  Host h;
  ScriptedFrontend a(*h.hv, DomId{1}), b(*h.hv, DomId{2});
  VifId vb = h.attach(b);
  VifId va = h.attach(a, VifOptions{.sink = std::make_shared<VifSink>(*h.be, vb)});
  b.post_rx(64);
  h.be->poll_until_idle();
  const GrantCounters before = h.grants();

  std::vector<std::vector<std::byte>> sent = {make_frame(60), make_frame(1514), make_frame(1500, 17, 9),
                                              make_frame(20000, 6, 4)};
  a.send(sent[0], 60);
  a.send(sent[1], 42);
  a.send(sent[2], 42, nullptr, 4000);  // payload split over two pages, so over two RX copies
  auto gso = ScriptedFrontend::gso_extra(netif::gso_type::tcpv4, 1448);
  a.send(sent[3], 54, &gso);
  h.be->poll_until_idle();

  auto got = b.rx_frames();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_FALSE(got[i].error);
    EXPECT_EQ(got[i].data, sent[i]) << "frame " << i;
  }
  EXPECT_EQ(got[3].gso_type, netif::gso_type::tcpv4);
  EXPECT_EQ(got[3].gso_size, 1448u);
  EXPECT_TRUE(got[3].first_flags & netif::rxf::csum_blank);
  auto rs = a.tx_responses();
  EXPECT_EQ(count_status(rs, netif::rsp::error) + count_status(rs, netif::rsp::dropped), 0u);
  EXPECT_EQ(count_status(rs, netif::rsp::null), 1u);

  const GrantCounters d = h.grants() - before;
  EXPECT_EQ(d.pages_mapped, 0u);
  EXPECT_EQ(d.faults, 0u);
  EXPECT_EQ(d.map_ops, 0u);
  const auto ca = h.be->counters(va), cb = h.be->counters(vb);
  EXPECT_LE(ca.backend_memcpy_bytes, ca.header_bytes);
  EXPECT_EQ(ca.packets_out, sent.size());
  EXPECT_EQ(cb.rx_packets, sent.size());
  EXPECT_EQ(cb.rx_bytes, 60u + 1514 + 1500 + 20000);
  EXPECT_EQ(cb.rx_gso_packets, 1u);
  EXPECT_EQ(d.grant_copy_bytes, cb.rx_bytes);
}

TEST(BackendDatapath, BackPressureHoldsTheSourceUntilBuffersArrive) {
  Host h(BackendOptions{.tx_budget = 2});
  ScriptedFrontend a(*h.hv, DomId{1}), b(*h.hv, DomId{2});
  VifId vb = h.attach(b, VifOptions{.sink = nullptr, .rx_queue_max = 3});
  VifId va = h.attach(a, VifOptions{.sink = std::make_shared<VifSink>(*h.be, vb)});
  std::vector<std::vector<std::byte>> sent;
  for (int i = 0; i < 12; ++i) {
    sent.push_back(make_frame(100 + 110 * i, 17, static_cast<uint8_t>(i)));
    a.send(sent.back(), 42);
  }
  for (int i = 0; i < 10; ++i) h.be->poll();
  EXPECT_TRUE(a.tx_responses().empty());  // nothing answered: held, not dropped
  EXPECT_GT(h.be->counters(va).tx_backpressure_stalls, 0u);
  EXPECT_LE(h.be->counters(vb).rx_queued, 3u + 2);  // the bound (+ one poll's budget in flight)
  EXPECT_LT(h.be->counters(va).packets_in, 12u);    // the rest is still on A's ring
  EXPECT_EQ(h.be->counters(va).dropped_total(), 0u);

  b.post_rx(200);
  h.be->poll_until_idle();
  auto got = b.rx_frames();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i].data, sent[i]) << "frame " << i;
  auto rs = a.tx_responses();
  EXPECT_EQ(count_status(rs, netif::rsp::okay), rs.size());
  EXPECT_EQ(h.be->counters(va).packets_out, 12u);
  EXPECT_EQ(h.be->counters(va).dropped_total(), 0u);
}

// A guest whose RAM is an unsealed memfd (adopted through the lower-level API: the vhost-user device refuses such
// memory at SET_MEM_TABLE) cuts it under a frame's payload page after pushing the frame. The pcap sink reads the
// payload through the lazy window: the frame must be dropped and counted (bad_payload_grant), dom0 must go on and
// so must the other guest. Before, the read retried the fault for ever (100% CPU, SIGTERM never read).
TEST(BackendDatapath, PcapSinkDropsAFrameWhosePayloadTheGuestCutAway) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto scenario = [] {
    ::alarm(20);  // a livelock ends the child here
    const std::string path = "/tmp/pvnet-h-vhost-cut-" + std::to_string(getpid());
    Host h;
    constexpr uint64_t kPages = 4096;
    UniqueFd ram{::memfd_create("unsealed-guest-ram", MFD_CLOEXEC)};
    if (!ram || ::ftruncate(ram.get(), kPages * kPageSize) != 0) ::_exit(2);
    auto shm = create_domain_shm(DomId{1}, 0, 2048);
    if (!shm) ::_exit(3);
    shm->regions.push_back(MemRegion{UniqueFd{::fcntl(ram.get(), F_DUPFD_CLOEXEC, 0)}, Pfn{0}, kPages, 0});
    auto adopted = h.hv->adopt_domain(std::move(*shm));
    if (!adopted) ::_exit(4);
    ScriptedFrontend a(std::move(adopted).value(), DomId{1});
    ScriptedFrontend b(*h.hv, DomId{2});
    std::shared_ptr<PcapSink> sink_a = PcapSink::create(path + "-a.pcap").value();
    std::shared_ptr<PcapSink> sink_b = PcapSink::create(path + "-b.pcap").value();
    VifId va = h.attach(a, VifOptions{.sink = sink_a});
    const VifId vb = h.attach(b, VifOptions{.sink = sink_b});
    const Pfn cut = a.alloc_page();  // every page from here on lies past the cut
    auto reqs = a.build(make_frame(1514), true, 42);
    EXPECT_EQ(::ftruncate(ram.get(), static_cast<off_t>(cut.value * kPageSize)), 0);
    const GrantCounters before = h.grants();
    a.push_raw(reqs);
    h.be->poll_until_idle();
    auto rs = a.tx_responses();
    EXPECT_EQ(rs.size(), 2u);  // header slot + payload page, both answered ERROR
    EXPECT_EQ(count_status(rs, netif::rsp::error), rs.size());
    EXPECT_EQ(h.be->counters(va).dropped[DropReason::bad_payload_grant], 1u);
    EXPECT_EQ(h.be->counters(va).packets_out, 0u);
    const GrantCounters d = h.grants() - before;
    EXPECT_EQ(d.fault_errors, 1u);
    EXPECT_EQ(d.pages_mapped, d.pages_unmapped);  // nothing left mapped on the lost page
    // dom0 and the other guest go on.
    const auto frame = make_frame(1514);
    b.send(frame, 42);
    h.be->poll_until_idle();
    EXPECT_EQ(count_status(b.tx_responses(), netif::rsp::okay), 2u);
    EXPECT_EQ(h.be->counters(vb).packets_out, 1u);
    EXPECT_TRUE(sink_b->close().ok());
    auto frames = PcapReader::read_all(path + "-b.pcap").value();
    EXPECT_EQ(frames.size(), 1u);
    if (!frames.empty()) {
      EXPECT_EQ(frames[0].data, frame);
    }
    ::unlink((path + "-a.pcap").c_str());
    ::unlink((path + "-b.pcap").c_str());
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  };
  EXPECT_EXIT(scenario(), ::testing::ExitedWithCode(0), "");
}

TEST(BackendDatapath, OverMtuFrameIsDroppedWithAnErrorAndCounted) {
  Host h;
  ScriptedFrontend fe(*h.hv, DomId{1});
  VifId id = h.attach(fe);
  const size_t n = fe.send(make_frame(1600), 42);
  h.be->poll_until_idle();
  auto rs = fe.tx_responses();
  EXPECT_EQ(rs.size(), n);
  EXPECT_EQ(count_status(rs, netif::rsp::error), n);
  EXPECT_EQ(h.be->counters(id).dropped[DropReason::over_mtu], 1u);
  EXPECT_FALSE(h.be->disabled(id));
  fe.send(make_frame(1514), 42);  // the vif keeps working
  h.be->poll_until_idle();
  rs = fe.tx_responses();
  EXPECT_EQ(count_status(rs, netif::rsp::okay), rs.size());
  EXPECT_EQ(h.be->counters(id).packets_out, 1u);
}

}  // namespace
}  // namespace pvnet::test
