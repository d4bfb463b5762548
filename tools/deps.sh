#!/usr/bin/env bash
# Install the Debian 12 packages wsched builds, tests and benchmarks with.
# Needs root (or sudo); safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential clang cmake ninja-build pkg-config python3 \
  liburcu-dev libjemalloc-dev libbenchmark-dev libtbb-dev libhwloc-dev \
  systemtap-sdt-dev python3-matplotlib >/dev/null
echo "deps: installed"
