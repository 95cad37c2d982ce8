# Shared by the dom0 and domU /init of the Xen lab and by the scenarios (busybox ash).
# Every line the host reads starts with "XENLAB ": "XENLAB check ok|FAIL <what>", and once, in dom0,
# "XENLAB result ok|FAIL <scenario>[: <first failure>]".
say() { echo "XENLAB $*"; }
# json_obj FILE KEY: the object KEY holds in a JSON file (objects nested one level inside it included), one line.
json_obj() { tr -d '\n' <"$1" | tr -s ' ' | grep -oE "\"$2\": ?\{([^{}]*\{[^{}]*\})*[^{}]*\}" | head -n1; }
# num_of TEXT KEY: the first number KEY holds in TEXT (a json_obj line).
num_of() { echo "$1" | grep -oE "\"$2\": ?[0-9]+" | head -n1 | grep -oE '[0-9]+$'; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
first_failure=""
pass() { say "check ok $*"; }
fail() { say "check FAIL $*"; [ -n "$first_failure" ] || first_failure="$*"; }
check() {  # check WHAT CMD...: one check line from a command's exit status
  what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# wait_until SECONDS CMD...: polls CMD every ${POLL_S:-0.5} s; status 0 once it succeeds, 1 after SECONDS (of
# uptime: the polling itself is slow under TCG). The clock is read with the shell's own `read`: in a PV guest
# under TCG every fork costs (its page tables go through Xen), and three domUs polling add up.
wait_until() {
  read -r now _ </proc/uptime
  end=$(( ${now%.*} + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do
    read -r now _ </proc/uptime
    [ "${now%.*}" -ge "$end" ] && return 1
    sleep "${POLL_S:-0.5}"
  done
  return 0
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# lab_tso_segs: TSO frames of at least 44 segments (net.ipv4.tcp_min_tso_segs, per network namespace). Under TCG
# a TCP flow runs at well under 1 MB/s, and Linux sizes a TSO frame to about 1 ms of its pacing rate: 2 segments,
# so the offloads the TAPs take would save little of the per-frame work that is most of a lab transfer's time.
lab_tso_segs() { echo 44 >/proc/sys/net/ipv4/tcp_min_tso_segs; }

# ---- pvnet frontend as a domU's network interface (pvnet frontend --tap pvf0) ---------------------------------
# start_tap_frontend ADDR/PREFIX: the modules and xenfs a user-space frontend needs, then the frontend in the
# background (pid in $fe); returns once it says "tap pvf0 up" (0) or has ended or timed out (1, said why).
# `data/lab-tap` gets its start-up lines either way (dom0 checks them: slots=on|off, tx-ring=N).
start_tap_frontend() {
  # xenfs needs xen-privcmd's symbols.
  for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs tun; do insmod /lib/modules/$m.ko; done
  mount -t xenfs xenfs /proc/xen
  lab_tso_segs
  /lab/pvnet frontend --hypervisor xen --tap pvf0 --tap-addr "$1" --json /tmp/fe.json >/tmp/fe.out 2>&1 &
  fe=$!
  wait_until 100 tap_frontend_settled
  xenstore-write data/lab-tap "$(tr '\n' ' ' </tmp/fe.out)"
  grep -q "^tap pvf0 up" /tmp/fe.out && return 0
  say "frontend FAIL: $(tr '\n' ' ' </tmp/fe.out)"
  return 1
}
tap_frontend_settled() { grep -q "^tap pvf0 up" /tmp/fe.out || ! kill -0 $fe; }
# stop_tap_frontend: SIGTERM, then one line with its JSON's tap object and one with its exit status.
stop_tap_frontend() {
  kill -TERM $fe; wait $fe
  st=$?
  say "frontend tap $(json_obj /tmp/fe.json tap)"
  [ $st = 0 ] && say "frontend exit 0" || say "frontend FAIL exit $st: $(tail -n 3 /tmp/fe.out | tr '\n' ' ')"
}
# check_tap_frontend DOMU [GSO [BACKEND_DROPS_OK]]: dom0's checks of a domU's stop_tap_frontend lines: exit 0,
# nothing dropped (with BACKEND_DROPS_OK: except frames the backend answered dropped, which the caller accounts
# for), and with GSO its TCP went out as netif GSO (the backend offers feature-gso-tcpv4).
check_tap_frontend() {
  if line=$(domU_line $1 "XENLAB frontend (exit|FAIL)" 30); then
    case "$line" in *"exit 0"*) pass "$1: ${line#*XENLAB }";; *) fail "$1: ${line#*XENLAB }";; esac
  else fail "$1's frontend did not finish"; fi
  t=$(domU_line $1 "XENLAB frontend tap" 5)
  case "$t" in
    *'"dropped": {}'*) pass "$1's frontend dropped nothing";;
    *'"dropped": { "backend_dropped": '[0-9]*' }'*)
      if [ -n "$3" ]; then pass "$1's frontend dropped nothing itself; the backend answered $(num_of "$t" backend_dropped) dropped"
      else fail "$1's frontend: frames answered dropped by the backend: $t"; fi;;
    *) fail "$1's frontend dropped frames: $t";;
  esac
  [ -n "$2" ] || return 0
  n=$(num_of "$t" from_tap_gso_frames)
  [ "${n:-0}" -gt 0 ] && pass "$1's TCP went out in $n GSO super-frames of $(num_of "$t" from_tap_frames) frames" ||
    fail "$1 sent no GSO super-frame"
}

