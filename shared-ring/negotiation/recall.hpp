// The values of the recall handshake (docs/protocol.md 8), formatted and parsed here only, by one strict parser:
//   <frontend>/recall          "<seq> <gref> <gref> ..."  (decimal grefs, at most one page of them)
//   <backend>/recall-refused   "<gref> <gref> ..." or empty: grefs it cannot release (its rings)
//   <backend>/recall-done      "<seq>" once everything not refused is released, or "error" for a malformed request
// Tokens are separated by whitespace; anything that is not a decimal uint32 where a gref belongs refuses the value
// whole (no gref 0 out of garbage).
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared-ring/ids.hpp"

namespace pvnet::netif::recall {

inline constexpr size_t kMaxGrefs = kPageSize / sizeof(uint32_t);  // one page of grefs
inline constexpr size_t kMaxSeqChars = 20;                           // a uint64 in decimal
inline constexpr const char* kDoneError = "error";

struct Request {
  std::string seq;  // a token no earlier request on this device used
  std::vector<GrantRef> grefs;
  bool operator==(const Request&) const = default;
};
std::string format_request(const Request& r);
std::optional<Request> parse_request(std::string_view value);

// recall-done: the request's seq, or kDoneError.
struct Done {
  bool error = false;  // the backend found the request malformed
  std::string seq;     // when !error
  bool operator==(const Done&) const = default;
};
std::string format_done(const Done& d);
std::optional<Done> parse_done(std::string_view value);  // nullopt if empty

std::string format_grefs(std::span<const GrantRef> grefs);               // recall-refused
std::optional<std::vector<GrantRef>> parse_grefs(std::string_view value);  // at most kMaxGrefs

}  // namespace pvnet::netif::recall
