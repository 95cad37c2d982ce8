#!/usr/bin/env bash
# The main job on a bundled real trace: installs what is missing, builds, then replays traces/tcp-1500-small.pcap
# (a real iperf3 capture) from guest A through dom0 to guest B with header slots, verifies that B received every
# frame byte for byte, and prints what dom0 paid; then runs the same trace under every payload policy and
# compares them (README, "The comparison"). Output in out/. Extra arguments go to the first `pvnet replay`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tools/setup.sh
mkdir -p out
build/tools/pvnet replay --in traces/tcp-1500-small.pcap --policy slots --sink vif \
  --out out/received.pcap --json out/stats.json "$@"
echo "statistics: out/stats.json; received frames: out/received.pcap"
# The comparison: the same trace under every payload policy (slots, copy, map, hdrcopy, auto), each output
# checked frame by frame, one table row per policy, report.json/csv and charts in out/report.
build/tools/pvnet replay --compare --in traces/tcp-1500-small.pcap --sink vif --report out/report
echo "comparison: out/report/report.json, out/report/report.csv, out/report/*.png"
