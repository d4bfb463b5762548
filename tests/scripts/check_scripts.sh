#!/usr/bin/env bash
# Lint of the project's shell scripts (issue 7, defect 8): a script that runs
# under `set -o pipefail` must not pipe into a reader that exits early
# (`head`, `grep -q`, `grep -m`, awk's `exit`, sed's `q`): the writer then
# dies of SIGPIPE, the pipeline fails and `set -e` ends the script with no
# message (bench/report.sh's jemalloc lookup did that 1 run in 200 under
# load). Every such script must also trap ERR and say which command failed.
# Usage: tests/scripts/check_scripts.sh [ROOT]. Exit 1 listing every finding.
set -euo pipefail
trap 'echo "check_scripts.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
bad=0
scripts=$(git ls-files '*.sh' .ci/run 2>/dev/null || find . -name '*.sh' -not -path './build*')
for f in $scripts; do
    [ -f "$f" ] || continue
    grep -q 'pipefail' "$f" || continue
    # Early-exit readers after a pipe (comments ignored).
    hits=$(grep -nE '\|[[:space:]]*(head([[:space:]]|$)|grep[^|]*[[:space:]]-(q|m)|sed[[:space:]]+-n[^|]*q)|exit[[:space:]]*}'"'" "$f" |
        grep -vE '^[0-9]+:[[:space:]]*#' || true)
    if [ -n "$hits" ]; then
        echo "$f: pipes into a reader that exits early (SIGPIPE under pipefail):"
        echo "$hits" | sed 's/^/    /'
        bad=1
    fi
    if ! grep -qE "^[[:space:]]*trap .* ERR" "$f"; then
        echo "$f: set -o pipefail without an ERR trap naming the failed command"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "check_scripts: $(echo "$scripts" | wc -w) scripts, ok"
exit $bad
