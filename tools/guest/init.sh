#!/bin/sh
# /init of a pvnet test guest (busybox ash). Everything it does comes from the kernel command line:
#   pvnet.ip=198.18.0.1/24      eth0's IPv4 address (198.18.0.0/15 only: the benchmarking range, RFC 2544)
#   pvnet.ip6=fd00::1/64        optional IPv6 address (fd00::/8)
#   pvnet.run=STEP,STEP,...     the scenario, run in order; each step prints one "PVNET <step> ok|FAIL ..." line
#   pvnet.mb=20                 size of the file the send step generates (MiB)
# Steps:
#   wait:IP              ping IP until it answers (60 s)
#   ping:IP              5 pings, all must come back
#   send:IP:PORT         generate pvnet.mb MiB from /dev/urandom, print its sha256, send it with nc
#   recv:PORT            receive one TCP stream with nc, print its size and sha256
#   iperf-server         iperf3 -s -1 (one test)
#   iperf:IP             iperf3 -c IP -t 3 (prints the receiver's rate)
#   sleep:S              sleep S seconds
# Ends with "PVNET done ok" (every step passed) or "PVNET done FAIL", then powers off (QEMU exits: -no-reboot).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp && mount -t tmpfs -o size=90% tmpfs /tmp

say() { echo "PVNET $*"; }
failed=0
fail() { say "$@"; failed=1; }
finish() {
  if [ "$failed" = 0 ]; then say "done ok"; else say "done FAIL"; fi
  sync
  poweroff -f
}

arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
IP=$(arg pvnet.ip)
IP6=$(arg pvnet.ip6)
RUN=$(arg pvnet.run)
MB=$(arg pvnet.mb); [ -n "$MB" ] || MB=20

# The Debian package ships no modules.dep: load the virtio-net stack in dependency order.
for m in failover net_failover virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_net; do
  f=$(find /lib/modules -name "$m.ko" | head -n1)
  [ -n "$f" ] && insmod "$f" 2>/dev/null
done

i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /sys/class/net/eth0 ]; then fail "eth0 FAIL no virtio-net device"; finish; fi
ip link set lo up
ip link set eth0 up
[ -n "$IP" ] && ip addr add "$IP" dev eth0
# No duplicate address detection (busybox ip has no nodad): the address is usable at once.
echo 0 >/proc/sys/net/ipv6/conf/eth0/accept_dad 2>/dev/null
[ -n "$IP6" ] && ip -6 addr add "$IP6" dev eth0
say "eth0 ok ip=$IP mac=$(cat /sys/class/net/eth0/address) kernel=$(uname -r)"

step_wait() {
  i=0
  while [ $i -lt 60 ]; do
    if ping -c 1 -W 1 "$1" >/dev/null 2>&1; then say "wait:$1 ok after=${i}s"; return; fi
    i=$((i + 1))
  done
  fail "wait:$1 FAIL no answer in 60 s"
}

step_ping() {
  out=$(ping -c 5 -i 0.2 -W 2 "$1" 2>&1)
  got=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
  rtt=$(echo "$out" | sed -n 's/.*min\/avg\/max = \(.*\)/\1/p')
  if [ "$got" = 5 ]; then say "ping:$1 ok received=5/5 rtt=$rtt"; else fail "ping:$1 FAIL received=${got:-0}/5"; fi
}

step_send() {
  host=${1%%:*}; port=${1#*:}
  dd if=/dev/urandom of=/tmp/send.bin bs=1048576 count="$MB" 2>/dev/null
  sum=$(sha256sum /tmp/send.bin | cut -d' ' -f1)
  bytes=$(wc -c </tmp/send.bin)
  i=0
  while [ $i -lt 60 ]; do
    start=$(cut -d' ' -f1 /proc/uptime)
    if nc "$host" "$port" </tmp/send.bin 2>/dev/null; then
      end=$(cut -d' ' -f1 /proc/uptime)
      say "send:$1 ok bytes=$bytes sha256=$sum seconds=$(awk "BEGIN{print $end-$start}")"
      rm -f /tmp/send.bin
      return
    fi
    sleep 0.5; i=$((i + 1))
  done
  fail "send:$1 FAIL could not connect"
}

step_recv() {
  timeout 300 nc -l -p "$1" >/tmp/recv.bin
  sum=$(sha256sum /tmp/recv.bin | cut -d' ' -f1)
  bytes=$(wc -c </tmp/recv.bin)
  rm -f /tmp/recv.bin
  if [ "$bytes" -gt 0 ]; then say "recv:$1 ok bytes=$bytes sha256=$sum"; else fail "recv:$1 FAIL bytes=0"; fi
}

step_iperf_server() {
  if timeout 120 iperf3 -s -1 >/tmp/iperf.log 2>&1; then
    say "iperf-server ok $(grep receiver /tmp/iperf.log | tail -n1 | tr -s ' ')"
  else
    fail "iperf-server FAIL $(tail -n1 /tmp/iperf.log)"
  fi
}

step_iperf() {
  i=0
  while [ $i -lt 30 ]; do
    if timeout 60 iperf3 -c "$1" -t 3 >/tmp/iperf.log 2>&1; then
      say "iperf:$1 ok $(grep receiver /tmp/iperf.log | tail -n1 | tr -s ' ')"
      return
    fi
    sleep 1; i=$((i + 1))
  done
  fail "iperf:$1 FAIL $(tail -n1 /tmp/iperf.log)"
}

for s in $(echo "$RUN" | tr ',' ' '); do
  case "$s" in
    wait:*) step_wait "${s#wait:}" ;;
    ping:*) step_ping "${s#ping:}" ;;
    send:*) step_send "${s#send:}" ;;
    recv:*) step_recv "${s#recv:}" ;;
    iperf-server) step_iperf_server ;;
    iperf:*) step_iperf "${s#iperf:}" ;;
    sleep:*) sleep "${s#sleep:}"; say "$s ok" ;;
    *) fail "$s FAIL unknown step" ;;
  esac
done
finish
