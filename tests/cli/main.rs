//! Integration tests: the real `orrery` binary, run in temp dirs through one fluent builder.
//! All in one test binary so it links once.

// Test code may unwrap: clippy.toml allows it in `#[test]` functions, and the helpers they call
// here are test code too.
#![allow(clippy::unwrap_used)]

mod harness;

mod commands;
mod validate;

#[cfg(feature = "duckdb")]
mod airflow;
#[cfg(feature = "duckdb")]
mod callbacks;
#[cfg(feature = "duckdb")]
mod dbt_utils;
#[cfg(feature = "duckdb")]
mod deploy;
#[cfg(feature = "duckdb")]
mod late;
#[cfg(all(feature = "duckdb", feature = "postgres"))]
mod postgres;
#[cfg(feature = "duckdb")]
mod relations;
#[cfg(feature = "duckdb")]
mod run;
#[cfg(feature = "duckdb")]
mod runtime_vars;
