// A C++ view of Xen's io/ring.h shared rings. The shared memory layout is byte-for-byte the one that
// DEFINE_RING_TYPES produces (proven by tests/ring/lockstep_test.cpp against the C macros), so a pvnet frontend
// or backend can talk to a ring driven by Linux netfront/netback or any other ring.h user.
//
// Shared layout (one or more pages, page aligned):
//   offset  0  req_prod   written by the FRONTEND (requests published up to here)
//   offset  4  req_event  written by the BACKEND  (notify me when req_prod passes this)
//   offset  8  rsp_prod   written by the BACKEND  (responses published up to here)
//   offset 12  rsp_event  written by the FRONTEND (notify me when rsp_prod passes this)
//   offset 16  pvt[4], __pad[44]: zeroed at init, not used by netif
//   offset 64  ring[nr_ents] of union { Req req; Rsp rsp; }: a request slot is written by the frontend and
//              later overwritten with the response by the backend.
// Private (never shared) state: the frontend's req_prod_pvt/rsp_cons, the backend's rsp_prod_pvt/req_cons.
//
// Memory ordering mirrors ring.h exactly: xen_wmb() before publishing a producer index is a release fence,
// xen_rmb() after reading the other side's producer index is an acquire fence, xen_mb() is a seq_cst fence. The
// shared indices are accessed through std::atomic_ref so that the compiler neither tears, caches nor reorders
// them, while the ring entries stay plain memory (as in ring.h).
#pragma once
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "shared-ring/result.hpp"

namespace pvnet::ring {

using RingIdx = uint32_t;  // RING_IDX: free-running, wraps at 2^32; slot = idx & (nr_ents - 1)

// The 64-byte header of every *_sring. Field names are ring.h's.
struct SharedRingHeader {
  RingIdx req_prod;    // frontend writes, backend reads
  RingIdx req_event;   // backend writes, frontend reads
  RingIdx rsp_prod;    // backend writes, frontend reads
  RingIdx rsp_event;   // frontend writes, backend reads
  uint8_t pvt_pad[4];  // pvt union (netif.smartpoll_active): zeroed by SHARED_RING_INIT, unused
  uint8_t pad[44];     // __pad
};
static_assert(sizeof(SharedRingHeader) == 64);
static_assert(offsetof(SharedRingHeader, req_prod) == 0);
static_assert(offsetof(SharedRingHeader, req_event) == 4);
static_assert(offsetof(SharedRingHeader, rsp_prod) == 8);
static_assert(offsetof(SharedRingHeader, rsp_event) == 12);
static_assert(offsetof(SharedRingHeader, pvt_pad) == 16);
static_assert(offsetof(SharedRingHeader, pad) == 20);

// The three barriers of ring.h, named as there.
inline void xen_mb() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void xen_wmb() { std::atomic_thread_fence(std::memory_order_release); }
inline void xen_rmb() { std::atomic_thread_fence(std::memory_order_acquire); }

// Largest power of two <= x (ring.h's __RD32), 0 for 0.
constexpr uint32_t round_down_pow2(uint32_t x) { return x == 0 ? 0 : std::bit_floor(x); }

// Layout helpers for a DEFINE_RING_TYPES(name, Req, Rsp) ring.
template <class Req, class Rsp>
struct SharedRing {
  static_assert(std::is_trivially_copyable_v<Req> && std::is_standard_layout_v<Req>);
  static_assert(std::is_trivially_copyable_v<Rsp> && std::is_standard_layout_v<Rsp>);

  static constexpr size_t kHeaderBytes = sizeof(SharedRingHeader);
  // sizeof(union { Req req; Rsp rsp; }): the larger member, rounded up to the stricter alignment.
  static constexpr size_t kEntryAlign = std::max(alignof(Req), alignof(Rsp));
  static constexpr size_t kEntryBytes =
      (std::max(sizeof(Req), sizeof(Rsp)) + kEntryAlign - 1) / kEntryAlign * kEntryAlign;

