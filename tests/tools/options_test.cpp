// ranged(): a numeric option takes only a number in its range, refused at parse time with the option's name and
// the range in the message (Boost alone wraps "-1" into an unsigned option's largest value).
#include <gtest/gtest.h>

#include <sstream>

#include "tools/options.hpp"

namespace pvnet::tools {
namespace {

namespace po = boost::program_options;

// Parses `args` (after a program name) against one ranged option; returns the error message, "" if it parsed.
template <class T>
std::string parse(T& value, RangedValue<T>* semantic, std::vector<std::string> args) {
  po::options_description desc;
  desc.add_options()("value", semantic, "a number");
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(static_cast<int>(argv.size()), argv.data(), desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return e.what();
  }
  (void)value;
  return "";
}

TEST(Ranged, UnsignedTakesItsRangeAndRefusesNegativeNumbers) {
  uint32_t v = 7;
  EXPECT_EQ(parse(v, ranged(&v, 0, 4095), {"--value", "4095"}), "");
  EXPECT_EQ(v, 4095u);
  EXPECT_EQ(parse(v, ranged(&v, 0, 4095), {"--value=0"}), "");
  EXPECT_EQ(v, 0u);
  for (const char* bad : {"-1", "4096", "4294967295", "4294967296", "+1", " 1", "1 ", "0x10", "1e3", "", "ten"}) {
    v = 7;
    const std::string why = parse(v, ranged(&v, 0, 4095), {"--value", bad});
    EXPECT_NE(why, "") << "'" << bad << "' was taken as " << v;
    EXPECT_NE(why.find("'--value'"), std::string::npos) << why;
    EXPECT_NE(why.find("an integer in 0..4095"), std::string::npos) << why;
  }
}

TEST(Ranged, FullRangeOfAWideTypeStillRefusesNegatives) {
  uint64_t v = 0;
  EXPECT_EQ(parse(v, ranged(&v, 0, UINT64_MAX), {"--value", "18446744073709551615"}), "");
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_NE(parse(v, ranged(&v, 0, UINT64_MAX), {"--value", "-1"}), "");
  EXPECT_NE(parse(v, ranged(&v, 0, UINT64_MAX), {"--value", "18446744073709551616"}), "");
  uint16_t w = 0;
  EXPECT_NE(parse(w, ranged(&w, 0, 0x7FEF), {"--value", "65536"}), "");
  const std::string why = parse(w, ranged(&w, 0, 0x7FEF), {"--value", "40000"});
  EXPECT_NE(why.find("0..32751"), std::string::npos) << why;  // a uint16_t range printed as numbers
}

TEST(Ranged, SignedTakesNegativesInItsRange) {
  int v = 0;
  EXPECT_EQ(parse(v, ranged(&v, -5, 5), {"--value", "-5"}), "");
  EXPECT_EQ(v, -5);
  EXPECT_NE(parse(v, ranged(&v, -5, 5), {"--value", "-6"}), "");
}

TEST(Ranged, AFurtherRuleIsCheckedAndNamed) {
  uint32_t v = 0;
  auto slot = [&] { return ranged(&v, 64, 2048, limits::slot_size_ok, limits::kSlotSizeRule); };
  EXPECT_EQ(parse(v, slot(), {"--value", "256"}), "");
  const std::string why = parse(v, slot(), {"--value", "100"});
  EXPECT_NE(why.find("an integer in 64..2048 and a power of 2"), std::string::npos) << why;
  EXPECT_NE(parse(v, slot(), {"--value", "4096"}), "");
}

TEST(Ranged, FloatingPointRefusesNanAndOutOfRange) {
  double v = 0;
  EXPECT_EQ(parse(v, ranged(&v, 0.0, 600.0), {"--value", "0.25"}), "");
  EXPECT_DOUBLE_EQ(v, 0.25);
  for (const char* bad : {"nan", "inf", "-1", "600.5", "1e2", "0.25s"}) {
    const std::string why = parse(v, ranged(&v, 0.0, 600.0), {"--value", bad});
    EXPECT_NE(why, "") << bad;
    EXPECT_NE(why.find("a number in 0..600"), std::string::npos) << why;
  }
}

TEST(Ranged, HelpShowsTheRangeAndTheDefault) {
  uint32_t v = 0;
  po::options_description desc;
  desc.add_options()("slot-size", ranged(&v, 64, 2048)->default_value(128), "header-slot size");
  std::ostringstream os;
  os << desc;
  EXPECT_NE(os.str().find("--slot-size 64..2048 (=128)"), std::string::npos) << os.str();
}

}  // namespace
}  // namespace pvnet::tools
