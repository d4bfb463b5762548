#!/usr/bin/env bash
# The test command (README): builds and runs the whole suite three times,
# release, ASan+UBSan and TSan, each in its own build directory. Exits
# non-zero if any build or test fails.
#   tools/test.sh            all three
#   tools/test.sh release    one of: release address thread
set -euo pipefail
cd "$(dirname "$0")/.."
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(release address thread)
jobs=$(nproc)
for v in "${variants[@]}"; do
  case "$v" in
    release) san="" ;;
    address|thread) san="$v" ;;
    *) echo "unknown variant: $v" >&2; exit 2 ;;
  esac
  dir="build-test-$v"
  echo "=== $v: configure and build ($dir)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWSCHED_SANITIZE="$san" -DWSCHED_BUILD_TESTS=ON >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $v: ctest"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j 1)
done
echo "=== all variants passed: ${variants[*]}"
