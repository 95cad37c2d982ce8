#!/usr/bin/env python3
"""Host side of the TAP test, run inside the namespace: receive one TCP stream on PORT and print its size and
sha256 (recv PORT), or send N MiB of random bytes to HOST:PORT, retrying the connect (send HOST PORT MB)."""
import hashlib, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from tcp_sha import receive_stream, send_stream

if sys.argv[1] == "recv":
    n, sha = receive_stream("198.18.0.254", int(sys.argv[2]), accept_timeout=150, io_timeout=60)
    print(f"host recv bytes={n} sha256={sha}", flush=True)
else:
    data = os.urandom(int(sys.argv[4]) << 20)
    print(f"host send bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}", flush=True)
    send_stream(sys.argv[2], int(sys.argv[3]), data, connect_within=120, retry_every=0.5, io_timeout=60)
    print("host send done", flush=True)