# stop_pvnet_backend PID BE_DIR FE_DIR: stops a `pvnet backend` that wrote the vif directories itself (toolstack
# pvnet) and checks it removed both on the way out; relays its output lines and JSON (/tmp/backend.{out,json}).
stop_pvnet_backend() {
  kill -TERM $1; wait $1
  if xenstore-read "$2/state" >/dev/null 2>&1 || xenstore-read "$3/state" >/dev/null 2>&1; then
    fail "vif directories left after the backend stopped: be state $(lab_get "$2/state"), fe state $(lab_get "$3/state")"
  else pass "the backend removed the vif directories when it stopped"; fi
  while IFS= read -r l; do say "backend: $l"; done </tmp/backend.out
  say "backend json: $(tr -d '\n' </tmp/backend.json | tr -s ' ' | cut -c1-2500)"
}

# ---- dom0 and a domU taking turns through xenstore (/local/domain/<D>/data/lab-*) ----------------------------
lab_get() { xenstore-read "$1" 2>/dev/null; }
has() { [ -n "$(lab_get "$1")" ]; }  # (a function: wait_until re-runs it)
size_is() { [ "$(wc -c <"$1" 2>/dev/null)" -ge "$2" ]; }

# lab_exchange_dom0 DATA PEER [PREFIX...]: dom0's half of the traffic check with the domU at address PEER whose
# data directory is DATA; PREFIX is how dom0 reaches it (e.g. `/usr/sbin/ip netns exec lab`). Pings it, lets it
# ping back (lab-go, lab-ping), receives UP_MB MiB on port 5001 and sends DOWN_MB MiB to its port 5002, each
# with the same sha256 at both ends. busybox nc stops at stdin EOF: a listener's stdin is held open.
lab_exchange_dom0() {
  data=$1 peer=$2
  shift 2
  if "$@" ping -c 3 -W 5 "$peer" >/tmp/ping.out 2>&1; then pass "dom0 -> domU ping: $(tail -n1 /tmp/ping.out)"
  else fail "dom0 cannot ping the domU: $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  (sleep 600 | "$@" nc -l -p 5001 >/tmp/up.bin) &
  xenstore-write "$data/lab-go" 1
  if wait_until 60 has "$data/lab-ping"; then
    case "$(lab_get "$data/lab-ping")" in ok*) pass "domU -> dom0 ping: $(lab_get "$data/lab-ping")";;
      *) fail "domU -> dom0 ping: $(lab_get "$data/lab-ping")";; esac
  else fail "the domU never reported its ping"; fi
  t0=$(uptime_s)
  if wait_until 90 size_is /tmp/up.bin $((UP_MB << 20)); then
    up_sha=$(head -c $((UP_MB << 20)) /tmp/up.bin | sha256sum | cut -d' ' -f1)
    wait_until 10 has "$data/lab-up-sha"
    if [ "$up_sha" = "$(lab_get "$data/lab-up-sha")" ]; then pass "$UP_MB MiB domU -> dom0 (from $t0 to $(uptime_s) s), sha256 $up_sha at both ends"
    else fail "domU -> dom0: dom0 got sha256 $up_sha, domU sent $(lab_get "$data/lab-up-sha")"; fi
  else fail "domU -> dom0: dom0 got $(wc -c </tmp/up.bin) of $((UP_MB << 20)) bytes"; fi
  dd if=/dev/urandom of=/tmp/down.bin bs=1048576 count=$DOWN_MB 2>/dev/null
  down_sha=$(sha_of /tmp/down.bin)
  t0=$(uptime_s)
  xenstore-write "$data/lab-down" "$down_sha"
  wait_until 20 has "$data/lab-listening"
  timeout 90 "$@" nc "$peer" 5002 </tmp/down.bin || fail "dom0 -> domU: nc failed"
  if wait_until 90 has "$data/lab-down-sha"; then
    if [ "$down_sha" = "$(lab_get "$data/lab-down-sha")" ]; then pass "$DOWN_MB MiB dom0 -> domU (from $t0 to $(uptime_s) s), sha256 $down_sha at both ends"
    else fail "dom0 -> domU: sent sha256 $down_sha, domU got $(lab_get "$data/lab-down-sha")"; fi
  else fail "dom0 -> domU: the domU never reported what it got"; fi
}

# lab_exchange_domU DOM0: the domU's half, with dom0 at address DOM0; returns once dom0 writes lab-done, or 1
# (after saying why) if dom0 never gives the go or never sends.
lab_exchange_domU() {
  wait_until 90 has data/lab-go || { say "no go from dom0"; return 1; }
  if ping -c 3 -W 5 "$1" >/tmp/ping.out 2>&1; then xenstore-write data/lab-ping "ok $(tail -n1 /tmp/ping.out)"
  else xenstore-write data/lab-ping "FAIL $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  dd if=/dev/urandom of=/tmp/up.bin bs=1048576 count=$UP_MB 2>/dev/null
  xenstore-write data/lab-up-sha "$(sha_of /tmp/up.bin)"
  timeout 90 nc "$1" 5001 </tmp/up.bin || say "nc to dom0 failed"
  rm -f /tmp/up.bin
  wait_until 120 has data/lab-down || { say "dom0 never sent"; return 1; }
  (sleep 600 | nc -l -p 5002 >/tmp/down.bin) &
  sleep 1
  xenstore-write data/lab-listening 1
  if wait_until 90 size_is /tmp/down.bin $((DOWN_MB << 20)); then
    xenstore-write data/lab-down-sha "$(head -c $((DOWN_MB << 20)) /tmp/down.bin | sha256sum | cut -d' ' -f1)"
  else xenstore-write data/lab-down-sha "only $(wc -c </tmp/down.bin) bytes"; fi
  wait_until 60 has data/lab-done
}
