# Scenario xl-network-attach: libxl writes the vif, pvnet serves it. dom0 runs `pvnet backend --hypervisor xen
# --toolstack libxl` (it writes no directories: it adopts the ones libxl writes) with its TAP sink in namespace lab
# (pvtap1, 198.18.0.254/24). domU d1 (Linux's xen-netfront) is created with a vif line naming the hotplug script
# pvnet ships (tools/xen/vif-pvnet): `vif = [ 'mac=...,script=/lab/vif-pvnet' ]`; later it is detached with
# `xl network-detach` and attached again with `xl network-attach`.
# Checks: xl create exits 0 (libxl saw InitWait within its 10 s and the hotplug script ran: hotplug-status
# connected); the backend says "adopted vif1.0" and keeps libxl's mac; netfront Connected; ping both ways and
# UP_MB / DOWN_MB MiB each way over TCP with the same sha256 at both ends; `xl network-detach` exits 0 (the backend
# went Closed within libxl's 10 s), the backend says offline and removed, libxl removed both directories and the
# domU's eth0 went away; `xl network-attach` exits 0, the new vif is adopted and carries a ping; the backend's
# counters report the traffic and nothing is left mapped when it stops.
UP_MB=5
DOWN_MB=5
NS=lab
IP=/usr/sbin/ip
MAC=00:16:3e:00:01:01
json_num() { tr -d '\n ' </tmp/backend.json | sed 's/.*"backend_at_stop"://' | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }
backend_said() { grep -q "^$1" /tmp/backend.out; }
no_dirs() { ! xenstore-read "$be/state" >/dev/null 2>&1 && ! xenstore-read "$fe/state" >/dev/null 2>&1; }

# xl_timed WHAT CMD...: runs an xl command with a time limit, one check line with its exit status and duration.
xl_timed() {
  what=$1; shift
  t0=$(uptime_s)
  if timeout 60 "$@" >/tmp/xl.out 2>&1; then pass "$what: exit 0 (from $t0 to $(uptime_s) s)"; return 0; fi
  fail "$what failed: $(tr '\n' ' ' </tmp/xl.out | cut -c1-300)"
  return 1
}

