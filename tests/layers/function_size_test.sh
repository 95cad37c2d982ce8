#!/usr/bin/env bash
# The function-size check: 80 lines pass, 81 fail, an allow-listed long function passes, a stale entry fails,
# an entry without a reason fails, and the real tree passes.
set -euo pipefail
src=$1
check=$src/tools/ci/check-function-size.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
body() {  # body <name> <lines>: a function of exactly <lines> lines, braces included
  echo "int $1(int x) {"
  for ((i = 0; i < $2 - 3; i++)); do echo "  x += $i;"; done
  echo "  return x;"
  echo "}"
}
run() {  # run <expected exit> <label> <args...>
  local want=$1 label=$2; shift 2
  set +e; out=$(python3 "$check" "$@" 2>&1); rc=$?; set -e
  if [ "$rc" -ne "$want" ]; then echo "FAIL: $label: exit $rc, expected $want: $out"; exit 1; fi
  echo "ok: $label (exit $rc)"
}
mkdir -p "$tmp/frontend"
body fits 80 > "$tmp/frontend/fits.cpp"
body too_long 81 > "$tmp/frontend/long.cpp"
: > "$tmp/none.txt"
run 0 "80 lines" --allow "$tmp/none.txt" "$tmp/frontend/fits.cpp"
run 1 "81 lines" --allow "$tmp/none.txt" "$tmp/frontend/long.cpp"
grep -q 'too_long is 81 lines' <<<"$out" || { echo "FAIL: no length in: $out"; exit 1; }
echo "$tmp/frontend/long.cpp too_long a message-type switch" > "$tmp/allow.txt"
run 0 "81 lines, allow-listed" --allow "$tmp/allow.txt" "$tmp/frontend/long.cpp"
echo "$tmp/frontend/long.cpp too_long" > "$tmp/noreason.txt"
run 1 "an entry without a reason" --allow "$tmp/noreason.txt" "$tmp/frontend/long.cpp"
# A stale entry (its function is short now) fails the full run: copy the tree's list and add one.
cp "$src/tools/ci/function-size-allow.txt" "$tmp/stale.txt"
echo "frontend/netfront.cpp Netfront::poll stale on purpose" >> "$tmp/stale.txt"
run 1 "a stale entry" --allow "$tmp/stale.txt"
grep -q 'remove the entry' <<<"$out" || { echo "FAIL: stale entry not named: $out"; exit 1; }
run 0 "the tree" 
