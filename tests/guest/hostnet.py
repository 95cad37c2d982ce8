#!/usr/bin/env python3
"""Host side of the TAP test, run inside the namespace: receive one TCP stream on PORT and print its size and
sha256 (recv PORT), or send N MiB of random bytes to HOST:PORT, retrying the connect (send HOST PORT MB)."""
import hashlib, os, socket, sys, time

def recv(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.254", port)); s.listen(1); s.settimeout(150)
    c, _ = s.accept(); c.settimeout(60)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    print(f"host recv bytes={n} sha256={h.hexdigest()}", flush=True)

def send(host, port, mb):
    data = os.urandom(mb << 20)
    print(f"host send bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}", flush=True)
    deadline = time.time() + 120
    while True:
        try:
            c = socket.create_connection((host, port), timeout=5); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.5)
    c.settimeout(60); c.sendall(data); c.shutdown(socket.SHUT_WR)
    while c.recv(4096): pass
    print("host send done", flush=True)

if sys.argv[1] == "recv": recv(int(sys.argv[2]))
else: send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
