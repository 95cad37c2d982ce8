# Scenario netfront-to-pvnet-backend: Linux's xen-netfront in domU d1 against `pvnet backend --hypervisor xen` in
# dom0 (pvnet writes the vif's xenstore directories, as the toolstack would; policy copy) whose TAP sink bridges
# the vif into dom0's network namespace "lab" (pvtap1, 198.18.0.254/24). The domU's eth0 is 198.18.0.1/24.
# dom0 and the domU take turns through xenstore (/local/domain/<D>/data/lab-*), as in pvnet-frontend-to-netback.
# Checks: backend ready; the backend directory readable by the frontend (libxl's n0 r<D>); netfront Connected;
# ping both ways; UP_MB MiB domU -> dom0 and DOWN_MB MiB dom0 -> domU over TCP (busybox nc) with the same sha256
# at both ends; the backend's JSON counters count at least those bytes.
UP_MB=5
DOWN_MB=5
NS=lab
# iproute2's ip by path: busybox ash runs its own applets (ip without netns) before looking at PATH.
IP=/usr/sbin/ip
lab_get() { xenstore-read "$1" 2>/dev/null; }
# busybox nc stops at stdin EOF: the listener's stdin is held open; the file is complete at its size.
recv_start() { (sleep 600 | "$@") & }
has() { [ -n "$(lab_get "$1")" ]; }
size_is() { [ "$(wc -c <"$1" 2>/dev/null)" -ge "$2" ]; }
# A counter of the backend's own totals at stop (its JSON's "backend_at_stop").
json_num() { tr -d '\n ' </tmp/backend.json | sed 's/.*"backend_at_stop"://' | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }

dom0_main() {
  insmod /lib/modules/tun.ko 2>/dev/null
  # The first domU of a fresh lab is domain 1 (checked below): the TAP is for it.
  /lab/pvnet backend --hypervisor xen --policy copy --tap-netns $NS --tap-for 1 --json /tmp/backend.json \
    >/tmp/backend.out 2>&1 &
  be_pid=$!
  if wait_until 30 grep -q "^ready" /tmp/backend.out; then pass "pvnet backend: $(grep '^ready' /tmp/backend.out)"
  else fail "pvnet backend not ready: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  # Paused until the backend has written the vif: then the directories can be checked before netfront probes.
  XL_CREATE_FLAGS=-p start_domU d1 "" || return
  [ "$DOMID" = 1 ] || { fail "domU is domain $DOMID, the TAP is for domain 1"; return; }
  fe=/local/domain/$DOMID/device/vif/0
  be=/local/domain/0/backend/vif/$DOMID/0
  data=/local/domain/$DOMID/data
  wait_until 30 xs_is "$be/state" 2 || fail "backend did not reach InitWait: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"
  # netfront reads the backend directory once, at probe ("unable to read other end ... missing or inaccessible").
  perms=$(xenstore-ls -p "$be" | head -n 1)
  case "$perms" in *"n0, r$DOMID"*|*"n0,r$DOMID"*|*"r$DOMID"*) pass "backend directory readable by the frontend ($perms)";;
    *) fail "pvnet backend left $be unreadable for domain $DOMID ($perms)";; esac
  xl unpause d1
  if wait_until 90 xs_is "$fe/state" 4; then pass "netfront Connected to pvnet backend at $(uptime_s) s"
  else fail "netfront state $(lab_get "$fe/state") not Connected (4); backend: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  if wait_until 60 has "$data/lab-up"; then pass "domU: $(lab_get "$data/lab-up")"
  else fail "the domU never brought eth0 up"; return; fi
  if $IP netns exec $NS ping -c 3 -W 5 198.18.0.1 >/tmp/ping.out 2>&1; then pass "dom0 -> domU ping: $(tail -n1 /tmp/ping.out)"
  else fail "dom0 cannot ping the domU: $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  recv_start $IP netns exec $NS nc -l -p 5001 >/tmp/up.bin
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
  timeout 90 $IP netns exec $NS nc 198.18.0.1 5002 </tmp/down.bin || fail "dom0 -> domU: nc failed"
  if wait_until 90 has "$data/lab-down-sha"; then
    if [ "$down_sha" = "$(lab_get "$data/lab-down-sha")" ]; then pass "$DOWN_MB MiB dom0 -> domU (from $t0 to $(uptime_s) s), sha256 $down_sha at both ends"
    else fail "dom0 -> domU: sent sha256 $down_sha, domU got $(lab_get "$data/lab-down-sha")"; fi
  else fail "dom0 -> domU: the domU never reported what it got"; fi
  xenstore-write "$data/lab-done" 1
  kill -TERM $be_pid; wait $be_pid
  # Teardown: the backend went Closed and, as the toolstack, removed both directories.
  if xenstore-read "$be/state" >/dev/null 2>&1 || xenstore-read "$fe/state" >/dev/null 2>&1; then
    fail "vif directories left after the backend stopped: be state $(lab_get "$be/state"), fe state $(lab_get "$fe/state")"
  else pass "the backend removed the vif directories when it stopped"; fi
  while IFS= read -r l; do say "backend: $l"; done </tmp/backend.out
  say "backend json: $(tr -d '\n' </tmp/backend.json | tr -s ' ' | cut -c1-1500)"
  txb=$(json_num bytes_in) rxb=$(json_num rx_bytes)
  [ "${txb:-0}" -ge $((UP_MB << 20)) ] && [ "${rxb:-0}" -ge $((DOWN_MB << 20)) ] &&
    pass "the backend's counters report the traffic (bytes_in $txb from the domU, rx_bytes $rxb to it)" ||
    fail "the backend's counters: bytes_in ${txb:-none} < $((UP_MB << 20)) or rx_bytes ${rxb:-none} < $((DOWN_MB << 20))"
}

