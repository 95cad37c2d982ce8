#!/usr/bin/env bash
# (a) Two real Linux guests under QEMU, each NIC a pvnet netfront (vhost-user), dom0 = pvnet backend forwarding
# dom1 <-> dom2 by grant copy. They ping each other, then each sends the other 20 MiB of /dev/urandom over TCP:
# the sha256 printed by the sender must equal the one the receiver computes. Under the slots policy, dom0 must
# not have mapped a page nor taken a fault for that traffic, and copied no more than the headers.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
MB=${PVNET_GUEST_MB:-20}

build_guest
start_backend --policy "${PVNET_GUEST_POLICY:-slots}" --forward 1:2 --forward 2:1
guest 1 "wait:198.18.0.2,ping:198.18.0.2,send:198.18.0.2:5001,recv:5002,sleep:3" --mb "$MB"
guest 2 "wait:198.18.0.1,ping:198.18.0.1,recv:5001,send:198.18.0.1:5002,sleep:3" --mb "$MB"

# The traffic window: from both guests' link up (netfront connected) to the last byte received.
wait_line "$WORK/guest-dom1.out" "PVNET eth0 ok" 90 || fail "dom1 never brought eth0 up"
wait_line "$WORK/guest-dom2.out" "PVNET eth0 ok" 90 || fail "dom2 never brought eth0 up"
kill -USR1 "$BACKEND_PID"
wait_line "$WORK/guest-dom1.out" "PVNET recv:5002 (ok|FAIL)" 150 || fail "dom1 never finished receiving"
wait_line "$WORK/guest-dom2.out" "PVNET recv:5001 (ok|FAIL)" 10 || fail "dom2 never finished receiving"
kill -USR2 "$BACKEND_PID"
wait_line "$WORK/backend.out" "snapshot end" 10 || fail "no end snapshot"
log "traffic done"
wait_guest 1
wait_guest 2
stop_backend

for d in 1 2; do grep "PVNET ping" "$WORK/guest-dom$d.out"; done
sent12=$(field 1 send:198.18.0.2:5001 sha256); recv12=$(field 2 recv:5001 sha256)
sent21=$(field 2 send:198.18.0.1:5002 sha256); recv21=$(field 1 recv:5002 sha256)
bytes12=$(field 2 recv:5001 bytes); bytes21=$(field 1 recv:5002 bytes)
echo "dom1 -> dom2: sent sha256 $sent12, received $recv12 ($bytes12 bytes) in $(field 1 send:198.18.0.2:5001 seconds) s"
echo "dom2 -> dom1: sent sha256 $sent21, received $recv21 ($bytes21 bytes) in $(field 2 send:198.18.0.1:5002 seconds) s"
[ -n "$sent12" ] && [ "$sent12" = "$recv12" ] || fail "dom1 -> dom2 checksum mismatch"
[ -n "$sent21" ] && [ "$sent21" = "$recv21" ] || fail "dom2 -> dom1 checksum mismatch"
[ "$bytes12" = $((MB * 1048576)) ] && [ "$bytes21" = $((MB * 1048576)) ] || fail "byte counts differ"

echo "backend (traffic window): $(json '{k: j[k] for k in ["pages_mapped","faults","backend_memcpy_bytes","header_bytes","grant_copy_bytes","dom0_bytes_copied","hypercalls","slots_used"]}')"
echo "backend packets: in $(json 'j["backend"]["packets_in"]') out $(json 'j["backend"]["packets_out"]') rx $(json 'j["backend"]["rx_packets"]') gso $(json 'j["backend"]["tx_gso_packets"]')"
cp "$WORK/backend.json" "${PVNET_GUEST_JSON_OUT:-/dev/null}" 2>/dev/null || true
[ "$(json 'j["pages_mapped"]')" = 0 ] || fail "dom0 mapped pages for guest-to-guest traffic"
[ "$(json 'j["faults"]')" = 0 ] || fail "dom0 took faults for guest-to-guest traffic"
[ "$(json 'j["backend_memcpy_bytes"] <= j["header_bytes"]')" = True ] || fail "dom0 copied more than the headers"
[ "$(json 'j["backend"]["packets_out"] > 2 * '"$MB"' * 1048576 // 65536')" = True ] || fail "too few packets forwarded"
log "vm_to_vm ok"
