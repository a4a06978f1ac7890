# Shared by compile.sh and build.sh: paths of the tools and a timing helper.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
DBT="${DBT:-/root/.cache/orrery-dbt/bin/dbt}"
# The dev profile is the one profile of this repository (tests, the main command, benchmarks).
ORRERY="${ORRERY:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/orrery}"
WORK="${BENCH_WORK:-/tmp/orrery-bench}"
RUNS="${RUNS:-1}"
SIDES="${SIDES:-dbt orrery}"

if [ ! -x /usr/bin/time ]; then
    echo "GNU time is missing: apt-get install -y time" >&2
    exit 2
fi

# project DIR for N models, generated once (the generator is deterministic)
project() {
    local n="$1" dir="$WORK/p$1"
    [ -f "$dir/dbt_project.yml" ] || python3 "$BENCH_DIR/gen_project.py" --models "$n" "$dir" >/dev/null
    echo "$dir"
}

# What each timed run starts from: `cold` (default) — no target/, no logs, no database file —
# or `warm` — what one untimed run before left there (dbt keeps its partial-parse file, orrery
# finds its unchanged compiled files).
STATE="${STATE:-cold}"
# A cold run's leftovers are moved aside, not deleted, until the script ends: ext4 avoids reusing
# an inode for a minute or more after it was freed, and checks every recently freed one it passes
# (ialloc.c, `recently_deleted`), so creating 14,000 files right after deleting 14,000 costs
# seconds of kernel time — the cleanup's cost, not the measured command's (1.2–2.5 s of the
# first runs of a 10k orrery compile here).
TRASH="$WORK/.trash"
trap 'rm -rf "$TRASH"; sync' EXIT

# clean DIR: moves what a run leaves in DIR into the trash
clean() {
    local dir="$1" f
    mkdir -p "$TRASH"
    for f in "$dir/target" "$dir/logs" "$dir"/*.duckdb "$dir"/*.duckdb.wal; do
        [ -e "$f" ] && mv "$f" "$(mktemp -d "$TRASH/XXXXXX")/"
    done
    return 0
}

# measure LABEL DIR CMD...: runs CMD in DIR RUNS times from $STATE, prints one table row
# with the median wall time and the largest peak RSS
measure() {
    local label="$1" dir="$2"; shift 2
    local walls=() rss=0 log="$WORK/$label.log" i
    if [ "$STATE" = warm ]; then
        clean "$dir"
        if ! (cd "$dir" && "$@") >"$log" 2>&1; then
            echo "| $label | failed, see $log | |"
            return
        fi
    fi
    for ((i = 0; i < RUNS; i++)); do
        [ "$STATE" = warm ] || clean "$dir"
        if ! (cd "$dir" && /usr/bin/time -v "$@") >"$log" 2>&1; then
            echo "| $label | failed, see $log | |"
            return
        fi
        walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; print s}' "$log")")
        local r; r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
        ((r > rss)) && rss=$r
    done
    local median; median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    printf '| %s (%s) | %.2f s | %d MB |\n' "$label" "$STATE" "$median" "$((rss / 1024))"
}

has_side() { [[ " $SIDES " == *" $1 "* ]]; }

check_orrery() {
    if has_side orrery && [ ! -x "$ORRERY" ]; then
        echo "no orrery binary at $ORRERY (set ORRERY=...); timing dbt only" >&2
        SIDES="${SIDES//orrery/}"
    fi
}
