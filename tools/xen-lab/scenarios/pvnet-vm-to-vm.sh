# Scenario pvnet-vm-to-vm: pvnet at both ends on real Xen grant tables, domU <-> domU through dom0. Two domUs run
# `pvnet frontend --hypervisor xen --tap pvf0` (header slots on; d1 198.18.2.1/24, d2 198.18.2.2/24); dom0 runs
# `pvnet backend --hypervisor xen --policy slots --forward 1:2 --forward 2:1` (vif sink: each guest's frames go to
# the other's RX by grant copy between the guests; the payload never enters dom0). The domUs are built paused and
# booted together. dom0 drives them through xenstore: it writes data/lab-cmd<N> in a domU's home, the domU runs it
# and answers data/lab-out<N> and data/lab-rc<N> (post/collect below), so the two sides run at the same time.
# Checks: both frontends connected with header slots and the 4-page TX ring; ping both ways; MB MiB d1 -> d2 over
# TCP with the same sha256 at both ends, sent as netif GSO; and the backend's counters over the pings and the
# transfer (SIGUSR1/SIGUSR2 traffic window): no page mapped and no fault in dom0 (rings and header-slot pages are
# mapped once, at connect), at least MB MiB grant-copied. dom0 <-> domU with pvnet at both ends is pvnet-both.
MB=5
T=100  # seconds any one step may take
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
# line OUTPUT LABEL: the rest of the last line of a domU's answer that starts with LABEL (xenstore-read gives a
# stored newline back as the two characters \n).
line() { echo "$1" | sed 's/\\n/|/g' | tr '|' '\n' | sed 's/^ *//' | grep "^$2 " | tail -n1 | cut -d' ' -f2-; }

# The domUs' jobs (one command each): labelled lines "ping ok|FAIL ...", "sent SHA", "got SHA", "mem KB".
ping_line() { if o=$(ping3 "$1"); then echo "ping ok $o"; else echo "ping FAIL $o"; fi; }
mem_line() { echo "mem $(grep MemAvailable /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"; }
job_d1() { ping_line 198.18.2.2; echo "sent $(send_file 198.18.2.2 5003 $MB)"; mem_line; }
job_d2() { ping_line 198.18.2.1; echo "got $(recv_sha /tmp/in.bin $MB)"; mem_line; }

# jget KEY: a top-level number of the backend's JSON (keys are sorted: the nested backend/backend_at_stop/
# connection objects with the same names come first).
jget() { tr -d '\n ' </tmp/backend.json | grep -o "\"$1\":[0-9]*" | tail -n1 | cut -d: -f2; }

