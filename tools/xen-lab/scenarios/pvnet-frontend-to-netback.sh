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
  wait_until 60 has "$data/lab-tap"
  case "$(lab_get "$data/lab-tap")" in *"tap pvf0 up"*) pass "domU: $(lab_get "$data/lab-tap")";;
    *) fail "the domU's frontend never brought its TAP up: $(lab_get "$data/lab-tap")"; return;; esac
  case "$(lab_get "$data/lab-tap")" in *slots=off*) pass "plain netif against xen-netback";;
    *) fail "frontend did not fall back to plain netif";; esac
  lab_exchange_dom0 "$data" 198.18.1.1
  s=/sys/class/net/$vif/statistics
  rxb=$(cat $s/rx_bytes) txb=$(cat $s/tx_bytes)
  say "netback $vif: rx_packets $(cat $s/rx_packets) rx_bytes $rxb rx_dropped $(cat $s/rx_dropped) tx_packets $(cat $s/tx_packets) tx_bytes $txb tx_dropped $(cat $s/tx_dropped)"
  [ "$rxb" -ge $((UP_MB << 20)) ] && [ "$txb" -ge $((DOWN_MB << 20)) ] &&
    pass "netback's counters report the traffic (rx_bytes $rxb, tx_bytes $txb)" ||
    fail "netback's counters: rx_bytes $rxb < $((UP_MB << 20)) or tx_bytes $txb < $((DOWN_MB << 20))"
  xenstore-write "$data/lab-done" 1
  check_tap_frontend d1 gso  # xen-netback offers feature-gso-tcpv4: the domU's TSO goes out as netif GSO
}

domU_main() {
  start_tap_frontend 198.18.1.1/24 || return
  lab_exchange_domU 198.18.1.254 || return
  stop_tap_frontend
}
