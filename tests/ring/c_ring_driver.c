/* Rings driven by xen/io/ring.h's macros and nothing else: the reference the C++ ring is compared against.
 * This file is C on purpose (the macros use GNU C statement expressions and C aliasing of the sring). */
#include "c_ring_driver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ring.h leaves the barriers to the includer (interface version < 0x30208 maps xen_mb() to mb()). These are
 * Linux's meanings: full fence; read and write barriers, compiler-only on x86. */
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/ring.h>
#include <xen/io/netif.h>

#define PVNET_C_RING_DEFS(name, req_t, rsp_t)                                                              \
  struct c_##name##_ring {                                                                                \
    netif_##name##_front_ring_t front;                                                                    \
    netif_##name##_back_ring_t back;                                                                      \
  };                                                                                                      \
  struct c_##name##_ring* c_##name##_new(void* mem, size_t bytes, uint32_t start) {                       \
    struct c_##name##_ring* r = calloc(1, sizeof(*r));                                                    \
    netif_##name##_sring_t* s = (netif_##name##_sring_t*)mem;                                             \
    SHARED_RING_INIT(s);                                                                                  \
    if (start != 0) {                                                                                     \
      s->req_prod = s->rsp_prod = start;                                                                  \
      s->req_event = s->rsp_event = start + 1;                                                            \
    }                                                                                                     \
    FRONT_RING_ATTACH(&r->front, s, start, bytes);                                                        \
    BACK_RING_ATTACH(&r->back, s, start, bytes);                                                          \
    return r;                                                                                             \
  }                                                                                                       \
  void c_##name##_delete(struct c_##name##_ring* r) { free(r); }                                          \
  unsigned c_##name##_size(const struct c_##name##_ring* r) { return RING_SIZE(&r->front); }              \
  unsigned c_##name##_free_requests(const struct c_##name##_ring* r) { return RING_FREE_REQUESTS(&r->front); } \
  void c_##name##_produce_request(struct c_##name##_ring* r, const struct req_t* req) {                   \
    *RING_GET_REQUEST(&r->front, r->front.req_prod_pvt) = *req;                                           \
    r->front.req_prod_pvt++;                                                                              \
  }                                                                                                       \
  void c_##name##_push_requests(struct c_##name##_ring* r) { RING_PUSH_REQUESTS(&r->front); }             \
  int c_##name##_push_requests_and_check_notify(struct c_##name##_ring* r) {                              \
    int notify;                                                                                           \
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&r->front, notify);                                               \
    return notify;                                                                                        \
  }                                                                                                       \
  unsigned c_##name##_unconsumed_responses(const struct c_##name##_ring* r) {                             \
    return XEN_RING_NR_UNCONSUMED_RESPONSES(&r->front);                                                   \
  }                                                                                                       \
  void c_##name##_consume_response(struct c_##name##_ring* r, struct rsp_t* out) {                        \
    RING_COPY_RESPONSE(&r->front, r->front.rsp_cons, out);                                                \
    r->front.rsp_cons++;                                                                                  \
  }                                                                                                       \
  int c_##name##_final_check_for_responses(struct c_##name##_ring* r) {                                   \
    int more;                                                                                             \
    RING_FINAL_CHECK_FOR_RESPONSES(&r->front, more);                                                      \
    return more != 0;                                                                                     \
  }                                                                                                       \
  unsigned c_##name##_unconsumed_requests(const struct c_##name##_ring* r) {                              \
    return XEN_RING_NR_UNCONSUMED_REQUESTS(&r->back);                                                     \
  }                                                                                                       \
  void c_##name##_consume_request(struct c_##name##_ring* r, struct req_t* out) {                         \
    RING_COPY_REQUEST(&r->back, r->back.req_cons, out);                                                   \
    r->back.req_cons++;                                                                                   \
  }                                                                                                       \
  void c_##name##_produce_response(struct c_##name##_ring* r, const struct rsp_t* rsp) {                  \
    *RING_GET_RESPONSE(&r->back, r->back.rsp_prod_pvt) = *rsp;                                            \
    r->back.rsp_prod_pvt++;                                                                               \
  }                                                                                                       \
  void c_##name##_push_responses(struct c_##name##_ring* r) { RING_PUSH_RESPONSES(&r->back); }            \
  int c_##name##_push_responses_and_check_notify(struct c_##name##_ring* r) {                             \
    int notify;                                                                                           \
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&r->back, notify);                                               \
    return notify;                                                                                        \
  }                                                                                                       \
  int c_##name##_final_check_for_requests(struct c_##name##_ring* r) {                                    \
    int more;                                                                                             \
    RING_FINAL_CHECK_FOR_REQUESTS(&r->back, more);                                                        \
    return more != 0;                                                                                     \
  }                                                                                                       \
  int c_##name##_request_prod_overflow(const struct c_##name##_ring* r, uint32_t prod) {                  \
    return RING_REQUEST_PROD_OVERFLOW(&r->back, prod);                                                    \
  }                                                                                                       \
  int c_##name##_request_cons_overflow(const struct c_##name##_ring* r, uint32_t cons) {                  \
    return RING_REQUEST_CONS_OVERFLOW(&r->back, cons);                                                    \
  }

