#!/usr/bin/env bash
# Run every test binary of a build under valgrind's helgrind or drd once
# (they see what TSan cannot: liburcu's inline-asm atomics are just
# instructions to valgrind) and summarise the error counts per test.
#   tools/valgrind_suite.sh [--tool=drd|helgrind] [BUILD_DIR]   (default drd, build-rel)
# Writes BUILD_DIR/valgrind-TOOL/<test>.log and prints one line per test.
# Iteration counts are scaled down (WSCHED_TEST_SLOW=8) as for TSan.
# Exit status: 0 when every test ran to completion under the tool (error
# reports are recorded, not failed: see tests/results/valgrind-*.txt for
# what they were and why they are not defects).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
tool=drd
build=build-rel
for a in "$@"; do
    case $a in
    --tool=*) tool=${a#--tool=} ;;
    *) build=$a ;;
    esac
done
out=$build/valgrind-$tool
mkdir -p "$out"
export WSCHED_TEST_SLOW=8
failed=0
for exe in "$build"/tests/test_* "$build"/tests/example_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    case $name in test_debug_stack_arg) continue ;; esac # forks and aborts on purpose
    log=$out/$name.log
    rc=0
    timeout 900 valgrind --tool="$tool" --fair-sched=yes --error-exitcode=0 "$exe" >"$log" 2>&1 || rc=$?
    errs=$(awk '/ERROR SUMMARY/ {n = $4} END {print n + 0}' "$log")
    printf '%-28s rc=%-3s errors=%s\n' "$name" "$rc" "$errs"
    [ "$rc" -eq 0 ] || failed=1
done
exit $failed
