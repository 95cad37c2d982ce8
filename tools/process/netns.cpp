#include "tools/process/netns.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>

#include "tools/process/spawn.hpp"

namespace pvnet::tools {

Result<std::string> ensure_netns(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return make_error(EINVAL, "bad netns name '" + name + "'");
  const std::string path = "/run/netns/" + name;
  if (::access(path.c_str(), F_OK) != 0) {
    if (auto r = run_checked({"ip", "netns", "add", name}, std::chrono::seconds(10)); !r) return r.error();
  }
  if (auto r = run_checked({"ip", "-n", name, "link", "set", "lo", "up"}, std::chrono::seconds(10)); !r)
    return r.error();
  return path;
}

bool allowed_guest_address(const std::string& cidr) {
  const auto slash = cidr.find('/');
  const std::string ip = cidr.substr(0, slash);
  if (slash != std::string::npos) {
    const std::string len = cidr.substr(slash + 1);
    if (len.empty() || len.find_first_not_of("0123456789") != std::string::npos) return false;
  }
  in_addr a4{};
  if (::inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
    const uint32_t h = ntohl(a4.s_addr);
    return (h & 0xfffe0000u) == 0xc6120000u;  // 198.18.0.0/15
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &a6) == 1) return a6.s6_addr[0] == 0xfd;  // fd00::/8
  return false;
}

Result<void> configure_netns_link(const std::string& netns, const std::string& ifname,
                                  const std::vector<std::string>& addresses, unsigned mtu) {
  const auto t = std::chrono::seconds(10);
  if (auto r = run_checked({"ip", "-n", netns, "link", "set", ifname, "mtu", std::to_string(mtu), "up"}, t); !r)
    return r.error();
  for (const auto& a : addresses) {
    if (!allowed_guest_address(a))
      return make_error(EINVAL, "address " + a + " is outside 198.18.0.0/15 and fd00::/8");
    const bool v6 = a.find(':') != std::string::npos;
    std::vector<std::string> cmd = {"ip", "-n", netns};
    if (v6) cmd.push_back("-6");
    for (const char* w : {"addr", "replace", a.c_str(), "dev", ifname.c_str()}) cmd.push_back(w);
    if (v6) cmd.push_back("nodad");
    if (auto r = run_checked(cmd, t); !r) return r.error();
  }
  return {};
}

}  // namespace pvnet::tools
