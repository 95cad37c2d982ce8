// Split virtqueue, device side (see virtqueue.hpp). Memory ordering follows the virtio spec's 2.6.13 / Linux
// vhost: read avail->idx with acquire before the ring entries it publishes; write used entries, then used->idx
// with release; a full fence between publishing used->idx (or avail_event) and reading the driver's suppression
// fields (used_event, flags, avail->idx again), the store-load pair that would otherwise lose a notification.
#include "frontend/virtqueue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace pvnet::vhost {

void to_json(nlohmann::json& j, const VirtqCounters& c) {
  j = nlohmann::json::object();
  PVNET_VIRTQ_COUNTERS(PVNET_COUNTER_JSON)
}

namespace {

constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;

uint16_t load_acquire16(std::byte* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).load(std::memory_order_acquire);
}
uint16_t load_relaxed16(std::byte* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).load(std::memory_order_relaxed);
}
void store_release16(std::byte* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_release);
}
void store_relaxed16(std::byte* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_relaxed);
}

// virtio's vring_need_event: did new_idx move past event since old_idx?
bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

Result<void> SplitVirtqueue::start(const GuestMemoryTable& mem, const VirtqConfig& cfg) {
  started_ = false;
  broken_reason_.clear();
  if (cfg.num == 0 || cfg.num > 32768 || (cfg.num & (cfg.num - 1)) != 0)
    return make_error(EINVAL, "queue size " + std::to_string(cfg.num) + " is not a power of two <= 32768");
  if (cfg.desc_gpa % 16 || cfg.avail_gpa % 2 || cfg.used_gpa % 4)
    return make_error(EINVAL, "misaligned vring address");
  desc_ = mem.gpa_to_host(cfg.desc_gpa, 16ull * cfg.num);
  avail_ = mem.gpa_to_host(cfg.avail_gpa, 6ull + 2ull * cfg.num);
  used_ = mem.gpa_to_host(cfg.used_gpa, 6ull + 8ull * cfg.num);
  if (!desc_ || !avail_ || !used_) return make_error(EFAULT, "vring outside guest RAM");
  mem_ = &mem;
  cfg_ = cfg;
  last_avail_ = cfg.last_avail_idx;
  used_idx_ = cfg.last_avail_idx;  // GET_VRING_BASE reported everything before it as done
  signalled_valid_ = false;
  started_ = true;
  return {};
}

bool SplitVirtqueue::drain_kick() {
  if (!kick_fd_) return false;
  uint64_t v;
  const bool got = ::read(kick_fd_.get(), &v, sizeof v) == sizeof v;
  if (got) ++counters_.kicks;
  return got;
}

bool SplitVirtqueue::add_buf(const Desc& d, Chain& out, std::string* why) {
  if (d.len == 0) return true;  // nothing to transfer; harmless
  std::byte* host = mem_->gpa_to_host(d.addr, d.len);
  if (!host) {
    if (why) *why = "descriptor outside guest RAM";
    return false;
  }
  if (d.flags & kDescWrite) {
    out.writable.push_back(ChainBuf{d.addr, d.len, host});
    out.write_bytes += d.len;
  } else {
    if (!out.writable.empty()) {
      if (why) *why = "readable descriptor after a writable one";
      return false;
    }
    out.readable.push_back(ChainBuf{d.addr, d.len, host});
    out.read_bytes += d.len;
  }
  return true;
}

