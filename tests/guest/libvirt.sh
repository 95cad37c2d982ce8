#!/usr/bin/env bash
# (d) The same guest started through libvirtd (virsh create of tools/guest/domain.xml.in: type='qemu', direct
# kernel boot, memfd shared memory, <interface type='vhostuser'>): it boots and pings the host side of the
# backend's TAP through pvnet. libvirtd and virtlogd are started by hand when not running (no systemd).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
require virsh libvirtd virtlogd
NETNS=pvnet-test-$$

build_guest
start_backend --policy slots --tap-netns "$NETNS" --tap-for 1
guest 1 "wait:198.18.0.254,ping:198.18.0.254,sleep:1" --libvirt
wait_guest 1
grep "PVNET ping" "$WORK/guest-dom1.out"
grep -q "PVNET ping:198.18.0.254 ok received=5/5" "$WORK/guest-dom1.out" || fail "no ping through libvirt's guest"
stop_backend
echo "tap: $(json 'j["tap"]')"
log "libvirt ok"
