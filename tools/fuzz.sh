#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan, build-fuzz/) and runs each for a bounded time from
# its committed seed corpus (copied to out/fuzz/<target>/corpus, so the tree stays clean). docs/fuzzing.md.
#   tools/fuzz.sh                      every target, PVNET_FUZZ_SECONDS (default 30) seconds each
#   tools/fuzz.sh --seconds 600 tx     one target for ten minutes
#   tools/fuzz.sh --seeds              regenerate tests/fuzz/corpus from the traces, then stop
# Fails when a target finds a crash, leak, timeout or invariant violation that is not a known bug: the input is
# left in out/fuzz/<target>/ with the log. Known bugs (tests/fuzz/known_crashes.txt, inputs in
# tests/fuzz/crashes/) are reported, their new inputs kept in out/fuzz/<target>/known/, and fuzzing goes on.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

seconds=${PVNET_FUZZ_SECONDS:-30}
seeds_only=0
targets=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seeds) seeds_only=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all_targets=(tx ctrl store headers pcap hvsock)
((${#targets[@]})) || targets=("${all_targets[@]}")

build=build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DPVNET_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPVNET_BENCHMARKS=OFF >/dev/null
fi
mkdir -p out/fuzz
if ! cmake --build "$build" -j "$(nproc)" --target fuzz_make_seeds $(printf 'fuzz_%s ' "${targets[@]}") \
     >out/fuzz/build.log 2>&1; then
  tail -40 out/fuzz/build.log >&2
  echo "fuzz: build failed (out/fuzz/build.log)" >&2
  exit 1
fi
bin=$build/tests/fuzz

if ((seeds_only)); then
  shopt -s nullglob
  rm -rf tests/fuzz/corpus
  "$bin/fuzz_make_seeds" tests/fuzz/corpus traces/*.pcap
  echo "fuzz: seeds written: $(find tests/fuzz/corpus -type f | wc -l) files, $(du -sh tests/fuzz/corpus | cut -f1)"
  exit 0
fi

# Payload faults go through userfaultfd (tests/fuzz/backend_world.hpp); if the kernel refuses it the sinks that
# read payload are left out.
# Our own options, not the caller's (tools/test.sh sets handle_segv=0 for the SIGSEGV lazy window, which the fuzz
# targets do not use). PVNET_FUZZ_ASAN_OPTIONS adds to them.
export ASAN_OPTIONS=detect_leaks=1${PVNET_FUZZ_ASAN_OPTIONS:+:$PVNET_FUZZ_ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
known=tests/fuzz/known_crashes.txt

# Prints the description of the known bug whose pattern the log matches, if any.
known_bug() {
  local target=$1 log=$2 t pattern desc
  [ -f "$known" ] || return 1
  while IFS=$'\t' read -r t pattern desc; do
    [[ -z $t || $t == \#* ]] && continue
    [ "$t" = "$target" ] || continue
    if grep -Eq -- "$pattern" "$log"; then echo "$desc"; return 0; fi
  done <"$known"
  return 1
}

status=0
for t in "${targets[@]}"; do
  out=out/fuzz/$t
  rm -rf "$out/corpus"
  mkdir -p "$out/corpus" "$out/known"
  cp tests/fuzz/corpus/"$t"/* "$out/corpus/" 2>/dev/null || true

  # The committed crash inputs: still failing the way they are known to? (Not fatal either way.)
  for c in tests/fuzz/crashes/"$t"-*; do
    [ -f "$c" ] || continue
    if "$bin/fuzz_$t" "$c" >"$out/replay.log" 2>&1; then
      echo "fuzz: $t: $c no longer fails: the bug may be fixed; drop it from $known"
    elif desc=$(known_bug "$t" "$out/replay.log"); then
      echo "fuzz: $t: known bug still present: $desc"
    else
      echo "fuzz: $t: $c fails in a new way, see $out/replay.log"; status=1
    fi
  done

  deadline=$((SECONDS + seconds))
  runs=0
  while ((SECONDS < deadline)); do
    left=$((deadline - SECONDS))
    runs=$((runs + 1))
    log=$out/run$runs.log
    rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*
    if "$bin/fuzz_$t" -max_total_time="$left" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
         -artifact_prefix="$out/" "$out/corpus" >"$log" 2>&1; then
      echo "fuzz: $t: clean, $(grep -m1 -o 'number_of_executed_units: [0-9]*' "$log" | cut -d' ' -f2) runs" \
           "in ${left}s, corpus $(ls "$out/corpus" | wc -l) inputs"
      break
    fi
    artifact=$(ls -t "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null | head -1 || true)
    if desc=$(known_bug "$t" "$log"); then
      echo "fuzz: $t: found the known bug again ($desc); input kept in $out/known/, going on"
      [ -n "$artifact" ] && mv "$artifact" "$out/known/"
      continue
    fi
    echo "fuzz: $t: NEW FAILURE: input ${artifact:-(none saved)}, log $log" >&2
    grep -E 'INVARIANT VIOLATED|ERROR: |SUMMARY: |runtime error|Failure' "$log" | head -5 >&2 || true
    echo "  reproduce: $bin/fuzz_$t ${artifact:-}" >&2
    status=1
    break
  done
done
exit $status
