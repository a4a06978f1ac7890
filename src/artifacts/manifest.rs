//! `target/manifest.json` in dbt's manifest v12 format, for the parts orrery knows: metadata,
//! nodes, sources, macros, parent_map and child_map; the other top-level maps stay empty so
//! tools that load dbt manifests (Cosmos, dbt-artifacts-parser) read it.
//!
//! Serialized straight from the compiled nodes (no `serde_json::Value` tree of the whole
//! manifest): at 10k models that tree cost most of `compile`'s time and memory.

use std::io::Write;
use std::sync::LazyLock;

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::diagnostics::Diagnostic;
use crate::node::{ColumnInfo, Compiled, MacroInfo, Node, NodeConfig, ResourceType, SourceTable};

pub const SCHEMA_VERSION: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// The dbt release whose manifest we write, tagged so a reader can tell orrery wrote it.
fn dbt_version() -> String {
    format!("1.11.0+orrery.{}", env!("CARGO_PKG_VERSION"))
}

static DOCS: LazyLock<Value> = LazyLock::new(|| json!({"show": true, "node_color": null}));
static CONTRACT: LazyLock<Value> = LazyLock::new(|| json!({"enforced": false, "alias_types": true}));
static NODE_CONTRACT: LazyLock<Value> = LazyLock::new(|| json!({"enforced": false, "alias_types": true, "checksum": null}));
static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| json!({}));
static EMPTY_ARRAY: LazyLock<Value> = LazyLock::new(|| json!([]));

/// What every node's JSON needs from the whole project, computed once.
struct Context<'a> {
    compiled: &'a Compiled,
    created_at: f64,
    nodes_by_id: crate::FastMap<&'a str, &'a Node>,
    /// `source('x', 'y')` as a test's `model` kwarg spells it, with the source's name.
    source_calls: Vec<(String, &'a str)>,
}

/// The whole manifest as JSON.
pub fn manifest_json(compiled: &Compiled) -> Value {
    let mut bytes = Vec::new();
    match write_json(&mut bytes, compiled) {
        Ok(()) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Writes the manifest as compact JSON; nodes are serialized in parallel, in batches.
fn write_json(out: &mut impl Write, compiled: &Compiled) -> std::io::Result<()> {
    let created_at = chrono::DateTime::parse_from_rfc3339(&compiled.generated_at).map_or(0.0, |t| t.timestamp_micros() as f64 / 1e6);
    let ctx = &Context {
        compiled,
        created_at,
        nodes_by_id: compiled.nodes.iter().rev().map(|n| (n.unique_id.as_str(), n)).collect(),
        source_calls: compiled
            .sources
            .iter()
            .map(|s| (format!("source('{}', '{}')", s.source_name, s.name), s.source_name.as_str()))
            .collect(),
    };
    let metadata = json!({
        "dbt_schema_version": SCHEMA_VERSION,
        "dbt_version": dbt_version(),
        "generated_at": compiled.generated_at,
        "invocation_id": compiled.invocation_id,
        "invocation_started_at": compiled.generated_at,
        "env": {},
        "project_name": compiled.project_name,
        "project_id": crate::md5_hex(&compiled.project_name),
        "user_id": null,
        "send_anonymous_usage_stats": false,
        "adapter_type": compiled.target.adapter_type,
        "quoting": {"database": true, "schema": true, "identifier": true, "column": null},
        "run_started_at": compiled.generated_at,
    });
    out.write_all(b"{\"metadata\":")?;
    serde_json::to_writer(&mut *out, &metadata)?;
    out.write_all(b",\"nodes\":")?;
    write_object(out, by_id(&compiled.nodes, |n| &n.unique_id), |n| &n.unique_id, |n| NodeJson { ctx, n })?;
    out.write_all(b",\"sources\":")?;
    write_object(out, by_id(&compiled.sources, |s| &s.unique_id), |s| &s.unique_id, |s| SourceJson { ctx, s })?;
    out.write_all(b",\"macros\":")?;
    write_object(out, by_id(&compiled.macros, |m| &m.unique_id), |m| &m.unique_id, |m| MacroJson { ctx, m })?;
    for key in ["docs", "exposures", "metrics", "groups", "selectors", "disabled"] {
        write!(out, ",\"{key}\":{{}}")?;
    }
    let (parent_map, child_map) = lineage_maps(compiled);
    out.write_all(b",\"parent_map\":")?;
    crate::json::to_writer(&mut *out, &parent_map)?;
    out.write_all(b",\"child_map\":")?;
    crate::json::to_writer(&mut *out, &child_map)?;
    for key in ["group_map", "saved_queries", "semantic_models", "unit_tests", "functions"] {
        write!(out, ",\"{key}\":{{}}")?;
    }
    out.write_all(b"}")
}

/// Items keyed by id: a repeated id keeps its first place and its last value, as inserting
/// into a `serde_json::Map` would.
fn by_id<T>(items: &[T], id: fn(&T) -> &str) -> Vec<&T> {
    let mut last: crate::FastMap<&str, usize> = crate::FastMap::with_capacity_and_hasher(items.len(), Default::default());
    for (i, item) in items.iter().enumerate() {
        last.insert(id(item), i);
    }
    items.iter().filter_map(|item| last.remove(id(item)).map(|i| &items[i])).collect()
}

/// A JSON object of `id: json(item)`, its entries serialized in parallel in bounded batches.
fn write_object<'a, T: Sync, J: Serialize>(
    out: &mut impl Write,
    items: Vec<&'a T>,
    id: fn(&T) -> &str,
    json: impl Fn(&'a T) -> J + Sync,
) -> std::io::Result<()> {
    out.write_all(b"{")?;
    let mut first = true;
    // Each part's buffer starts at the size the batch before averaged per item, so that it
    // seldom grows (and copies itself) on the way.
    let mut per_item = 1024;
    for batch in items.chunks(1024) {
        let parts: Vec<std::io::Result<Vec<u8>>> = batch
            .par_chunks(32)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * per_item);
                for &item in chunk {
                    if !buf.is_empty() {
                        buf.push(b',');
                    }
                    crate::json::push_str(&mut buf, id(item));
                    buf.push(b':');
                    crate::json::to_vec_into(&mut buf, &json(item))?;
                }
                Ok(buf)
            })
            .collect();
        let written: usize = parts.iter().map(|p| p.as_ref().map_or(0, Vec::len)).sum();
        let average = written / batch.len();
        per_item = average + average / 8 + 64;
        for part in parts {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(&part?)?;
        }
    }
    out.write_all(b"}")
}