PVNET_C_RING_DEFS(tx, netif_tx_request, netif_tx_response)
PVNET_C_RING_DEFS(rx, netif_rx_request, netif_rx_response)

/* ---- two-process loops --------------------------------------------------------------------------------- */

static uint32_t xorshift32(uint32_t* s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static void kick(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do n = write(fd, &one, sizeof(one));
  while (n < 0 && errno == EINTR);
}

/* 0 when woken, -1 on timeout or error. */
static int sleep_on(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  uint64_t v;
  if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) return -1;
  return 0;
}

void c_tx_frontend_loop(void* mem, size_t bytes, int req_fd, int rsp_fd, uint64_t count, uint32_t seed,
                        int timeout_ms, struct c_loop_stats* st) {
  netif_tx_front_ring_t front;
  netif_tx_sring_t* s = (netif_tx_sring_t*)mem;
  uint64_t sent = 0, acked = 0;
  uint32_t rng = seed | 1;
  memset(st, 0, sizeof(*st));
  /* The shared header was initialised (SHARED_RING_INIT) before the backend process started. */
  FRONT_RING_INIT(&front, s, bytes);
  while (acked < count) {
    RING_IDX rp = front.sring->rsp_prod;
    rmb(); /* responses up to rp are visible */
    if (RING_RESPONSE_PROD_OVERFLOW(&front, rp)) { st->error = -5; return; }
    while (front.rsp_cons != rp) {
      netif_tx_response_t rsp;
      RING_COPY_RESPONSE(&front, front.rsp_cons, &rsp);
      front.rsp_cons++;
      if (rsp.id != (uint16_t)acked || rsp.status != -(int16_t)(acked % 3)) {
        st->error = -1;
        st->bad_seq = (uint32_t)acked;
        return;
      }
      acked++;
    }
    unsigned free_reqs = RING_FREE_REQUESTS(&front);
    if (sent < count && free_reqs > 0) {
      uint64_t batch = 1 + xorshift32(&rng) % 64;
      if (batch > free_reqs) batch = free_reqs;
      if (batch > count - sent) batch = count - sent;
      for (uint64_t i = 0; i < batch; i++, sent++) {
        netif_tx_request_t* req = RING_GET_REQUEST(&front, front.req_prod_pvt);
        req->gref = (grant_ref_t)sent;
        req->offset = (uint16_t)(sent >> 16);
        req->flags = 0;
        req->id = (uint16_t)sent;
        req->size = (uint16_t)(sent ^ 0x5a5a);
        front.req_prod_pvt++;
      }
      int notify;
      RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
      if (notify) { kick(req_fd); st->notifies++; }
      continue;
    }
    if (acked == count) break;
    int more;
    RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
    if (more) continue;
    st->sleeps++;
    if (sleep_on(rsp_fd, timeout_ms) != 0) { st->error = -2; st->bad_seq = (uint32_t)acked; return; }
  }
}

void c_tx_backend_loop(void* mem, size_t bytes, int req_fd, int rsp_fd, uint64_t count, uint32_t seed,
                       int timeout_ms, struct c_loop_stats* st) {
  netif_tx_back_ring_t back;
  netif_tx_sring_t* s = (netif_tx_sring_t*)mem;
  uint64_t done = 0;
  uint32_t rng = seed | 1;
  memset(st, 0, sizeof(*st));
  BACK_RING_INIT(&back, s, bytes);
  while (done < count) {
    RING_IDX rp = back.sring->req_prod;
    rmb(); /* requests up to rp are visible */
    if (RING_REQUEST_PROD_OVERFLOW(&back, rp)) { st->error = -4; st->bad_seq = (uint32_t)done; return; }
    unsigned avail = rp - back.req_cons;
    if (avail == 0) {
      int more;
      RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
      if (more) continue;
      st->sleeps++;
      if (sleep_on(req_fd, timeout_ms) != 0) { st->error = -2; st->bad_seq = (uint32_t)done; return; }
      continue;
    }
    unsigned batch = 1 + xorshift32(&rng) % 64;
    if (batch > avail) batch = avail;
    for (unsigned i = 0; i < batch; i++, done++) {
      netif_tx_request_t req;
      RING_COPY_REQUEST(&back, back.req_cons, &req);
      back.req_cons++;
      if (req.gref != (grant_ref_t)done || req.offset != (uint16_t)(done >> 16) || req.flags != 0 ||
          req.id != (uint16_t)done || req.size != (uint16_t)(done ^ 0x5a5a)) {
        st->error = -3;
        st->bad_seq = (uint32_t)done;
        return;
      }
      netif_tx_response_t* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
      rsp->id = req.id;
      rsp->status = -(int16_t)(done % 3);
      back.rsp_prod_pvt++;
    }
    int notify;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
    if (notify) { kick(rsp_fd); st->notifies++; }
  }
}
