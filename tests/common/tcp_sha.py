"""One TCP stream with its sha256 at both ends: the traffic of the TAP tests (tests/guest, tests/tap_frontend).
The callers print what they sent and got in the line format their shell scripts parse."""
import hashlib, socket, time


def receive_stream(addr, port, accept_timeout, io_timeout):
    """Listens on addr:port for one connection; returns (bytes, sha256 hex) of everything it sends."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(accept_timeout)
    c, _ = s.accept(); c.settimeout(io_timeout)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    return n, h.hexdigest()


def send_stream(addr, port, data, connect_within, retry_every, io_timeout):
    """Connects to addr:port (retrying for connect_within seconds: the listener may still be starting), sends
    data, half-closes and waits for the peer to close."""
    deadline = time.time() + connect_within
    while True:
        try:
            c = socket.create_connection((addr, port), timeout=5); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(retry_every)
    c.settimeout(io_timeout); c.sendall(data); c.shutdown(socket.SHUT_WR)
    while c.recv(4096): pass
