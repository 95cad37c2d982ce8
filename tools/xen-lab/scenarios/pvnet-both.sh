# Scenario pvnet-both: pvnet at both ends on real Xen grant tables. Three domUs run `pvnet frontend --hypervisor xen
# --tap pvf0` (header slots on; xen-netfront not loaded); dom0 runs two `pvnet backend --hypervisor xen --policy
# slots` (each serves only its --frontends):
#   A: domain 1's vif <-> the backend's TAP sink in dom0's namespace "lab" (pvtap1 198.18.1.254/24, d1 198.18.1.1)
#   B: VM-to-VM: domain 2 <-> domain 3 (--forward 2:3 --forward 3:2, vif sink: grant copy between the guests;
#      d2 198.18.2.2, d3 198.18.2.3)
# dom0 drives the domUs through xenstore: it writes data/lab-cmd<N> in a domU's home, the domU runs it and
# answers data/lab-out<N> and data/lab-rc<N> (in_domU below).
# Checks: header slots in use (connected slots=on); A: ping both ways, 5 MiB each way over TCP with the same
# sha256 at both ends, TAP counters; B: ping both ways, 5 MiB d2 -> d3 with the same sha256, and backend B's
# counters over the transfer (SIGUSR1/SIGUSR2 traffic window) show no page mapped and no fault in dom0
# (rings and header-slot pages are mapped once at connect), payload moved by grant copy.
MB=5
lab_get() { xenstore-read "$1" 2>/dev/null; }
has() { [ -n "$(lab_get "$1")" ]; }  # (a function: wait_until re-runs it)
size_is() { [ "$(wc -c <"$1" 2>/dev/null)" -ge "$2" ]; }
# recv_start PORT FILE: busybox nc stops at stdin EOF, so its stdin stays open; it writes FILE until killed.
recv_start() { (sleep 600 | nc -l -p "$1" >"$2" 2>/dev/null) >/dev/null 2>&1 & }
# recv_sha FILE MB: waits until FILE holds MB MiB, prints their sha256.
recv_sha() {
  wait_until 240 size_is "$1" $(($2 << 20)) || { echo "only $(wc -c <"$1") bytes"; return 1; }
  head -c $(($2 << 20)) "$1" | sha256sum | cut -d' ' -f1
}
# send_file ADDR PORT MB: MB MiB of random bytes over TCP; prints their sha256.
send_file() {
  dd if=/dev/urandom of=/tmp/send.bin bs=1048576 count="$3" 2>/dev/null
  timeout 240 nc "$1" "$2" </tmp/send.bin || { echo "nc to $1:$2 failed"; return 1; }
  sha_of /tmp/send.bin
}
# in_lab COMMAND...: runs COMMAND in dom0's namespace "lab" (the TAP's side); nsenter, as `ip netns exec` wants to
# remount /sys.
in_lab() { nsenter --net=/run/netns/lab sh -c ". /lab/lib.sh; . /lab/scenario.sh; $*" 2>&1; }
ping3() { ping -c 3 -W 5 "$1" >/tmp/ping.out 2>&1; r=$?; tail -n1 /tmp/ping.out; return $r; }

# in_domU DOMID COMMAND...: runs COMMAND in the domU's scenario shell; prints its output, returns its status.
in_domU() {
  d=$1; shift
  # The sequence number lives in a file: callers run this in $(...), a subshell.
  n=$(cat /tmp/lab-seq-$d 2>/dev/null || echo 0); echo $((n + 1)) >/tmp/lab-seq-$d
  xenstore-write "/local/domain/$d/data/lab-cmd$n" "$*"
  wait_until "${LAB_T:-260}" has "/local/domain/$d/data/lab-rc$n" || { echo "no answer from domain $d to '$*'"; return 124; }
  lab_get "/local/domain/$d/data/lab-out$n"
  return "$(lab_get "/local/domain/$d/data/lab-rc$n")"
}

