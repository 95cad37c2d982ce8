#!/usr/bin/env bash
# Runs every test: builds (normal and ASan+UBSan), then ctest in both trees.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tools/setup.sh --asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allow_user_segv_handler=1:handle_segv=0:handle_sigbus=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
# The layers (docs/architecture.md): a file that includes a header of a layer it may not see fails the run.
echo "== layers (tools/ci/check-layers.py) =="
python3 tools/ci/check-layers.py "$top" || status=1
# No function in frontend/, backend/ or shared-ring/ longer than 80 lines outside tools/ci/function-size-allow.txt.
echo "== function size (tools/ci/check-function-size.py) =="
python3 tools/ci/check-function-size.py || status=1
echo "== command size (tools/ci/check-command-size.sh) =="
tools/ci/check-command-size.sh || status=1
echo "== tests (RelWithDebInfo) =="
ctest --test-dir build --output-on-failure -j 2 --timeout 600 || status=1
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
ctest --test-dir build-asan --output-on-failure -j 2 --timeout 900 -LE no-sanitizer || status=1
# Each libFuzzer target for PVNET_FUZZ_SECONDS (default 30) from its seed corpus; a new crash fails the run.
echo "== fuzzing (tools/fuzz.sh, ${PVNET_FUZZ_SECONDS:-30} s per target) =="
tools/fuzz.sh || status=1
exit $status
