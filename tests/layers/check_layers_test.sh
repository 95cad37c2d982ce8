#!/usr/bin/env bash
# The layer check fails on each kind of crossing and passes on the real tree.
set -euo pipefail
check=$1/tools/ci/check-layers.py
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect() {  # expect <0|1> <file> <include> [grep pattern]
  rm -rf "$tmp"/*
  mkdir -p "$tmp/$(dirname "$2")"
  printf '#include "%s"\n' "$3" > "$tmp/$2"
  set +e
  out=$(python3 "$check" "$tmp" 2>&1)
  rc=$?
  set -e
  if [ "$rc" -ne "$1" ]; then echo "FAIL: $2 including $3: exit $rc, expected $1: $out"; exit 1; fi
  if [ -n "${4:-}" ] && ! grep -q "$4" <<<"$out"; then echo "FAIL: $2 including $3: no '$4' in: $out"; exit 1; fi
  echo "ok: $2 -> $3 (exit $rc)"
}
expect 1 frontend/a.cpp grant-sim/sim/sim_store.hpp 'frontend may not include'
expect 1 frontend/a.hpp grant-sim/xen/xen_store.hpp 'frontend may not include'
expect 1 backend/a.cpp frontend/netfront.hpp 'backend may not include'
expect 1 frontend/a.cpp backend/backend.hpp 'frontend may not include'
expect 1 backend/a.cpp grant-sim/sim/sim_hypervisor.hpp 'backend may not include'
expect 1 grant-sim/xen/a.cpp grant-sim/sim/sim_store.hpp 'grant-sim may not include'
expect 1 grant-sim/platform/a.hpp grant-sim/sim/sim_domain.hpp 'grant-sim may not include'
expect 1 shared-ring/a.hpp grant-sim/platform/store.hpp 'shared-ring may not include'
expect 1 backend/a.cpp tap_helpers.hpp 'does not name its layer'
expect 0 backend/a.cpp grant-sim/platform/store.hpp
expect 0 frontend/a.cpp shared-ring/ring.hpp
expect 0 grant-sim/sim/a.cpp grant-sim/platform/store.hpp
expect 0 tools/a.cpp grant-sim/sim/sim_hypervisor.hpp
python3 "$check" "$src"
