//! `target/manifest.json` in dbt's manifest v12 format, for the parts orrery knows: metadata,
//! nodes, sources, macros, parent_map and child_map; the other top-level maps stay empty so
//! tools that load dbt manifests (Cosmos, dbt-artifacts-parser) read it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::diagnostics::Diagnostic;
use crate::node::{ColumnInfo, Compiled, MacroInfo, Node, NodeConfig, ResourceType, SourceTable};
use crate::render::builtins::render_relation;

pub const SCHEMA_VERSION: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// The dbt release whose manifest we write, tagged so a reader can tell orrery wrote it.
fn dbt_version() -> String {
    format!("1.11.0+orrery.{}", env!("CARGO_PKG_VERSION"))
}

/// The whole manifest as JSON.
pub fn manifest_json(compiled: &Compiled) -> Value {
    let created_at = chrono::DateTime::parse_from_rfc3339(&compiled.generated_at)
        .map_or(0.0, |t| t.timestamp_micros() as f64 / 1e6);
    let nodes: Map<String, Value> =
        compiled.nodes.iter().map(|n| (n.unique_id.clone(), node_json(compiled, n, created_at))).collect();
    let sources: Map<String, Value> =
        compiled.sources.iter().map(|s| (s.unique_id.clone(), source_json(compiled, s, created_at))).collect();
    let macros: Map<String, Value> =
        compiled.macros.iter().map(|m| (m.unique_id.clone(), macro_json(m, created_at))).collect();
    let (parent_map, child_map) = lineage_maps(compiled);
    let empty = || Value::Object(Map::new());
    json!({
        "metadata": {
            "dbt_schema_version": SCHEMA_VERSION,
            "dbt_version": dbt_version(),
            "generated_at": compiled.generated_at,
            "invocation_id": compiled.invocation_id,
            "invocation_started_at": compiled.generated_at,
            "env": {},
            "project_name": compiled.project_name,
            "project_id": md5_hex(&compiled.project_name),
            "user_id": null,
            "send_anonymous_usage_stats": false,
            "adapter_type": compiled.target.adapter_type,
            "quoting": {"database": true, "schema": true, "identifier": true, "column": null},
            "run_started_at": compiled.generated_at,
        },
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "docs": empty(),
        "exposures": empty(),
        "metrics": empty(),
        "groups": empty(),
        "selectors": empty(),
        "disabled": empty(),
        "parent_map": parent_map,
        "child_map": child_map,
        "group_map": empty(),
        "saved_queries": empty(),
        "semantic_models": empty(),
        "unit_tests": empty(),
        "functions": empty(),
    })
}

/// Writes `<project>/<target-path>/manifest.json` atomically (a temp file renamed over it).
pub fn write(compiled: &Compiled) -> Result<(), Diagnostic> {
    let dir = compiled.project_root.join(&compiled.target_path);
    let path = dir.join("manifest.json");
    let fail = |err: &dyn std::fmt::Display| {
        Diagnostic::error("artifacts::write", format!("cannot write {}: {err}", path.display()))
            .with_help("check that the target path is writable")
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let bytes = serde_json::to_vec(&manifest_json(compiled)).map_err(|e| fail(&e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| fail(&e))?;
    tmp.write_all(&bytes).map_err(|e| fail(&e))?;
    tmp.persist(&path).map_err(|e| fail(&e.error))?;
    Ok(())
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every node and source id with its sorted parents, and with its sorted children.
fn lineage_maps(compiled: &Compiled) -> (Value, Value) {
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for id in compiled.nodes.iter().map(|n| n.unique_id.as_str()).chain(compiled.sources.iter().map(|s| s.unique_id.as_str())) {
        parents.entry(id).or_default();
        children.entry(id).or_default();
    }
    for node in &compiled.nodes {
        for dep in &node.depends_on {
            parents.entry(&node.unique_id).or_default().insert(dep);
            children.entry(dep).or_default().insert(&node.unique_id);
        }
    }
    let to_json = |m: BTreeMap<&str, BTreeSet<&str>>| {
        Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), json!(v.into_iter().collect::<Vec<_>>()))).collect())
    };
    (to_json(parents), to_json(children))
}

fn docs() -> Value {
    json!({"show": true, "node_color": null})
}

fn contract() -> Value {
    json!({"enforced": false, "alias_types": true})
}

