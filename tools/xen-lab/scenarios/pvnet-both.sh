# Scenario pvnet-both: pvnet at both ends on real Xen grant tables. Three domUs run `pvnet frontend --hypervisor xen
# --tap pvf0` (header slots on; xen-netfront not loaded); dom0 runs two `pvnet backend --hypervisor xen` (each
# serves only its --frontends; both offer header slots):
#   A: domain 1's vif <-> the backend's TAP sink in dom0's namespace "lab" (pvtap1 198.18.1.254/24, d1 198.18.1.1);
#      --policy auto: header slots, and the payload grant-copied for the TAP (a sink that reads every byte), not
#      faulted in page by page through gntdev (policy slots: 24-92 s for 5 MiB under TCG)
#   B: VM-to-VM: domain 2 <-> domain 3 (--policy slots --forward 2:3 --forward 3:2, vif sink: grant copy between
#      the guests; d2 198.18.2.2, d3 198.18.2.3)
# dom0 drives the domUs through xenstore: it writes data/lab-cmd<N> in a domU's home, the domU runs it and
# answers data/lab-out<N> and data/lab-rc<N> (post/collect below). A and B run at the same time (their backends
# and counters are separate): one TCG CPU does the work either way, but no step waits on another's polling.
# Checks: header slots in use (connected slots=on); A: ping both ways, 5 MiB each way over TCP with the same
# sha256 at both ends, TAP counters; B: ping both ways, 5 MiB d2 -> d3 with the same sha256, and backend B's
# counters over the pings and the transfer (SIGUSR1/SIGUSR2 traffic window) show no page mapped and no fault in
# dom0 (rings and header-slot pages are mapped once at connect), payload moved by grant copy.
MB=5    # each way between d1 and dom0
B_MB=5  # d2 -> d3, as much as each way between d1 and dom0
T=100  # seconds any one step may take
has() { xenstore-read "$1" >/dev/null 2>&1; }  # (a function: wait_until re-runs it; no $(...), one fork less)
# recv_start PORT FILE: busybox nc stops at stdin EOF, so its stdin stays open; it writes FILE until killed.
recv_start() { (sleep 600 | nc -l -p "$1" >"$2" 2>/dev/null) >/dev/null 2>&1 & }
# recv_sha FILE MB: waits until FILE holds MB MiB, prints their sha256.
recv_sha() {
  wait_until $T size_is "$1" $(($2 << 20)) || { echo "only $(wc -c <"$1") bytes"; return 1; }
  head -c $(($2 << 20)) "$1" | sha256sum | cut -d' ' -f1
}
# send_file ADDR PORT MB: MB MiB of random bytes over TCP; prints their sha256.
send_file() {
  dd if=/dev/urandom of=/tmp/send.bin bs=1048576 count="$3" 2>/dev/null
  timeout $T nc "$1" "$2" </tmp/send.bin || { echo "nc to $1:$2 failed"; return 1; }
  sha_of /tmp/send.bin
}
# in_lab COMMAND...: runs COMMAND in dom0's namespace "lab" (the TAP's side); nsenter, as `ip netns exec` wants to
# remount /sys.
in_lab() { nsenter --net=/run/netns/lab sh -c ". /lab/lib.sh; . /lab/scenario.sh; $*" 2>&1; }
ping3() { ping -c 3 -W 5 "$1" >/tmp/ping.out 2>&1; r=$?; tail -n1 /tmp/ping.out; return $r; }

# post DOMID COMMAND...: hands COMMAND to the domU's scenario shell (one at a time per domU); collect DOMID waits
# for its answer, prints its output and returns its status.
post() {
  d=$1; shift
  # The sequence number lives in a file: callers may run this in $(...), a subshell.
  n=$(cat /tmp/lab-seq-$d 2>/dev/null || echo 0); echo $((n + 1)) >/tmp/lab-seq-$d; echo $n >/tmp/lab-posted-$d
  xenstore-write "/local/domain/$d/data/lab-cmd$n" "$*"
}
collect() {
  d=$1 n=$(cat /tmp/lab-posted-$1)
  wait_until $T has "/local/domain/$d/data/lab-rc$n" || { echo "no answer from domain $d to command $n"; return 124; }
  lab_get "/local/domain/$d/data/lab-out$n"
  return "$(lab_get "/local/domain/$d/data/lab-rc$n")"
}
# verdict WHAT OUTPUT STATUS: one check line.
verdict() { if [ "$3" = 0 ]; then pass "$1: $2"; else fail "$1: $2"; fi; }
# same_sha WHAT SENT GOT T0 [MIB]
same_sha() {
  [ -n "$2" ] && [ "$2" = "$3" ] && pass "${5:-$MB} MiB $1 (from $4 to $(uptime_s) s), sha256 $3 at both ends" ||
    fail "$1: sent $2, got $3"
}

