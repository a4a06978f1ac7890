#!/usr/bin/env bash
# The test command of README.md: everything the tests need is set up here, then cargo test.
# Uses the dev profile, the one profile of tests, the main command and benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
