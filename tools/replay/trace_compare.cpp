#include "tools/replay/trace_compare.hpp"

#include <algorithm>

#include "tools/trace/pcap_io.hpp"

namespace pvnet::tools {

Result<CompareResult> compare_traces(const std::string& input, const std::string& output, uint32_t repeat,
                                     uint64_t expected_missing) {
  CompareResult res;
  auto out = PcapReader::open(output);
  if (!out) return out.error();
  PcapFrame want, got;
  bool have_got = false;
  for (uint32_t round = 0; round < repeat; ++round) {
    auto in = PcapReader::open(input);
    if (!in) return in.error();
    for (;;) {
      auto more = in->next(want);
      if (!more) return more.error();
      if (!*more) break;
      res.input_frames++;
      if (!have_got) {
        auto g = out->next(got);
        if (!g) return g.error();
        have_got = *g;
        if (have_got) res.output_frames++;
      }
      if (have_got && got.data.size() == want.data.size() &&
          std::equal(got.data.begin(), got.data.end(), want.data.begin())) {
        res.matched++;
        have_got = false;
        continue;
      }
      // This input frame never came out. Allowed only for as many frames as were counted dropped.
      res.missing++;
      if (res.missing > expected_missing)
        return make_error(EBADMSG, "output frame " + std::to_string(res.output_frames) + " differs from input frame " +
                                       std::to_string(res.input_frames) + " (" + std::to_string(res.missing) +
                                       " input frames unmatched, " + std::to_string(expected_missing) +
                                       " were counted dropped)");
    }
  }
  if (have_got) return make_error(EBADMSG, "output has a frame the input does not: frame " +
                                               std::to_string(res.output_frames));
  for (;;) {
    auto g = out->next(got);
    if (!g) return g.error();
    if (!*g) break;
    return make_error(EBADMSG, "output has more frames than the input");
  }
  if (res.missing != expected_missing)
    return make_error(EBADMSG, std::to_string(res.missing) + " input frames missing from the output but " +
                                   std::to_string(expected_missing) + " counted dropped");
  return res;
}

}  // namespace pvnet::tools
