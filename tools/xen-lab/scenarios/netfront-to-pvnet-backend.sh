# Scenario netfront-to-pvnet-backend: Linux's xen-netfront in domU d1 against `pvnet backend --hypervisor xen` in
# dom0 (pvnet writes the vif's xenstore directories, as the toolstack would; policy copy, pcap sink).
# Checks: netfront reaches Connected against pvnet; the domU sends 5 MiB of UDP (its sha256 printed) and the
# backend's capture holds at least that many bytes; the backend's JSON counters (printed) count the frames.
# Not yet checked here: ping both ways and a TCP transfer with sha256 at both ends (the backend's pcap sink does
# not answer; dom0 has no TAP path into its own stack in this lab yet: docs/xen.md, "The Xen lab").
MB=5
dom0_main() {
  /lab/pvnet backend --hypervisor xen --policy copy --sink pcap --out /tmp/vif.pcap --json /tmp/backend.json \
    >/tmp/backend.out 2>&1 &
  be_pid=$!
  if wait_until 30 grep -q "^ready" /tmp/backend.out; then pass "pvnet backend: $(grep '^ready' /tmp/backend.out)"
  else fail "pvnet backend not ready: $(tail -n 3 /tmp/backend.out)"; return; fi
  # Paused until the backend has written the vif: then the directories can be checked before netfront probes.
  XL_CREATE_FLAGS=-p start_domU d1 "" || return
  fe=/local/domain/$DOMID/device/vif/0
  be=/local/domain/0/backend/vif/$DOMID/0
  wait_until 30 xs_is "$be/state" 2 || fail "backend did not reach InitWait: $(tail -n 3 /tmp/backend.out)"
  # netfront reads the backend directory once, at probe ("unable to read other end ... missing or inaccessible"
  # when it cannot): libxl gives it n0 r<frontend>.
  if xenstore-ls -p "$be" | head -n 1 | grep -q "r$DOMID"; then pass "backend directory readable by the frontend"
  else
    fail "pvnet backend left $be unreadable for domain $DOMID ($(xenstore-ls -p "$be" | head -n 1)); lab applies libxl's n0 r$DOMID to go on"
    xenstore-chmod -r "$be" n0 r"$DOMID"
  fi
  xl unpause d1
  if wait_until 90 xs_is "$fe/state" 4; then pass "netfront Connected to pvnet backend at $(uptime_s) s"
  else fail "netfront state $(xenstore-read "$fe/state" 2>&1) not Connected (4); backend: $(tail -n 3 /tmp/backend.out)"; fi
  if line=$(domU_line d1 "XENLAB sent" 120); then pass "domU ${line#*XENLAB }"; else fail "domU did not send"; fi
  sleep 2
  kill -TERM $be_pid; wait $be_pid
  while IFS= read -r l; do say "backend: $l"; done </tmp/backend.out
  say "backend json: $(tr -d '\n' </tmp/backend.json)"
  size=$(wc -c </tmp/vif.pcap)
  [ "$size" -ge $((MB * 1048576)) ] && pass "backend captured $size bytes" || fail "backend captured only $size bytes"
  grep -q '"tx_packets": *[1-9]' /tmp/backend.json && pass "counters count tx packets" ||
    fail "no tx_packets in the backend's counters"
}
domU_main() {
  # insmod returns only once its devices connect (xenbus waits up to 300 s for a vif): do not block on it.
  insmod /lib/modules/xen-netfront.ko &
  wait_until 90 test -e /sys/class/net/eth0 || { say "no eth0"; return; }
  ip link set eth0 up
  ip addr add 198.18.0.1/24 dev eth0
  # Nobody answers ARP behind a pcap sink: a static neighbour makes the datagrams go out at once.
  ip neigh add 198.18.0.254 lladdr 00:16:3e:00:00:fe dev eth0
  wait_until 30 grep -q up /sys/class/net/eth0/operstate
  dd if=/dev/urandom of=/tmp/blob bs=1024 count=$((MB * 1024)) 2>/dev/null
  nc -u -w 1 198.18.0.254 9 </tmp/blob
  say "sent $MB MiB over UDP, sha256 $(sha_of /tmp/blob)"
}
