// Grant ops with their out-fields defaulted (aggregate init of only the in-fields trips
// -Wmissing-field-initializers). Internal to backend/*.cpp.
#pragma once
#include <cstdint>

#include "grant-sim/platform/grant_mapper.hpp"

namespace pvnet {

inline MapOp map_op(DomId dom, GrantRef ref, bool readonly) {
  MapOp op;
  op.dom = dom;
  op.ref = ref;
  op.readonly = readonly;
  return op;
}
inline UnmapOp unmap_op(MapHandle h) {
  UnmapOp op;
  op.handle = h;
  return op;
}
inline CopyOp copy_op(CopySide src, CopySide dst, uint32_t len) {
  CopyOp op;
  op.src = src;
  op.dst = dst;
  op.len = static_cast<uint16_t>(len);
  return op;
}

}  // namespace pvnet
