// Checks a replay's output against its input, frame by frame: the output must be the input's frames, byte for
// byte, in the same order, with exactly `expected_missing` input frames absent (the ones counted as dropped).
#pragma once
#include <cstdint>
#include <string>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

struct CompareResult {
  uint64_t input_frames = 0;
  uint64_t output_frames = 0;
  uint64_t matched = 0;
  uint64_t missing = 0;  // input frames with no output frame (dropped)
};

// `repeat`: the input is read this many times over (replay --repeat).
Result<CompareResult> compare_traces(const std::string& input, const std::string& output, uint32_t repeat,
                                     uint64_t expected_missing);

}  // namespace pvnet::tools