fn columns_json(columns: &indexmap::IndexMap<String, ColumnInfo>) -> Value {
    let map: Map<String, Value> = columns
        .iter()
        .map(|(key, c)| {
            let col = json!({
                "name": c.name,
                "description": c.description,
                "meta": c.meta,
                "data_type": c.data_type,
                "constraints": [],
                "quote": c.quote,
                "config": {"meta": c.meta, "tags": c.tags},
                "tags": c.tags,
                "granularity": null,
                "doc_blocks": [],
            });
            (key.clone(), col)
        })
        .collect();
    Value::Object(map)
}

fn hooks(sqls: &[String]) -> Value {
    Value::Array(sqls.iter().map(|sql| json!({"sql": sql, "transaction": true, "index": null})).collect())
}

/// The node's config as dbt writes it for its resource type, defaults filled in.
fn config_json(kind: ResourceType, c: &NodeConfig) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("enabled", json!(c.enabled));
    put("alias", json!(c.alias));
    // dbt gives every test the custom schema `dbt_test__audit` unless configured otherwise.
    let schema = c.schema.as_deref().or((kind == ResourceType::Test).then_some("dbt_test__audit"));
    put("schema", json!(schema));
    put("database", json!(c.database));
    put("tags", json!(c.tags));
    put("meta", json!(c.meta));
    put("group", Value::Null);
    put("materialized", json!(c.materialized));
    put("static_analysis", Value::Null);
    if kind == ResourceType::Test {
        put("severity", json!(c.severity.as_deref().unwrap_or("ERROR")));
        put("store_failures", json!(c.store_failures));
        put("store_failures_as", Value::Null);
        put("where", json!(c.where_));
        put("limit", json!(c.limit));
        put("fail_calc", json!(c.fail_calc.as_deref().unwrap_or("count(*)")));
        put("warn_if", json!(c.warn_if.as_deref().unwrap_or("!= 0")));
        put("error_if", json!(c.error_if.as_deref().unwrap_or("!= 0")));
    } else {
        put("incremental_strategy", json!(c.incremental_strategy));
        put("batch_size", Value::Null);
        put("lookback", json!(1));
        put("begin", Value::Null);
        put("persist_docs", json!(c.persist_docs));
        put("post-hook", hooks(&c.post_hook));
        put("pre-hook", hooks(&c.pre_hook));
        put("quoting", json!(c.quoting));
        put("column_types", json!(c.column_types));
        put("full_refresh", json!(c.full_refresh));
        put("unique_key", json!(c.unique_key));
        put("on_schema_change", json!(c.on_schema_change.as_deref().unwrap_or("ignore")));
        put("on_configuration_change", json!("apply"));
        put("grants", json!(c.grants));
        put("packages", json!([]));
        put("docs", docs());
        put("contract", contract());
        put("event_time", Value::Null);
        put("concurrent_batches", Value::Null);
    }
    match kind {
        ResourceType::Model => {
            put("access", json!("protected"));
            put("freshness", Value::Null);
        }
        ResourceType::Seed => {
            put("delimiter", json!(c.delimiter.as_deref().unwrap_or(",")));
            put("quote_columns", json!(c.quote_columns));
        }
        ResourceType::Snapshot => {
            put("strategy", json!(c.strategy));
            put("target_schema", json!(c.target_schema));
            put("target_database", json!(c.target_database));
            put("updated_at", json!(c.updated_at));
            put("check_cols", json!(c.check_cols));
            put("dbt_valid_to_current", Value::Null);
            put(
                "snapshot_meta_column_names",
                json!({"dbt_valid_to": null, "dbt_valid_from": null, "dbt_scd_id": null, "dbt_updated_at": null, "dbt_is_deleted": null}),
            );
            if let Some(hard) = c.invalidate_hard_deletes {
                put("invalidate_hard_deletes", json!(hard));
            }
        }
        _ => {}
    }
    // Keys dbt does not type (and user keys) are kept as given, as dbt keeps them.
    for (k, v) in &c.extra {
        put(k, v.clone());
    }
    Value::Object(m)
}

/// A version as the yml wrote it: `2` stays a number, `"2.1a"` a string.
fn version_json(v: &Option<String>) -> Value {
    match v.as_deref() {
        None => Value::Null,
        Some(s) => s.parse::<i64>().map(Value::from).or_else(|_| s.parse::<f64>().map(Value::from)).unwrap_or_else(|_| json!(s)),
    }
}

