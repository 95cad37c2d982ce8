#!/usr/bin/env python3
"""The layers as a build fact: fails when a file includes a header of a layer it may not see.

Every project include names its layer ("grant-sim/platform/store.hpp"), so the rule is a table of which folder
may include which. docs/architecture.md draws the same table.

    shared-ring/            the wire: ring, netif types, header parsing, offload codec; sees nothing else
    grant-sim/platform/     the interfaces a driver sees; sees shared-ring/
    shared-ring/negotiation/ the xenstore negotiation over the Store interface; sees grant-sim/platform/
    grant-sim/sim/          the simulator; sees platform
    grant-sim/xen/          real Xen; sees platform (never the simulator)
    frontend/, backend/     the drivers; see platform and the protocol, never sim/ or xen/, never each other
    tools/, tests/          anything
"""
import pathlib
import re
import sys

WIRE = ["shared-ring/"]
PLATFORM = WIRE + ["grant-sim/platform/"]
PROTOCOL = PLATFORM + ["shared-ring/negotiation/"]
# Longest prefix first: a file's rule is the first entry its path starts with.
RULES = [
    ("shared-ring/negotiation/", PROTOCOL),
    ("shared-ring/bench/", PLATFORM),
    ("shared-ring/", WIRE),
    ("grant-sim/platform/", PLATFORM),
    ("grant-sim/sim/", PLATFORM + ["grant-sim/sim/"]),
    ("grant-sim/xen/", PLATFORM + ["grant-sim/xen/"]),
    ("grant-sim/bench/", PLATFORM + ["grant-sim/sim/", "grant-sim/xen/"]),
    ("frontend/", PROTOCOL + ["frontend/"]),
    ("backend/", PROTOCOL + ["backend/"]),
]
LAYERS = ("shared-ring/", "grant-sim/", "frontend/", "backend/", "tools/", "tests/")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def allowed(path: str, header: str) -> bool:
    for prefix, may in RULES:
        if path.startswith(prefix):
            # shared-ring/ must not see shared-ring/negotiation/ (the wire stays free of the store).
            if prefix == "shared-ring/" and header.startswith("shared-ring/negotiation/"):
                return False
            return any(header.startswith(m) for m in may)
    return True


def main() -> int:
    top = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    bad = []
    product = [top / d for d in ("shared-ring", "grant-sim", "frontend", "backend")]  # tools/, tests/: free
    for f in sorted(p for d in product for p in d.rglob("*")):
        if f.suffix not in (".hpp", ".cpp", ".h", ".c") or not f.is_file():
            continue
        rel = f.relative_to(top).as_posix()
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            header = m.group(1)
            if not header.startswith(LAYERS):
                bad.append(f"{rel}:{n}: include \"{header}\" does not name its layer")
            elif not allowed(rel, header):
                bad.append(f"{rel}:{n}: {rel.split('/')[0]} may not include \"{header}\"")
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print(f"check-layers: {len(bad)} include(s) cross a layer (rules: tools/ci/check-layers.py)", file=sys.stderr)
        return 1
    print("check-layers: every include is allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