bool SplitVirtqueue::walk(uint16_t head, Chain& out, std::string* why) {
  const uint32_t num = cfg_.num;
  uint32_t ttl = num;  // a chain never has more descriptors than the queue size: more means a loop
  uint16_t i = head;
  for (;;) {
    if (ttl-- == 0) {
      if (why) *why = "descriptor chain longer than the queue (loop?)";
      return false;
    }
    Desc d;
    std::memcpy(&d, desc_ + 16ull * i, sizeof d);  // one fetch: the guest may rewrite it under us
    if (d.flags & kDescIndirect) {
      if (!cfg_.indirect || (d.flags & kDescNext) || d.len == 0 || d.len % 16 != 0 || d.len / 16 > num) {
        if (why) *why = "bad indirect descriptor";
        return false;
      }
      std::byte* table = mem_->gpa_to_host(d.addr, d.len);
      if (!table || d.addr % 16 != 0) {
        if (why) *why = "indirect table outside guest RAM";
        return false;
      }
      const uint32_t n = d.len / 16;
      uint32_t ittl = n;
      uint32_t j = 0;
      for (;;) {
        if (ittl-- == 0) {
          if (why) *why = "indirect chain loops";
          return false;
        }
        Desc e;
        std::memcpy(&e, table + 16ull * j, sizeof e);
        if (e.flags & kDescIndirect) {
          if (why) *why = "nested indirect descriptor";
          return false;
        }
        if (!add_buf(e, out, why)) return false;
        if (!(e.flags & kDescNext)) return true;
        if (e.next >= n) {
          if (why) *why = "indirect next out of range";
          return false;
        }
        j = e.next;
      }
    }
    if (!add_buf(d, out, why)) return false;
    if (!(d.flags & kDescNext)) return true;
    if (d.next >= num) {
      if (why) *why = "next out of range";
      return false;
    }
    i = d.next;
  }
}

SplitVirtqueue::Pop SplitVirtqueue::pop(Chain& out, std::string* why) {
  out.clear();
  if (!started_ || broken()) return Pop::kBroken;
  const uint16_t avail_idx = load_acquire16(avail_ + 2);
  const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending == 0) return Pop::kEmpty;
  if (pending > cfg_.num) {
    set_broken("avail index " + std::to_string(avail_idx) + " is " + std::to_string(pending) +
               " ahead of " + std::to_string(last_avail_) + " (queue size " + std::to_string(cfg_.num) + ")");
    return Pop::kBroken;
  }
  const uint16_t head = load_relaxed16(avail_ + 4 + 2ull * (last_avail_ & (cfg_.num - 1)));
  ++last_avail_;
  if (head >= cfg_.num) {
    set_broken("avail ring names descriptor " + std::to_string(head) + " of " + std::to_string(cfg_.num));
    return Pop::kBroken;
  }
  ++counters_.chains;
  out.head = head;
  std::string local;
  if (!walk(head, out, why ? why : &local)) {
    ++counters_.bad_chains;
    out.clear();
    push(head, 0);
    return Pop::kBadChain;
  }
  return Pop::kChain;
}

void SplitVirtqueue::push(uint16_t head, uint32_t written_len) {
  if (!started_) return;
  std::byte* e = used_ + 4 + 8ull * (used_idx_ & (cfg_.num - 1));
  const uint32_t id = head;
  std::memcpy(e, &id, 4);
  std::memcpy(e + 4, &written_len, 4);
  ++used_idx_;
  store_release16(used_ + 2, used_idx_);
  ++counters_.used;
}

void SplitVirtqueue::call() {
  if (!started_ || !call_fd_) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool want;
  if (cfg_.event_idx) {
    const uint16_t used_event = load_relaxed16(avail_ + 4 + 2ull * cfg_.num);
    want = !signalled_valid_ || need_event(used_event, used_idx_, signalled_used_);
  } else {
    want = !(load_relaxed16(avail_) & kAvailNoInterrupt) && (!signalled_valid_ || signalled_used_ != used_idx_);
  }
  if (signalled_valid_ && signalled_used_ == used_idx_) want = false;
  signalled_used_ = used_idx_;
  signalled_valid_ = true;
  if (!want) {
    ++counters_.calls_suppressed;
    return;
  }
  const uint64_t one = 1;
  if (::write(call_fd_.get(), &one, sizeof one) == sizeof one) ++counters_.calls;
}

bool SplitVirtqueue::enable_kicks() {
  if (!started_ || broken()) return false;
  if (cfg_.event_idx) store_relaxed16(used_ + 4 + 8ull * cfg_.num, last_avail_);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return load_acquire16(avail_ + 2) != last_avail_;
}

}  // namespace pvnet::vhost
