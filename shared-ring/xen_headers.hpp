// The one place Xen's public C headers are included from C++. Everything else includes this.
#pragma once
#include <cstddef>
#include <cstdint>
extern "C" {
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>
#include <xen/io/ring.h>
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>
}