/// Writes `<project>/<target-path>/manifest.json` atomically, over the spare the write before
/// left in `orrery/spare/manifest.json` (see [`crate::replace`]).
pub fn write(compiled: &Compiled) -> Result<(), Diagnostic> {
    let dir = compiled.project_root.join(&compiled.target_path);
    let path = dir.join("manifest.json");
    let fail = |err: &dyn std::fmt::Display| {
        Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot write {}: {err}", path.display()))
            .with_help("check that the target path is writable")
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let spare = crate::replace::spare_for(&dir, "manifest.json");
    crate::replace::write_buffered(&path, Some(&spare), |out| write_json(out, compiled)).map_err(|e| fail(&e))
}

/// Every node and source id (and, in the child map, every id a node depends on) with its sorted, distinct
/// neighbours, in id order: a JSON object as a `BTreeMap` of `BTreeSet`s would write it.
struct Lineage<'a>(Vec<(&'a str, Vec<&'a str>)>);

impl Serialize for Lineage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, neighbours) in &self.0 {
            map.serialize_entry(id, neighbours)?;
        }
        map.end()
    }
}

/// The parent map and the child map.
fn lineage_maps(compiled: &Compiled) -> (Lineage<'_>, Lineage<'_>) {
    let capacity = compiled.nodes.len() + compiled.sources.len();
    let mut parents: crate::FastMap<&str, Vec<&str>> = crate::FastMap::with_capacity_and_hasher(capacity, Default::default());
    let mut children: crate::FastMap<&str, Vec<&str>> = crate::FastMap::with_capacity_and_hasher(capacity, Default::default());
    for id in compiled.nodes.iter().map(|n| n.unique_id.as_str()).chain(compiled.sources.iter().map(|s| s.unique_id.as_str())) {
        parents.entry(id).or_default();
        children.entry(id).or_default();
    }
    for node in &compiled.nodes {
        for dep in &node.depends_on {
            parents.entry(&node.unique_id).or_default().push(dep);
            children.entry(dep).or_default().push(&node.unique_id);
        }
    }
    (Lineage::sorted(parents), Lineage::sorted(children))
}

