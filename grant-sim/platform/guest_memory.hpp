// A domain's own pseudo-physical memory, as the domain itself sees it (its "RAM"). Only the owning domain
// (a frontend) uses this; a backend reaches another domain's pages only through GrantMapper.
#pragma once
#include <cstddef>
#include <span>
#include "shared-ring/ids.hpp"

namespace pvnet {

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  virtual uint64_t nr_pages() const = 0;
  // The page at `pfn`, or an empty span if pfn is outside the domain's memory.
  virtual std::span<std::byte> page(Pfn pfn) = 0;
  // The frame holding `p`, if p points into this domain's memory.
  virtual bool frame_of(const std::byte* p, Pfn* pfn) const = 0;
};

}  // namespace pvnet
