#include "frontend/page_pool.hpp"

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>

namespace pvnet {

MemoryPagePool::MemoryPagePool(GuestMemory& mem, Pfn first, uint64_t count)
    : mem_(mem), first_(first), count_(count), allocated_(count, 0) {
  free_.reserve(count);
  // Lowest frames first out: a stack pops from the back.
  for (uint64_t i = count; i-- > 0;) free_.push_back(Pfn{first.value + i});
}

std::optional<Pfn> MemoryPagePool::alloc_page() {
  if (free_.empty()) return std::nullopt;
  const Pfn pfn = free_.back();
  free_.pop_back();
  allocated_[pfn.value - first_.value] = 1;
  return pfn;
}

std::optional<Pfn> MemoryPagePool::alloc_contiguous(uint32_t n) {
  if (n == 0 || n > free_.size()) return std::nullopt;
  if (n == 1) return alloc_page();
  for (uint64_t start = 0, run = 0; start + run < count_;) {
    if (allocated_[start + run]) {
      start += run + 1;
      run = 0;
      continue;
    }
    if (++run < n) continue;
    for (uint64_t i = start; i < start + n; ++i) allocated_[i] = 1;
    const uint64_t lo = first_.value + start, hi = lo + n;
    std::erase_if(free_, [&](Pfn p) { return p.value >= lo && p.value < hi; });
    return Pfn{lo};
  }
  return std::nullopt;
}

void MemoryPagePool::free_page(Pfn pfn) {
  const bool in_range = pfn.value >= first_.value && pfn.value - first_.value < count_;
  assert(in_range && allocated_[pfn.value - first_.value]);
  if (!in_range || !allocated_[pfn.value - first_.value]) return;
  allocated_[pfn.value - first_.value] = 0;
  free_.push_back(pfn);
}

PlacedFrame& PlacedFrame::operator=(PlacedFrame&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = std::exchange(o.pool_, nullptr);
    pages_ = std::move(o.pages_);
    pieces_ = std::move(o.pieces_);
    size_ = std::exchange(o.size_, 0);
    o.pages_.clear();
    o.pieces_.clear();
  }
  return *this;
}

void PlacedFrame::release() {
  if (pool_)
    for (Pfn p : pages_) pool_->free_page(p);
  pages_.clear();
  pieces_.clear();
  size_ = 0;
}

Result<PlacedFrame> place_frame(GuestPagePool& pool, std::span<const std::byte> frame, uint32_t first_offset,
                                uint32_t max_piece) {
  if (first_offset >= kPageSize) return make_error(EINVAL, "first_offset must be inside the first page");
  if (max_piece == 0) return make_error(EINVAL, "max_piece must be > 0");
  const uint64_t span_bytes = uint64_t{first_offset} + frame.size();
  const uint64_t nr_pages = frame.empty() ? 1 : (span_bytes + kPageSize - 1) / kPageSize;
  std::vector<Pfn> pages;
  for (uint64_t i = 0; i < nr_pages; ++i) {
    auto p = pool.alloc_page();
    if (!p) {
      for (Pfn q : pages) pool.free_page(q);
      return make_error(ENOMEM, "page pool exhausted placing a frame of " + std::to_string(frame.size()) + " B");
    }
    pages.push_back(*p);
  }
  std::vector<TxPiece> pieces;
  size_t done = 0;
  uint32_t off = first_offset;
  size_t page_idx = 0;
  while (done < frame.size()) {
    const uint32_t room = kPageSize - off;
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>({room, max_piece, frame.size() - done}));
    std::memcpy(pool.page(pages[page_idx]).data() + off, frame.data() + done, n);
    pieces.push_back(TxPiece{pages[page_idx], off, n});
    done += n;
    off += n;
    if (off == kPageSize) {
      off = 0;
      ++page_idx;
    }
  }
  return PlacedFrame(pool, std::move(pages), std::move(pieces), static_cast<uint32_t>(frame.size()));
}

}  // namespace pvnet
