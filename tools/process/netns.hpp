// The host's network namespaces, for the TAP sink (pvnet backend --tap-netns) and the guests' addresses: `ip`
// run bounded (spawn.hpp), and the address ranges the tools may configure.
#pragma once
#include <string>
#include <vector>

#include "shared-ring/result.hpp"

namespace pvnet::tools {

// The TAP sink's namespace: created with `ip netns add` when missing; /run/netns/NAME.
Result<std::string> ensure_netns(const std::string& name);
// Brings `ifname` (in namespace `netns`) up with the given addresses (198.18.0.0/15 and fd00::/8 only).
Result<void> configure_netns_link(const std::string& netns, const std::string& ifname,
                                  const std::vector<std::string>& addresses, unsigned mtu);
// Whether an address is one the guest tools may use: IPv4 in 198.18.0.0/15, IPv6 in fd00::/8 (with /prefix).
bool allowed_guest_address(const std::string& cidr);

}  // namespace pvnet::tools