dom0_main() {
  insmod /lib/modules/tun.ko 2>/dev/null
  /lab/pvnet backend --hypervisor xen --toolstack libxl --policy copy --tap-netns $NS --tap-for 1 \
    --json /tmp/backend.json >/tmp/backend.out 2>&1 &
  be_pid=$!
  if wait_until 30 backend_said ready; then pass "pvnet backend: $(grep '^ready' /tmp/backend.out)"
  else fail "pvnet backend not ready: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  t0=$(uptime_s)
  start_domU d1 "'mac=$MAC,script=/lab/vif-pvnet'" || return
  pass "xl create d1 with a vif served by pvnet: exit 0 (from $t0 to $(uptime_s) s)"
  [ "$DOMID" = 1 ] || { fail "domU is domain $DOMID, the TAP is for domain 1"; return; }
  fe=/local/domain/$DOMID/device/vif/0
  be=/local/domain/0/backend/vif/$DOMID/0
  data=/local/domain/$DOMID/data
  if backend_said "adopted vif1.0"; then pass "the backend adopted libxl's directory: $(grep '^adopted' /tmp/backend.out)"
  else fail "the backend did not adopt vif1.0: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  [ "$(lab_get "$be/hotplug-status")" = connected ] && pass "vif-pvnet ran (hotplug-status connected, script $(lab_get "$be/script"))" ||
    fail "hotplug-status is '$(lab_get "$be/hotplug-status")', not connected"
  [ "$(lab_get "$be/mac")" = $MAC ] && pass "libxl's mac kept ($MAC)" || fail "mac is $(lab_get "$be/mac"), libxl wrote $MAC"
  if wait_until 60 xs_is "$fe/state" 4; then pass "netfront Connected to the adopted vif at $(uptime_s) s"
  else fail "netfront state $(lab_get "$fe/state") not Connected (4); backend: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  xl network-list d1 | tail -n +2 | while IFS= read -r l; do say "xl network-list: $l"; done
  if wait_until 60 has "$data/lab-up"; then pass "domU: $(lab_get "$data/lab-up")"
  else fail "the domU never brought eth0 up"; return; fi
  lab_exchange_dom0 "$data" 198.18.0.1 $IP netns exec $NS
  xenstore-write "$data/lab-done" 1

  # Detach: libxl writes online 0 + Closing and waits up to 10 s for Closed, then removes both directories.
  xl_timed "xl network-detach d1 0 (pvnet went Closed in time)" xl network-detach d1 0
  wait_until 10 backend_said "removed vif1.0"
  backend_said "offline vif1.0" && backend_said "removed vif1.0" && pass "the backend took vif1.0 offline, then dropped it" ||
    fail "the backend did not say offline + removed: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"
  wait_until 10 no_dirs && pass "libxl removed both directories; the backend wrote none back" ||
    fail "vif directories left after the detach: be state $(lab_get "$be/state"), fe state $(lab_get "$fe/state")"
  xenstore-write "$data/lab-detached" 1
  if wait_until 30 has "$data/lab-gone"; then pass "domU: $(lab_get "$data/lab-gone")"
  else fail "the domU still has eth0 after the detach"; fi

  # Attach again: a new device with the same name, adopted again.
  xl_timed "xl network-attach d1 (libxl writes the vif, pvnet answers InitWait)" \
    xl network-attach d1 mac=$MAC script=/lab/vif-pvnet backend=0 || return
  [ "$(grep -c '^adopted vif1.0' /tmp/backend.out)" = 2 ] && pass "adopted again" || fail "the backend did not adopt the attached vif"
  xenstore-write "$data/lab-reattached" 1
  if wait_until 60 has "$data/lab-up2"; then pass "domU: $(lab_get "$data/lab-up2")"
  else fail "the domU did not bring the new eth0 up"; fi
  if $IP netns exec $NS ping -c 2 -W 5 198.18.0.1 >/tmp/ping.out 2>&1; then pass "dom0 -> domU ping over the second attach"
  else fail "no ping over the second attach: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"; fi

  kill -TERM $be_pid; wait $be_pid
  while IFS= read -r l; do say "backend: $l"; done </tmp/backend.out
  say "backend json: $(tr -d '\n' </tmp/backend.json | tr -s ' ' | cut -c1-1500)"
  txb=$(json_num bytes_in) rxb=$(json_num rx_bytes)
  [ "${txb:-0}" -ge $((UP_MB << 20)) ] && [ "${rxb:-0}" -ge $((DOWN_MB << 20)) ] &&
    pass "the backend's counters report the traffic (bytes_in $txb from the domU, rx_bytes $rxb to it)" ||
    fail "the backend's counters: bytes_in ${txb:-none} < $((UP_MB << 20)) or rx_bytes ${rxb:-none} < $((DOWN_MB << 20))"
  mapped=$(json_num pages_mapped_total) left=$(json_num mappings_left_after_teardown)
  [ "${mapped:-0}" -ge 4 ] && [ "$left" = 0 ] && pass "nothing left mapped in dom0 after two attaches ($mapped pages mapped in all)" ||
    fail "dom0 mappings left after teardown: ${left:-none} of ${mapped:-none}"
  # Stopped, the backend said Closed in the directory libxl still owns (libxl removes it with the domain).
  [ "$(lab_get "$be/state")" = 6 ] && pass "backend state Closed after the backend stopped; the directory stays libxl's" ||
    fail "after the backend stopped: be state '$(lab_get "$be/state")'"
  # Only now may the domU end: once it powers off, libxl destroys the domain and removes the directory.
  xenstore-write "$data/lab-finish" 1
}

eth0_up() { grep -q up /sys/class/net/eth0/operstate; }
no_eth0() { [ ! -e /sys/class/net/eth0 ]; }
bring_up() {  # bring_up NODE: waits for eth0, gives it the address, reports through data/NODE
  wait_until 60 test -e /sys/class/net/eth0 || { say "no eth0"; return 1; }
  ip addr add 198.18.0.1/24 dev eth0
  ip link set eth0 up
  wait_until 30 eth0_up
  xenstore-write data/$1 "eth0 $(cat /sys/class/net/eth0/operstate) at $(uptime_s) s"
}

domU_main() {
  # insmod returns only once its devices connect (xenbus waits up to 300 s for a vif): do not block on it.
  insmod /lib/modules/xen-netfront.ko &
  bring_up lab-up || return
  lab_exchange_domU 198.18.0.254 || true
  wait_until 60 has data/lab-detached || { say "no detach"; return; }
  if wait_until 30 no_eth0; then xenstore-write data/lab-gone "eth0 gone at $(uptime_s) s"; fi
  wait_until 60 has data/lab-reattached || { say "no re-attach"; return; }
  bring_up lab-up2
  wait_until 60 has data/lab-finish
}
