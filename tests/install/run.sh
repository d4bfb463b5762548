#!/usr/bin/env bash
# Install the library from build dir $1 into a temporary prefix, then build
# and run a consumer through find_package (shared and static) and pkg-config
# (consume.sh).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
build=$1 src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir "$tmp/scratch"
"$src/consume.sh" "$tmp/prefix" "$tmp/scratch"
echo "install: find_package (shared, static) and pkg-config (shared, static) ok"
