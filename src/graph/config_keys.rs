//! Config keys dbt does not know: warnings, as dbt 1.10+ warns about custom keys in `config`
//! (they belong under `meta`). Adapter-specific keys of dbt-duckdb and dbt-postgres are known.

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::node::Compiled;

const KNOWN: &[&str] = &[
    // every resource type
    "enabled",
    "tags",
    "meta",
    "docs",
    "group",
    "access",
    "persist_docs",
    "quoting",
    "database",
    "schema",
    "alias",
    "pre_hook",
    "post_hook",
    "pre-hook",
    "post-hook",
    "full_refresh",
    "grants",
    "packages",
    "event_time",
    "static_analysis",
    // models
    "materialized",
    "unique_key",
    "on_schema_change",
    "on_configuration_change",
    "contract",
    "column_types",
    "incremental_strategy",
    "incremental_predicates",
    "batch_size",
    "lookback",
    "begin",
    "concurrent_batches",
    "sql_header",
    "freshness",
    "merge_update_columns",
    "merge_exclude_columns",
    "partition_by",
    "cluster_by",
    "indexes",
    "unlogged",
    "location",
    "format",
    "options",
    "glue_register",
    "glue_database",
    "plugin",
    "microbatch_storage",
    // seeds
    "delimiter",
    "quote_columns",
    // snapshots
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
    // tests
    "severity",
    "where",
    "limit",
    "fail_calc",
    "warn_if",
    "error_if",
    "store_failures",
    "store_failures_as",
];

/// One warning per node and unknown key, at the node's file.
pub fn unknown_config_keys(compiled: &Compiled) -> Diagnostics {
    let mut out = Diagnostics::new();
    for node in &compiled.nodes {
        for key in node.config.extra.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            let mut warning = Diagnostic::warning(
                crate::codes::graph::UNKNOWN_CONFIG_KEY,
                format!("{} sets config key `{key}`, which dbt does not know", node.unique_id),
            )
            .with_help(match crate::diagnostics::did_you_mean(key, KNOWN.iter().copied()) {
                Some(known) => format!("did you mean `{known}`? Custom keys belong under `meta`"),
                None => "custom keys belong under `meta` (dbt warns about them too)".to_string(),
            });
            if let Some(origin) = &node.origin {
                warning = match origin.source.text.find(key.as_str()) {
                    Some(at) => warning.at(&origin.source, at..at + key.len()),
                    None => warning.at(&origin.source, origin.span.clone()),
                };
            }
            out.push(warning);
        }
    }
    out
}
