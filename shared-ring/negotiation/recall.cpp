#include "shared-ring/negotiation/recall.hpp"

#include <charconv>

namespace pvnet::netif::recall {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// The next whitespace-separated token of `s` from `pos`; empty at the end.
std::string_view next_token(std::string_view s, size_t& pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
  const size_t start = pos;
  while (pos < s.size() && !is_space(s[pos])) ++pos;
  return s.substr(start, pos - start);
}

bool parse_gref(std::string_view tok, GrantRef& out) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc() || p != tok.data() + tok.size()) return false;
  out = GrantRef{v};
  return true;
}

std::optional<std::vector<GrantRef>> parse_grefs_from(std::string_view s, size_t pos) {
  std::vector<GrantRef> refs;
  for (std::string_view tok = next_token(s, pos); !tok.empty(); tok = next_token(s, pos)) {
    GrantRef r;
    if (!parse_gref(tok, r) || refs.size() == kMaxGrefs) return std::nullopt;
    refs.push_back(r);
  }
  return refs;
}

}  // namespace

std::string format_grefs(std::span<const GrantRef> grefs) {
  std::string s;
  for (GrantRef g : grefs) s += (s.empty() ? "" : " ") + std::to_string(g.value);
  return s;
}

std::optional<std::vector<GrantRef>> parse_grefs(std::string_view value) { return parse_grefs_from(value, 0); }

std::string format_request(const Request& r) {
  std::string s = r.seq;
  if (!r.grefs.empty()) s += " " + format_grefs(r.grefs);
  return s;
}

std::optional<Request> parse_request(std::string_view value) {
  size_t pos = 0;
  const std::string_view seq = next_token(value, pos);
  if (seq.empty() || seq.size() > kMaxSeqChars) return std::nullopt;
  auto grefs = parse_grefs_from(value, pos);
  if (!grefs) return std::nullopt;
  return Request{std::string(seq), std::move(*grefs)};
}

std::string format_done(const Done& d) { return d.error ? kDoneError : d.seq; }

std::optional<Done> parse_done(std::string_view value) {
  if (value.empty()) return std::nullopt;
  if (value == kDoneError) return Done{true, {}};
  return Done{false, std::string(value)};
}

}  // namespace pvnet::netif::recall