  // __RING_SIZE / __CONST_RING_SIZE: as many entries as fit after the header, rounded down to a power of two.
  static constexpr uint32_t size_for_bytes(size_t bytes) {
    if (bytes < kHeaderBytes) return 0;
    const size_t n = (bytes - kHeaderBytes) / kEntryBytes;
    return round_down_pow2(static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX)));
  }

  // Checks a memory area before a ring view is put over it. A frontend allocates its ring itself; a backend maps
  // whatever ring-ref/ring-page-order the frontend named, so both get a reason rather than an assert.
  static Result<void> check_area(std::span<std::byte> mem) {
    if (reinterpret_cast<uintptr_t>(mem.data()) % alignof(SharedRingHeader) != 0)
      return make_error(22 /*EINVAL*/, "ring memory is not 4-byte aligned");
    if (size_for_bytes(mem.size()) == 0)
      return make_error(22 /*EINVAL*/, "ring memory of " + std::to_string(mem.size()) +
                                           " bytes holds no entry after the 64-byte header");
    return {};
  }

  // SHARED_RING_INIT: only the frontend does this, before granting the pages. Entries are left as they are.
  static void init(std::span<std::byte> mem) {
    SharedRingHeader& h = header(mem);
    h.req_prod = 0;
    h.rsp_prod = 0;
    h.req_event = 1;
    h.rsp_event = 1;
    std::memset(h.pvt_pad, 0, sizeof(h.pvt_pad));
    std::memset(h.pad, 0, sizeof(h.pad));
  }

  static SharedRingHeader& header(std::span<std::byte> mem) {
    return *reinterpret_cast<SharedRingHeader*>(mem.data());
  }
};

namespace detail {

// Base for both views: the shared memory, nr_ents, and the atomic accessors of the shared indices.
template <class Req, class Rsp>
class RingView {
 public:
  using Layout = SharedRing<Req, Rsp>;
  using Request = Req;
  using Response = Rsp;

  uint32_t size() const { return nr_ents_; }  // RING_SIZE
  std::span<std::byte> memory() const { return mem_; }

  // The shared indices as the other side sees them (relaxed: callers that act on them use the methods below,
  // which place the fences). For tests, tracing and debug dumps.
  RingIdx shared_req_prod() const { return load(hdr().req_prod); }
  RingIdx shared_req_event() const { return load(hdr().req_event); }
  RingIdx shared_rsp_prod() const { return load(hdr().rsp_prod); }
  RingIdx shared_rsp_event() const { return load(hdr().rsp_event); }

 protected:
  RingView(std::span<std::byte> mem) : mem_(mem), nr_ents_(Layout::size_for_bytes(mem.size())) {}

  SharedRingHeader& hdr() const { return *reinterpret_cast<SharedRingHeader*>(mem_.data()); }
  std::byte* entry(RingIdx idx) const {
    return mem_.data() + Layout::kHeaderBytes + static_cast<size_t>(idx & (nr_ents_ - 1)) * Layout::kEntryBytes;
  }

  static RingIdx load(RingIdx& field) { return std::atomic_ref<RingIdx>(field).load(std::memory_order_relaxed); }
  static void store(RingIdx& field, RingIdx v) {
    std::atomic_ref<RingIdx>(field).store(v, std::memory_order_relaxed);
  }

  // One read of a slot into private memory (RING_COPY_*). The signal fence after the memcpy is a compiler
  // barrier: the compiler may not re-load any part of the copy from shared memory later (no double fetch, the
  // class of bug of XSA-155), which is what ring.h gets from its volatile cast.
  template <class T>
  static T copy_from(const std::byte* src) {
    T out;
    std::memcpy(static_cast<void*>(&out), src, sizeof(T));
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return out;
  }
  template <class T>
  static void copy_to(std::byte* dst, const T& v) {
    std::memcpy(dst, static_cast<const void*>(&v), sizeof(T));
  }

  // The notify rule of RING_PUSH_*_AND_CHECK_NOTIFY: notify iff the other side's event index lies in
  // (old, new], i.e. it asked to be woken for one of the entries just published.
  static bool needs_notify(RingIdx old_prod, RingIdx new_prod, RingIdx event) {
    return static_cast<RingIdx>(new_prod - event) < static_cast<RingIdx>(new_prod - old_prod);
  }

  std::span<std::byte> mem_;
  uint32_t nr_ents_;
};

}  // namespace detail

// The frontend's half (netfront's queue->tx / queue->rx): produces requests, consumes responses.
template <class Req, class Rsp>
class FrontRing : public detail::RingView<Req, Rsp> {
  using Base = detail::RingView<Req, Rsp>;
  using Base::hdr;
  using Base::load;
  using Base::store;

 public:
  using Layout = typename Base::Layout;

  // SHARED_RING_INIT + FRONT_RING_INIT (XEN_FRONT_RING_INIT): a fresh ring at index 0.
  static Result<FrontRing> init(std::span<std::byte> mem) {
    if (auto ok = Layout::check_area(mem); !ok) return ok.error();
    Layout::init(mem);
    return FrontRing(mem, 0);
  }
  // FRONT_RING_ATTACH (FRONT_RING_INIT is attach at 0): take over a ring whose shared header is already set up,
  // with private indices starting at `start` (e.g. after a reconnect at the indices the shared page shows).
  static Result<FrontRing> attach(std::span<std::byte> mem, RingIdx start = 0) {
    if (auto ok = Layout::check_area(mem); !ok) return ok.error();
    return FrontRing(mem, start);
  }

