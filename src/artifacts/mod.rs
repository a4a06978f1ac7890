//! dbt-compatible artifacts: target/compiled/**, target/manifest.json (v12) and target/run_results.json (v6).

pub mod compiled;
pub mod manifest;
pub mod remote;
pub mod run_results;
