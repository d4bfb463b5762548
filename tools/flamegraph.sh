#!/usr/bin/env bash
# Profile any command with perf (cpu-clock, DWARF call graphs: gcc drops
# frame pointers in small leaf functions) and render an offline flame graph:
#   tools/flamegraph.sh [-o DIR] [-F HZ] -- COMMAND [ARGS...]
# Writes DIR/perf.data, DIR/flame.html (self-contained: d3-flame-graph 4.x
# template, no network) and DIR/flame.png (headless Chromium screenshot).
# Default DIR: bench/results/flame. Needs linux-perf, npm and chromium
# (tools/deps.sh --profiling installs them).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../bench/results/flame"
freq=999
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    -F) freq=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The flame-graph template (d3-flame-graph 4.x is the last with templates/).
tpl_dir="$here/.flamegraph"
tpl="$tpl_dir/node_modules/d3-flame-graph/dist/templates/d3-flamegraph-base.html"
if [ ! -f "$tpl" ]; then
  mkdir -p "$tpl_dir"
  npm install --silent --no-audit --no-fund --prefix "$tpl_dir" d3-flame-graph@4 >/dev/null
fi

perf record -e cpu-clock -F "$freq" --call-graph dwarf,16384 -o "$out/perf.data" -- "$@"
(cd "$out" && perf script report flamegraph --template "$tpl" -o flame.html >/dev/null)

if command -v chromium >/dev/null; then
  prof=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$prof" --window-size=1600,1000 --virtual-time-budget=5000 \
    --host-resolver-rules="MAP * ~NOTFOUND" --screenshot="$out/flame.png" \
    "file://$out/flame.html" >/dev/null 2>&1 || echo "flamegraph: PNG screenshot failed" >&2
  rm -rf "$prof"
fi
echo "flamegraph: $out/flame.html ${out}/flame.png"
# Top self-cost functions, for a quick look in the terminal.
top=$(perf report -i "$out/perf.data" --no-children --stdio --sort symbol 2>/dev/null) || true
printf '%s\n' "$top" | awk '/^ +[0-9]/ && n++ < 12' 
