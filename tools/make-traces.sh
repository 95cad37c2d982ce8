#!/usr/bin/env bash
# Makes small REAL Ethernet captures for pvnet's parser and replay tests: real programs (ping, python3's socket
# module, the kernel's own IP stack) talking across a veth pair between two network namespaces this script
# creates, captured by tcpdump on the sending end. No network access; addresses only from 198.18.0.0/15
# (RFC 2544 benchmarking) and fd00::/8 (ULA).
#   tools/make-traces.sh            makes the traces missing from traces/ (a second run does nothing)
#   tools/make-traces.sh --force    remakes all of them
#   tools/make-traces.sh --out DIR  writes to DIR instead of traces/
# Needs root, iproute2, tcpdump, iputils-ping, python3 (all in tools/setup.sh's package list).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/traces"
force=0
while (($#)); do
  case $1 in
    --force) force=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--force] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" -ne 0 ]; then echo "make-traces: need root (ip netns)" >&2; exit 1; fi
for tool in ip tcpdump ping python3; do
  command -v "$tool" >/dev/null || { echo "make-traces: $tool missing; run tools/setup.sh" >&2; exit 1; }
done
py=$(command -v /usr/bin/python3 || command -v python3)
mkdir -p "$out"

NA=pvnet-trace-a NB=pvnet-trace-b
work=$(mktemp -d)
tcpdump_pid=""
cleanup() {
  if [ -n "$tcpdump_pid" ]; then kill "$tcpdump_pid" 2>/dev/null || true; wait "$tcpdump_pid" 2>/dev/null || true; fi
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

in_a() { ip netns exec "$NA" "$@"; }
in_b() { ip netns exec "$NB" "$@"; }

# Two namespaces joined by veth va (in A) <-> vb (in B), 198.18.0.1/24 <-> .2 and fd00:18::1/64 <-> ::2.
make_pair() {
  local mtu=$1
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  ip netns add "$NA"
  ip netns add "$NB"
  ip link add va netns "$NA" type veth peer name vb netns "$NB"
  for ns in "$NA" "$NB"; do
    ip -n "$ns" link set lo up
    # No router solicitations or DAD probes: keep the captures to the traffic we make.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
  done
  ip -n "$NA" link set va mtu "$mtu" up
  ip -n "$NB" link set vb mtu "$mtu" up
  ip -n "$NA" addr add 198.18.0.1/24 dev va
  ip -n "$NB" addr add 198.18.0.2/24 dev vb
  ip -n "$NA" addr add fd00:18::1/64 dev va nodad
  ip -n "$NB" addr add fd00:18::2/64 dev vb nodad
}

start_capture() {  # start_capture FILTER...
  : >"$work/tcpdump.err"
  # ip netns exec execs tcpdump, so $! is tcpdump itself (a shell function here would leave a subshell between).
  ip netns exec "$NA" tcpdump -i va -Z root -U --immediate-mode -s 262144 -w "$work/cap.pcap" "$@" 2>"$work/tcpdump.err" &
  tcpdump_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$work/tcpdump.err" && return 0
    sleep 0.05
  done
  echo "make-traces: tcpdump did not start: $(cat "$work/tcpdump.err")" >&2
  exit 1
}

stop_capture() {  # stop_capture NAME
  # --immediate-mode: frames reach the file one by one, not when a TPACKET_V3 block retires (a block still open
  # at SIGINT would be lost). The sleep lets the last replies arrive.
  sleep 0.5
  kill -INT "$tcpdump_pid"
  wait "$tcpdump_pid" || true
  tcpdump_pid=""
  mv "$work/cap.pcap" "$out/$1"
  echo "make-traces: $1: $(tcpdump -r "$out/$1" 2>/dev/null | wc -l) frames, $(stat -c %s "$out/$1") bytes"
}

wanted() { [ "$force" = 1 ] || [ ! -s "$out/$1" ]; }

# A TCP transfer of $1 bytes from A to B's $2 port 5001, with python3's socket module on both ends.
tcp_transfer() {
  local bytes=$1 dst=$2
  in_b "$py" -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.close()
print("received", n, file=sys.stderr)
' "$dst" &
  local server=$!
  in_a "$py" -c '
import socket, sys, time
dst, n = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
payload = bytes(i * 7 % 251 for i in range(n))
for _ in range(100):
    try:
        s = socket.create_connection((dst, 5001)); break
    except OSError:
        time.sleep(0.05)
s.sendall(payload); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
' "$dst" "$bytes"
  wait "$server"
}

# (a) IPv4 fragments: 3000-byte ICMP echoes over a 1500 MTU: first and later fragments both ways.
if wanted ipv4-frag-ping.pcap; then
  make_pair 1500
  start_capture
  in_a ping -q -c 3 -i 0.2 -s 3000 198.18.0.2 >/dev/null
  stop_capture ipv4-frag-ping.pcap
fi

# (b) 802.1Q and 802.1ad (QinQ) tags. This kernel has no 8021q (ip link add ... type vlan: "Unknown device
# type"), nor bridge or tc vlan actions, so python3 builds the tagged frames (with correct IP/ICMP/UDP/TCP
# checksums) and sends them through an AF_PACKET socket on va; B's kernel drops them (no VLAN device), so there
# are no replies. Inside one C-tag (vid 100): an ICMP echo, a 2000-byte UDP datagram in two IPv4 fragments, an
# ICMPv6 echo. Inside QinQ (S-tag 10, C-tag 20): an ICMP echo and a TCP SYN with MSS/SACK/TS/WS options.
if wanted vlan-qinq.pcap; then
  make_pair 1500
  start_capture
  in_a "$py" - "$(ip -n "$NA" -br link show va | awk '{print $3}')" \
    "$(ip -n "$NB" -br link show vb | awk '{print $3}')" <<'PY'
import socket, struct, sys
src_mac, dst_mac = (bytes.fromhex(m.replace(":", "")) for m in sys.argv[1:3])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def tags(*t):  # (tpid, vid) outermost first
    return b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in t)
