#!/bin/sh
# /init of the Xen lab's dom0: the toolstack (docs/machine-notes.md, "Real Xen under QEMU"), then /lab/scenario.sh's
# dom0_main, then the result line. Xen does not end QEMU when dom0 powers off: the host stops QEMU once it has
# read "XENLAB result".
export PATH=/usr/lib/xen-4.17/bin:/bin:/sbin:/usr/bin:/usr/sbin:/lab
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts  # xenconsoled gives every domU console a pty
mkdir -p /tmp /run && mount -t tmpfs -o size=50% tmpfs /tmp && mount -t tmpfs tmpfs /run
. /lab/lib.sh
scenario=$(cat /lab/scenario-name)
say "dom0 up at $(uptime_s) s, scenario $scenario"
finish() {
  if [ -n "$first_failure" ]; then
    xl list
    for f in /var/log/xen/console/guest-*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
  fi
  if [ -z "$first_failure" ]; then say "result ok $scenario"; else say "result FAIL $scenario: $first_failure"; fi
  for d in $(xl list 2>/dev/null | awk 'NR > 2 { print $1 }'); do xl destroy "$d" >/dev/null 2>&1; done
  sync
  poweroff -f
}
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do
  insmod /lib/modules/$m.ko || fail "insmod $m"
done
mount -t xenfs xenfs /proc/xen || fail "mount xenfs"
mkdir -p /var/run/xen /var/run/xenstored /var/lib/xen /var/lib/xenstored /var/log/xen/console
xenstored --pid-file=/var/run/xenstored.pid || fail "xenstored"
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || fail "xen-init-dom0: $(tail -n1 /tmp/xen-init-dom0.log)"
xenconsoled --log=guest || fail "xenconsoled"
ip link set lo up
[ -n "$first_failure" ] && finish
say "toolstack ready at $(uptime_s) s"

# start_domU NAME [VIF_SPEC]: a PV domU with the lab kernel; its console goes to /var/log/xen/console/guest-NAME.log
# and, prefixed "NAME: ", to ours. Prints nothing; sets DOMID.
start_domU() {
  cat >/tmp/$1.cfg <<CFG
name = "$1"
kernel = "/lab/vmlinux"
ramdisk = "/lab/domU.img"
extra = "console=hvc0 quiet rodata=off lab.name=$1"
memory = ${DOMU_MB:-256}
vcpus = 1
vif = [ $2 ]
on_poweroff = "destroy"
on_crash = "preserve"
CFG
  if ! xl create $XL_CREATE_FLAGS /tmp/$1.cfg >/tmp/$1.create.log 2>&1; then
    cat /tmp/$1.create.log
    fail "xl create $1"
    return 1
  fi
  DOMID=$(xl domid "$1")
  log=/var/log/xen/console/guest-$1.log
  (wait_until 10 test -f "$log" && tail -F "$log" 2>/dev/null | while IFS= read -r l; do echo "$1: $l"; done) &
  say "domU $1 is domain $DOMID at $(uptime_s) s"
}
# domU_line NAME PATTERN SECONDS: waits until the domU printed a line matching PATTERN (grep -E); prints the last.
domU_line() {
  if wait_until "$3" grep -qE "$2" /var/log/xen/console/guest-$1.log; then
    grep -E "$2" /var/log/xen/console/guest-$1.log | tail -n1 | tr -d '\r'
    return 0
  fi
  return 1
}
# vif_nodes DOMID DEVID MAC: the xenstore nodes libxl would write for a vif whose backend is not the kernel's
# netback (vif = [] in the config): frontend and backend directories, each readable by the other end.
# Backend state stays Initialising (1); whoever serves the backend moves it on.
vif_nodes() {
  fe=/local/domain/$1/device/vif/$2
  be=/local/domain/0/backend/vif/$1/$2
  xenstore-write $be/frontend $fe $be/frontend-id $1 $be/online 1 $be/state 1 $be/handle $2 $be/mac "$3"
  xenstore-chmod -r $be n0 r$1
  xenstore-write $fe/backend $be $fe/backend-id 0 $fe/handle $2 $fe/mac "$3" $fe/state 1
  # Nodes dom0 made under the guest's device dir are not the guest's until chmod (docs/machine-notes.md).
  xenstore-chmod -r $fe n$1 r0
}
xs_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }

. /lab/scenario.sh
dom0_main
finish