# The domUs' jobs (one command each): labelled lines "ping ok|FAIL ...", "sent SHA", "got SHA", "mem KB"
# (dom0 reads them with line() in dom0_main).
ping_line() { if o=$(ping3 "$1"); then echo "ping ok $o"; else echo "ping FAIL $o"; fi; }
mem_line() { echo "mem $(grep MemAvailable /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"; }
job_d1() { ping_line 198.18.1.254; echo "sent $(send_file 198.18.1.254 5001 $MB)"; echo "got $(recv_sha /tmp/down.bin $MB)"; mem_line; }
job_d2() { ping_line 198.18.2.3; echo "sent $(send_file 198.18.2.3 5003 $B_MB)"; mem_line; }
job_d3() { ping_line 198.18.2.2; echo "got $(recv_sha /tmp/in.bin $B_MB)"; mem_line; }

start_backend() {  # NAME ARGS...: starts it; ready_backend NAME waits for its "ready"
  n=$1; shift
  /lab/pvnet backend --hypervisor xen --json /tmp/be-$n.json "$@" >/tmp/be-$n.out 2>&1 &
  eval "be_$n=$!"
}
ready_backend() {
  if wait_until 30 grep -q "^ready" /tmp/be-$1.out; then pass "pvnet backend $1: $(grep '^ready' /tmp/be-$1.out) at $(uptime_s) s"
  else fail "pvnet backend $1 not ready: $(tail -n 3 /tmp/be-$1.out | tr '\n' ' ')"; return 1; fi
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
  start_backend A --policy auto --frontends 1 --tap-netns lab --tap-for 1 --tap-addr 198.18.1.254/24
  start_backend B --policy slots --frontends 2,3 --forward 2:3 --forward 3:2
  ready_backend A && ready_backend B || return
  # 96 MiB is too small for libxenguest to place the 26 MB ramdisk ("segment module0 too large (0x1951 > 0x6000 -
  # 0x4c00 pages)"); each domU's pvnet frontend uses a 4 MiB gntalloc pool and /tmp holds two 5 MiB files.
  DOMU_MB=128
  # All three built paused, then all unpaused: no domU boots while the next one is being built.
  for g in d1 d2 d3; do
    XL_CREATE_FLAGS=-p start_domU $g "" || return
    [ "$DOMID" = "${g#d}" ] || { fail "$g is domain $DOMID, not ${g#d}"; return; }
    # The toolstack gives the frontend read access to the backend directory (libxl: n0 r<D>).
    be=/local/domain/0/backend/vif/$DOMID/0
    wait_until 30 xs_is "$be/state" 2 || fail "backend of domain $DOMID did not reach InitWait"
    if ! xenstore-ls -p "$be" | head -n 1 | grep -q "r$DOMID"; then
      fail "pvnet backend left $be unreadable for domain $DOMID ($(xenstore-ls -p "$be" | head -n 1)); applying n0 r$DOMID"
      xenstore-chmod -r "$be" n0 r"$DOMID"
    fi
  done
  for g in d1 d2 d3; do xl unpause $g; done
  say "domUs unpaused at $(uptime_s) s"
  for d in 1 2 3; do
    if wait_until $T has /local/domain/$d/data/lab-tap; then
      case "$(lab_get /local/domain/$d/data/lab-tap)" in
        *"slots=on tx-ring=1024"*"up"*) pass "domain $d: $(lab_get /local/domain/$d/data/lab-tap)";;
        *) fail "domain $d: $(lab_get /local/domain/$d/data/lab-tap)"; no_tap=1;;
      esac
    else fail "domain $d's frontend never brought its TAP up"; no_tap=1; fi
  done
  [ -n "$no_tap" ] && return
  say "all three TAPs up at $(uptime_s) s"

  # One command per domU, all at once: the pings, then the transfers, d2 -> d3 (B) and d1 -> dom0, dom0 -> d1 (A)
  # side by side. d1 and d3 listen since their TAP came up (domU_main). B's traffic window spans its pings and
  # its transfer (A's traffic is backend A's).
  in_lab recv_start 5001 /tmp/up.bin
  kill -USR1 "$be_B"
  t0=$(uptime_s)
  post 2 job_d2
  post 3 job_d3
  post 1 job_d1
  out=$(in_lab ping3 198.18.1.1); verdict "dom0 -> d1 ping" "$out" $?
  sent_down=$(in_lab send_file 198.18.1.1 5002 $MB)
  got_up=$(recv_sha /tmp/up.bin $MB)
  out2=$(collect 2)
  out3=$(collect 3)
  kill -USR2 "$be_B"
  out1=$(collect 1)
  # xenstore-read gives a stored newline back as the two characters \n.
  line() { echo "$1" | sed 's/\\n/|/g' | tr '|' '\n' | sed 's/^ *//' | grep "^$2 " | tail -n1 | cut -d' ' -f2-; }
  for x in "d1 -> dom0:$out1" "d2 -> d3:$out2" "d3 -> d2:$out3"; do
    o=$(line "${x#*:}" ping)
    case "$o" in ok*) pass "${x%%:*} ping: ${o#ok }";; *) fail "${x%%:*} ping: ${o:-no answer: ${x#*:}}";; esac
  done
  same_sha "d1 -> dom0" "$(line "$out1" sent)" "$got_up" "$t0"
  same_sha "dom0 -> d1" "$sent_down" "$(line "$out1" got)" "$t0"
  same_sha "d2 -> d3" "$(line "$out2" sent)" "$(line "$out3" got)" "$t0" $B_MB
  say "transfers checked at $(uptime_s) s; CPU seconds so far: $(xl list | awk 'NR > 1 { printf "%s %s, ", $1, $6 }')"
  say "domU memory: $(line "$out1" mem) / $(line "$out2" mem) / $(line "$out3" mem) kB available"

  for d in 1 2 3; do post $d exit; done
  for g in d1 d2 d3; do
    if line=$(domU_line $g "XENLAB frontend (exit|FAIL)" 30); then
      case "$line" in *"exit 0"*) pass "$g: ${line#*XENLAB }";; *) fail "$g: ${line#*XENLAB }";; esac
    else fail "$g's frontend did not finish"; fi
  done
  # The domUs' TSO goes out on netfront TX as netif GSO (backends A and B offer feature-gso-tcpv4).
  for g in d1 d2; do
    t=$(domU_line $g "XENLAB frontend tap" 5)
    n=$(num_of "$t" from_tap_gso_frames)
    [ "${n:-0}" -gt 0 ] && pass "$g's TCP went out in $n GSO super-frames of $(num_of "$t" from_tap_frames) frames" ||
      fail "$g sent no GSO super-frame"
  done
  stop_backend A
  stop_backend B
  say "backend A json: $(tr -d '\n' </tmp/be-A.json | tr -s ' ')"
  say "backend B json: $(tr -d '\n' </tmp/be-B.json | tr -s ' ')"
  tap=$(json_obj /tmp/be-A.json tap)
  h=$(num_of "$tap" bytes_to_host) g=$(num_of "$tap" bytes_to_guest)
  [ "${h:-0}" -ge $((MB << 20)) ] && [ "${g:-0}" -ge $((MB << 20)) ] &&
    pass "backend A's TAP counters: $h bytes in $(num_of "$tap" frames_to_host) frames to dom0, $g bytes in $(num_of "$tap" frames_to_guest) frames to d1" ||
    fail "backend A's TAP counters: ${h:-?} bytes to dom0, ${g:-?} to d1"
  # dom0's TSO reaches d1 as netif GSO (the TAP's offloads follow netfront's feature-gso-tcpv4).
  n=$(num_of "$tap" gso_frames_to_guest)
  [ "${n:-0}" -gt 0 ] && pass "dom0's TCP reached d1 in $n GSO super-frames" || fail "no GSO frame from dom0 to d1"
  # auto's start-up measurement maps, faults and copies on dom0's own scratch grants (faults 300): the payload
  # figure is payload_pages_touched (pages faulted in for a sink; 0 when auto copies for the TAP).
  say "backend A: policy $(tr -d '\n ' </tmp/be-A.json | grep -o '"policy":"[a-z]*"' | tail -n1 | cut -d: -f2), payload_pages_touched $(jget /tmp/be-A.json payload_pages_touched), faults $(jget /tmp/be-A.json faults), grant_copy_bytes $(jget /tmp/be-A.json grant_copy_bytes)"
  pm=$(jget /tmp/be-B.json pages_mapped) fa=$(jget /tmp/be-B.json faults) gc=$(jget /tmp/be-B.json grant_copy_bytes)
  grep -q '"traffic_window": "snapshots"' /tmp/be-B.json || fail "backend B's counters are not the transfer's window"
  [ "$pm" = 0 ] && [ "$fa" = 0 ] && [ "${gc:-0}" -ge $((B_MB << 20)) ] &&
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
  wait_until $T fe_settled
  grep -q "^tap pvf0 up" /tmp/fe.out || { xenstore-write data/lab-tap "$(tr '\n' ' ' </tmp/fe.out)"
    say "frontend FAIL: $(tr '\n' ' ' </tmp/fe.out)"; return; }
  # The receivers of the transfers to this domU, before dom0 hears that the TAP is up.
  case $d in 1) recv_start 5002 /tmp/down.bin;; 3) recv_start 5003 /tmp/in.bin;; esac
  xenstore-write data/lab-tap "$(tr '\n' ' ' </tmp/fe.out)"
  n=0
  # Waiting for dom0, a domU polls once a second: each xenstore-read is a fork and exec, costly under TCG.
  while POLL_S=1 wait_until 300 has data/lab-cmd$n; do
    cmd=$(lab_get data/lab-cmd$n)
    [ "$cmd" = exit ] && break
    eval "$cmd" >/tmp/cmd.out 2>&1
    rc=$?
    xenstore-write data/lab-out$n "$(tail -c 1500 /tmp/cmd.out)"
    xenstore-write data/lab-rc$n $rc
    n=$((n + 1))
  done
  kill -TERM $fe; wait $fe
  st=$?
  say "frontend tap $(json_obj /tmp/fe.json tap)"
  [ $st = 0 ] && say "frontend exit 0" || say "frontend FAIL exit $st: $(tail -n 3 /tmp/fe.out | tr '\n' ' ')"
}