/// `models.orders`, `seeds.raw`, `sources.raw`: the yml section a generic test came from.
fn file_key_name(compiled: &Compiled, attached: Option<&str>, node: &Node) -> Value {
    let model = node.test_metadata.as_ref().and_then(|m| m.kwargs.get("model")).and_then(Value::as_str).unwrap_or("");
    if let Some(src) = compiled.sources.iter().find(|s| model.contains(&format!("source('{}', '{}')", s.source_name, s.name))) {
        return json!(format!("sources.{}", src.source_name));
    }
    let Some(target) = attached.and_then(|id| compiled.nodes.iter().find(|n| n.unique_id == id)) else {
        return Value::Null;
    };
    let section = match target.resource_type {
        ResourceType::Seed => "seeds",
        ResourceType::Snapshot => "snapshots",
        ResourceType::Analysis => "analyses",
        _ => "models",
    };
    json!(format!("{section}.{}", target.name))
}

fn node_json(compiled: &Compiled, n: &Node, created_at: f64) -> Value {
    let adapter = compiled.target.adapter_type.as_str();
    let kind = n.resource_type;
    let generic = n.test_metadata.is_some();
    let has_relation = match kind {
        ResourceType::Model => n.config.materialized != "ephemeral",
        ResourceType::Seed | ResourceType::Snapshot => true,
        ResourceType::Test => n.config.store_failures == Some(true),
        ResourceType::Analysis | ResourceType::Source => false,
    };
    let checksum = if generic {
        json!({"name": "none", "checksum": ""})
    } else {
        json!({"name": "sha256", "checksum": n.checksum})
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("database", json!(n.relation.database));
    put("schema", json!(n.relation.schema));
    put("name", json!(n.name));
    put("resource_type", json!(kind.as_str()));
    put("package_name", json!(n.package_name));
    put("path", json!(n.path));
    put("original_file_path", json!(n.original_file_path));
    put("unique_id", json!(n.unique_id));
    put("fqn", json!(n.fqn));
    put("alias", json!(n.relation.identifier));
    put("checksum", checksum);
    put("config", config_json(kind, &n.config));
    put("tags", json!(n.config.tags));
    put("description", json!(n.description));
    put("columns", columns_json(&n.columns));
    put("meta", json!(n.config.meta));
    put("group", Value::Null);
    put("docs", docs());
    put("patch_path", Value::Null);
    put("build_path", Value::Null);
    put("unrendered_config", json!({}));
    put("created_at", json!(created_at));
    put("relation_name", if has_relation { json!(render_relation(adapter, &n.relation)) } else { Value::Null });
    put("raw_code", json!(n.raw_code));
    put("doc_blocks", json!([]));
    if kind == ResourceType::Seed {
        put("root_path", json!(compiled.project_root.display().to_string()));
        put("depends_on", json!({"macros": n.depends_on_macros}));
        return Value::Object(m);
    }
    put("language", json!("sql"));
    put("refs", Value::Array(n.refs.iter().map(|r| json!({"name": r.name, "package": r.package, "version": version_json(&r.version)})).collect()));
    put("sources", json!(n.sources));
    put("metrics", json!([]));
    put("functions", json!([]));
    put("depends_on", json!({"macros": n.depends_on_macros, "nodes": n.depends_on}));
    let compiled_path = match kind {
        // dbt compile writes no file for snapshots.
        ResourceType::Snapshot => Value::Null,
        _ if generic => json!(format!(
            "{}/compiled/{}/{}/{}",
            compiled.target_path, n.package_name, n.original_file_path, n.path
        )),
        _ => json!(format!("{}/compiled/{}/{}", compiled.target_path, n.package_name, n.original_file_path)),
    };
    put("compiled_path", compiled_path);
    put("compiled", json!(n.compiled_code.is_some()));
    put("compiled_code", json!(n.compiled_code));
    put("extra_ctes_injected", json!(true));
    put("extra_ctes", json!([]));
    put("contract", json!({"enforced": false, "alias_types": true, "checksum": null}));
    match kind {
        ResourceType::Model => {
            put("access", json!("protected"));
            put("constraints", json!([]));
            put("version", version_json(&n.version));
            put("latest_version", version_json(&n.latest_version));
            put("deprecation_date", Value::Null);
            put("primary_key", json!([]));
            put("time_spine", Value::Null);
        }
        ResourceType::Test if generic => {
            put("column_name", json!(n.column_name));
            put("file_key_name", file_key_name(compiled, n.attached_node.as_deref(), n));
            put("attached_node", json!(n.attached_node));
            put("test_metadata", json!(n.test_metadata));
        }
        _ => {}
    }
    Value::Object(m)
}

fn source_json(compiled: &Compiled, s: &SourceTable, created_at: f64) -> Value {
    let freshness = json!({"warn_after": {"count": null, "period": null}, "error_after": {"count": null, "period": null}, "filter": null});
    json!({
        "database": s.relation.database,
        "schema": s.relation.schema,
        "name": s.name,
        "resource_type": "source",
        "package_name": s.package_name,
        "path": s.original_file_path,
        "original_file_path": s.original_file_path,
        "unique_id": s.unique_id,
        "fqn": s.fqn,
        "source_name": s.source_name,
        "source_description": "",
        "loader": "",
        "identifier": s.relation.identifier,
        "quoting": {"database": null, "schema": null, "identifier": null, "column": null},
        "loaded_at_field": s.loaded_at_field,
        "loaded_at_query": null,
        "freshness": freshness,
        "external": null,
        "description": s.description,
        "columns": columns_json(&s.columns),
        "meta": s.meta,
        "source_meta": {},
        "tags": s.tags,
        "config": {
            "enabled": true,
            "event_time": null,
            "freshness": freshness,
            "loaded_at_field": s.loaded_at_field,
            "loaded_at_query": null,
            "meta": s.meta,
            "static_analysis": null,
            "tags": s.tags,
        },
        "patch_path": null,
        "unrendered_config": {},
        "relation_name": render_relation(&compiled.target.adapter_type, &s.relation),
        "created_at": created_at,
        "unrendered_database": null,
        "unrendered_schema": null,
        "doc_blocks": [],
    })
}

fn macro_json(m: &MacroInfo, created_at: f64) -> Value {
    json!({
        "name": m.name,
        "resource_type": "macro",
        "package_name": m.package_name,
        "path": m.original_file_path,
        "original_file_path": m.original_file_path,
        "unique_id": m.unique_id,
        "macro_sql": m.macro_sql,
        "depends_on": {"macros": []},
        "description": "",
        "meta": {},
        "docs": docs(),
        "config": {"meta": {}, "docs": docs()},
        "patch_path": null,
        "arguments": [],
        "created_at": created_at,
        "supported_languages": null,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use indexmap::IndexMap;

    use super::*;
    use crate::diagnostics::Diagnostics;
    use crate::node::{RefCall, Relation, TargetInfo, TestMetadata};

    fn fixture(rel: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builtins/expected").join(rel);
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    fn s(v: &Value) -> String {
        v.as_str().unwrap_or_default().to_string()
    }

    fn opt(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    fn columns(v: &Value) -> IndexMap<String, ColumnInfo> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, c)| {
                        let info = ColumnInfo { name: s(&c["name"]), description: s(&c["description"]), ..ColumnInfo::default() };
                        (k.clone(), info)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What render would have produced for the fixture project, read back from dbt's manifest.
    fn compiled_from_dbt(dbt: &Value) -> Compiled {
        let kind = |k: &str| match k {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "snapshot" => ResourceType::Snapshot,
            "analysis" => ResourceType::Analysis,
            _ => ResourceType::Test,
        };
        let nodes = dbt["nodes"]
            .as_object()
            .expect("nodes")
            .values()
            .map(|n| {
                let c = &n["config"];
                let config = NodeConfig {
                    enabled: true,
                    materialized: s(&c["materialized"]),
                    tags: serde_json::from_value(c["tags"].clone()).unwrap_or_default(),
                    schema: opt(&c["schema"]),
                    alias: opt(&c["alias"]),
                    severity: opt(&c["severity"]),
                    where_: opt(&c["where"]),
                    limit: c["limit"].as_u64(),
                    store_failures: c["store_failures"].as_bool(),
                    strategy: opt(&c["strategy"]),
                    target_schema: opt(&c["target_schema"]),
                    unique_key: Some(c["unique_key"].clone()).filter(|v| !v.is_null()),
                    check_cols: Some(c["check_cols"].clone()).filter(|v| !v.is_null()),
                    ..NodeConfig::default()
                };
                Node {
                    unique_id: s(&n["unique_id"]),
                    name: s(&n["name"]),
                    resource_type: kind(n["resource_type"].as_str().unwrap_or_default()),
                    package_name: s(&n["package_name"]),
                    path: s(&n["path"]),
                    original_file_path: s(&n["original_file_path"]),
                    fqn: serde_json::from_value(n["fqn"].clone()).expect("fqn"),
                    relation: Relation { database: opt(&n["database"]), schema: s(&n["schema"]), identifier: s(&n["alias"]) },
                    config,
                    description: s(&n["description"]),
                    columns: columns(&n["columns"]),
                    raw_code: s(&n["raw_code"]),
                    compiled_code: opt(&n["compiled_code"]),
                    compiled_code_incremental: None,
                    depends_on: serde_json::from_value(n["depends_on"]["nodes"].clone()).unwrap_or_default(),
                    depends_on_macros: serde_json::from_value(n["depends_on"]["macros"].clone()).unwrap_or_default(),
                    refs: n["refs"]
                        .as_array()
                        .map(|rs| rs.iter().map(|r| RefCall { package: opt(&r["package"]), name: s(&r["name"]), version: opt(&r["version"]) }).collect())
                        .unwrap_or_default(),
                    sources: serde_json::from_value(n["sources"].clone()).unwrap_or_default(),
                    version: opt(&n["version"]),
                    latest_version: opt(&n["latest_version"]),
                    test_metadata: n.get("test_metadata").map(|m| TestMetadata {
                        name: s(&m["name"]),
                        namespace: opt(&m["namespace"]),
                        kwargs: serde_json::from_value(m["kwargs"].clone()).expect("kwargs"),
                    }),
                    attached_node: opt(&n["attached_node"]),
                    column_name: opt(&n["column_name"]),
                    checksum: s(&n["checksum"]["checksum"]),
                    seed_file: None,
                    origin: None,
                }
            })
            .collect();
        let sources = dbt["sources"]
            .as_object()
            .expect("sources")
            .values()
            .map(|t| SourceTable {
                unique_id: s(&t["unique_id"]),
                source_name: s(&t["source_name"]),
                name: s(&t["name"]),
                package_name: s(&t["package_name"]),
                original_file_path: s(&t["original_file_path"]),
                fqn: serde_json::from_value(t["fqn"].clone()).expect("fqn"),
                relation: Relation { database: opt(&t["database"]), schema: s(&t["schema"]), identifier: s(&t["identifier"]) },
                description: s(&t["description"]),
                columns: columns(&t["columns"]),
                meta: IndexMap::new(),
                tags: Vec::new(),
                loaded_at_field: None,
                origin: None,
            })
            .collect();
        let macros = dbt["macros"]
            .as_object()
            .expect("macros")
            .values()
            .map(|m| MacroInfo {
                unique_id: s(&m["unique_id"]),
                name: s(&m["name"]),
                package_name: s(&m["package_name"]),
                original_file_path: s(&m["original_file_path"]),
                macro_sql: s(&m["macro_sql"]),
            })
            .collect();
        Compiled {
            project_name: "shop".into(),
            project_root: PathBuf::from("/tmp/shop"),
            target_path: "target".into(),
            target: TargetInfo {
                name: "dev".into(),
                adapter_type: "duckdb".into(),
                database: "shop".into(),
                schema: "main".into(),
                threads: Some(1),
                connection: IndexMap::new(),
            },
            nodes,
            sources,
            macros,
            on_run_start: Vec::new(),
            on_run_end: Vec::new(),
            invocation_id: "00000000-0000-4000-8000-000000000000".into(),
            generated_at: "2026-11-22T06:17:59.944823Z".into(),
            diagnostics: Diagnostics::new(),
        }
    }

    /// Keys of `ours` missing from `dbt`'s and the other way round, recursively into objects.
    fn key_diff(path: &str, ours: &Value, dbt: &Value, out: &mut Vec<String>) {
        let (Some(a), Some(b)) = (ours.as_object(), dbt.as_object()) else { return };
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            out.push(format!("missing {path}.{k}"));
        }
        for k in a.keys().filter(|k| !b.contains_key(*k)) {
            out.push(format!("extra {path}.{k}"));
        }
        for (k, v) in a {
            // User-keyed maps (columns, nodes) are compared by their entries' shape elsewhere.
            if let Some(w) = b.get(k).filter(|_| !matches!(k.as_str(), "meta" | "unrendered_config" | "kwargs")) {
                key_diff(&format!("{path}.{k}"), v, w, out);
            }
        }
    }

    #[test]
    fn has_every_key_dbt_writes() {
        let dbt = fixture("manifest.json");
        let shape = fixture("manifest_shape.json");
        let ours = manifest_json(&compiled_from_dbt(&dbt));
        let mut diff = Vec::new();
        let top: Vec<String> = serde_json::from_value(shape["top"].clone()).expect("top");
        let mut our_top: Vec<String> = ours.as_object().expect("object").keys().cloned().collect();
        our_top.sort();
        assert_eq!(our_top, top);
        let meta: Vec<String> = serde_json::from_value(shape["metadata"].clone()).expect("metadata");
        let mut our_meta: Vec<String> = ours["metadata"].as_object().expect("object").keys().cloned().collect();
        our_meta.sort();
        assert_eq!(our_meta, meta);
        for (id, node) in ours["nodes"].as_object().expect("nodes") {
            key_diff(id, node, &dbt["nodes"][id], &mut diff);
        }
        for (id, source) in ours["sources"].as_object().expect("sources") {
            key_diff(id, source, &dbt["sources"][id], &mut diff);
        }
        for (id, mac) in ours["macros"].as_object().expect("macros") {
            key_diff(id, mac, &dbt["macros"][id], &mut diff);
        }
        assert!(diff.is_empty(), "{}", diff.join("\n"));
    }

    #[test]
    fn values_match_dbt_where_orrery_knows_them() {
        let dbt = fixture("manifest.json");
        let ours = manifest_json(&compiled_from_dbt(&dbt));
        let fields = [
            "database", "schema", "name", "resource_type", "package_name", "path", "original_file_path", "unique_id",
            "fqn", "alias", "checksum", "tags", "description", "depends_on", "refs", "sources", "compiled_path",
            "compiled", "compiled_code", "raw_code", "language", "relation_name", "test_metadata", "column_name",
            "attached_node", "file_key_name", "version", "latest_version", "columns",
        ];
        let config_fields = ["materialized", "enabled", "tags", "schema", "alias", "severity", "where", "limit", "warn_if",
            "error_if", "fail_calc", "on_schema_change", "unique_key", "strategy", "target_schema", "check_cols", "delimiter"];
        let mut diff = Vec::new();
        for (id, theirs) in dbt["nodes"].as_object().expect("nodes") {
            let node = &ours["nodes"][id];
            for f in fields {
                if theirs.get(f) != node.get(f) {
                    diff.push(format!("{id}.{f}: ours {:?} dbt {:?}", node.get(f), theirs.get(f)));
                }
            }
            for f in config_fields {
                if theirs["config"].get(f) != node["config"].get(f) {
                    diff.push(format!("{id}.config.{f}: ours {:?} dbt {:?}", node["config"].get(f), theirs["config"].get(f)));
                }
            }
        }
        for (id, theirs) in dbt["sources"].as_object().expect("sources") {
            for f in ["database", "schema", "name", "identifier", "fqn", "relation_name", "source_name", "path", "columns"] {
                if theirs.get(f) != ours["sources"][id].get(f) {
                    diff.push(format!("{id}.{f}: ours {:?} dbt {:?}", ours["sources"][id].get(f), theirs.get(f)));
                }
            }
        }
        for map in ["parent_map", "child_map"] {
            if ours[map] != dbt[map] {
                diff.push(format!("{map}: ours {} dbt {}", ours[map], dbt[map]));
            }
        }
        assert_eq!(ours["metadata"]["project_id"], dbt["metadata"]["project_id"]);
        assert_eq!(ours["metadata"]["dbt_schema_version"], dbt["metadata"]["dbt_schema_version"]);
        assert!(diff.is_empty(), "{}", diff.join("\n"));
    }

    #[test]
    fn cosmos_finds_what_it_reads() {
        // Cosmos' manifest loader reads these per node (cosmos/dbt/graph.py, load_from_dbt_manifest).
        let ours = manifest_json(&compiled_from_dbt(&fixture("manifest.json")));
        for (id, node) in ours["nodes"].as_object().expect("nodes") {
            for pointer in ["/unique_id", "/resource_type", "/depends_on/nodes", "/original_file_path", "/tags", "/config",
                "/config/materialized", "/name", "/package_name", "/fqn", "/alias", "/schema"] {
                let found = node.pointer(pointer).is_some();
                let seed_has_no_nodes = pointer == "/depends_on/nodes" && node["resource_type"] == "seed";
                assert!(found || seed_has_no_nodes, "{id}{pointer}");
            }
        }
        assert!(ours.pointer("/sources/source.shop.raw.orders/resource_type").is_some());
    }

    #[test]
    fn writes_target_manifest_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut compiled = compiled_from_dbt(&fixture("manifest.json"));
        compiled.project_root = dir.path().to_path_buf();
        write(&compiled).expect("written");
        let text = std::fs::read_to_string(dir.path().join("target/manifest.json")).expect("read");
        let back: Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(back, manifest_json(&compiled));
    }
}
