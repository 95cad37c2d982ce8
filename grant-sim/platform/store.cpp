#include "grant-sim/platform/store.hpp"

#include <cerrno>
#include <charconv>

namespace pvnet {

const char* to_string(XenbusState s) {
  switch (s) {
    case XenbusState::Unknown: return "Unknown";
    case XenbusState::Initialising: return "Initialising";
    case XenbusState::InitWait: return "InitWait";
    case XenbusState::Initialised: return "Initialised";
    case XenbusState::Connected: return "Connected";
    case XenbusState::Closing: return "Closing";
    case XenbusState::Closed: return "Closed";
    case XenbusState::Reconfiguring: return "Reconfiguring";
    case XenbusState::Reconfigured: return "Reconfigured";
  }
  return "Invalid";
}

std::optional<std::string> Store::read_opt(std::string_view path) {
  auto r = read(path);
  if (!r) return std::nullopt;
  return std::move(r).value();
}

std::optional<long long> Store::read_int(std::string_view path) {
  auto s = read_opt(path);
  if (!s || s->empty()) return std::nullopt;
  long long v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc{} || end != s->data() + s->size()) return std::nullopt;
  return v;
}

Result<void> Store::write_int(std::string_view path, long long v) { return write(path, std::to_string(v)); }

XenbusState Store::read_state(std::string_view dir) {
  auto v = read_int(std::string(dir) + "/state");
  if (!v || *v < 0 || *v > static_cast<long long>(XenbusState::Reconfigured)) return XenbusState::Unknown;
  return static_cast<XenbusState>(*v);
}

Result<void> Store::switch_state(std::string_view dir, XenbusState s) {
  return write_int(std::string(dir) + "/state", static_cast<int>(s));
}

Result<void> Store::set_permissions(std::string_view, const NodePerms&) {
  return make_error(ENOTSUP, "set_permissions: this store has no permissions");
}

Result<NodePerms> Store::get_permissions(std::string_view) {
  return make_error(ENOTSUP, "get_permissions: this store has no permissions");
}

}  // namespace pvnet