  RingIdx req_prod_pvt() const { return req_prod_pvt_; }
  RingIdx rsp_cons() const { return rsp_cons_; }

  // RING_FREE_REQUESTS / RING_FULL.
  uint32_t free_requests() const { return this->nr_ents_ - (req_prod_pvt_ - rsp_cons_); }
  bool full() const { return free_requests() == 0; }

  // RING_GET_REQUEST: the shared slot for a request, to fill in place (netfront style).
  Req* get_request(RingIdx idx) const { return reinterpret_cast<Req*>(this->entry(idx)); }
  // Fill the slot at req_prod_pvt and advance it. Not yet visible to the backend until a push. Caller checks
  // full() first (ring.h does no flow control either).
  void produce_request(const Req& req) {
    Base::copy_to(this->entry(req_prod_pvt_), req);
    ++req_prod_pvt_;
  }
  void advance_req_prod_pvt(uint32_t n = 1) { req_prod_pvt_ += n; }

  // RING_PUSH_REQUESTS.
  void push_requests() {
    xen_wmb();  // backend sees requests before the updated producer index
    store(hdr().req_prod, req_prod_pvt_);
  }
  // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true if the backend must be kicked.
  [[nodiscard]] bool push_requests_and_check_notify() {
    const RingIdx old_prod = load(hdr().req_prod);
    const RingIdx new_prod = req_prod_pvt_;
    xen_wmb();  // backend sees requests before the updated producer index
    store(hdr().req_prod, new_prod);
    xen_mb();  // backend sees the new requests before we check req_event
    return Base::needs_notify(old_prod, new_prod, load(hdr().req_event));
  }

  // A snapshot of rsp_prod with xen_rmb() after it: responses up to it may be read.
  RingIdx rsp_prod() const {
    const RingIdx prod = load(hdr().rsp_prod);
    xen_rmb();
    return prod;
  }
  // XEN_RING_NR_UNCONSUMED_RESPONSES (with the read barrier a consumer places after it).
  uint32_t unconsumed_responses() const { return rsp_prod() - rsp_cons_; }

  // RING_GET_RESPONSE / RING_COPY_RESPONSE.
  const Rsp* get_response(RingIdx idx) const { return reinterpret_cast<const Rsp*>(this->entry(idx)); }
  Rsp copy_response(RingIdx idx) const { return Base::template copy_from<Rsp>(this->entry(idx)); }
  // Copy the response at rsp_cons and advance it. Caller checked unconsumed_responses() first.
  Rsp consume_response() { return copy_response(rsp_cons_++); }
  void advance_rsp_cons(uint32_t n = 1) { rsp_cons_ += n; }

  // RING_FINAL_CHECK_FOR_RESPONSES: true if there is more to do; false means the frontend may sleep, and the
  // backend has been asked (rsp_event = rsp_cons + 1) to notify on its next response.
  [[nodiscard]] bool final_check_for_responses() {
    if (unconsumed_responses() != 0) return true;
    store(hdr().rsp_event, rsp_cons_ + 1);
    xen_mb();
    return unconsumed_responses() != 0;
  }

  // RING_RESPONSE_PROD_OVERFLOW: an ill-behaved backend published more responses than there can be.
  bool response_prod_overflow(RingIdx prod) const { return prod - rsp_cons_ > this->nr_ents_; }

 private:
  FrontRing(std::span<std::byte> mem, RingIdx start) : Base(mem), req_prod_pvt_(start), rsp_cons_(start) {}

  RingIdx req_prod_pvt_;  // private: next request slot to fill
  RingIdx rsp_cons_;      // private: next response to consume
};

// The backend's half (netback's queue->tx / queue->rx): consumes requests, produces responses.
template <class Req, class Rsp>
class BackRing : public detail::RingView<Req, Rsp> {
  using Base = detail::RingView<Req, Rsp>;
  using Base::hdr;
  using Base::load;
  using Base::store;

 public:
  using Layout = typename Base::Layout;

  // BACK_RING_INIT: the backend never initialises the shared header (the frontend did, before granting it).
  static Result<BackRing> init(std::span<std::byte> mem) { return attach(mem, 0); }
  // BACK_RING_ATTACH.
  static Result<BackRing> attach(std::span<std::byte> mem, RingIdx start = 0) {
    if (auto ok = Layout::check_area(mem); !ok) return ok.error();
    return BackRing(mem, start);
  }

