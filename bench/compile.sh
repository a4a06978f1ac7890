#!/usr/bin/env bash
# Times `orrery compile` against `dbt compile` on the synthetic projects (default 1k and 10k
# models): median wall time over $RUNS runs and peak RSS, from a cold target/ and an empty database.
#   bench/compile.sh [SIZES...]      e.g. bench/compile.sh 1000 10000
# Environment: ORRERY (binary), DBT, RUNS (default 1), SIDES ("dbt orrery"), STATE (cold | warm), BENCH_WORK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
check_orrery
mkdir -p "$WORK"
echo "| command | wall | peak RSS |"
echo "|---|---|---|"
for n in "${@:-1000 10000}"; do
    for size in $n; do
        dir=$(project "$size")
        has_side dbt && measure "dbt-compile-$size" "$dir" "$DBT" compile --profiles-dir . --quiet
        has_side orrery && measure "orrery-compile-$size" "$dir" "$ORRERY" compile -p orrery.toml
    done
done