impl<'a> Lineage<'a> {
    fn sorted(map: crate::FastMap<&'a str, Vec<&'a str>>) -> Self {
        let mut entries: Vec<(&str, Vec<&str>)> = map.into_iter().collect();
        entries.sort_unstable_by_key(|(id, _)| *id);
        for (_, neighbours) in &mut entries {
            neighbours.sort_unstable();
            neighbours.dedup();
        }
        Lineage(entries)
    }
}

struct Columns<'a>(&'a IndexMap<String, ColumnInfo>);

impl Serialize for Columns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (key, c) in self.0 {
            m.serialize_entry(key, &Column(c))?;
        }
        m.end()
    }
}

struct Column<'a>(&'a ColumnInfo);

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("description", &c.description)?;
        m.serialize_entry("meta", &c.meta)?;
        m.serialize_entry("data_type", &c.data_type)?;
        m.serialize_entry("constraints", &*EMPTY_ARRAY)?;
        m.serialize_entry("quote", &c.quote)?;
        m.serialize_entry("config", &json!({"meta": c.meta, "tags": c.tags}))?;
        m.serialize_entry("tags", &c.tags)?;
        m.serialize_entry("granularity", &Value::Null)?;
        m.serialize_entry("doc_blocks", &c.doc_blocks)?;
        m.end()
    }
}

struct Hooks<'a>(&'a [String]);

impl Serialize for Hooks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|sql| json!({"sql": sql, "transaction": true, "index": null})))
    }
}

/// A config object's entries: a key also in the config's `extra` takes that value in its own
/// place, and the other `extra` keys follow, as inserting into a `serde_json::Map` orders them.
struct ConfigEntries<'a, M> {
    map: M,
    extra: &'a IndexMap<String, Value>,
    done: Vec<&'static str>,
}

impl<M: SerializeMap> ConfigEntries<'_, M> {
    fn put<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), M::Error> {
        self.done.push(key);
        match self.extra.get(key) {
            Some(given) => self.map.serialize_entry(key, given),
            None => self.map.serialize_entry(key, value),
        }
    }

    fn end(mut self) -> Result<M::Ok, M::Error> {
        for (key, value) in self.extra {
            if !self.done.contains(&key.as_str()) {
                self.map.serialize_entry(key, value)?;
            }
        }
        self.map.end()
    }
}

/// The node's config as dbt writes it for its resource type, defaults filled in.
struct ConfigJson<'a> {
    kind: ResourceType,
    c: &'a NodeConfig,
}

