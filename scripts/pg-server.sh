#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the tests, the reference data and benchmarks.
#
#   source scripts/pg-server.sh   # then pg_server_start; ...; pg_server_stop
#
# pg_server_start installs Debian's `postgresql` package when no server binaries are found,
# makes a cluster in a temporary folder (password authentication, superuser `postgres` with a
# random password), starts it on a free loopback port and exports
# ORRERY_TEST_PG_HOST / _PORT / _USER / _PASSWORD / _DBNAME (a database `orrery_test`).
# PostgreSQL refuses to run as root: as root the server runs as the unprivileged user
# `orrery-pg`, created when missing.

pg_server_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

pg_server_start() {
    local bin
    if ! bin="$(pg_server_bin)"; then
        echo "pg-server: installing Debian's postgresql package" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
        bin="$(pg_server_bin)"
    fi
    local run_as=()
    PG_SERVER_DIR="$(mktemp -d -t orrery-pg.XXXXXX)"
    if [ "$(id -u)" -eq 0 ]; then
        id orrery-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin orrery-pg
        chown orrery-pg "$PG_SERVER_DIR"
        run_as=(runuser -u orrery-pg --)
    fi
    chmod 700 "$PG_SERVER_DIR"
    local password port
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    printf '%s\n' "$password" >"$PG_SERVER_DIR/pwfile"
    [ "$(id -u)" -ne 0 ] || chown orrery-pg "$PG_SERVER_DIR/pwfile"
    "${run_as[@]}" "$bin/initdb" -D "$PG_SERVER_DIR/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$PG_SERVER_DIR/pwfile" --encoding=UTF8 --locale=C.UTF-8 >"$PG_SERVER_DIR/initdb.log" 2>&1 || {
        cat "$PG_SERVER_DIR/initdb.log" >&2
        return 1
    }
    rm -f "$PG_SERVER_DIR/pwfile"
    # TLS with a throwaway certificate authority (its certificate exported as
    # ORRERY_TEST_PG_SSLROOTCERT) and a server certificate for 127.0.0.1 signed by it, when
    # openssl is there; plain connections stay allowed.
    local ssl_opts="" d="$PG_SERVER_DIR"
    if command -v openssl >/dev/null 2>&1 &&
        openssl req -new -x509 -days 2 -nodes -subj "/CN=orrery test CA" -keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1 &&
        openssl req -new -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$d/server.ext" &&
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
            -extfile "$d/server.ext" -out "$d/server.crt" >/dev/null 2>&1; then
        chmod 600 "$PG_SERVER_DIR/server.key"
        [ "$(id -u)" -ne 0 ] || chown orrery-pg "$PG_SERVER_DIR/server.key" "$PG_SERVER_DIR/server.crt"
        ssl_opts="-c ssl=on -c ssl_cert_file=$PG_SERVER_DIR/server.crt -c ssl_key_file=$PG_SERVER_DIR/server.key"
        export ORRERY_TEST_PG_SSLROOTCERT="$PG_SERVER_DIR/ca.crt"
    fi
    PG_SERVER_RUN_AS=("${run_as[@]}")
    PG_SERVER_BIN="$bin"
    "${run_as[@]}" "$bin/pg_ctl" -D "$PG_SERVER_DIR/data" -l "$PG_SERVER_DIR/server.log" -w -t 60 \
        -o "-p $port -k $PG_SERVER_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $ssl_opts" \
        start >/dev/null || {
        cat "$PG_SERVER_DIR/server.log" >&2
        return 1
    }
    export ORRERY_TEST_PG_HOST=127.0.0.1
    export ORRERY_TEST_PG_PORT="$port"
    export ORRERY_TEST_PG_USER=postgres
    export ORRERY_TEST_PG_PASSWORD="$password"
    export ORRERY_TEST_PG_DBNAME=orrery_test
    PGPASSWORD="$password" psql -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "create database orrery_test" >/dev/null
}

pg_server_stop() {
    if [ -n "${PG_SERVER_DIR:-}" ] && [ -d "$PG_SERVER_DIR/data" ]; then
        "${PG_SERVER_RUN_AS[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$PG_SERVER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    [ -z "${PG_SERVER_DIR:-}" ] || rm -rf "$PG_SERVER_DIR"
}
