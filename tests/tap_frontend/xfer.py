#!/usr/bin/env python3
"""One TCP stream with its sha256 at both ends. recv ADDR PORT: print bytes and sha256 of what arrives.
send ADDR PORT MB: send MB MiB of random bytes (retrying the connect), print their sha256."""
import hashlib, os, socket, sys, time

def recv(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(30)
    c, _ = s.accept(); c.settimeout(30)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    print(f"recv bytes={n} sha256={h.hexdigest()}", flush=True)

def send(addr, port, mb):
    data = os.urandom(mb << 20)
    print(f"send bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}", flush=True)
    deadline = time.time() + 20
    while True:
        try:
            c = socket.create_connection((addr, port), timeout=5); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.2)
    c.settimeout(30); c.sendall(data); c.shutdown(socket.SHUT_WR)
    while c.recv(4096): pass

if sys.argv[1] == "recv": recv(sys.argv[2], int(sys.argv[3]))
else: send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
