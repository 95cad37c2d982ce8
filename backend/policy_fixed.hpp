// The four fixed payload policies of the comparison (copy, map, hdrcopy, slots): each is one prepare() rule on
// top of PayloadPolicy's mechanisms; what differs in the header path is in payload_policy_traits().
#pragma once
#include <memory>

#include "backend/payload_policy.hpp"

namespace pvnet {

Result<std::unique_ptr<PayloadPolicy>> make_fixed_policy(PayloadPolicyKind kind, GrantMapper& mapper,
                                                         size_t window_slots);

}  // namespace pvnet
