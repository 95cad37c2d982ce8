#!/usr/bin/env bash
# `pvnet frontend --tap` on the simulator: the frontend is interface pvf0 (198.18.0.1/24) of namespace A; the
# backend's TAP sink puts its vif into namespace B (pvtap1, 198.18.0.254/24). Checks, for the given netfront
# mode: ping both ways; 6 MiB over TCP each way with the same sha256 at both ends; both sides' counters saw the
# frames, no frame dropped by the frontend, and the frontend gave every page and grant back on close.
# Usage: tap_frontend.sh POLICY [FRONTEND ARGS...]. Needs root (network namespaces, TAP).
set -euo pipefail
PVNET=${PVNET:?PVNET (the pvnet binary) is not set}
here=$(cd "$(dirname "$0")" && pwd)
POLICY=$1; shift
MB=6
T0=$(date +%s)
WORK=$(mktemp -d /tmp/pvnet-tapfe-XXXXXX)
NS_A=pvnet-tfa-$$ NS_B=pvnet-tfb-$$
PIDS=()
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(($(date +%s) - T0))s] $*"; }
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.out; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }; done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
wait_line() {  # FILE REGEX SECONDS
  local i=0
  while [ $i -lt $(($3 * 10)) ]; do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done
  return 1
}
jq_() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
[ -x "$PVNET" ] || fail "$PVNET is not built"
[ -e /dev/net/tun ] || fail "/dev/net/tun is missing"

ip netns add "$NS_A"
"$PVNET" backend --socket "$WORK/hv.sock" --policy "$POLICY" --tap-netns "$NS_B" --tap-for 1 \
  --json "$WORK/backend.json" >"$WORK/backend.out" 2>&1 &
BE=$!; PIDS+=("$BE")
wait_line "$WORK/backend.out" "^ready" 20 || fail "pvnet backend did not say ready"
ip netns exec "$NS_A" "$PVNET" frontend --socket "$WORK/hv.sock" --domid 1 --tap pvf0 --tap-addr 198.18.0.1/24 \
  --json "$WORK/frontend.json" "$@" >"$WORK/frontend.out" 2>&1 &
FE=$!; PIDS+=("$FE")
wait_line "$WORK/frontend.out" "^tap pvf0 up" 20 || fail "the frontend's TAP did not come up"
log "$(head -n1 "$WORK/frontend.out"), policy $POLICY"

ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 5 198.18.0.254 >"$WORK/ping-a.out" || fail "A cannot ping B"
ip netns exec "$NS_B" ping -c 3 -i 0.2 -W 5 198.18.0.1 >"$WORK/ping-b.out" || fail "B cannot ping A"
log "ping both ways: $(tail -n1 "$WORK/ping-a.out")"

xfer() {  # FROM_NS TO_NS TO_ADDR PORT
  ip netns exec "$2" timeout 60 python3 "$here/xfer.py" recv "$3" "$4" >"$WORK/recv-$4.out" 2>&1 &
  local r=$!
  ip netns exec "$1" timeout 60 python3 "$here/xfer.py" send "$3" "$4" $MB >"$WORK/send-$4.out" 2>&1 ||
    fail "send to $3:$4"
  wait $r || fail "receive on $3:$4"
  local s r_
  s=$(sed -n 's/.*sha256=//p' "$WORK/send-$4.out"); r_=$(sed -n 's/.*sha256=//p' "$WORK/recv-$4.out")
  log "$1 -> $2: sent $s, received $(cat "$WORK/recv-$4.out")"
  [ -n "$s" ] && [ "$s" = "$r_" ] || fail "$1 -> $2: checksum mismatch"
}
xfer "$NS_A" "$NS_B" 198.18.0.254 5001
xfer "$NS_B" "$NS_A" 198.18.0.1 5002

kill -TERM "$FE"; wait "$FE" || fail "the frontend exited non-zero"
kill -TERM "$BE"; wait "$BE" || true
echo "frontend tap: $(jq_ "$WORK/frontend.json" 'j["tap"]')"
echo "backend tap: $(jq_ "$WORK/backend.json" 'j["tap"]')"
min=$((MB << 20))  # bytes of one transfer; frames vary with TSO (up to 64 KiB each)
[ "$(jq_ "$WORK/frontend.json" "j['tap']['from_tap_bytes'] > $min and j['tap']['to_tap_bytes'] > $min")" = True ] ||
  fail "the frontend's TAP counters do not show the transfers"
[ "$(jq_ "$WORK/frontend.json" "j['tap']['dropped'] == {} and j['tap']['tx_queued'] == j['tap']['tx_completed'] == j['tap']['tx_completed_ok']")" = True ] ||
  fail "the frontend dropped or lost frames"
[ "$(jq_ "$WORK/backend.json" "j['tap']['bytes_to_host'] > $min and j['tap']['bytes_to_guest'] > $min")" = True ] ||
  fail "the backend's TAP counters do not show the transfers"
[ "$(jq_ "$WORK/backend.json" "j['tap']['frames_dropped_offload'] == {}")" = True ] ||
  fail "the backend's TAP dropped frames it could not say in netif"
# The backend offers feature-sg and TCP GSO, and netfront takes them on RX: the stack's TSO reaches netif both
# ways (A -> B: super-frames on netfront TX; B -> A: GSO extras on the vif's RX), partial checksums included.
[ "$(jq_ "$WORK/frontend.json" "j['tap']['offloads'] == {'csum': True, 'tso4': True, 'tso6': True}")" = True ] ||
  fail "the frontend's TAP offloads are not on: $(jq_ "$WORK/frontend.json" 'j["tap"]["offloads"]')"
[ "$(jq_ "$WORK/frontend.json" "j['tap']['from_tap_gso_frames'] > 0 and j['tap']['from_tap_csum_blank'] >= j['tap']['from_tap_gso_frames']")" = True ] ||
  fail "no TCP super-frame went out through netfront TX"
[ "$(jq_ "$WORK/frontend.json" "j['tap']['from_tap_frames'] * 4 < $min // 1448")" = True ] ||
  fail "netfront TX carried near one frame per MSS: TSO did not shrink the frame count"
[ "$(jq_ "$WORK/backend.json" "j['tap']['gso_frames_to_guest'] > 0 and j['backend']['rx_gso_packets'] > 0")" = True ] ||
  fail "no GSO frame reached the guest's RX"
[ "$(jq_ "$WORK/frontend.json" "j['leaks']['closed'] and j['leaks']['pages_outstanding'] == 0 and j['leaks']['grants_outstanding'] == 0")" = True ] ||
  fail "the frontend did not give everything back: $(jq_ "$WORK/frontend.json" 'j["leaks"]')"
log "tap frontend ok ($POLICY $*)"