impl Serialize for ConfigJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, c) = (self.kind, self.c);
        let null = &Value::Null;
        let mut m = ConfigEntries { map: s.serialize_map(None)?, extra: &c.extra, done: Vec::with_capacity(48) };
        m.put("enabled", &c.enabled)?;
        m.put("alias", &c.alias)?;
        // dbt gives every test the custom schema `dbt_test__audit` unless configured otherwise.
        let schema = c.schema.as_deref().or((kind == ResourceType::Test).then_some("dbt_test__audit"));
        m.put("schema", &schema)?;
        m.put("database", &c.database)?;
        m.put("tags", &c.tags)?;
        m.put("meta", &c.meta)?;
        m.put("group", null)?;
        m.put("materialized", &c.materialized)?;
        m.put("static_analysis", null)?;
        if kind == ResourceType::Test {
            m.put("severity", c.severity.as_deref().unwrap_or("ERROR"))?;
            m.put("store_failures", &c.store_failures)?;
            m.put("store_failures_as", null)?;
            m.put("where", &c.where_)?;
            m.put("limit", &c.limit)?;
            m.put("fail_calc", c.fail_calc.as_deref().unwrap_or("count(*)"))?;
            m.put("warn_if", c.warn_if.as_deref().unwrap_or("!= 0"))?;
            m.put("error_if", c.error_if.as_deref().unwrap_or("!= 0"))?;
        } else {
            m.put("incremental_strategy", &c.incremental_strategy)?;
            m.put("batch_size", null)?;
            m.put("lookback", &1)?;
            m.put("begin", null)?;
            m.put("persist_docs", &c.persist_docs)?;
            m.put("post-hook", &Hooks(&c.post_hook))?;
            m.put("pre-hook", &Hooks(&c.pre_hook))?;
            m.put("quoting", &c.quoting)?;
            m.put("column_types", &c.column_types)?;
            m.put("full_refresh", &c.full_refresh)?;
            m.put("unique_key", &c.unique_key)?;
            m.put("on_schema_change", c.on_schema_change.as_deref().unwrap_or("ignore"))?;
            m.put("on_configuration_change", "apply")?;
            m.put("grants", &c.grants)?;
            m.put("packages", &*EMPTY_ARRAY)?;
            m.put("docs", &*DOCS)?;
            m.put("contract", &*CONTRACT)?;
            m.put("event_time", null)?;
            m.put("concurrent_batches", null)?;
        }
        match kind {
            ResourceType::Model => {
                m.put("access", "protected")?;
                m.put("freshness", null)?;
            }
            ResourceType::Seed => {
                m.put("delimiter", c.delimiter.as_deref().unwrap_or(","))?;
                m.put("quote_columns", &c.quote_columns)?;
            }
            ResourceType::Snapshot => {
                m.put("strategy", &c.strategy)?;
                m.put("target_schema", &c.target_schema)?;
                m.put("target_database", &c.target_database)?;
                m.put("updated_at", &c.updated_at)?;
                m.put("check_cols", &c.check_cols)?;
                m.put("dbt_valid_to_current", null)?;
                m.put(
                    "snapshot_meta_column_names",
                    &json!({"dbt_valid_to": null, "dbt_valid_from": null, "dbt_scd_id": null, "dbt_updated_at": null, "dbt_is_deleted": null}),
                )?;
                if let Some(hard) = c.invalidate_hard_deletes {
                    m.put("invalidate_hard_deletes", &hard)?;
                }
            }
            _ => {}
        }
        // Keys dbt does not type (and user keys) are kept as given, as dbt keeps them.
        m.end()
    }
}

/// [`ConfigJson`] of a config most nodes share: each worker keeps the JSON of the last few it
/// wrote and splices it in again for a node whose config is the same one (or written alike),
/// as [`crate::json::Raw`] (the manifest is written by `crate::json` only).
struct SharedConfig<'a> {
    kind: ResourceType,
    c: &'a std::sync::Arc<NodeConfig>,
}

impl Serialize for SharedConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        type Written = crate::Recent<(ResourceType, std::sync::Arc<NodeConfig>), Vec<u8>>;
        thread_local! {
            static WRITTEN: std::cell::RefCell<Written> = const { std::cell::RefCell::new(crate::Recent::new()) };
        }
        let (kind, c) = (self.kind, self.c);
        WRITTEN.with_borrow_mut(|written| {
            let json = written.get_or_make(
                |(k, w)| *k == kind && (std::sync::Arc::ptr_eq(w, c) || w.writes_as(c)),
                || {
                    let mut json = Vec::new();
                    crate::json::to_vec_into(&mut json, &ConfigJson { kind, c }).map_err(serde::ser::Error::custom)?;
                    Ok(((kind, c.clone()), json))
                },
            )?;
            crate::json::Raw(json).serialize(s)
        })
    }
}

/// A version as the yml wrote it: `2` stays a number, `"2.1a"` a string.
fn version_json(v: &Option<String>) -> Value {
    match v.as_deref() {
        None => Value::Null,
        Some(s) => s.parse::<i64>().map(Value::from).or_else(|_| s.parse::<f64>().map(Value::from)).unwrap_or_else(|_| json!(s)),
    }
}

/// `models.orders`, `seeds.raw`, `sources.raw`: the yml section a generic test came from.
fn file_key_name(ctx: &Context, attached: Option<&str>, node: &Node) -> Value {
    let model = node.test_metadata.as_ref().and_then(|m| m.kwargs.get("model")).and_then(Value::as_str).unwrap_or("");
    if model.contains("source(")
        && let Some((_, source_name)) = ctx.source_calls.iter().find(|(call, _)| model.contains(call.as_str()))
    {
        return json!(format!("sources.{source_name}"));
    }
    let Some(target) = attached.and_then(|id| ctx.nodes_by_id.get(id)) else {
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

struct RefJson<'a>(&'a crate::node::RefCall);

impl Serialize for RefJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("package", &self.0.package)?;
        m.serialize_entry("version", &version_json(&self.0.version))?;
        m.end()
    }
}

