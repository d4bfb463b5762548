#!/usr/bin/env bash
# Install the Debian 12 packages wsched builds, tests and benchmarks with.
# Needs root (or sudo); safe to run again. --profiling adds perf, npm and
# chromium for tools/flamegraph.sh.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential clang cmake ninja-build pkg-config python3 \
  liburcu-dev libjemalloc-dev libbenchmark-dev libtbb-dev libhwloc-dev \
  systemtap-sdt-dev python3-matplotlib >/dev/null
if [ "${1:-}" = "--profiling" ]; then
  $SUDO apt-get install -y -qq --no-install-recommends linux-perf nodejs npm chromium >/dev/null
fi
echo "deps: installed"
