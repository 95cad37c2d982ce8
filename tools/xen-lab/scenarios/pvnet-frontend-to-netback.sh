# Scenario pvnet-frontend-to-netback: `pvnet frontend --hypervisor xen --tap pvf0` in domU d1 (user-space netfront
# over gntalloc, xen-netfront not loaded) against Linux's xen-netback in dom0 (a libxl vif; the hotplug script only
# reports connected and gives vif<D>.0 198.18.1.254/24). The domU's pvf0 is 198.18.1.1/24.
# dom0 and the domU take turns through xenstore (/local/domain/<D>/data/lab-*): nothing is checked while the other
# end may still be starting or already gone.
# Checks: netback Connected; the frontend fell back to plain netif (netback offers no header slots); ping both
# ways; UP_MB MiB domU -> dom0 and DOWN_MB MiB dom0 -> domU over TCP (busybox nc) with the same sha256 at both
# ends; netback's counters on vif<D>.0 count at least those bytes; the frontend's TAP counters drop nothing.
UP_MB=5
DOWN_MB=5
lab_get() { xenstore-read "$1" 2>/dev/null; }
# recv_file PORT FILE BYTES SECONDS: nc listens (its stdin held open: busybox nc stops at stdin EOF) until FILE
# has BYTES bytes.
recv_start() { (sleep 600 | nc -l -p "$1" >"$2") & }
has() { [ -n "$(lab_get "$1")" ]; }  # (a function: wait_until re-runs it)
size_is() { [ "$(wc -c <"$1" 2>/dev/null)" -ge "$2" ]; }

dom0_main() {
  insmod /lib/modules/xen-netback.ko || { fail "insmod xen-netback"; return; }
  cat >/tmp/vif-up <<'SH'
#!/bin/sh
# libxl's hotplug step, reduced: the vif up with an address, then the node netback waits for.
if [ "$1" = online ]; then ip addr add 198.18.1.254/24 dev "$vif"; ip link set "$vif" up; fi
xenstore-write "$XENBUS_PATH/hotplug-status" connected
SH
  chmod 755 /tmp/vif-up
  start_domU d1 "'mac=00:16:3e:00:02:01,script=/tmp/vif-up'" || return
  vif=vif$DOMID.0
  data=/local/domain/$DOMID/data
  be=/local/domain/0/backend/vif/$DOMID/0
  if wait_until 60 xs_is "$be/state" 4; then pass "xen-netback Connected to the pvnet frontend at $(uptime_s) s"
  else fail "netback state $(lab_get "$be/state") not Connected (4); domU: $(domU_line d1 'frontend' 1)"; return; fi
  if wait_until 60 has "$data/lab-tap"; then pass "domU: $(lab_get "$data/lab-tap")"
  else fail "the domU's frontend never brought its TAP up: $(domU_line d1 'frontend' 1)"; return; fi
  case "$(lab_get "$data/lab-tap")" in *slots=off*) pass "plain netif against xen-netback";;
    *) fail "frontend did not fall back to plain netif";; esac
  if ping -c 3 -W 5 198.18.1.1 >/tmp/ping.out 2>&1; then pass "dom0 -> domU ping: $(tail -n1 /tmp/ping.out)"
  else fail "dom0 cannot ping the domU: $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  recv_start 5001 /tmp/up.bin
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
  timeout 90 nc 198.18.1.1 5002 </tmp/down.bin || fail "dom0 -> domU: nc failed"
  if wait_until 90 has "$data/lab-down-sha"; then
    if [ "$down_sha" = "$(lab_get "$data/lab-down-sha")" ]; then pass "$DOWN_MB MiB dom0 -> domU (from $t0 to $(uptime_s) s), sha256 $down_sha at both ends"
    else fail "dom0 -> domU: sent sha256 $down_sha, domU got $(lab_get "$data/lab-down-sha")"; fi
  else fail "dom0 -> domU: the domU never reported what it got"; fi
  s=/sys/class/net/$vif/statistics
  rxb=$(cat $s/rx_bytes) txb=$(cat $s/tx_bytes)
  say "netback $vif: rx_packets $(cat $s/rx_packets) rx_bytes $rxb rx_dropped $(cat $s/rx_dropped) tx_packets $(cat $s/tx_packets) tx_bytes $txb tx_dropped $(cat $s/tx_dropped)"
  [ "$rxb" -ge $((UP_MB << 20)) ] && [ "$txb" -ge $((DOWN_MB << 20)) ] &&
    pass "netback's counters report the traffic (rx_bytes $rxb, tx_bytes $txb)" ||
    fail "netback's counters: rx_bytes $rxb < $((UP_MB << 20)) or tx_bytes $txb < $((DOWN_MB << 20))"
  xenstore-write "$data/lab-done" 1
  if line=$(domU_line d1 "XENLAB frontend (exit|FAIL)" 30); then
    case "$line" in *"exit 0"*) pass "${line#*XENLAB }";; *) fail "${line#*XENLAB }";; esac
  else fail "the domU's frontend did not finish"; fi
  line=$(domU_line d1 "XENLAB frontend tap" 5) && say "${line#*XENLAB }"
  case "$line" in *'"dropped": {}'*) pass "the frontend dropped nothing";; *) fail "the frontend dropped frames";; esac
}