/// A file checksum as dbt writes it: `{"name": "sha256", "checksum": "<hex>"}`.
#[derive(serde::Serialize)]
struct Checksum<'a> {
    name: &'a str,
    checksum: &'a str,
}

/// A node's `refs`, each as [`RefJson`], without collecting them first.
struct Refs<'a>(&'a [crate::node::RefCall]);

impl Serialize for Refs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(RefJson))
    }
}

struct DependsOn<'a> {
    macros: &'a [String],
    nodes: Option<&'a [String]>,
}

impl Serialize for DependsOn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("macros", self.macros)?;
        if let Some(nodes) = self.nodes {
            m.serialize_entry("nodes", &SourcesFirst(nodes))?;
        }
        m.end()
    }
}

/// Dependency ids as dbt lists them: the sources a node reads first, then the nodes it refs,
/// each in the order the node first uses them (dbt resolves sources before refs).
struct SourcesFirst<'a>(&'a [String]);

impl Serialize for SourcesFirst<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let is_source = |id: &&String| id.starts_with("source.");
        s.collect_seq(self.0.iter().filter(is_source).chain(self.0.iter().filter(|id| !is_source(id))))
    }
}

struct NodeJson<'a> {
    ctx: &'a Context<'a>,
    n: &'a Node,
}

impl Serialize for NodeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (compiled, n) = (self.ctx.compiled, self.n);
        let null = &Value::Null;
        let kind = n.resource_type;
        let generic = n.test_metadata.is_some();
        let has_relation = match kind {
            ResourceType::Model => n.config.materialized != "ephemeral",
            ResourceType::Seed | ResourceType::Snapshot => true,
            ResourceType::Test => n.config.store_failures == Some(true),
            ResourceType::Analysis | ResourceType::Source => false,
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("database", &n.relation.database)?;
        m.serialize_entry("schema", &n.relation.schema)?;
        m.serialize_entry("name", &n.name)?;
        m.serialize_entry("resource_type", kind.as_str())?;
        m.serialize_entry("package_name", &n.package_name)?;
        m.serialize_entry("path", &n.path)?;
        m.serialize_entry("original_file_path", &n.original_file_path)?;
        m.serialize_entry("unique_id", &n.unique_id)?;
        m.serialize_entry("fqn", &n.fqn)?;
        m.serialize_entry("alias", &n.relation.identifier)?;
        if generic {
            m.serialize_entry("checksum", &Checksum { name: "none", checksum: "" })?;
        } else {
            m.serialize_entry("checksum", &Checksum { name: "sha256", checksum: &n.checksum })?;
        }
        m.serialize_entry("config", &SharedConfig { kind, c: &n.config })?;
        m.serialize_entry("tags", &n.config.tags)?;
        m.serialize_entry("description", &n.description)?;
        m.serialize_entry("columns", &Columns(&n.columns))?;
        m.serialize_entry("meta", &n.config.meta)?;
        m.serialize_entry("group", null)?;
        m.serialize_entry("docs", &*DOCS)?;
        m.serialize_entry("patch_path", &n.patch_path)?;
        m.serialize_entry("build_path", null)?;
        m.serialize_entry("unrendered_config", &*EMPTY_OBJECT)?;
        m.serialize_entry("created_at", &self.ctx.created_at)?;
        m.serialize_entry("relation_name", &has_relation.then(|| n.relation.render_dbt(crate::relation::QuotePolicy::default())))?;
        // dbt keeps SQL files stripped of surrounding whitespace; a snapshot's block as written.
        let raw_code = if n.resource_type == ResourceType::Snapshot { &*n.raw_code } else { n.raw_code.trim() };
        m.serialize_entry("raw_code", raw_code)?;
        m.serialize_entry("doc_blocks", &n.doc_blocks)?;
        if kind == ResourceType::Seed {
            m.serialize_entry("root_path", &compiled.project_root.display().to_string())?;
            m.serialize_entry("depends_on", &DependsOn { macros: &n.depends_on_macros, nodes: None })?;
            return m.end();
        }
        m.serialize_entry("language", "sql")?;
        m.serialize_entry("refs", &Refs(&n.refs))?;
        m.serialize_entry("sources", &n.sources)?;
        m.serialize_entry("metrics", &*EMPTY_ARRAY)?;
        m.serialize_entry("functions", &*EMPTY_ARRAY)?;
        m.serialize_entry("depends_on", &DependsOn { macros: &n.depends_on_macros, nodes: Some(&n.depends_on) })?;
        let compiled_path = match kind {
            // dbt compile writes no file for snapshots.
            ResourceType::Snapshot => None,
            _ if generic => Some(format!("{}/compiled/{}/{}/{}", compiled.target_path, n.package_name, n.original_file_path, n.path)),
            _ => Some(format!("{}/compiled/{}/{}", compiled.target_path, n.package_name, n.original_file_path)),
        };
        m.serialize_entry("compiled_path", &compiled_path)?;
        m.serialize_entry("compiled", &n.compiled_code.is_some())?;
        m.serialize_entry("compiled_code", &n.compiled_code)?;
        m.serialize_entry("extra_ctes_injected", &true)?;
        m.serialize_entry("extra_ctes", &*EMPTY_ARRAY)?;
        m.serialize_entry("contract", &*NODE_CONTRACT)?;
        match kind {
            ResourceType::Model => {
                m.serialize_entry("access", "protected")?;
                m.serialize_entry("constraints", &*EMPTY_ARRAY)?;
                m.serialize_entry("version", &version_json(&n.version))?;
                m.serialize_entry("latest_version", &version_json(&n.latest_version))?;
                m.serialize_entry("deprecation_date", null)?;
                m.serialize_entry("primary_key", &*EMPTY_ARRAY)?;
                m.serialize_entry("time_spine", null)?;
            }
            ResourceType::Test if generic => {
                m.serialize_entry("column_name", &n.column_name)?;
                m.serialize_entry("file_key_name", &file_key_name(self.ctx, n.attached_node.as_deref(), n))?;
                m.serialize_entry("attached_node", &n.attached_node)?;
                m.serialize_entry("test_metadata", &n.test_metadata)?;
            }
            _ => {}
        }
        m.end()
    }
}

