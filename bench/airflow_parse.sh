#!/usr/bin/env bash
# Times Airflow parsing the DAG file of the synthetic project (default 1k models), side by side:
# orrery's exported DAG, and astronomer-cosmos' DbtDag with LoadMode.DBT_LS and DBT_MANIFEST.
#   bench/airflow_parse.sh [SIZE]
# Environment: ORRERY, DBT, AIRFLOW_VENV (default ~/.cache/orrery-airflow, with
# astronomer-cosmos installed: `$AIRFLOW_VENV/bin/pip install astronomer-cosmos`), RUNS (3).
set -euo pipefail
RUNS="${RUNS:-3}"
source "$(dirname "$0")/lib.sh"
AIRFLOW_VENV="${AIRFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/orrery-airflow}"
PY="$AIRFLOW_VENV/bin/python"
n="${1:-1000}"
dir=$(project "$n")
work="$WORK/airflow-$n"
rm -rf "$work" && mkdir -p "$work/orrery" "$work/cosmos_ls" "$work/cosmos_manifest"
export AIRFLOW_HOME="$work/home" AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__COSMOS__ENABLE_CACHE=False
(cd "$dir" && "$ORRERY" export airflow -o "$work/orrery" -p orrery.toml) 2>/dev/null
(cd "$dir" && "$DBT" parse --profiles-dir . --target-path "$work/dbt-target" --quiet)
cp "$BENCH_DIR/airflow/cosmos_dag.py" "$work/cosmos_ls/cosmos_ls.py"
cp "$BENCH_DIR/airflow/cosmos_dag.py" "$work/cosmos_manifest/cosmos_manifest.py"
export BENCH_PROJECT="$dir" BENCH_DBT="$DBT" BENCH_MANIFEST="$work/dbt-target/manifest.json"
echo "| DAG file ($n models) | Airflow import | parse beyond import (median of $RUNS) | tasks |"
echo "|---|---|---|---|"
for side in orrery cosmos_ls cosmos_manifest; do
    case "$side" in
        cosmos_ls) export BENCH_LOAD_MODE=dbt_ls ;;
        cosmos_manifest) export BENCH_LOAD_MODE=dbt_manifest ;;
    esac
    rows=()
    for ((i = 0; i < RUNS; i++)); do
        rows+=("$("$PY" "$BENCH_DIR/airflow/parse_time.py" "$work/$side" 2>"$work/$side.log" | tail -1)")
    done
    printf '%s\n' "${rows[@]}" | sort -k2 -g | awk -v side="$side" -v runs="$RUNS" \
        '{a[NR] = $0} END {split(a[int((runs + 1) / 2)], f, " "); printf "| %s | %.2f s | %.3f s | %s |\n", side, f[1], f[2], f[3]}'
done
