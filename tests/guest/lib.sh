# Shared by the guest tests (sourced). A missing prerequisite is a FAILURE with its name: CI installs every one
# through tools/setup.sh, so a test that skipped would hide a broken setup.
set -euo pipefail
PVNET=${PVNET:?PVNET (the pvnet binary) is not set}
SRC=${PVNET_SOURCE_DIR:?PVNET_SOURCE_DIR is not set}
export PVNET_SOURCE_DIR=$SRC
export PVNET_GUEST_CACHE=${PVNET_GUEST_CACHE:-$(dirname "$(dirname "$PVNET")")/guest-cache}
T0=$(date +%s)
WORK=$(mktemp -d /tmp/pvnet-guest-test-XXXXXX)
chmod 777 "$WORK"
PIDS=()
NETNS=""

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(($(date +%s) - T0))s] $*"; }

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null
  if [ $rc -ne 0 ]; then
    echo "---- logs in $WORK (kept) ----" >&2
    for f in "$WORK"/*.log "$WORK"/*.out; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT

require() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
      fail "prerequisite '$tool' is missing: run tools/setup.sh (it installs the guest packages)"
  done
}
require qemu-system-x86_64 busybox iperf3 ip python3 apt-get dpkg
[ -x "$PVNET" ] || fail "$PVNET is not built"
[ -e /dev/net/tun ] || fail "/dev/net/tun is missing"

build_guest() {
  timeout 600 "$PVNET" guest build >"$WORK/build.out" 2>&1 || { cat "$WORK/build.out" >&2; fail "pvnet guest build"; }
  log "$(tail -n1 "$WORK/build.out")"
}

# start_backend ARGS...: pvnet backend on $WORK/hv.sock, its stdout in backend.out; waits for "ready".
start_backend() {
  "$PVNET" backend --socket "$WORK/hv.sock" --json "$WORK/backend.json" "$@" >"$WORK/backend.out" 2>&1 &
  BACKEND_PID=$!
  PIDS+=("$BACKEND_PID")
  wait_line "$WORK/backend.out" "^ready" 20 || fail "pvnet backend did not say ready"
}

stop_backend() {
  kill -TERM "$BACKEND_PID"
  local i=0
  while kill -0 "$BACKEND_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -0 "$BACKEND_PID" 2>/dev/null && fail "pvnet backend did not exit on SIGTERM"
  [ -s "$WORK/backend.json" ] || fail "pvnet backend wrote no JSON"
}

# wait_line FILE REGEX SECONDS
wait_line() {
  local i=0
  while [ $i -lt $(($3 * 10)) ]; do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

# guest DOMID SCENARIO [extra pvnet guest run args]: runs in the background, output in guest-domN.out.
guest() {
  local d=$1 s=$2; shift 2
  "$PVNET" guest run --socket "$WORK/hv.sock" --domid "$d" --workdir "$WORK" --scenario "$s" \
    --timeout "${GUEST_TIMEOUT:-150}" "$@" >"$WORK/guest-dom$d.out" 2>&1 &
  PIDS+=("$!")
  eval "GUEST_PID_$d=$!"
}

# wait_guest DOMID: its exit status must be 0 (the guest printed "PVNET done ok").
wait_guest() {
  local pid
  eval "pid=\$GUEST_PID_$1"
  if ! wait "$pid"; then
    cat "$WORK/guest-dom$1.out" >&2
    fail "guest dom$1 failed"
  fi
  log "dom$1: $(tail -n1 "$WORK/guest-dom$1.out")"
}

# field DOMID STEP KEY: a key=value of the guest's "PVNET STEP ok ..." line.
field() {
  grep -E "PVNET $2 ok" "$WORK/guest-dom$1.out" | head -n1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

json() { python3 -c "import json,sys; j=json.load(open('$WORK/backend.json')); print(eval(sys.argv[1]))" "$1"; }
