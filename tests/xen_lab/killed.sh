#!/usr/bin/env bash
# `pvnet xen-lab` killed while QEMU runs leaves no QEMU behind: QEMU's parent is timeout(1), which dies with
# pvnet (PR_SET_PDEATHSIG) without ending QEMU; QEMU gets its own parent-death signal (setpriv --pdeathsig).
# Usage: killed.sh SIGNAL (KILL or TERM).
set -euo pipefail
PVNET=${PVNET:?PVNET (the pvnet binary) is not set}
SIG=${1:-KILL}
WORK=$(mktemp -d /tmp/pvnet-xenlab-killed-XXXXXX)
qemu_of_this_lab() { pgrep -f "serial file:$WORK/serial.log" || true; }
cleanup() {
  local rc=$?
  kill "${LAB:-0}" 2>/dev/null || true
  for q in $(qemu_of_this_lab); do kill -9 "$q" 2>/dev/null || true; done  # only if the test failed
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
"$PVNET" xen-lab --scenario selftest --timeout 120 --workdir "$WORK" -q >"$WORK.out" 2>&1 &
LAB=$!
for _ in $(seq 1 1800); do  # the first run builds the lab (minutes); then QEMU starts in seconds
  [ -n "$(qemu_of_this_lab)" ] && break
  kill -0 "$LAB" 2>/dev/null || { cat "$WORK.out" >&2; echo "FAIL: xen-lab ended before QEMU ran" >&2; exit 1; }
  sleep 0.2
done
[ -n "$(qemu_of_this_lab)" ] || { echo "FAIL: QEMU never started" >&2; exit 1; }
sleep 1
kill -"$SIG" "$LAB"
wait "$LAB" 2>/dev/null || true
rm -f "$WORK.out"
for _ in $(seq 1 50); do
  [ -z "$(qemu_of_this_lab)" ] && { echo "ok: no QEMU left after SIG$SIG"; exit 0; }
  sleep 0.1
done
echo "FAIL: QEMU $(qemu_of_this_lab) still runs after pvnet xen-lab got SIG$SIG" >&2
exit 1
