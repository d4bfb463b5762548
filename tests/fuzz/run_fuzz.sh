#!/bin/sh
# Build a libFuzzer harness, tests/fuzz/$HARNESS.c, with the library sources
# (ASan + UBSan + libFuzzer) and run it for a bounded time on a copy of the
# seed corpus. Exits non-zero on any crash, leak, timeout or build failure.
#
#   HARNESS        which harness (default fuzz_api): fuzz_api (seeds in
#                  corpus/, reproducers in crashes/) or fuzz_downstream
#                  (seeds in corpus-fuzz_downstream/, reproducers in
#                  crashes-fuzz_downstream/ when that exists); any other
#                  tests/fuzz/NAME.c likewise (corpus-NAME/, crashes-NAME/)
#   FUZZ_SECONDS   how long to fuzz (default 60)
#   FUZZ_BUILD_DIR where to build and keep the working corpus (default
#                  build-fuzz/ at the repository root)
#   CC             the clang to use (default clang-14, else clang)
#   FUZZ_ARGS      extra libFuzzer flags
#   FUZZ_CFLAGS    extra compiler flags for the library and the harness, e.g.
#                  -DFUZZ_RELAX_IDLE_DONE or -DFUZZ_RELAX_CANCEL_AFTER_COMPLETE
#                  (each tolerates one finding of crashes/README.md) or
#                  -DWSCHED_DEBUG (the library's assertions and delay points;
#                  set WSCHED_DEBUG_DELAY=N to delay one point in N)
#   FUZZ_BUILD_ONLY=1  build, do not run
#
# A reproducer: build-fuzz/fuzz_api path/to/crash-file (build-fuzz/$HARNESS)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
harness=${HARNESS:-fuzz_api}
case "$harness" in
    "" | *[!A-Za-z0-9_]*) echo "run_fuzz.sh: bad HARNESS '$harness'" >&2; exit 2 ;;
esac
[ -f "$here/$harness.c" ] || { echo "run_fuzz.sh: no harness $here/$harness.c" >&2; exit 2; }
# fuzz_api keeps the names it always had (corpus/, crashes/, $out/corpus,
# $out/artifacts); another harness's have its name as a suffix.
if [ "$harness" = fuzz_api ]; then sfx=""; else sfx="-$harness"; fi
seeds="$here/corpus$sfx"
crashes="$here/crashes$sfx"
work="$out/corpus$sfx"
artifacts="$out/artifacts$sfx"
if [ -z "${CC:-}" ]; then
    if command -v clang-14 >/dev/null 2>&1; then CC=clang-14; else CC=clang; fi
fi
command -v pkg-config >/dev/null 2>&1 || { echo "run_fuzz.sh: pkg-config not found" >&2; exit 2; }
urcu_cflags=$(pkg-config --cflags liburcu-memb liburcu-cds)
urcu_libs=$(pkg-config --libs liburcu-memb liburcu-cds)

mkdir -p "$out/obj" "$artifacts"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
common="-g -O1 -fno-omit-frame-pointer -pthread ${FUZZ_CFLAGS:-}"

# Every library source there is now (others may add files): compiled like
# the sanitizer CMake build, without _LGPL_SOURCE.
rm -f "$out"/obj/*.o "$out/$harness"
objs=""
for src in "$root"/src/*.c; do
    o="$out/obj/$(basename "$src" .c).o"
    # shellcheck disable=SC2086
    $CC $common $san -std=gnu11 -D_GNU_SOURCE -DWSCHED_BUILDING \
        -I"$root/include" -I"$root/src" $urcu_cflags -c "$src" -o "$o"
    objs="$objs $o"
done
# shellcheck disable=SC2086
$CC $common $san -std=gnu11 -Wall -Wextra -Wno-unused-parameter -I"$root/include" \
    -c "$here/$harness.c" -o "$out/obj/$harness.o"
# shellcheck disable=SC2086
$CC $common $san $objs "$out/obj/$harness.o" $urcu_libs -o "$out/$harness"
echo "run_fuzz.sh: built $out/$harness"
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# Work on a copy: what the fuzzer adds does not touch the committed seeds.
mkdir -p "$work"
cp "$seeds"/* "$work/" 2>/dev/null || true

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:handle_abort=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
rc=0
# Replay every reproducer of a finding (crashes/, all fixed) first: each
# is a regression test. 100 runs each: some were races. (A harness other
# than fuzz_api replays its crashes-NAME/ only when there is one.)
if [ "$harness" = fuzz_api ] || [ -d "$crashes" ]; then
    for f in "$crashes"/*; do
        case "$f" in *.md) continue ;; esac
        [ -f "$f" ] || continue
        "$out/$harness" -runs=100 "$f" >"$out/replay$sfx.log" 2>&1 || {
            echo "run_fuzz.sh: reproducer $(basename "$f") fails again:" >&2
            tail -n 20 "$out/replay$sfx.log" >&2
            exit 1
        }
    done
    echo "run_fuzz.sh: every reproducer in $(basename "$crashes")/ passes (100 runs each)"
fi
# shellcheck disable=SC2086
"$out/$harness" -max_total_time="$seconds" -timeout=10 -max_len=1024 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
    "$work" 2>"$out/fuzz$sfx.log" || rc=$?
if [ "$rc" -ne 0 ]; then
    # CI shows the head and the tail of a failing test's output: what
    # failed, and the reproducer's bytes, go last, where they are seen.
    grep -v -e '^#[0-9]' "$out/fuzz$sfx.log" | tail -n 60 >&2
    echo "run_fuzz.sh: $harness failed (exit $rc); reproducers in $artifacts/:" >&2
    for f in "$artifacts"/*; do
        [ -f "$f" ] || continue
        echo "  $(basename "$f") ($(wc -c <"$f") bytes):" >&2
        od -An -tx1 -v "$f" >&2
    done
    exit "$rc"
fi
tail -n 20 "$out/fuzz$sfx.log"
echo "run_fuzz.sh: no crash, leak or timeout in ${seconds}s"
