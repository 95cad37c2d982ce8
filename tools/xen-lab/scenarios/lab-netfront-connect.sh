# Scenario lab-netfront-connect (the lab itself, no pvnet): Linux xen-netfront in domU d1 against a backend
# directory dom0 writes by hand with xenstore-write (what a user-space backend must write: the frontend and
# backend directories, each readable by the other end, feature-rx-copy, InitWait); passes when netfront reaches
# Connected, wrote its rings and event channel, and the domU has eth0.
dom0_main() {
  start_domU d1 "" || return
  vif_nodes "$DOMID" 0 00:16:3e:00:01:01
  # The one feature netfront insists on (xennet_connect): receive by grant copy.
  xenstore-write "$be/feature-rx-copy" 1
  xenstore-write "$be/state" 2  # InitWait: netfront writes its rings and connects as soon as it probes
  say "vif nodes written at $(uptime_s) s: frontend state $(xenstore-read "$fe/state"), backend $(xenstore-read "$be/state")"
  if wait_until 60 xs_is "$fe/state" 4; then pass "netfront Connected at $(uptime_s) s"
  else fail "netfront state $(xenstore-read "$fe/state") not Connected (4)"; fi
  for k in tx-ring-ref rx-ring-ref event-channel request-rx-copy; do
    v=$(xenstore-read "$fe/$k" 2>/dev/null) && pass "frontend wrote $k=$v" || fail "frontend has no $k"
  done
  domU_line d1 "eth0 present" 20 >/dev/null && pass "domU has eth0" || fail "domU has no eth0"
}
domU_main() {
  # insmod returns only once its devices connect (xenbus waits up to 300 s for a vif): do not block on it.
  insmod /lib/modules/xen-netfront.ko &
  wait_until 60 test -e /sys/class/net/eth0 && say "eth0 present"
  sleep 2
}
