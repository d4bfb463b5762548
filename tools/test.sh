#!/usr/bin/env bash
# The test command (README): builds and runs the whole suite three times,
# release, ASan+UBSan and TSan, each in its own build directory (the release
# run includes the model checks and a 60 s fuzz run), then the short stress
# runs (tools/stress.sh --short --debug: release and WSCHED_DEBUG builds,
# delay points on), then the benchmark suite in short mode (checksums
# checked, so it never rots). Exits non-zero if any build, test, stress run
# or benchmark cell fails.
#   tools/test.sh                 all five
#   tools/test.sh release thread  some of: release address thread stress bench
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(release address thread stress bench)
jobs=$(nproc)
for v in "${variants[@]}"; do
  case "$v" in
    bench)
      echo "=== bench: bench/report.sh --short"
      bench/report.sh --short
      continue ;;
    stress)
      echo "=== stress: tools/stress.sh --short --debug"
      tools/stress.sh --short --debug
      continue ;;
    release) san="" ;;
    address|thread) san="$v" ;;
    *) echo "unknown variant: $v" >&2; exit 2 ;;
  esac
  dir="build-test-$v"
  echo "=== $v: configure and build ($dir)"
  # WSCHED_WERROR: the library's own sources build warning-free
  # (-Wall -Wextra -Wconversion -Wpedantic) or CI fails.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWSCHED_SANITIZE="$san" -DWSCHED_BUILD_TESTS=ON -DWSCHED_WERROR=ON >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $v: ctest"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j 1)
done
echo "=== all variants passed: ${variants[*]}"
