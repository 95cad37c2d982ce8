// netfront RX: whole pages granted writable and posted as {id, gref}; the backend fills them by grant copy. With RX
// extents (docs/protocol.md 7) each id's {offset, length} is written into the extents table before its request is
// pushed, and the buffers may be the owner's pieces of pages (post_rx_buffer): the frame then stays where the
// backend's grant copy put it and the owner gets the list of buffers.
// Responses are matched by id, never by position (docs/protocol.md 4), except a GSO extra-info slot, which has no
// id: it consumed the request posted at its own ring index (netback writes each response at its request's index,
// and Linux netfront's xennet_get_extras recycles that slot's buffer the same way).
#include <cstring>

#include "frontend/netfront.hpp"

namespace pvnet {

void Netfront::write_rx_extent(uint16_t id, uint16_t offset, uint16_t length) {
  auto* table = reinterpret_cast<netif::RxExtent*>(pool_.page(rx_extents_page_->pfn).data());
  // Written before the request is produced; the push's write barrier orders it before req_prod.
  table[id] = netif::RxExtent{offset, length};
}

uint32_t Netfront::rx_free_slots() const {
  if (!rx_ || !rx_owner_mode()) return 0;
  return std::min<uint32_t>(rx_->free_requests(), static_cast<uint32_t>(rx_free_ids_.size()));
}

bool Netfront::post_rx_buffer(const RxOwnerBuffer& ob) {
  if (!rx_ || !rx_owner_mode() || rx_->full() || rx_free_ids_.empty()) return false;
  if (state_ != NetfrontState::kConnecting && state_ != NetfrontState::kRegistering &&
      state_ != NetfrontState::kConnected)
    return false;
  if (ob.length <= config_.rx_headroom || uint32_t{ob.offset} + ob.length > kPageSize) return false;
  auto g = platform_.grant_table().grant_access(be_id_, ob.pfn, /*readonly=*/false);
  if (!g) return false;
  ++counters_.grants_in_use;
  const uint16_t id = rx_free_ids_.back();
  rx_free_ids_.pop_back();
  RxBuffer& b = rx_bufs_[id];
  b.page.reset();
  b.owner = true;
  b.cookie = ob.cookie;
  b.ext_offset = ob.offset;
  b.ext_length = ob.length;
  b.gref = *g;
  b.granted = true;
  b.posted = true;
  b.revoked = false;
  write_rx_extent(id, ob.offset, ob.length);
  rx_id_at_[rx_->req_prod_pvt() & (netif::kRxRingSize - 1)] = id;
  rx_->produce_request(netif::RxRequest{id, 0, *g});
  ++rx_posted_;
  ++counters_.rx_buffers_posted;
  return true;
}

void Netfront::push_rx_buffers() {
  if (!rx_) return;
  if (state_ == NetfrontState::kConnecting) {
    rx_->push_requests();
  } else if (rx_->push_requests_and_check_notify() && rx_port_) {
    notify(*rx_port_);
  }
}

void Netfront::revoke_rx_buffers() {
  for (auto& b : rx_bufs_) {
    if (!b.posted || !b.owner || !b.granted || b.revoked) continue;
    if (!platform_.grant_table().end_access(b.gref)) continue;  // a copy in progress: it lands, then goes unused
    --counters_.grants_in_use;
    b.granted = false;
    b.revoked = true;
  }
}

void Netfront::refill_rx() {
  if (!rx_ || rx_owner_mode()) return;  // the owner posts its buffers
  bool produced = false;
  while (rx_posted_ < config_.rx_buffers && !rx_->full() && !rx_free_ids_.empty()) {
    const uint16_t id = rx_free_ids_.back();
    RxBuffer& b = rx_bufs_[id];
    if (!b.page) {
      b.page = pool_.alloc_page();
      if (!b.page) break;
    }
    auto g = platform_.grant_table().grant_access(be_id_, *b.page, /*readonly=*/false);
    if (!g) break;
    ++counters_.grants_in_use;
    rx_free_ids_.pop_back();
    b.owner = false;
    b.ext_offset = 0;
    b.ext_length = static_cast<uint16_t>(kPageSize);
    b.gref = *g;
    b.granted = true;
    b.posted = true;
    if (rx_extents_active_) write_rx_extent(id, 0, static_cast<uint16_t>(kPageSize));
    rx_id_at_[rx_->req_prod_pvt() & (netif::kRxRingSize - 1)] = id;
    rx_->produce_request(netif::RxRequest{id, 0, *g});
    ++rx_posted_;
    ++counters_.rx_buffers_posted;
    produced = true;
  }
  if (!produced) return;
  // Before the backend is Connected its end of the port is not bound yet: publish, do not kick; it looks at the
  // ring when it connects.
  if (state_ == NetfrontState::kConnecting) {
    rx_->push_requests();
  } else if (rx_->push_requests_and_check_notify() && rx_port_) {
    notify(*rx_port_);
  }
}

// The backend answered for this buffer: take the grant back; the id is posted again once the grant has ended
// (end_grant hands it back to rx_free_ids_, at once or from a retry if the backend still held it).
void Netfront::rx_recycle(uint16_t id) {
  RxBuffer& b = rx_bufs_[id];
  b.posted = false;
  --rx_posted_;
  if (!b.granted) {  // revoked: its grant has ended already
    b.revoked = false;
    rx_free_ids_.push_back(id);
    return;
  }
  b.granted = false;
  end_grant(b.gref, KeptGrant{GrantRef{}, std::nullopt, -1, id});
}

// An owner buffer that goes back to its owner without data.
static void give_back_unused(std::vector<uint64_t>& q, uint64_t cookie) { q.push_back(cookie); }

void Netfront::rx_finish_frame() {
  RxPartial& p = rx_partial_;
  if (p.bad) {
    ++counters_.rx_errors;
    for (const auto& u : p.owned.bufs) give_back_unused(rx_unused_queue_, u.cookie);
  } else if (!p.owned.bufs.empty()) {
    ++counters_.rx_packets;
    counters_.rx_bytes += p.owned.len;
    if (p.frame.gso_type != netif::gso_type::none) ++counters_.rx_gso_packets;
    p.owned.gso_type = p.frame.gso_type;
    p.owned.gso_size = p.frame.gso_size;
    p.owned.csum_blank = p.frame.csum_blank;
    p.owned.data_validated = p.frame.data_validated;
    rx_buffers_queue_.push_back(std::move(p.owned));
  } else {
    ++counters_.rx_packets;
    counters_.rx_bytes += p.frame.data.size();
    if (p.frame.gso_type != netif::gso_type::none) ++counters_.rx_gso_packets;
    rx_deliver_queue_.push_back(std::move(p.frame));
  }
  p = RxPartial{};
}

bool Netfront::process_rx() {
  bool progress = false;
  do {
    const ring::RingIdx prod = rx_->rsp_prod();
    if (rx_->response_prod_overflow(prod)) {
      ++counters_.bad_responses;
      return progress;
    }
    while (rx_->rsp_cons() != prod) {
      const ring::RingIdx idx = rx_->rsp_cons();
      const netif::RxResponse rsp = rx_->consume_response();
      progress = true;
      RxPartial& p = rx_partial_;
      using Next = RxPartial::Next;
      if (p.next == Next::extra_then_data || p.next == Next::extra_then_end) {
        netif::ExtraInfo extra;
        static_assert(sizeof(extra) <= sizeof(rsp));
        std::memcpy(&extra, &rsp, sizeof(extra));
        const uint16_t id = rx_id_at_[idx & (netif::kRxRingSize - 1)];
        if (rx_bufs_[id].posted) {
          if (rx_bufs_[id].owner && !rx_bufs_[id].revoked) give_back_unused(rx_unused_queue_, rx_bufs_[id].cookie);
          rx_recycle(id);
        } else {
          ++counters_.bad_responses;
        }
        if (extra.type == netif::extra_type::gso) {
          p.frame.gso_type = extra.u.gso.type;
          p.frame.gso_size = extra.u.gso.size;
          if (extra.u.gso.size == 0 || (extra.u.gso.type != netif::gso_type::tcpv4 &&
                                        extra.u.gso.type != netif::gso_type::tcpv6))
            p.bad = true;
        } else if (extra.type == netif::extra_type::none || extra.type >= netif::extra_type::max) {
          p.bad = true;
        }
        if (!(extra.flags & netif::extra_flag::more))
          p.next = p.next == Next::extra_then_data ? Next::data : Next::first;
        if (p.next == Next::first) rx_finish_frame();
        continue;
      }
      if (rsp.id >= netif::kRxRingSize || !rx_bufs_[rsp.id].posted) {
        ++counters_.bad_responses;
        continue;
      }
      const bool first = p.next == Next::first;
      const bool more = (rsp.flags & netif::rxf::more_data) != 0;
      if (first) {
        p.frame.csum_blank = (rsp.flags & netif::rxf::csum_blank) != 0;
        p.frame.data_validated = (rsp.flags & netif::rxf::data_validated) != 0;
      }
      if (first && (rsp.flags & netif::rxf::extra_info)) p.next = more ? Next::extra_then_data : Next::extra_then_end;
      else p.next = more ? Next::data : Next::first;
      RxBuffer& rb = rx_bufs_[rsp.id];
      const uint32_t got = static_cast<uint32_t>(std::max<int16_t>(rsp.status, 0));
      // With extents the data must lie where this buffer's extent says (after the headroom in a frame's first).
      const uint32_t want_off = rb.ext_offset + (rx_extents_active_ && first ? config_.rx_headroom : 0);
      const bool in_extent = !rx_extents_active_ ||
                             (rsp.offset == want_off && uint32_t{rsp.offset} + got <= uint32_t{rb.ext_offset} + rb.ext_length);
      if (rb.revoked) {
        p.bad = true;  // the owner has taken it back
      } else if (rsp.status < 0 || !in_extent || uint32_t{rsp.offset} + got > kPageSize ||
          p.frame.data.size() + p.owned.len + got > netif::kMaxFrameBytes) {
        p.bad = true;
        if (rb.owner) give_back_unused(rx_unused_queue_, rb.cookie);
      } else if (rb.owner) {
        // Already where the owner wants it: nothing to copy.
        p.owned.bufs.push_back(ReceivedBuffers::Use{rb.cookie, rsp.offset, static_cast<uint16_t>(got)});
        p.owned.len += got;
      } else if (!p.bad && rsp.status > 0) {
        const std::byte* src = pool_.page(*rx_bufs_[rsp.id].page).data() + rsp.offset;
        p.frame.data.insert(p.frame.data.end(), src, src + rsp.status);
        counters_.rx_copy_bytes += static_cast<uint64_t>(rsp.status);
      }
      rx_recycle(rsp.id);
      if (p.next == Next::first) rx_finish_frame();
    }
  } while (rx_->final_check_for_responses());
  return progress;
}

// Teardown: every posted buffer's grant ends (or is kept while in use) and its page goes back to the pool.
void Netfront::rx_release_buffers() {
  for (uint16_t id = 0; id < netif::kRxRingSize; ++id) {
    RxBuffer& b = rx_bufs_[id];
    if (b.posted) {
      b.posted = false;
      --rx_posted_;
      rx_free_ids_.push_back(id);
      if (b.owner && !b.revoked) give_back_unused(rx_unused_queue_, b.cookie);
      b.revoked = false;
    }
    if (b.granted) {
      b.granted = false;
      end_grant(b.gref, KeptGrant{GrantRef{}, b.page, -1, -1});
      b.page.reset();
    } else if (b.page) {
      // A page whose grant is kept (rx_recycle) is freed by the retry; only free pages not in kept_.
      bool kept = false;
      for (auto& k : kept_)
        if (k.rx_id == id) {
          k.page = b.page;
          k.rx_id = -1;
          kept = true;
        }
      if (kept) rx_free_ids_.push_back(id);
      else pool_.free_page(*b.page);
      b.page.reset();
    }
  }
  for (const auto& u : rx_partial_.owned.bufs) give_back_unused(rx_unused_queue_, u.cookie);
  rx_partial_ = RxPartial{};
}

}  // namespace pvnet
