#!/usr/bin/env bash
# Install the Debian 12 packages wsched builds, tests and benchmarks with.
# Needs root (or sudo); safe to run again. --profiling adds perf, Node.js/npm
# (only when no npm is on PATH already: an npm from another source, e.g. a
# NodeSource or nvm Node.js, is enough, and Debian's npm would conflict with
# it) and chromium for tools/flamegraph.sh.
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# spin and relacy-dev: the model checks (tests/model); clang and its
# runtime libclang-rt-14-dev: libFuzzer (tests/fuzz); doxygen: the doc
# target and the docs test; dpkg-dev (dpkg-shlibdeps) and file: cpack -G DEB
# and the install_deb test.
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential clang cmake ninja-build pkg-config python3 \
  liburcu-dev libjemalloc-dev libbenchmark-dev libtbb-dev libhwloc-dev \
  systemtap-sdt-dev python3-matplotlib spin relacy-dev libclang-rt-14-dev \
  doxygen dpkg-dev file >/dev/null
if [ "${1:-}" = "--profiling" ]; then
  pkgs=(linux-perf chromium)
  if command -v npm >/dev/null; then
    echo "deps: npm $(npm --version) already on PATH ($(command -v npm)): not installing Debian's"
  else
    pkgs+=(nodejs npm)
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
echo "deps: installed"
