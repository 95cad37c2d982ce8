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
  lab_exchange_dom0 "$data" 198.18.0.1 $IP netns exec $NS
  xenstore-write "$data/lab-done" 1
  # Teardown: the backend went Closed and, as the toolstack, removed both directories.
  stop_pvnet_backend $be_pid "$be" "$fe"
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
  lab_exchange_domU 198.18.0.254 || return
  say "eth0: $(cat /sys/class/net/eth0/statistics/tx_bytes) bytes sent, $(cat /sys/class/net/eth0/statistics/rx_bytes) received"
}
