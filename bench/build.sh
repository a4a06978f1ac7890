#!/usr/bin/env bash
# Times `orrery run` against `dbt build` on the synthetic project (default 1k models), from an
# empty database: seeds, models and tests.
#   bench/build.sh [SIZES...]
# Environment: ORRERY (binary), DBT, RUNS (default 1), SIDES ("dbt orrery"), STATE (cold | warm), BENCH_WORK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
check_orrery
mkdir -p "$WORK"
echo "| command | wall | peak RSS |"
echo "|---|---|---|"
for n in "${@:-1000}"; do
    for size in $n; do
        dir=$(project "$size")
        has_side dbt && measure "dbt-build-$size" "$dir" "$DBT" build --profiles-dir . --quiet
        has_side orrery && measure "orrery-run-$size" "$dir" "$ORRERY" run -p orrery.toml
    done
done
