#!/usr/bin/env python3
"""One TCP stream with its sha256 at both ends. recv ADDR PORT: print bytes and sha256 of what arrives.
send ADDR PORT MB: send MB MiB of random bytes (retrying the connect), print their sha256."""
import hashlib, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from tcp_sha import receive_stream, send_stream

if sys.argv[1] == "recv":
    n, sha = receive_stream(sys.argv[2], int(sys.argv[3]), accept_timeout=30, io_timeout=30)
    print(f"recv bytes={n} sha256={sha}", flush=True)
else:
    data = os.urandom(int(sys.argv[4]) << 20)
    print(f"send bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}", flush=True)
    send_stream(sys.argv[2], int(sys.argv[3]), data, connect_within=20, retry_every=0.2, io_timeout=30)