struct SourceJson<'a> {
    ctx: &'a Context<'a>,
    s: &'a SourceTable,
}

impl Serialize for SourceJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.s;
        let null = &Value::Null;
        let freshness =
            json!({"warn_after": {"count": null, "period": null}, "error_after": {"count": null, "period": null}, "filter": null});
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("database", &s.relation.database)?;
        m.serialize_entry("schema", &s.relation.schema)?;
        m.serialize_entry("name", &s.name)?;
        m.serialize_entry("resource_type", "source")?;
        m.serialize_entry("package_name", &s.package_name)?;
        m.serialize_entry("path", &s.original_file_path)?;
        m.serialize_entry("original_file_path", &s.original_file_path)?;
        m.serialize_entry("unique_id", &s.unique_id)?;
        m.serialize_entry("fqn", &s.fqn)?;
        m.serialize_entry("source_name", &s.source_name)?;
        m.serialize_entry("source_description", "")?;
        m.serialize_entry("loader", "")?;
        m.serialize_entry("identifier", &s.relation.identifier)?;
        m.serialize_entry("quoting", &json!({"database": null, "schema": null, "identifier": null, "column": null}))?;
        m.serialize_entry("loaded_at_field", &s.loaded_at_field)?;
        m.serialize_entry("loaded_at_query", null)?;
        m.serialize_entry("freshness", &freshness)?;
        m.serialize_entry("external", null)?;
        m.serialize_entry("description", &s.description)?;
        m.serialize_entry("columns", &Columns(&s.columns))?;
        m.serialize_entry("meta", &s.meta)?;
        m.serialize_entry("source_meta", &*EMPTY_OBJECT)?;
        m.serialize_entry("tags", &s.tags)?;
        let config = json!({
            "enabled": true,
            "event_time": null,
            "freshness": freshness,
            "loaded_at_field": s.loaded_at_field,
            "loaded_at_query": null,
            "meta": s.meta,
            "static_analysis": null,
            "tags": s.tags,
        });
        m.serialize_entry("config", &config)?;
        m.serialize_entry("patch_path", null)?;
        m.serialize_entry("unrendered_config", &*EMPTY_OBJECT)?;
        m.serialize_entry("relation_name", &s.relation.render_dbt(crate::relation::QuotePolicy::default()))?;
        m.serialize_entry("created_at", &self.ctx.created_at)?;
        m.serialize_entry("unrendered_database", null)?;
        m.serialize_entry("unrendered_schema", null)?;
        m.serialize_entry("doc_blocks", &s.doc_blocks)?;
        m.end()
    }
}