domU_main() {
  # insmod returns only once its devices connect (xenbus waits up to 300 s for a vif): do not block on it.
  insmod /lib/modules/xen-netfront.ko &
  wait_until 90 test -e /sys/class/net/eth0 || { say "no eth0"; return; }
  ip addr add 198.18.0.1/24 dev eth0
  ip link set eth0 up
  wait_until 30 grep -q up /sys/class/net/eth0/operstate
  xenstore-write data/lab-up "eth0 $(cat /sys/class/net/eth0/operstate) at $(uptime_s) s"
  wait_until 90 has data/lab-go || { say "no go from dom0"; return; }
  if ping -c 3 -W 5 198.18.0.254 >/tmp/ping.out 2>&1; then xenstore-write data/lab-ping "ok $(tail -n1 /tmp/ping.out)"
  else xenstore-write data/lab-ping "FAIL $(tail -n2 /tmp/ping.out | tr '\n' ' ')"; fi
  dd if=/dev/urandom of=/tmp/up.bin bs=1048576 count=$UP_MB 2>/dev/null
  xenstore-write data/lab-up-sha "$(sha_of /tmp/up.bin)"
  timeout 90 nc 198.18.0.254 5001 </tmp/up.bin || say "nc to dom0 failed"
  rm -f /tmp/up.bin
  wait_until 120 has data/lab-down || { say "dom0 never sent"; return; }
  recv_start nc -l -p 5002 >/tmp/down.bin
  sleep 1
  xenstore-write data/lab-listening 1
  if wait_until 90 size_is /tmp/down.bin $((DOWN_MB << 20)); then
    xenstore-write data/lab-down-sha "$(head -c $((DOWN_MB << 20)) /tmp/down.bin | sha256sum | cut -d' ' -f1)"
  else xenstore-write data/lab-down-sha "only $(wc -c </tmp/down.bin) bytes"; fi
  wait_until 60 has data/lab-done
  say "eth0: $(cat /sys/class/net/eth0/statistics/tx_bytes) bytes sent, $(cat /sys/class/net/eth0/statistics/rx_bytes) received"
}
