// EventChannel over libxenevtchn (/dev/xen/evtchn): the real interdomain event channels. The device masks a port
// when it fires and the driver unmasks it (xenevtchn_unmask), which is the contract pvnet's interface states.
#pragma once
#include <memory>
#include "grant-sim/platform/event_channel.hpp"

namespace pvnet {

// ENOENT with "no /dev/xen/evtchn: ..." when not running on Xen.
Result<std::unique_ptr<EventChannel>> open_xen_event_channel();

}  // namespace pvnet