def eth(tagbytes, ethertype, payload):
    return dst_mac + src_mac + tagbytes + struct.pack("!H", ethertype) + payload
SRC4, DST4 = socket.inet_aton("198.18.3.1"), socket.inet_aton("198.18.3.2")
def ipv4(proto, payload, ident, frag=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, SRC4, DST4)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload
def icmp_echo(ident, seq, data):
    m = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]
def l4_pseudo4(proto, seg):
    return SRC4 + DST4 + struct.pack("!BBH", 0, proto, len(seg))
def udp4(sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return u[:6] + struct.pack("!H", csum(l4_pseudo4(17, u) + u) or 0xffff) + u[8:]
def tcp_syn4(sport, dport, seq):
    opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, 12345, 0) + b"\x01\x03\x03\x07"
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    return t[:16] + struct.pack("!H", csum(l4_pseudo4(6, t) + t)) + t[18:]
SRC6, DST6 = socket.inet_pton(socket.AF_INET6, "fd00:18:3::1"), socket.inet_pton(socket.AF_INET6, "fd00:18:3::2")
def icmp6_echo(ident, seq, data):
    m = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + data
    pseudo = SRC6 + DST6 + struct.pack("!IxxxB", len(m), 58)
    m = m[:2] + struct.pack("!H", csum(pseudo + m)) + m[4:]
    return struct.pack("!IHBB", 6 << 28, len(m), 58, 64) + SRC6 + DST6 + m
c_tag = tags((0x8100, 100))
qinq = tags((0x88A8, 10), (0x8100, 20))
data = bytes(i % 256 for i in range(56))
frames = [eth(c_tag, 0x0800, ipv4(1, icmp_echo(0x4242, 1, data), 1))]
big = udp4(40000, 9, bytes(i * 3 % 256 for i in range(2000)))
frames.append(eth(c_tag, 0x0800, ipv4(17, big[:1400], 2, 0x2000)))           # MF, offset 0
frames.append(eth(c_tag, 0x0800, ipv4(17, big[1400:], 2, 1400 // 8)))        # offset 175, last
frames.append(eth(c_tag, 0x86DD, icmp6_echo(0x4242, 1, data)))
frames.append(eth(qinq, 0x0800, ipv4(1, icmp_echo(0x4343, 1, data), 3)))
frames.append(eth(qinq, 0x0800, ipv4(6, tcp_syn4(40001, 5001, 1000), 4)))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("va", 0))
for f in frames:
    s.send(f)
PY
  stop_capture vlan-qinq.pcap
fi

# (c) IPv6 extension headers: fragment headers (ping -6 -s 3000), and UDP with hop-by-hop and destination
# options set as sticky socket options (python3), once small and once large enough to be fragmented too.
if wanted ipv6-ext-headers.pcap; then
  make_pair 1500
  start_capture ip6
  in_a ping -6 -q -c 2 -i 0.2 -s 3000 fd00:18::2 >/dev/null
  in_a "$py" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
# Hop-by-hop: 8 bytes, a PadN option filling it. Destination options: 16 bytes (hdr ext len 1), PadN.
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 1, 1, 12] + [0] * 12))
for size in (64, 64, 2500):
    s.sendto(bytes(i % 256 for i in range(size)), ("fd00:18::2", 9))
'
  stop_capture ipv6-ext-headers.pcap
fi

# (d) Jumbo frames: MTU 9000 both ends, GSO limited to one segment so every frame is a real <= 9014-byte frame.
if wanted tcp-jumbo-9000.pcap; then
  make_pair 9000
  ip -n "$NA" link set va gso_max_segs 1
  start_capture tcp
  tcp_transfer 65536 198.18.0.2
  stop_capture tcp-jumbo-9000.pcap
fi

# (e) GSO left on: the sending end hands tcpdump TCP super-frames larger than the 1500 MTU (IPv4 and IPv6).
if wanted tcp-gso-superframes.pcap; then
  make_pair 1500
  start_capture tcp
  tcp_transfer 98304 198.18.0.2
  tcp_transfer 49152 fd00:18::2
  stop_capture tcp-gso-superframes.pcap
fi
