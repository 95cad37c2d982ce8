#include "shared-ring/header_slots.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <string>

#include "shared-ring/netif.hpp"

namespace pvnet {

bool HeaderSlotGeometry::valid_slot_size(uint32_t slot_size) {
  return std::has_single_bit(slot_size) && slot_size >= netif::kHeaderSlotSizeMin &&
         slot_size <= netif::kHeaderSlotSizeMax;
}

Result<HeaderSlotGeometry> HeaderSlotGeometry::make(uint32_t slot_size, uint32_t nr_pages) {
  if (!valid_slot_size(slot_size))
    return make_error(EINVAL, "header-slot-size " + std::to_string(slot_size) + " is not a power of two in [" +
                                  std::to_string(netif::kHeaderSlotSizeMin) + ", " +
                                  std::to_string(netif::kHeaderSlotSizeMax) + "]");
  if (nr_pages == 0) return make_error(EINVAL, "no header-slot pages");
  if (nr_pages > UINT32_MAX / (kPageSize / slot_size))
    return make_error(EINVAL, std::to_string(nr_pages) + " header-slot pages overflow the slot index");
  return HeaderSlotGeometry(slot_size, nr_pages);
}

uint32_t HeaderSlotGeometry::max_registered_pages() { return kPageSize / sizeof(netif::NetifGref); }

Result<HeaderSlotGeometry> HeaderSlotGeometry::negotiate(uint32_t slot_size, uint32_t pages_wanted,
                                                         uint32_t pages_allowed) {
  return make(slot_size, std::min({pages_wanted, pages_allowed, max_registered_pages()}));
}

SlotLocation HeaderSlotGeometry::locate(SlotIndex index) const {
  const uint32_t per_page = slots_per_page();
  return SlotLocation{index.value / per_page, static_cast<uint16_t>((index.value % per_page) * slot_size_)};
}

Result<SlotIndex> HeaderSlotGeometry::index_of(uint32_t page_index, uint32_t offset) const {
  if (page_index >= nr_pages_)
    return make_error(EINVAL, "header-slot page " + std::to_string(page_index) + " >= " + std::to_string(nr_pages_));
  if (offset >= kPageSize) return make_error(EINVAL, "slot offset " + std::to_string(offset) + " outside the page");
  if (offset % slot_size_ != 0)
    return make_error(EINVAL, "slot offset " + std::to_string(offset) + " is not a multiple of the slot size " +
                                  std::to_string(slot_size_));
  return SlotIndex{page_index * slots_per_page() + offset / slot_size_};
}

Result<void> HeaderSlotGeometry::validate(uint32_t offset, uint32_t length) const {
  if (offset >= kPageSize) return make_error(EINVAL, "slot offset " + std::to_string(offset) + " outside the page");
  if (offset % slot_size_ != 0)
    return make_error(EINVAL, "slot offset " + std::to_string(offset) + " is not a multiple of the slot size " +
                                  std::to_string(slot_size_));
  if (length == 0) return make_error(EINVAL, "empty header in slot at offset " + std::to_string(offset));
  if (length > slot_size_)
    return make_error(EINVAL, "header length " + std::to_string(length) + " exceeds the slot size " +
                                  std::to_string(slot_size_));
  // offset is slot aligned and < kPageSize, and slots tile the page, so offset + length <= kPageSize follows.
  return {};
}

SlotAllocator::SlotAllocator(uint32_t nr_slots) : in_use_(nr_slots, 0) {
  free_.reserve(nr_slots);
  // Pushed in reverse so that slot 0 is handed out first: consecutive packets use consecutive slots, which keeps
  // the headers of a burst in few cache lines/pages on both sides.
  for (uint32_t i = nr_slots; i > 0; --i) free_.push_back(i - 1);
}

std::optional<SlotIndex> SlotAllocator::alloc() {
  if (free_.empty()) return std::nullopt;
  const uint32_t i = free_.back();
  free_.pop_back();
  in_use_[i] = 1;
  high_water_ = std::max(high_water_, in_use());
  return SlotIndex{i};
}

Result<void> SlotAllocator::free(SlotIndex index) {
  if (index.value >= in_use_.size())
    return make_error(ERANGE, "free of slot " + std::to_string(index.value) + " outside the " +
                                  std::to_string(in_use_.size()) + " slots");
  if (in_use_[index.value] == 0)
    return make_error(EINVAL, "double free of slot " + std::to_string(index.value));
  in_use_[index.value] = 0;
  free_.push_back(index.value);
  return {};
}

}  // namespace pvnet
