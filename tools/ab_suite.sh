#!/usr/bin/env bash
# A/B two wsched_bench builds on suite cells, interleaved (A B A B ...):
# one process per cell and side per round (steady state, as the suite runs
# it), then the medians (tools/ab_suite.py).
#
#   tools/ab_suite.sh OLD_WSCHED_BENCH NEW_WSCHED_BENCH FILTER [ROUNDS] [-- EXTRA...]
#     FILTER   a --benchmark_filter regex, e.g. '^fanout(-1c|-tasks)?/100ns/'
#     ROUNDS   default 5
#     EXTRA    more wsched_bench options for both sides (e.g. --first-burst)
# Designs: wsched at 2 workers (WSCHED_AB_DESIGNS, WSCHED_AB_WORKERS to change).
# One calibration for both sides (WSCHED_BENCH_CALIB, measured once if unset).
# Prints "side cell real_time unit" per run, the load average before and
# after, then the summary.
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
[ $# -ge 3 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old=$1 new=$2 flt=$3
rounds=${4:-5}
shift $(($# >= 4 ? 4 : 3))
[ "${1:-}" = "--" ] && shift
extra=("$@")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export WSCHED_BENCH_CALIB=${WSCHED_BENCH_CALIB:-$("$old" --calibrate | tail -n 1)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# loadavg before: $(cat /proc/loadavg)" >>"$out"
for ((r = 1; r <= rounds; r++)); do
    for side in old new; do
        bin=$old
        [ "$side" = new ] && bin=$new
        "$bin" --designs="${WSCHED_AB_DESIGNS:-wsched}" --workers="${WSCHED_AB_WORKERS:-2}" \
            --benchmark_filter="$flt" --benchmark_min_time=0.2 --benchmark_format=json \
            "${extra[@]}" 2>/dev/null >"$out.json"
        python3 - "$side" "$out.json" >>"$out" <<'PY'
import json, sys
side, path = sys.argv[1], sys.argv[2]
for b in json.load(open(path))["benchmarks"]:
    if b.get("run_type") == "iteration":
        print(side, b["name"].split("/process")[0], round(b["real_time"], 3), b["time_unit"])
PY
    done
done
rm -f "$out.json"
echo "# loadavg after: $(cat /proc/loadavg)" >>"$out"
python3 "$here/ab_suite.py" "$out"
