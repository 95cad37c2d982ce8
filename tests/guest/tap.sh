#!/usr/bin/env bash
# (b) A real guest reaches the host through the backend's TAP sink: the TAP lives in a network namespace
# (198.18.0.254/24, fd00::fe/64); the guest pings it (IPv4 and IPv6), sends it 8 MiB over TCP and receives
# 8 MiB from a server there; the sha256 of each side must match. (c) The guest's traffic is captured by its
# frontend (--capture) and the capture replays through pvnet (every frame delivered).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
MB=8
NETNS=pvnet-test-$$

build_guest
start_backend --policy "${PVNET_GUEST_POLICY:-slots}" --tap-netns "$NETNS" --tap-for 1
[[ "$(ip -n "$NETNS" addr show pvtap1)" == *198.18.0.254/24* ]] || fail "the TAP has no address in $NETNS"
ip netns exec "$NETNS" python3 "$here/hostnet.py" recv 5001 >"$WORK/host-recv.out" 2>&1 &
PIDS+=("$!"); HOST_RECV=$!
guest 1 "wait:198.18.0.254,ping:198.18.0.254,ping:fd00::fe,send:198.18.0.254:5001,recv:5002,sleep:1" --mb $MB \
  --capture "$WORK/dom1.pcap"
wait_line "$WORK/guest-dom1.out" "PVNET eth0 ok" 90 || fail "dom1 never brought eth0 up"
kill -USR1 "$BACKEND_PID"
wait_line "$WORK/guest-dom1.out" "PVNET send:198.18.0.254:5001 (ok|FAIL)" 120 || fail "dom1 never sent"
ip netns exec "$NETNS" timeout 120 python3 "$here/hostnet.py" send 198.18.0.1 5002 $MB >"$WORK/host-send.out" 2>&1 ||
  fail "the host could not send to the guest: $(cat "$WORK/host-send.out")"
wait "$HOST_RECV" || fail "the host receiver failed: $(cat "$WORK/host-recv.out")"
wait_line "$WORK/guest-dom1.out" "PVNET recv:5002 (ok|FAIL)" 60 || fail "dom1 never finished receiving"
kill -USR2 "$BACKEND_PID"
wait_line "$WORK/backend.out" "snapshot end" 10 || fail "no end snapshot"
wait_guest 1
stop_backend

grep "PVNET ping" "$WORK/guest-dom1.out"
g_sent=$(field 1 send:198.18.0.254:5001 sha256); h_recv=$(sed -n 's/.*sha256=//p' "$WORK/host-recv.out")
h_sent=$(sed -n 's/^host send .*sha256=//p' "$WORK/host-send.out"); g_recv=$(field 1 recv:5002 sha256)
echo "guest -> host: $g_sent / $h_recv"
echo "host -> guest: $h_sent / $g_recv"
[ -n "$g_sent" ] && [ "$g_sent" = "$h_recv" ] || fail "guest -> host checksum mismatch"
[ -n "$h_sent" ] && [ "$h_sent" = "$g_recv" ] || fail "host -> guest checksum mismatch"
echo "tap: $(json 'j["tap"]')"
echo "backend (traffic window, policy $(json 'j["policy"]')): $(json '{k: j[k] for k in ["pages_mapped","faults","backend_memcpy_bytes","header_bytes","grant_copy_bytes","hypercalls","tlb_shootdowns"]}')"
# Both streams crossed the TAP whole. Both ways TCP goes as GSO frames (up to 64 KiB: how many depends on TSO
# batching, a few hundred to thousands): the guest's towards the host, and the host's towards the guest, whose
# driver acked VIRTIO_NET_F_GUEST_TSO4 (so its netfront writes feature-gso-tcpv4 and the TAP sink asks its
# kernel for TSO).
[ "$(json "j['tap']['bytes_to_host'] >= $MB << 20 and j['tap']['bytes_to_guest'] >= $MB << 20 and j['tap']['frames_to_host'] > ($MB << 20) // 65536 and j['tap']['frames_to_guest'] > ($MB << 20) // 65536")" = True ] ||
  fail "too few frames or bytes through the TAP"
[ "$(json "j['tap']['gso_frames_to_guest'] > 0 and j['tap']['frames_dropped_offload'] == {}")" = True ] ||
  fail "no GSO frame reached the guest through the TAP sink"
log "tap ok"

# (c) capture + replay
[ -s "$WORK/dom1.pcap" ] || fail "the frontend wrote no capture"
frames=$(python3 - "$WORK/dom1.pcap" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(); n = 0; at = 24
while at + 16 <= len(d):
    incl = struct.unpack_from("<I", d, at + 8)[0]; at += 16 + incl; n += 1
print(n)
PY
)
log "capture: $frames frames"
[ "$frames" -gt 1000 ] || fail "the capture holds only $frames frames"
timeout 120 "$PVNET" replay --in "$WORK/dom1.pcap" --sink vif --out "$WORK/replayed.pcap" --json "$WORK/replay.json" \
  >"$WORK/replay.out" 2>&1 || { cat "$WORK/replay.out" >&2; fail "pvnet replay of the capture"; }
tail -n 5 "$WORK/replay.out"
replayed=$(python3 -c "
import json; j=json.load(open('$WORK/replay.json')); print(j['packets_out'] if j.get('verified') else -1)")
log "replayed: $replayed of $frames frames delivered"
[ "$replayed" = "$frames" ] || fail "replay delivered $replayed of $frames frames"
log "capture/replay ok"
