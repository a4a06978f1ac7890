#!/usr/bin/env bash
# Times `orrery plan` on the synthetic project against the state of a previous apply (no
# changes to find, so it is the cost of compiling and comparing).
#   bench/plan.sh [SIZE]        # default 10000
# Environment: ORRERY (binary), RUNS (default 3), BENCH_WORK.
set -euo pipefail
RUNS="${RUNS:-3}"
source "$(dirname "$0")/lib.sh"
n="${1:-10000}"
dir=$(project "$n")
rm -rf "$dir/target" "$dir/.orrery" "$dir"/*.duckdb "$dir"/*.duckdb.wal
if ! (cd "$dir" && "$ORRERY" apply --auto-approve) >"$WORK/apply-$n.log" 2>&1; then
    echo "apply failed, see $WORK/apply-$n.log" >&2
    exit 1
fi
echo "| command | wall | peak RSS |"
echo "|---|---|---|"
for ((i = 0; i < RUNS; i++)); do
    log="$WORK/plan-$n-$i.log"
    code=0
    (cd "$dir" && /usr/bin/time -v "$ORRERY" plan --detailed-exitcode) >"$log" 2>&1 || code=$?
    if [ "$code" -ne 0 ]; then
        echo "| orrery-plan-$n | exit $code (expected 0: no changes), see $log | |"
        continue
    fi
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; print s}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    printf '| orrery-plan-%s | %.2f s | %d MB |\n' "$n" "$wall" "$((rss / 1024))"
done