start_backend() {  # NAME ARGS...
  n=$1; shift
  /lab/pvnet backend --hypervisor xen --policy slots --json /tmp/be-$n.json "$@" >/tmp/be-$n.out 2>&1 &
  eval "be_$n=$!"
  if wait_until 30 grep -q "^ready" /tmp/be-$n.out; then pass "pvnet backend $n: $(grep '^ready' /tmp/be-$n.out)"
  else fail "pvnet backend $n not ready: $(tail -n 3 /tmp/be-$n.out | tr '\n' ' ')"; return 1; fi
}
stop_backend() {  # NAME
  eval "p=\$be_$1"
  kill -TERM "$p"; wait "$p"
  while IFS= read -r l; do say "backend $1: $l"; done </tmp/be-$1.out
}
# jget FILE KEY: a top-level number of the backend's JSON (keys are sorted: the nested backend/backend_at_stop/
# connection objects with the same names come first).
jget() { tr -d '\n ' <"$1" | grep -o "\"$2\":[0-9]*" | tail -n1 | cut -d: -f2; }

dom0_main() {
  insmod /lib/modules/tun.ko
  start_backend A --frontends 1 --tap-netns lab --tap-for 1 --tap-addr 198.18.1.254/24 || return
  start_backend B --frontends 2,3 --forward 2:3 --forward 3:2 || return
  DOMU_MB=128  # three domUs; each one's pvnet frontend uses a 4 MiB gntalloc pool
  for g in d1 d2 d3; do
    XL_CREATE_FLAGS=-p start_domU $g "" || return
    # The toolstack gives the frontend read access to the backend directory (libxl: n0 r<D>).
    be=/local/domain/0/backend/vif/$DOMID/0
    wait_until 30 xs_is "$be/state" 2 || fail "backend of domain $DOMID did not reach InitWait"
    if ! xenstore-ls -p "$be" | head -n 1 | grep -q "r$DOMID"; then
      fail "pvnet backend left $be unreadable for domain $DOMID ($(xenstore-ls -p "$be" | head -n 1)); applying n0 r$DOMID"
      xenstore-chmod -r "$be" n0 r"$DOMID"
    fi
    xl unpause $g
  done
  for d in 1 2 3; do
    if wait_until 90 has /local/domain/$d/data/lab-tap; then
      case "$(lab_get /local/domain/$d/data/lab-tap)" in
        *"slots=on"*"up"*) pass "domain $d: $(lab_get /local/domain/$d/data/lab-tap)";;
        *) fail "domain $d: $(lab_get /local/domain/$d/data/lab-tap)"; no_tap=1;;
      esac
    else fail "domain $d's frontend never brought its TAP up"; no_tap=1; fi
  done
  [ -n "$no_tap" ] && return

  # B: VM-to-VM, the traffic window around the transfer
  kill -USR1 "$be_B"
  if out=$(in_domU 2 ping3 198.18.2.3); then pass "d2 -> d3 ping: $out"; else fail "d2 -> d3 ping: $out"; fi
  if out=$(in_domU 3 ping3 198.18.2.2); then pass "d3 -> d2 ping: $out"; else fail "d3 -> d2 ping: $out"; fi
  in_domU 3 recv_start 5003 /tmp/in.bin >/dev/null
  t0=$(uptime_s)
  sent=$(in_domU 2 send_file 198.18.2.3 5003 $MB)
  got=$(in_domU 3 recv_sha /tmp/in.bin $MB)
  [ -n "$sent" ] && [ "$sent" = "$got" ] && pass "$MB MiB d2 -> d3 (from $t0 to $(uptime_s) s), sha256 $got at both ends" ||
    fail "d2 -> d3: sent $sent, d3 got $got"
  kill -USR2 "$be_B"
  sleep 1

  # A: domain 1 <-> dom0's TAP
  if out=$(in_domU 1 ping3 198.18.1.254); then pass "d1 -> dom0 ping: $out"; else fail "d1 -> dom0 ping: $out"; fi
  if out=$(in_lab ping3 198.18.1.1); then pass "dom0 -> d1 ping: $out"
  else fail "dom0 -> d1 ping: $out"; fi
  in_lab recv_start 5001 /tmp/up.bin
  t0=$(uptime_s)
  sent=$(in_domU 1 send_file 198.18.1.254 5001 $MB)
  got=$(recv_sha /tmp/up.bin $MB)
  [ -n "$sent" ] && [ "$sent" = "$got" ] && pass "$MB MiB d1 -> dom0 (from $t0 to $(uptime_s) s), sha256 $got at both ends" ||
    fail "d1 -> dom0: sent $sent, dom0 got $got"
  in_domU 1 recv_start 5002 /tmp/down.bin >/dev/null
  t0=$(uptime_s)
  sent=$(in_lab send_file 198.18.1.1 5002 $MB)
  got=$(in_domU 1 recv_sha /tmp/down.bin $MB)
  [ -n "$sent" ] && [ "$sent" = "$got" ] && pass "$MB MiB dom0 -> d1 (from $t0 to $(uptime_s) s), sha256 $got at both ends" ||
    fail "dom0 -> d1: sent $sent, d1 got $got"

  for d in 1 2 3; do xenstore-write /local/domain/$d/data/lab-cmd$(cat /tmp/lab-seq-$d 2>/dev/null || echo 0) exit; done
  for g in d1 d2 d3; do
    if line=$(domU_line $g "XENLAB frontend (exit|FAIL)" 30); then
      case "$line" in *"exit 0"*) pass "$g: ${line#*XENLAB }";; *) fail "$g: ${line#*XENLAB }";; esac
    else fail "$g's frontend did not finish"; fi
  done
  stop_backend A
  stop_backend B
  say "backend A json: $(tr -d '\n' </tmp/be-A.json | tr -s ' ')"
  say "backend B json: $(tr -d '\n' </tmp/be-B.json | tr -s ' ')"
  tap=$(tr -d '\n ' </tmp/be-A.json | grep -o '"tap":{[^}]*}')
  h=$(echo "$tap" | grep -o '"frames_to_host":[0-9]*' | cut -d: -f2)
  g=$(echo "$tap" | grep -o '"frames_to_guest":[0-9]*' | cut -d: -f2)
  [ "${h:-0}" -gt 1000 ] && [ "${g:-0}" -gt 1000 ] && pass "backend A's TAP counters: $h frames to dom0, $g to d1" ||
    fail "backend A's TAP counters: ${h:-?} to dom0, ${g:-?} to d1"
  pm=$(jget /tmp/be-B.json pages_mapped) fa=$(jget /tmp/be-B.json faults) gc=$(jget /tmp/be-B.json grant_copy_bytes)
  grep -q '"traffic_window": "snapshots"' /tmp/be-B.json || fail "backend B's counters are not the transfer's window"
  [ "$pm" = 0 ] && [ "$fa" = 0 ] && [ "${gc:-0}" -ge $((MB << 20)) ] &&
    pass "VM-to-VM over the transfer: dom0 mapped $pm pages, $fa faults, grant-copied $gc bytes" ||
    fail "VM-to-VM over the transfer: pages_mapped ${pm:-?} faults ${fa:-?} grant_copy_bytes ${gc:-?}"
  say "backend B whole run: pages_mapped $(tr -d '\n ' </tmp/be-B.json | grep -o '"backend_at_stop":{.*' | grep -o '"pages_mapped":[0-9]*' | head -n1)"
}