dom0_main() {
  /lab/pvnet backend --hypervisor xen --policy slots --frontends 1,2 --forward 1:2 --forward 2:1 \
    --json /tmp/backend.json >/tmp/backend.out 2>&1 &
  be_pid=$!
  if wait_until 30 grep -q "^ready" /tmp/backend.out; then pass "pvnet backend: $(grep '^ready' /tmp/backend.out) at $(uptime_s) s"
  else fail "pvnet backend not ready: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  # 96 MiB is too small for libxenguest to place the 26 MB ramdisk ("segment module0 too large"); each frontend
  # uses a 4 MiB gntalloc pool and /tmp holds a 5 MiB file.
  DOMU_MB=128
  # Both built paused, then both unpaused: neither boots while the other is being built.
  for g in d1 d2; do
    XL_CREATE_FLAGS=-p start_domU $g "" || return
    [ "$DOMID" = "${g#d}" ] || { fail "$g is domain $DOMID, not ${g#d}"; return; }
    # The toolstack gives the frontend read access to the backend directory (libxl: n0 r<D>).
    be=/local/domain/0/backend/vif/$DOMID/0
    wait_until 30 xs_is "$be/state" 2 || fail "backend of domain $DOMID did not reach InitWait"
    perms=$(xenstore-ls -p "$be" | head -n 1)
    case "$perms" in *"r$DOMID"*) ;; *) fail "pvnet backend left $be unreadable for domain $DOMID ($perms)";; esac
  done
  for g in d1 d2; do xl unpause $g; done
  say "domUs unpaused at $(uptime_s) s"
  for d in 1 2; do
    wait_until $T has /local/domain/$d/data/lab-tap
    case "$(lab_get /local/domain/$d/data/lab-tap)" in
      *"slots=on tx-ring=1024"*"tap pvf0 up"*) pass "domain $d: $(lab_get /local/domain/$d/data/lab-tap)";;
      *) fail "domain $d's frontend: '$(lab_get /local/domain/$d/data/lab-tap)' (wanted slots=on tx-ring=1024, tap pvf0 up)"
         no_tap=1;;
    esac
  done
  [ -n "$no_tap" ] && return
  say "both TAPs up at $(uptime_s) s"

  # One command per domU, both at once. d2 listens since before its TAP came up (domU_main). The traffic window
  # spans the pings and the transfer.
  kill -USR1 "$be_pid"
  t0=$(uptime_s)
  post 2 job_d2
  post 1 job_d1
  out1=$(collect 1)
  out2=$(collect 2)
  kill -USR2 "$be_pid"
  for x in "d1 -> d2:$out1" "d2 -> d1:$out2"; do
    o=$(line "${x#*:}" ping)
    case "$o" in ok*) pass "${x%%:*} ping: ${o#ok }";; *) fail "${x%%:*} ping: ${o:-no answer: ${x#*:}}";; esac
  done
  s=$(line "$out1" sent) g=$(line "$out2" got)
  [ -n "$s" ] && [ "$s" = "$g" ] && pass "$MB MiB d1 -> d2 (from $t0 to $(uptime_s) s), sha256 $g at both ends" ||
    fail "d1 -> d2: sent $s, got $g"
  say "transfer checked at $(uptime_s) s; CPU seconds so far: $(xl list | awk 'NR > 1 { printf "%s %s, ", $1, $6 }')"
  say "domU memory: $(line "$out1" mem) / $(line "$out2" mem) kB available"

  for d in 1 2; do post $d exit; done
  # A frame a guest sends before the other has connected is answered dropped (dest_not_connected, checked below).
  check_tap_frontend d1 gso early  # the backend offers feature-gso-tcpv4: d1's TSO goes out as netif GSO
  check_tap_frontend d2 "" early
  kill -TERM $be_pid; wait $be_pid
  while IFS= read -r l; do say "backend: $l"; done </tmp/backend.out
  say "backend json: $(tr -d '\n' </tmp/backend.json | tr -s ' ' | cut -c1-2500)"
  pm=$(jget pages_mapped) fa=$(jget faults) gc=$(jget grant_copy_bytes)
  grep -q '"traffic_window": "snapshots"' /tmp/backend.json || fail "the backend's counters are not the transfer's window"
  [ "$pm" = 0 ] && [ "$fa" = 0 ] && [ "${gc:-0}" -ge $((MB << 20)) ] &&
    pass "VM-to-VM over the transfer: dom0 mapped $pm pages, $fa faults, grant-copied $gc bytes" ||
    fail "VM-to-VM over the transfer: pages_mapped ${pm:-?} faults ${fa:-?} grant_copy_bytes ${gc:-?}"
  # Drops only before the traffic window, and only for want of a connected destination.
  win=$(json_obj /tmp/backend.json backend) all=$(json_obj /tmp/backend.json backend_at_stop)
  drops=$(echo "$all" | grep -oE '"dropped": ?\{[^}]*\}')
  case "$drops" in *'{}'|*'{ "dest_not_connected": '[0-9]*' }'|*'{"dest_not_connected":'[0-9]*'}') ok=1;; *) ok=;; esac
  [ "$(num_of "$win" dropped_total)" = 0 ] && [ -n "$ok" ] &&
    pass "backend: nothing dropped over the transfer; whole run $drops" ||
    fail "backend drops: window dropped_total $(num_of "$win" dropped_total), whole run $drops"
  say "backend whole run: pages_mapped $(tr -d '\n ' </tmp/backend.json | grep -o '"backend_at_stop":{.*' | grep -o '"pages_mapped":[0-9]*' | head -n1)"
}

domU_main() {
  d=$(xenstore-read domid)
  # The receiver of the transfer to d2, listening before dom0 hears that the TAP is up.
  [ "$d" = 2 ] && recv_start 5003 /tmp/in.bin
  start_tap_frontend 198.18.2.$d/24 || return
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
  stop_tap_frontend
}
