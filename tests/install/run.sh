#!/usr/bin/env bash
# Install the library from build dir $1 into a temporary prefix, then build
# and run a consumer through find_package (shared and static) and pkg-config.
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
build=$1 src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/cm" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/cm/consumer_shared"
"$tmp/cm/consumer_static"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc "$src/consumer.c" -o "$tmp/pc_shared" $(pkg-config --cflags --libs wsched)
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/pc_shared"
cc "$src/consumer.c" -o "$tmp/pc_static" -DWSCHED_STATIC_DEFINE $(pkg-config --cflags wsched) \
  "$tmp/prefix/lib/libwsched.a" $(pkg-config --libs-only-l --static wsched | sed 's/-lwsched//')
"$tmp/pc_static"
# Only the API is exported from the shared library.
bad=$(nm -D --defined-only "$tmp/prefix/lib/libwsched.so" | awk '{print $3}' | grep -v '^wsched_' || true)
if [ -n "$bad" ]; then echo "non-API symbols exported: $bad"; exit 1; fi
echo "install: find_package (shared, static) and pkg-config (shared, static) ok"
