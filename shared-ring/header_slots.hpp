// Header-slot geometry and the frontend's slot allocator (pvnet's header-slot extension, docs/protocol.md).
// Header-slot pages are granted once and cut into equal power-of-two slots; a TX packet's headers go into one
// slot, named on the wire by (gref of the slot's page, offset of the slot in that page).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "shared-ring/ids.hpp"
#include "shared-ring/result.hpp"

namespace pvnet {

struct SlotIndexTag {};
// A slot number across all header-slot pages of one connection: page_index * slots_per_page + slot in page.
using SlotIndex = StrongId<SlotIndexTag, uint32_t>;

struct SlotLocation {
  uint32_t page_index;  // which header-slot page (its position in the frontend's registration order)
  uint16_t offset;      // byte offset of the slot in that page, as carried in TxRequest::offset
  auto operator<=>(const SlotLocation&) const = default;
};

class HeaderSlotGeometry {
 public:
  // slot_size: a power of two in [netif::kHeaderSlotSizeMin, kHeaderSlotSizeMax]; nr_pages >= 1.
  // The backend builds one from the frontend's "header-slot-size" key, so a bad value is an error, not an assert.
  static Result<HeaderSlotGeometry> make(uint32_t slot_size, uint32_t nr_pages);
  // The one slot-size rule: the frontend checks its config with it, the backend the frontend's header-slot-size
  // (negotiation/features.cpp), so a size one end takes the other never refuses.
  static bool valid_slot_size(uint32_t slot_size);
  // The geometry a registration ends up with: the negotiated slot size over as many pages as the frontend wants,
  // the backend allows (GET_GREF_MAPPING_SIZE) and one gref-table page can list (ADD_GREF_MAPPING's bound).
  static Result<HeaderSlotGeometry> negotiate(uint32_t slot_size, uint32_t pages_wanted, uint32_t pages_allowed);
  static uint32_t max_registered_pages();  // entries in one gref-table page

  uint32_t slot_size() const { return slot_size_; }
  uint32_t slots_per_page() const { return kPageSize / slot_size_; }
  uint32_t nr_pages() const { return nr_pages_; }
  uint32_t nr_slots() const { return nr_pages_ * slots_per_page(); }

  // SlotIndex -> (page, offset). Precondition: index < nr_slots() (the allocator only hands out such).
  SlotLocation locate(SlotIndex index) const;
  // (page, offset) -> SlotIndex, with the same checks as validate() on offset.
  Result<SlotIndex> index_of(uint32_t page_index, uint32_t offset) const;

  // The backend's check of a first TX request flagged NETTXF_header_slot, on its private copy: the offset must
  // be slot aligned and inside the page, and the header length must be 1..slot size (so the header cannot spill
  // into the next slot, which belongs to another packet).
  Result<void> validate(uint32_t offset, uint32_t length) const;

 private:
  HeaderSlotGeometry(uint32_t slot_size, uint32_t nr_pages) : slot_size_(slot_size), nr_pages_(nr_pages) {}
  uint32_t slot_size_;
  uint32_t nr_pages_;
};

// The frontend's free list of slots: O(1) alloc and free. A slot is freed when the TX response of its packet
// arrives; a double free or an out-of-range index is a frontend bug and is refused (not silently corrupting the
// free list, which would later hand one slot to two packets).
class SlotAllocator {
 public:
  explicit SlotAllocator(uint32_t nr_slots);

  std::optional<SlotIndex> alloc();
  Result<void> free(SlotIndex index);

  uint32_t capacity() const { return static_cast<uint32_t>(in_use_.size()); }
  uint32_t in_use() const { return capacity() - static_cast<uint32_t>(free_.size()); }
  uint32_t high_water() const { return high_water_; }
  bool is_in_use(SlotIndex index) const { return index.value < in_use_.size() && in_use_[index.value] != 0; }

 private:
  std::vector<uint32_t> free_;   // stack of free indices
  std::vector<uint8_t> in_use_;  // per slot: 1 while allocated
  uint32_t high_water_ = 0;
};

}  // namespace pvnet
