#include "tools/process/control_lines.hpp"

#include <cerrno>
#include <charconv>

namespace pvnet::tools {
namespace {

using Kind = ControlLine::Kind;

Error bad(std::string_view line, const std::string& why) {
  return make_error(EPROTO, "control line '" + std::string(line) + "': " + why);
}

// A decimal number that is the whole of `s`.
template <typename T>
std::optional<T> whole_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

const char* to_string(Kind k) {
  switch (k) {
    case Kind::ready: return "ready";
    case Kind::connected: return "connected";
    case Kind::reconnected: return "reconnected";
    case Kind::done: return "done";
    case Kind::stopped: return "stopped";
    case Kind::snapshot_start: return "snapshot start";
    case Kind::snapshot_end: return "snapshot end";
    case Kind::go: return "go";
    case Kind::close: return "close";
    case Kind::other: return "other";
  }
  return "other";
}

std::string ready_line(std::string_view where) { return "ready " + std::string(where); }

std::string connected_line(bool header_slots, std::optional<uint32_t> tx_ring) {
  std::string s = std::string("connected slots=") + (header_slots ? "on" : "off");
  if (tx_ring) s += " tx-ring=" + std::to_string(*tx_ring);
  return s;
}

std::string reconnected_line(uint64_t lost) { return "reconnected lost=" + std::to_string(lost); }

void say(std::string_view line, FILE* out) {
  std::string s(line);
  s += '\n';
  std::fputs(s.c_str(), out);
  std::fflush(out);
}

Result<ControlLine> parse_control_line(std::string_view line) {
  ControlLine c;
  c.text = std::string(line);
  const auto sp = line.find(' ');
  const std::string_view word = line.substr(0, sp);
  const std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  auto exactly = [&](Kind k, std::string_view want) -> Result<ControlLine> {
    if (line != want) return bad(line, "expected '" + std::string(want) + "'");
    c.kind = k;
    return c;
  };
  if (word == "ready") {
    if (rest.empty()) return bad(line, "ready names no place");
    c.kind = Kind::ready;
    c.where = std::string(rest);
    return c;
  }
  if (word == "connected") {
    if (rest.rfind("slots=", 0) != 0) return bad(line, "expected 'connected slots=on|off [tx-ring=N]'");
    const std::string_view after = rest.substr(6);
    const auto sp2 = after.find(' ');
    const std::string_view slots = after.substr(0, sp2);
    if (slots != "on" && slots != "off") return bad(line, "slots= is on or off");
    c.header_slots = slots == "on";
    if (sp2 != std::string_view::npos) {
      const std::string_view ring = after.substr(sp2 + 1);
      if (ring.rfind("tx-ring=", 0) != 0) return bad(line, "expected tx-ring=N after slots=");
      auto n = whole_number<uint32_t>(ring.substr(8));
      if (!n || *n == 0) return bad(line, "tx-ring= is a positive number");
      c.tx_ring = *n;
    }
    c.kind = Kind::connected;
    return c;
  }
  if (word == "reconnected") {
    if (rest.rfind("lost=", 0) != 0) return bad(line, "expected 'reconnected lost=N'");
    auto n = whole_number<uint64_t>(rest.substr(5));
    if (!n) return bad(line, "lost= is a number");
    c.kind = Kind::reconnected;
    c.lost = *n;
    return c;
  }
  if (word == "snapshot") {
    if (rest == "start") return exactly(Kind::snapshot_start, kSnapshotStartLine);
    return exactly(Kind::snapshot_end, kSnapshotEndLine);
  }
  if (word == "done") return exactly(Kind::done, kDoneLine);
  if (word == "stopped") return exactly(Kind::stopped, kStoppedLine);
  if (word == "go") return exactly(Kind::go, kGoLine);
  if (word == "close") return exactly(Kind::close, kCloseLine);
  return c;  // other
}

}  // namespace pvnet::tools