struct MacroJson<'a> {
    ctx: &'a Context<'a>,
    m: &'a MacroInfo,
}

impl Serialize for MacroJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.m;
        let null = &Value::Null;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &x.name)?;
        m.serialize_entry("resource_type", "macro")?;
        m.serialize_entry("package_name", &x.package_name)?;
        m.serialize_entry("path", &x.original_file_path)?;
        m.serialize_entry("original_file_path", &x.original_file_path)?;
        m.serialize_entry("unique_id", &x.unique_id)?;
        m.serialize_entry("macro_sql", &x.macro_sql)?;
        m.serialize_entry("depends_on", &json!({"macros": []}))?;
        m.serialize_entry("description", "")?;
        m.serialize_entry("meta", &*EMPTY_OBJECT)?;
        m.serialize_entry("docs", &*DOCS)?;
        m.serialize_entry("config", &json!({"meta": {}, "docs": *DOCS}))?;
        m.serialize_entry("patch_path", null)?;
        m.serialize_entry("arguments", &*EMPTY_ARRAY)?;
        m.serialize_entry("created_at", &self.ctx.created_at)?;
        m.serialize_entry("supported_languages", null)?;
        m.end()
    }
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
                        let info = ColumnInfo {
                            name: s(&c["name"]),
                            description: s(&c["description"]),
                            doc_blocks: serde_json::from_value(c["doc_blocks"].clone()).unwrap_or_default(),
                            ..ColumnInfo::default()
                        };
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
                    config: config.into(),
                    description: s(&n["description"]),
                    doc_blocks: serde_json::from_value(n["doc_blocks"].clone()).unwrap_or_default(),
                    patch_path: opt(&n["patch_path"]),
                    columns: columns(&n["columns"]),
                    raw_code: s(&n["raw_code"]).into(),
                    compiled_code: opt(&n["compiled_code"]),
                    compiled_code_incremental: None,
                    depends_on: serde_json::from_value(n["depends_on"]["nodes"].clone()).unwrap_or_default(),
                    depends_on_macros: serde_json::from_value(n["depends_on"]["macros"].clone()).unwrap_or_default(),
                    refs: n["refs"]
                        .as_array()
                        .map(|rs| {
                            rs.iter()
                                .map(|r| RefCall { package: opt(&r["package"]), name: s(&r["name"]), version: opt(&r["version"]) })
                                .collect()
                        })
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
                    late: None,
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
                doc_blocks: serde_json::from_value(t["doc_blocks"].clone()).unwrap_or_default(),
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
            late_context: None,
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
            "database",
            "schema",
            "name",
            "resource_type",
            "package_name",
            "path",
            "original_file_path",
            "unique_id",
            "fqn",
            "alias",
            "checksum",
            "tags",
            "description",
            "depends_on",
            "refs",
            "sources",
            "compiled_path",
            "compiled",
            "compiled_code",
            "raw_code",
            "language",
            "relation_name",
            "test_metadata",
            "column_name",
            "attached_node",
            "file_key_name",
            "version",
            "latest_version",
            "columns",
            "patch_path",
            "doc_blocks",
        ];
        let config_fields = [
            "materialized",
            "enabled",
            "tags",
            "schema",
            "alias",
            "severity",
            "where",
            "limit",
            "warn_if",
            "error_if",
            "fail_calc",
            "on_schema_change",
            "unique_key",
            "strategy",
            "target_schema",
            "check_cols",
            "delimiter",
        ];
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
            for pointer in [
                "/unique_id",
                "/resource_type",
                "/depends_on/nodes",
                "/original_file_path",
                "/tags",
                "/config",
                "/config/materialized",
                "/name",
                "/package_name",
                "/fqn",
                "/alias",
                "/schema",
            ] {
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