domU_main() {
  # xenfs needs xen-privcmd's symbols.
  for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs tun; do insmod /lib/modules/$m.ko; done
  mount -t xenfs xenfs /proc/xen
  /lab/pvnet frontend --hypervisor xen --tap pvf0 --tap-addr 198.18.1.1/24 --json /tmp/fe.json >/tmp/fe.out 2>&1 &
  fe=$!
  fe_settled() { grep -q "^tap pvf0 up" /tmp/fe.out || ! kill -0 $fe; }
  wait_until 60 fe_settled
  say "frontend at $(uptime_s) s: $(tr '\n' ' ' </tmp/fe.out) (cpu ticks $(cut -d' ' -f14,15 /proc/$fe/stat 2>/dev/null))"
  if grep -q "^tap pvf0 up" /tmp/fe.out; then
    xenstore-write data/lab-tap "$(tr '\n' ' ' </tmp/fe.out)"
  else
    say "frontend FAIL: $(tr '\n' ' ' </tmp/fe.out)"; return
  fi
  wait_until 90 has data/lab-go || { say "no go from dom0"; return; }
  if ping -c 3 -W 5 198.18.1.254 >/tmp/ping.out 2>&1; then xenstore-write data/lab-ping "ok $(tail -n1 /tmp/ping.out)"
  else xenstore-write data/lab-ping "FAIL $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  dd if=/dev/urandom of=/tmp/up.bin bs=1048576 count=$UP_MB 2>/dev/null
  xenstore-write data/lab-up-sha "$(sha_of /tmp/up.bin)"
  timeout 90 nc 198.18.1.254 5001 </tmp/up.bin || say "nc to dom0 failed"
  rm -f /tmp/up.bin
  wait_until 120 has data/lab-down || { say "dom0 never sent"; return; }
  recv_start 5002 /tmp/down.bin
  sleep 1
  xenstore-write data/lab-listening 1
  if wait_until 90 size_is /tmp/down.bin $((DOWN_MB << 20)); then
    xenstore-write data/lab-down-sha "$(head -c $((DOWN_MB << 20)) /tmp/down.bin | sha256sum | cut -d' ' -f1)"
  else xenstore-write data/lab-down-sha "only $(wc -c </tmp/down.bin) bytes"; fi
  wait_until 60 has data/lab-done
  kill -TERM $fe; wait $fe
  st=$?
  say "frontend tap $(tr -d '\n' </tmp/fe.json | tr -s ' ' | grep -o '"tap": {[^}]*}[^}]*}')"
  [ $st = 0 ] && say "frontend exit 0" || say "frontend FAIL exit $st: $(tail -n 3 /tmp/fe.out | tr '\n' ' ')"
}
