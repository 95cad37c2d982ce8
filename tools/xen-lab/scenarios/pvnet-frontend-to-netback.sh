# Scenario pvnet-frontend-to-netback: `pvnet frontend --hypervisor xen` in domU d1 (plain netif, xen-netfront not
# loaded) against Linux's xen-netback in dom0 (a libxl vif; the hotplug script only reports connected and brings
# vif<D>.0 up). The frontend transmits traces/udp-dns-ping.pcap; dom0 captures vif<D>.0 with tcpdump.
# Checks: netback and pvnet reach Connected; dom0 captured at least as many frames as the frontend says it sent.
dom0_main() {
  insmod /lib/modules/xen-netback.ko || { fail "insmod xen-netback"; return; }
  cat >/tmp/vif-up <<'SH'
#!/bin/sh
# libxl's hotplug step, reduced: the vif up, then the node netback waits for.
[ "$1" = online ] && ip link set "$vif" up
xenstore-write "$XENBUS_PATH/hotplug-status" connected
SH
  chmod 755 /tmp/vif-up
  start_domU d1 "'mac=00:16:3e:00:02:01,script=/tmp/vif-up'" || return
  vif=vif$DOMID.0
  wait_until 30 test -e /sys/class/net/$vif || { fail "no $vif in dom0"; return; }
  tcpdump -Z root -n -i "$vif" -w /tmp/cap.pcap >/tmp/tcpdump.log 2>&1 &
  td=$!
  be=/local/domain/0/backend/vif/$DOMID/0
  if wait_until 90 xs_is "$be/state" 4; then pass "xen-netback Connected to the pvnet frontend at $(uptime_s) s"
  else fail "netback state $(xenstore-read "$be/state") not Connected (4)"; fi
  wait_until 20 grep -q "listening on" /tmp/tcpdump.log || say "tcpdump: $(cat /tmp/tcpdump.log)"
  if line=$(domU_line d1 "XENLAB frontend (done|FAIL)" 90); then say "${line#*XENLAB }"; else fail "frontend did not finish"; fi
  sleep 2
  say "netback $vif: rx_packets $(cat /sys/class/net/$vif/statistics/rx_packets) rx_dropped $(cat /sys/class/net/$vif/statistics/rx_dropped) operstate $(cat /sys/class/net/$vif/operstate)"
  kill -INT $td; wait $td
  say "tcpdump: $(tr '\n' ' ' </tmp/tcpdump.log)"
  got=$(tcpdump -Z root -n -r /tmp/cap.pcap 2>/dev/null | wc -l)
  sent=$(domU_line d1 "XENLAB frontend sent" 1 | sed 's/.*sent \([0-9]*\).*/\1/')
  [ -n "$sent" ] && [ "$got" -ge "$sent" ] && [ "$got" -gt 0 ] && pass "dom0 captured $got frames on $vif (frontend sent $sent)" ||
    fail "dom0 captured $got frames on $vif, frontend sent ${sent:-?}"
}
domU_main() {
  for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do insmod /lib/modules/$m.ko; done
  mount -t xenfs xenfs /proc/xen
  sleep 15  # dom0's tcpdump on vif<D>.0 is slow to start under TCG: it must see the first frame
  /lab/pvnet frontend --hypervisor xen --no-header-slots --mem-mb 4 --tx /lab/trace.pcap --json /tmp/fe.json \
    >/tmp/fe.out 2>&1
  st=$?
  while IFS= read -r l; do say "frontend: $l"; done </tmp/fe.out
  n=$(grep -o '"tx_packets": *[0-9]*' /tmp/fe.json 2>/dev/null | head -n1 | grep -o '[0-9]*$')
  say "frontend sent ${n:-0} frames"
  [ $st = 0 ] && say "frontend done" || say "frontend FAIL exit $st"
  sleep 15  # dom0 checks the vif while this domain still exists
}
