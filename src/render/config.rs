//! A node's typed config (`NodeConfig`) from its merged JSON config.

use super::*;

/// The typed config of a node from its merged JSON config.
pub(crate) fn node_config(cfg: &serde_json::Map<String, Json>, enabled: bool) -> NodeConfig {
    // One pass over the keys (a node's config holds a dozen; NodeConfig knows three dozen).
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    };
    let list = |v: &Json| -> Vec<String> {
        match v {
            Json::Array(a) => a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect(),
            Json::String(s) => vec![s.clone()],
            _ => vec![],
        }
    };
    let map = |v: &Json| -> IndexMap<String, Json> {
        match v {
            Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => IndexMap::new(),
        }
    };
    let mut c = NodeConfig { enabled, ..NodeConfig::default() };
    for (key, v) in cfg {
        match key.as_str() {
            "enabled" => {}
            "materialized" => c.materialized = text(v).unwrap_or_default(),
            "tags" => c.tags = list(v),
            "database" => c.database = text(v),
            "schema" => c.schema = text(v),
            "alias" => c.alias = text(v),
            "pre_hook" => c.pre_hook = hooks_of(Some(v)),
            "post_hook" => c.post_hook = hooks_of(Some(v)),
            "unique_key" => c.unique_key = Some(v.clone()).filter(|v| !v.is_null()),
            "incremental_strategy" => c.incremental_strategy = text(v),
            "on_schema_change" => c.on_schema_change = text(v),
            "full_refresh" => c.full_refresh = v.as_bool(),
            "grants" => {
                if let Json::Object(m) = v {
                    c.grants = m
                        .iter()
                        .map(|(k, v)| {
                            let vals = match v {
                                Json::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                                Json::String(s) => vec![s.clone()],
                                _ => vec![],
                            };
                            (k.clone(), vals)
                        })
                        .collect();
                }
            }
            "meta" => c.meta = map(v),
            "persist_docs" => c.persist_docs = map(v),
            "quoting" => c.quoting = map(v),
            "column_types" => {
                c.column_types =
                    map(v).into_iter().map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect();
            }
            "quote_columns" => c.quote_columns = v.as_bool(),
            "delimiter" => c.delimiter = text(v),
            "strategy" => c.strategy = text(v),
            "updated_at" => c.updated_at = text(v),
            "check_cols" => c.check_cols = Some(v.clone()),
            "target_schema" => c.target_schema = text(v),
            "target_database" => c.target_database = text(v),
            "invalidate_hard_deletes" => c.invalidate_hard_deletes = v.as_bool(),
            "severity" => c.severity = text(v),
            "where" => c.where_ = text(v),
            "limit" => c.limit = v.as_u64(),
            "warn_if" => c.warn_if = text(v),
            "error_if" => c.error_if = text(v),
            "fail_calc" => c.fail_calc = text(v),
            "store_failures" => c.store_failures = v.as_bool(),
            _ => {
                c.extra.insert(key.clone(), v.clone());
            }
        }
    }
    c
}
