// Where netfront's pages come from: the guest's own page allocator (alloc_page/free_page in a guest kernel).
// Driver pages (rings, header-slot pages, the gref table, RX buffers, linearisation pages) and the test/replay
// "stack"'s packet buffers all come from a GuestPagePool. The default pool hands out frames of the Platform's
// GuestMemory; a later pool may hand out pages of a QEMU guest's RAM, so nothing else assumes where they live.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "grant-sim/platform/guest_memory.hpp"
#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

class GuestPagePool {
 public:
  virtual ~GuestPagePool() = default;
  virtual std::optional<Pfn> alloc_page() = 0;  // nullopt when exhausted (the caller backs off, "busy")
  // `n` frames in a row, the first returned (a multi-page ring); each is freed with free_page. nullopt when there
  // is no such run (a pool that cannot tell says so for every n > 1).
  virtual std::optional<Pfn> alloc_contiguous(uint32_t n) {
    if (n == 1) return alloc_page();
    return std::nullopt;
  }
  virtual void free_page(Pfn pfn) = 0;
  virtual std::span<std::byte> page(Pfn pfn) = 0;  // the page's bytes as the guest sees them
  virtual uint64_t free_pages() const = 0;
  virtual uint64_t capacity() const = 0;
};

// A free list over frames [first, first + count) of a GuestMemory.
class MemoryPagePool final : public GuestPagePool {
 public:
  MemoryPagePool(GuestMemory& mem, Pfn first, uint64_t count);
  explicit MemoryPagePool(GuestMemory& mem) : MemoryPagePool(mem, Pfn{0}, mem.nr_pages()) {}

  std::optional<Pfn> alloc_page() override;
  std::optional<Pfn> alloc_contiguous(uint32_t n) override;  // first fit: a connect-time operation, O(pool)
  void free_page(Pfn pfn) override;  // a frame outside the range or already free is a bug: asserts, ignored
  std::span<std::byte> page(Pfn pfn) override { return mem_.page(pfn); }
  uint64_t free_pages() const override { return free_.size(); }
  uint64_t capacity() const override { return count_; }

 private:
  GuestMemory& mem_;
  Pfn first_;
  uint64_t count_;
  std::vector<Pfn> free_;
  std::vector<uint8_t> allocated_;
};

// One piece of a frame in guest memory. A piece may run over several consecutive frames; netfront cuts it at
// page boundaries (one request per page piece).
struct TxPiece {
  Pfn pfn;
  uint32_t offset = 0;  // < kPageSize
  uint32_t len = 0;
};

// A frame the guest's "stack" placed in pool pages. Owns the pages (returned to the pool on destruction), so keep
// it alive until netfront reported the frame complete: its pieces are granted to the backend until then.
class PlacedFrame {
 public:
  PlacedFrame() = default;
  PlacedFrame(GuestPagePool& pool, std::vector<Pfn> pages, std::vector<TxPiece> pieces, uint32_t size)
      : pool_(&pool), pages_(std::move(pages)), pieces_(std::move(pieces)), size_(size) {}
  PlacedFrame(PlacedFrame&& o) noexcept { *this = std::move(o); }
  PlacedFrame& operator=(PlacedFrame&& o) noexcept;
  PlacedFrame(const PlacedFrame&) = delete;
  PlacedFrame& operator=(const PlacedFrame&) = delete;
  ~PlacedFrame() { release(); }

  std::span<const TxPiece> pieces() const { return pieces_; }
  std::span<const Pfn> pages() const { return pages_; }
  uint32_t size() const { return size_; }
  void release();

 private:
  GuestPagePool* pool_ = nullptr;
  std::vector<Pfn> pages_;
  std::vector<TxPiece> pieces_;
  uint32_t size_ = 0;
};

// Copies `frame` into fresh pool pages, starting `first_offset` bytes into the first page (0: page aligned), and
// describes it as pieces of at most `max_piece` bytes that never cross a page (one piece per page by default;
// a smaller max_piece makes a scattered frame, as a stack with small fragments would). Fails when the pool is
// short (nothing kept).
Result<PlacedFrame> place_frame(GuestPagePool& pool, std::span<const std::byte> frame, uint32_t first_offset = 0,
                                uint32_t max_piece = kPageSize);

}  // namespace pvnet