  RingIdx rsp_prod_pvt() const { return rsp_prod_pvt_; }
  RingIdx req_cons() const { return req_cons_; }

  // A snapshot of req_prod with xen_rmb() after it: requests up to it may be read (netback's
  // `rp = sring->req_prod; rmb();`). The frontend controls this value: check it with request_prod_overflow().
  RingIdx req_prod() const {
    const RingIdx prod = load(hdr().req_prod);
    xen_rmb();
    return prod;
  }
  // req_prod checked against RING_REQUEST_PROD_OVERFLOW, the way xen-netback's xenvif_tx_build_gops does: a
  // frontend that claims more outstanding requests than the ring holds is broken or hostile, and the backend
  // must treat that as a fatal protocol error for this interface (fatal_tx_err), not loop over garbage.
  Result<RingIdx> checked_req_prod() const {
    const RingIdx prod = req_prod();
    if (request_prod_overflow(prod))
      return make_error(71 /*EPROTO*/, "req_prod " + std::to_string(prod) + " is " +
                                           std::to_string(prod - rsp_prod_pvt_) + " requests ahead of rsp_prod_pvt " +
                                           std::to_string(rsp_prod_pvt_) + " on a ring of " +
                                           std::to_string(this->nr_ents_));
    return prod;
  }

  // XEN_RING_NR_UNCONSUMED_REQUESTS: requests published, capped by the free response space, so a bogus req_prod
  // can never make the backend overrun responses it has not yet produced.
  uint32_t unconsumed_requests() const {
    const uint32_t req = req_prod() - req_cons_;
    const uint32_t rsp = this->nr_ents_ - (req_cons_ - rsp_prod_pvt_);
    return std::min(req, rsp);
  }

  // RING_COPY_REQUEST: the only way a backend should read a request. One read of the shared slot into private
  // memory; everything after (validation, use) looks only at the copy.
  Req copy_request(RingIdx idx) const { return Base::template copy_from<Req>(this->entry(idx)); }
  // Copy the request at req_cons and advance it. Caller checked unconsumed_requests() first.
  Req consume_request() { return copy_request(req_cons_++); }
  void advance_req_cons(uint32_t n = 1) { req_cons_ += n; }

  // RING_REQUEST_CONS_OVERFLOW: would consuming `cons` overrun the responses not yet produced?
  bool request_cons_overflow(RingIdx cons) const { return cons - rsp_prod_pvt_ >= this->nr_ents_; }
  // RING_REQUEST_PROD_OVERFLOW: can there be this many requests?
  bool request_prod_overflow(RingIdx prod) const { return prod - rsp_prod_pvt_ > this->nr_ents_; }

  // RING_GET_RESPONSE: the shared slot for a response, to fill in place.
  Rsp* get_response(RingIdx idx) const { return reinterpret_cast<Rsp*>(this->entry(idx)); }
  // Write the response at rsp_prod_pvt (over the request it answers) and advance it.
  void produce_response(const Rsp& rsp) {
    Base::copy_to(this->entry(rsp_prod_pvt_), rsp);
    ++rsp_prod_pvt_;
  }
  void advance_rsp_prod_pvt(uint32_t n = 1) { rsp_prod_pvt_ += n; }

  // RING_PUSH_RESPONSES.
  void push_responses() {
    xen_wmb();  // frontend sees responses before the updated producer index
    store(hdr().rsp_prod, rsp_prod_pvt_);
  }
  // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: true if the frontend must be kicked.
  [[nodiscard]] bool push_responses_and_check_notify() {
    const RingIdx old_prod = load(hdr().rsp_prod);
    const RingIdx new_prod = rsp_prod_pvt_;
    xen_wmb();  // frontend sees responses before the updated producer index
    store(hdr().rsp_prod, new_prod);
    xen_mb();  // frontend sees the new responses before we check rsp_event
    return Base::needs_notify(old_prod, new_prod, load(hdr().rsp_event));
  }

  // RING_FINAL_CHECK_FOR_REQUESTS: true if there is more to do; false means the backend may sleep, and the
  // frontend has been asked (req_event = req_cons + 1) to notify on its next request.
  [[nodiscard]] bool final_check_for_requests() {
    if (unconsumed_requests() != 0) return true;
    store(hdr().req_event, req_cons_ + 1);
    xen_mb();
    return unconsumed_requests() != 0;
  }

 private:
  BackRing(std::span<std::byte> mem, RingIdx start) : Base(mem), rsp_prod_pvt_(start), req_cons_(start) {}

  RingIdx rsp_prod_pvt_;  // private: next response slot to fill
  RingIdx req_cons_;      // private: next request to consume
};

}  // namespace pvnet::ring