domU_main() {
  for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs tun; do insmod /lib/modules/$m.ko; done
  mount -t xenfs xenfs /proc/xen
  d=$(xenstore-read domid)
  if [ "$d" = 1 ]; then addr=198.18.1.1/24; else addr=198.18.2.$d/24; fi
  /lab/pvnet frontend --hypervisor xen --tap pvf0 --tap-addr $addr --json /tmp/fe.json >/tmp/fe.out 2>&1 &
  fe=$!
  fe_settled() { grep -q "^tap pvf0 up" /tmp/fe.out || ! kill -0 $fe; }
  wait_until 90 fe_settled
  xenstore-write data/lab-tap "$(tr '\n' ' ' </tmp/fe.out)"
  grep -q "^tap pvf0 up" /tmp/fe.out || { say "frontend FAIL: $(tr '\n' ' ' </tmp/fe.out)"; return; }
  n=0
  while wait_until 300 has data/lab-cmd$n; do
    cmd=$(lab_get data/lab-cmd$n)
    [ "$cmd" = exit ] && break
    eval "$cmd" >/tmp/cmd.out 2>&1
    rc=$?
    xenstore-write data/lab-out$n "$(tail -c 2000 /tmp/cmd.out)"
    xenstore-write data/lab-rc$n $rc
    n=$((n + 1))
  done
  kill -TERM $fe; wait $fe
  st=$?
  say "frontend tap $(tr -d '\n' </tmp/fe.json | tr -s ' ' | grep -o '"tap": {[^}]*}[^}]*}')"
  [ $st = 0 ] && say "frontend exit 0" || say "frontend FAIL exit $st: $(tail -n 3 /tmp/fe.out | tr '\n' ' ')"
}
