#!/bin/sh
# /init of a Xen lab domU: loads xen-netfront, runs /lab/scenario.sh's domU_main (lab.name= tells which domU
# this is), powers off (on_poweroff = destroy).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/lab
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp && mount -t tmpfs -o size=70% tmpfs /tmp
. /lab/lib.sh
NAME=$(arg lab.name)
say "$NAME up at $(uptime_s) s"
ip link set lo up
. /lab/scenario.sh
domU_main
say "$NAME done"
sync
poweroff -f
