#!/usr/bin/env bash
# Deferred mode against blocking mode on PostgreSQL (issue: "32 independent table models that
# each sleep 1 s on the server, threads = 2").
#
#   bench/deferred.sh [MODELS] [SECONDS]        (defaults: 32 models, 1 s each)
#
# Starts a throwaway PostgreSQL server (scripts/pg-server.sh), writes a project of MODELS
# independent table models that each run pg_sleep(SECONDS), and times `orrery run` with
# threads = 2 in blocking mode and in deferred mode (max_in_flight = MODELS), 3 runs each.
# ORRERY: the binary (default: target/debug/orrery under CARGO_TARGET_DIR, built with the one
# dev profile).
set -euo pipefail
cd "$(dirname "$0")/.."
models="${1:-32}"
seconds="${2:-1}"
orrery="${ORRERY:-${CARGO_TARGET_DIR:-target}/debug/orrery}"
[ -x "$orrery" ] || { echo "no orrery binary at $orrery: cargo build first" >&2; exit 2; }

source scripts/pg-server.sh
work="$(mktemp -d -t orrery-deferred.XXXXXX)"
trap 'pg_server_stop; rm -rf "$work"' EXIT
pg_server_start

mkdir -p "$work/models"
cat >"$work/dbt_project.yml" <<YML
name: deferred_bench
version: "1.0"
profile: deferred_bench
models:
  deferred_bench:
    +materialized: table
YML
cat >"$work/profiles.yml" <<YML
deferred_bench:
  target: dev
  outputs:
    dev:
      type: postgres
      host: "$ORRERY_TEST_PG_HOST"
      port: $ORRERY_TEST_PG_PORT
      user: "$ORRERY_TEST_PG_USER"
      password: "{{ env_var('ORRERY_TEST_PG_PASSWORD') }}"
      dbname: "$ORRERY_TEST_PG_DBNAME"
      schema: bench
YML
for i in $(seq 1 "$models"); do
    printf 'select %d as id, now() as built_at from (select pg_sleep(%s)) as pause\n' "$i" "$seconds" >"$work/models/sleep_$i.sql"
done
for mode in blocking deferred; do
    cat >"$work/$mode.toml" <<TOML
[pipeline]
name = "deferred_bench"

[execution]
threads = 2
mode = "$mode"
$([ "$mode" = deferred ] && echo "max_in_flight = $models")
TOML
done

echo "$models table models, each pg_sleep($seconds) on the server; threads = 2" >&2
for mode in blocking deferred; do
    for run in 1 2 3; do
        start=$EPOCHREALTIME
        "$orrery" run -p "$work/$mode.toml" >"$work/$mode.log" 2>&1 || { cat "$work/$mode.log" >&2; exit 1; }
        end=$EPOCHREALTIME
        awk -v m="$mode" -v r="$run" -v a="$start" -v b="$end" 'BEGIN { printf "%-8s run %d: %.2f s\n", m, r, b - a }'
    done
    grep -E "^PASS=" "$work/$mode.log" >&2
done
