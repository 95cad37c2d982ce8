#!/usr/bin/env bash
# tools/ stays a thin command: every tools/cmd_*.cpp (options, then one library call) is at most 150 lines.
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
limit=${PVNET_CMD_LINES:-150}
bad=0
for f in "$top"/tools/cmd_*.cpp; do
  n=$(wc -l < "$f")
  if [ "$n" -gt "$limit" ]; then
    echo "${f#"$top"/}: $n lines, more than $limit: move the work into a library under tools/" >&2
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "check-command-size: every tools/cmd_*.cpp is at most $limit lines"
exit $bad
