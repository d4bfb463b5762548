#!/usr/bin/env bash
# Build and run tests/install's consumer against an installed wsched under
# PREFIX: through find_package (the CMake consumer in this folder, shared and
# static) and through pkg-config (shared and static), then check that the
# shared library exports the API only. SCRATCH is an empty directory for the
# builds. Called by run.sh and deb.sh.
#   consume.sh PREFIX SCRATCH
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
prefix=$1 tmp=$2 src=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
# The library directory is where wsched.pc lies (lib, lib64, lib/<triplet>).
pcs=$(find "$prefix" -path '*/pkgconfig/wsched.pc')
if [ "$(printf '%s\n' "$pcs" | wc -l)" -ne 1 ] || [ -z "$pcs" ]; then
  echo "expected one pkgconfig/wsched.pc under $prefix, found: '$pcs'"; exit 1
fi
libdir=$(dirname "$(dirname "$pcs")")
cmake -S "$src" -B "$tmp/cm" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
# The package came from PREFIX, not from anywhere else on the system.
found=$(cmake -LA -N "$tmp/cm" 2>/dev/null | sed -n 's/^wsched_DIR:PATH=//p')
case "$found" in
  "$prefix"/*) ;;
  *) echo "find_package(wsched) found '$found', not the one under $prefix"; exit 1 ;;
esac
cmake --build "$tmp/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cm/consumer_shared"
"$tmp/cm/consumer_static"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
"$cc" "$src/consumer.c" -o "$tmp/pc_shared" $(pkg-config --cflags --libs wsched)
LD_LIBRARY_PATH="$libdir" "$tmp/pc_shared"
# shellcheck disable=SC2046
"$cc" "$src/consumer.c" -o "$tmp/pc_static" -DWSCHED_STATIC_DEFINE $(pkg-config --cflags wsched) \
  "$libdir/libwsched.a" $(pkg-config --libs-only-l --static wsched | sed 's/-lwsched//')
"$tmp/pc_static"
# The C++ header from the installed tree.
# shellcheck disable=SC2046
"${CXX:-c++}" -std=c++17 "$src/consumer.cpp" -o "$tmp/pc_cxx" $(pkg-config --cflags --libs wsched)
LD_LIBRARY_PATH="$libdir" "$tmp/pc_cxx"
# Only the API is exported from the shared library.
bad=$(nm -D --defined-only "$libdir/libwsched.so" | awk '{print $3}' | grep -v '^wsched_' || true)
if [ -n "$bad" ]; then echo "non-API symbols exported: $bad"; exit 1; fi
echo "consumer: find_package (shared, static), pkg-config (shared, static) and wsched.hpp ok against $prefix"
