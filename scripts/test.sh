#!/usr/bin/env bash
# The test command of README.md: everything the tests need is set up here, then cargo test.
# Uses the dev profile, the one profile of tests, the main command and benchmarks.
#
# Gates: `cargo fmt --check`, `cargo clippy --all-targets -- -D warnings` and the
# `--no-default-features` build run first; every process a test starts has a time limit
# (tests/cli/harness.rs), so a hang fails its test.
#
# Set up: a Python virtualenv with moto's S3 server (PyPI `moto[server]`, boto3 with it) and
# psycopg2, moto started on a free loopback port for the run and stopped after it; another with
# Apache Airflow 3 for the exported DAG's tests; a throwaway PostgreSQL server on loopback
# (scripts/pg-server.sh: Debian's package installed when missing), stopped after the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Gates before the tests: the tree formatted, clippy clean (warnings are errors), and the
# validate-only build (no DuckDB, no PostgreSQL client) the README offers for pre-commit.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --no-default-features

cache="${XDG_CACHE_HOME:-$HOME/.cache}"
venv="${ORRERY_TEST_VENV:-$cache/orrery-test-py}"
if ! "$venv/bin/python" -c 'import moto, boto3, psycopg2' 2>/dev/null; then
    echo "test.sh: installing moto[server] and psycopg2 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'psycopg2-binary>=2.9,<3'
fi

# Apache Airflow 3 for the exported DAG's tests (about a minute the first time).
airflow_venv="${ORRERY_TEST_AIRFLOW:-$cache/orrery-airflow}"
if ! "$airflow_venv/bin/python" -c 'import airflow.sdk' 2>/dev/null; then
    echo "test.sh: installing apache-airflow 3 into $airflow_venv" >&2
    python3 -m venv "$airflow_venv"
    "$airflow_venv/bin/pip" install --quiet --disable-pip-version-check 'apache-airflow>=3,<4'
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t orrery-moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
# shellcheck source=pg-server.sh
source scripts/pg-server.sh
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"; pg_server_stop' EXIT
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "test.sh: moto_server did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done

pg_server_start

export ORRERY_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export ORRERY_TEST_PYTHON="$venv/bin/python"
export ORRERY_TEST_AIRFLOW="$airflow_venv"
# The benchmarks are not run here, but they must build (bench/scheduler.rs uses the executor's API).
cargo build --locked --bench scheduler
cargo test --locked "$@"
