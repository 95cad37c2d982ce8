// The option parsing every subcommand shares: --help prints the description, a bad option says why and where to
// look, and the subcommand goes on only with a parsed, validated variables_map. Numeric options are declared with
// ranged(): a value that is not a number in the option's range is refused at parse time, naming the option and
// the range (Boost's own parsing would take "-1" for an unsigned option as its largest value).
#pragma once
#include <boost/program_options.hpp>
#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "shared-ring/header_slots.hpp"
#include "shared-ring/netif.hpp"

namespace pvnet::tools {

namespace option_detail {

// The whole token as a T: decimal digits (a leading '-' only for a signed T), or a decimal number for a floating
// T; no sign '+', no spaces, no hex, nothing after the number.
template <class T>
std::optional<T> parse_number(const std::string& s) {
  if (s.empty() || (std::is_unsigned_v<T> && s[0] == '-')) return std::nullopt;
  T v{};
  const char* end = s.data() + s.size();
  std::from_chars_result r;
  if constexpr (std::is_floating_point_v<T>)
    r = std::from_chars(s.data(), end, v, std::chars_format::fixed);
  else
    r = std::from_chars(s.data(), end, v, 10);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

template <class T>
std::string number_text(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    std::string s = std::to_string(v);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  } else {
    return std::to_string(+v);  // + : a uint8_t/uint16_t as a number
  }
}

}  // namespace option_detail

// A numeric option's value: lo..hi inclusive, and optionally a further rule (`rule_text` says what it is, e.g. "a
// power of 2"). See ranged().
template <class T>
class RangedValue final : public boost::program_options::typed_value<T> {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);

 public:
  RangedValue(T* store, T lo, T hi, bool (*rule)(T), const char* rule_text)
      : boost::program_options::typed_value<T>(store), lo_(lo), hi_(hi), rule_(rule), rule_text_(rule_text) {
    this->value_name(range());  // --help: "--slot-size 64..2048 (=128)"
  }

  void xparse(boost::any& out, const std::vector<std::string>& tokens) const override {
    namespace po = boost::program_options;
    const std::string token = tokens.empty() ? std::string() : tokens.back();
    const std::optional<T> v = option_detail::parse_number<T>(token);
    // Written so that a NaN is out of range.
    if (!v || !(lo_ <= *v && *v <= hi_) || (rule_ && !rule_(*v)))
      throw po::error_with_option_name("the argument ('" + token + "') for option '%canonical_option%' is invalid: " +
                                       "it must be " + allowed());
    out = *v;
  }

  // "an integer in 1..4294967295", "a number in 0..600", "... and a power of 2".
  std::string range() const { return option_detail::number_text(lo_) + ".." + option_detail::number_text(hi_); }
  std::string allowed() const {
    std::string s = std::is_floating_point_v<T> ? "a number in " : "an integer in ";
    s += range();
    if (rule_text_) s += std::string(" and ") + rule_text_;
    return s;
  }

 private:
  T lo_, hi_;
  bool (*rule_)(T);
  const char* rule_text_;
};

// The value of a numeric option, checked at parse time: ranged(&o.slot_size, 64u, 2048u, is_pow2, "a power of 2").
// Use it for every numeric option (po::value<T> alone wraps negative numbers and accepts what the code cannot
// use); the range is what the protocol or the code allows.
template <class T>
RangedValue<T>* ranged(T* store, std::type_identity_t<T> lo, std::type_identity_t<T> hi, bool (*rule)(T) = nullptr,
                       const char* rule_text = nullptr) {
  return new RangedValue<T>(store, lo, hi, rule, rule_text);
}

// Ranges several subcommands share.
namespace limits {
inline constexpr uint32_t kMaxGuestDomId = 0x7FEF;  // DOMID_FIRST_RESERVED - 1
inline constexpr uint32_t kMinMtu = 68;             // IPv4's minimum
inline constexpr uint32_t kMaxMtu = 0xFFFF;         // netif_tx_request.size is 16 bits
inline constexpr uint32_t kMaxDataOffset = 4095;    // a frame starts inside its first page
inline constexpr uint32_t kMaxTimeoutS = 86400;     // a day: any longer is a mistyped value
inline bool slot_size_ok(uint32_t v) { return HeaderSlotGeometry::valid_slot_size(v); }
inline constexpr const char* kSlotSizeRule = "a power of 2";
inline constexpr uint32_t kMinSlotSize = netif::kHeaderSlotSizeMin;
inline constexpr uint32_t kMaxSlotSize = netif::kHeaderSlotSizeMax;
}  // namespace limits

// --slot-size, wherever it is an option.
inline RangedValue<uint32_t>* slot_size_value(uint32_t* store) {
  return ranged(store, limits::kMinSlotSize, limits::kMaxSlotSize, limits::slot_size_ok, limits::kSlotSizeRule);
}

// nullopt: go on with `vm`. Otherwise the subcommand's exit status: 0 after --help, 2 after a bad option.
// `command` is the subcommand as typed, e.g. "guest run".
inline std::optional<int> parse_options(int argc, char** argv, const boost::program_options::options_description& desc,
                                        boost::program_options::variables_map& vm, const std::string& command) {
  namespace po = boost::program_options;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pvnet " << command << ": " << e.what() << "\n(see pvnet " << command << " --help)\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace pvnet::tools
