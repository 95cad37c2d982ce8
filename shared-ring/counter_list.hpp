// The one idiom for counter structs (docs/architecture.md, "Counters"): each struct's fields are one X-macro list
// in its header, and that list makes the fields, +=, -, to_json and operator<<, so a counter cannot be declared
// and never exported, or exported and never declared. Comments in a list are /* */ (the list is one macro).
//
//   #define PVNET_FOO_COUNTERS(X) X(frames) /* frames seen */ X(bytes)
//   struct FooCounters { PVNET_FOO_COUNTERS(PVNET_COUNTER_FIELD) };
//
// The operation macros name their operands: `o` (the other struct of +=), `a` and `b` (a - b), `j` and `c`
// (to_json(j, c)), `os`, `c` and `sep` (operator<<, `sep` a const char* that starts "").
#pragma once
#include <cstdint>

#define PVNET_COUNTER_FIELD(f) uint64_t f = 0;
#define PVNET_COUNTER_ADD(f) f += o.f;
#define PVNET_COUNTER_SUB(f) a.f -= b.f;
#define PVNET_COUNTER_JSON(f) j[#f] = c.f;
#define PVNET_COUNTER_PRINT(f) \
  os << sep << #f << '=' << c.f; \
  sep = " ";
