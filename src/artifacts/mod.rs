//! dbt-compatible artifacts: target/manifest.json (v12) and target/run_results.json (v6).
pub mod manifest;
