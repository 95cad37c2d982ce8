# Scenario pvnet-both: pvnet at both ends on real Xen grant tables, dom0 <-> domU. `pvnet frontend --hypervisor xen
# --tap pvf0` in domU d1 (header slots on; xen-netfront not loaded; pvf0 198.18.1.1/24) against `pvnet backend
# --hypervisor xen --policy auto` in dom0, whose TAP sink bridges the vif into dom0's network namespace "lab"
# (pvtap1, 198.18.1.254/24). auto negotiates header slots and, for the TAP (a sink that reads every byte),
# grant-copies the payload rather than faulting each page in through gntdev (policy slots: 24-92 s for 5 MiB under
# TCG). dom0 and the domU take turns through xenstore (/local/domain/<D>/data/lab-*), as in the other scenarios.
# The VM-to-VM half of issue 7's third test (two domUs, nothing of the payload mapped in dom0) is pvnet-vm-to-vm.
# Checks: the frontend connected with header slots and the backend's 4-page TX ring; ping both ways; UP_MB MiB
# domU -> dom0 and DOWN_MB MiB dom0 -> domU over TCP with the same sha256 at both ends; the TCP of both sides
# crossed netif as GSO (the TAPs' offloads); the backend's and the frontend's counters; no payload page touched in
# dom0; the vif directories removed when the backend stops.
UP_MB=5
DOWN_MB=5
NS=lab
IP=/usr/sbin/ip  # by path: busybox ash runs its own `ip` applet (no netns) before looking at PATH
# jget KEY: a top-level number of the backend's JSON (keys are sorted: the nested backend/backend_at_stop/
# connection objects with the same names come first).
jget() { tr -d '\n ' </tmp/backend.json | grep -o "\"$1\":[0-9]*" | tail -n1 | cut -d: -f2; }

dom0_main() {
  insmod /lib/modules/tun.ko 2>/dev/null
  /lab/pvnet backend --hypervisor xen --policy auto --tap-netns $NS --tap-for 1 --tap-addr 198.18.1.254/24 \
    --json /tmp/backend.json >/tmp/backend.out 2>&1 &
  be_pid=$!
  if wait_until 30 grep -q "^ready" /tmp/backend.out; then pass "pvnet backend: $(grep '^ready' /tmp/backend.out) at $(uptime_s) s"
  else fail "pvnet backend not ready: $(tail -n 3 /tmp/backend.out | tr '\n' ' ')"; return; fi
  nsenter --net=/run/netns/$NS sh -c ". /lab/lib.sh; lab_tso_segs"
  # 96 MiB is too small for libxenguest to place the 26 MB ramdisk ("segment module0 too large"); the frontend
  # uses a 4 MiB gntalloc pool and /tmp holds two 5 MiB files.
  DOMU_MB=128
  start_domU d1 "" || return
  [ "$DOMID" = 1 ] || { fail "domU is domain $DOMID, the TAP is for domain 1"; return; }
  data=/local/domain/$DOMID/data
  be=/local/domain/0/backend/vif/$DOMID/0
  fe=/local/domain/$DOMID/device/vif/0
  if wait_until 90 has "$data/lab-tap"; then :; fi
  case "$(lab_get "$data/lab-tap")" in
    *"slots=on tx-ring=1024"*"tap pvf0 up"*) pass "domU: $(lab_get "$data/lab-tap")at $(uptime_s) s";;
    *) fail "domU's frontend: '$(lab_get "$data/lab-tap")' (wanted slots=on tx-ring=1024, tap pvf0 up)"; return;;
  esac
  lab_exchange_dom0 "$data" 198.18.1.1 $IP netns exec $NS
  say "transfers checked at $(uptime_s) s; CPU seconds so far: $(xl list | awk 'NR > 1 { printf "%s %s, ", $1, $6 }')"
  xenstore-write "$data/lab-done" 1
  check_tap_frontend d1 gso  # the backend offers feature-gso-tcpv4: the domU's TSO goes out as netif GSO
  stop_pvnet_backend $be_pid "$be" "$fe"
  tap=$(json_obj /tmp/backend.json tap)
  h=$(num_of "$tap" bytes_to_host) g=$(num_of "$tap" bytes_to_guest)
  [ "${h:-0}" -ge $((UP_MB << 20)) ] && [ "${g:-0}" -ge $((DOWN_MB << 20)) ] &&
    pass "the backend's TAP counters: $h bytes in $(num_of "$tap" frames_to_host) frames to dom0, $g bytes in $(num_of "$tap" frames_to_guest) frames to d1" ||
    fail "the backend's TAP counters: ${h:-?} bytes to dom0, ${g:-?} to d1"
  # dom0's TSO reaches d1 as netif GSO (the TAP sink's offloads follow netfront's feature-gso-tcpv4).
  n=$(num_of "$tap" gso_frames_to_guest)
  [ "${n:-0}" -gt 0 ] && pass "dom0's TCP reached d1 in $n GSO super-frames" || fail "no GSO frame from dom0 to d1"
  # Header slots carried every frame's headers; the payload was grant-copied for the TAP, never faulted in.
  # (auto's start-up measurement maps, faults and copies on dom0's own scratch grants: its `faults` are those.)
  hs=$(jget tx_header_slot_packets) pt=$(jget payload_pages_touched)
  [ "${hs:-0}" -gt 0 ] && [ "$pt" = 0 ] &&
    pass "backend: $hs packets through header slots, payload_pages_touched 0, grant_copy_bytes $(jget grant_copy_bytes)" ||
    fail "backend: tx_header_slot_packets ${hs:-?}, payload_pages_touched ${pt:-?}"
}

domU_main() {
  start_tap_frontend 198.18.1.1/24 || return
  lab_exchange_domU 198.18.1.254 || return
  stop_tap_frontend
}
