/* A ring driven only by the C macros of xen/io/ring.h, for the tests that prove pvnet's C++ ring is the same
 * ring. Compiled as C (c_ring_driver.c); C++ sees opaque handles and the netif structs from xen/io/netif.h. */
#ifndef PVNET_TESTS_RING_C_RING_DRIVER_H
#define PVNET_TESTS_RING_C_RING_DRIVER_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct netif_tx_request;
struct netif_tx_response;
struct netif_rx_request;
struct netif_rx_response;

/* One C front ring and one C back ring over the same shared area. */
struct c_tx_ring;
struct c_rx_ring;

#define PVNET_C_RING_DECLS(name, req_t, rsp_t)                                                             \
  /* SHARED_RING_INIT then FRONT_RING_ATTACH/BACK_RING_ATTACH at `start`; shared indices set to `start`   \
   * (events to start+1) by hand, which is what a ring that ran `start` messages looks like. */           \
  struct c_##name##_ring* c_##name##_new(void* mem, size_t bytes, uint32_t start);                        \
  void c_##name##_delete(struct c_##name##_ring* r);                                                      \
  unsigned c_##name##_size(const struct c_##name##_ring* r);                                              \
  unsigned c_##name##_free_requests(const struct c_##name##_ring* r);                                     \
  /* front */                                                                                             \
  void c_##name##_produce_request(struct c_##name##_ring* r, const struct req_t* req);                    \
  void c_##name##_push_requests(struct c_##name##_ring* r);                                               \
  int c_##name##_push_requests_and_check_notify(struct c_##name##_ring* r);                               \
  unsigned c_##name##_unconsumed_responses(const struct c_##name##_ring* r);                              \
  void c_##name##_consume_response(struct c_##name##_ring* r, struct rsp_t* out);                         \
  int c_##name##_final_check_for_responses(struct c_##name##_ring* r);                                    \
  /* back */                                                                                              \
  unsigned c_##name##_unconsumed_requests(const struct c_##name##_ring* r);                               \
  void c_##name##_consume_request(struct c_##name##_ring* r, struct req_t* out);                          \
  void c_##name##_produce_response(struct c_##name##_ring* r, const struct rsp_t* rsp);                   \
  void c_##name##_push_responses(struct c_##name##_ring* r);                                              \
  int c_##name##_push_responses_and_check_notify(struct c_##name##_ring* r);                              \
  int c_##name##_final_check_for_requests(struct c_##name##_ring* r);                                     \
  int c_##name##_request_prod_overflow(const struct c_##name##_ring* r, uint32_t prod);                   \
  int c_##name##_request_cons_overflow(const struct c_##name##_ring* r, uint32_t cons);

PVNET_C_RING_DECLS(tx, netif_tx_request, netif_tx_response)
PVNET_C_RING_DECLS(rx, netif_rx_request, netif_rx_response)

/* Two-process loops written with the macros only. `req_fd` is signalled by the frontend (new requests),
 * `rsp_fd` by the backend (new responses); they sleep in poll() for at most timeout_ms after a final check.
 * The TX frontend sends `count` requests numbered 0..count-1 (gref = seq, id = seq & 0xffff,
 * offset = seq >> 16, size = seq ^ 0x5a5a) in random batches; the backend checks each arrives once and in
 * order and answers with id = seq & 0xffff, status = -(seq % 3), which the frontend checks in order too.
 * The caller initialises the shared header before either process starts.
 * Returns 0 on success, else a negative code; *notifies = notifications this side sent, *sleeps = poll waits. */
struct c_loop_stats {
  uint64_t notifies;
  uint64_t sleeps;
  int32_t error;   /* 0, or which check failed */
  uint32_t bad_seq; /* the sequence number at which it failed */
};
void c_tx_frontend_loop(void* mem, size_t bytes, int req_fd, int rsp_fd, uint64_t count, uint32_t seed,
                        int timeout_ms, struct c_loop_stats* stats);
void c_tx_backend_loop(void* mem, size_t bytes, int req_fd, int rsp_fd, uint64_t count, uint32_t seed,
                       int timeout_ms, struct c_loop_stats* stats);

#ifdef __cplusplus
}
#endif
#endif
