//! The vocabulary shared by the stages after `render`: compiled nodes and sources, as dbt's
//! manifest names them. `render` produces a [`Compiled`]; `graph`, `plan` and the manifest
//! writer consume it.

use std::ops::Range;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostics::{Diagnostics, SourceFile};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Model,
    Seed,
    Snapshot,
    Test,
    Analysis,
    Source,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Test => "test",
            ResourceType::Analysis => "analysis",
            ResourceType::Source => "source",
        }
    }

    /// Whether the executor runs something for this kind of node.
    pub fn is_executable(self) -> bool {
        matches!(self, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Test)
    }
}

pub use crate::relation::Relation;

/// Where in a file a node (or one of its calls) came from, for diagnostics.
#[derive(Clone, Debug)]
pub struct Origin {
    pub source: SourceFile,
    pub span: Range<usize>,
}

/// A `ref()` as written: `ref('pkg', 'name', v=2)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

/// The generic test a test node was made from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestMetadata {
    pub name: String,
    pub namespace: Option<String>,
    /// dbt's kwargs: `column_name`, `model` (as the Jinja string dbt stores) and the test's own.
    pub kwargs: IndexMap<String, Value>,
}

/// The node's final config: dbt_project.yml tree, then properties yml, then `config()` calls.
/// Keys dbt knows are typed; everything else stays in `extra` (and is a warning when unknown).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeConfig {
    pub enabled: bool,
    pub materialized: String,
    pub tags: Vec<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub alias: Option<String>,
    /// Rendered SQL of each hook, in order.
    pub pre_hook: Vec<String>,
    pub post_hook: Vec<String>,
    pub unique_key: Option<Value>,
    pub incremental_strategy: Option<String>,
    pub on_schema_change: Option<String>,
    pub full_refresh: Option<bool>,
    pub grants: IndexMap<String, Vec<String>>,
    pub meta: IndexMap<String, Value>,
    pub persist_docs: IndexMap<String, Value>,
    pub quoting: IndexMap<String, Value>,
    pub column_types: IndexMap<String, String>,
    pub quote_columns: Option<bool>,
    pub delimiter: Option<String>,
    // snapshots
    pub strategy: Option<String>,
    pub updated_at: Option<String>,
    pub check_cols: Option<Value>,
    pub target_schema: Option<String>,
    pub target_database: Option<String>,
    pub invalidate_hard_deletes: Option<bool>,
    // tests
    pub severity: Option<String>,
    pub where_: Option<String>,
    pub limit: Option<u64>,
    pub warn_if: Option<String>,
    pub error_if: Option<String>,
    pub fail_calc: Option<String>,
    pub store_failures: Option<bool>,
    /// Every other key, as given.
    pub extra: IndexMap<String, Value>,
}

/// Whether two JSON values are written alike: `==` with objects' keys in the same order
/// (`==` on a `preserve_order` map ignores order) and numbers as they are written
/// (`0.0 == -0.0`, but they are written differently).
pub fn json_writes_as(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_string() == y.to_string(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_writes_as(a, b)),
        (Value::Object(x), Value::Object(y)) => json_map_writes_as(x, y),
        _ => a == b,
    }
}

/// [`json_writes_as`] of two JSON objects.
pub fn json_map_writes_as(a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>) -> bool {
    entries_alike(a.iter(), b.iter(), json_writes_as)
}

/// The same keys in the same order, each pair of values `eq`.
fn entries_alike<'a, V: 'a>(
    a: impl ExactSizeIterator<Item = (&'a String, &'a V)>,
    b: impl ExactSizeIterator<Item = (&'a String, &'a V)>,
    eq: impl Fn(&V, &V) -> bool,
) -> bool {
    a.len() == b.len() && a.zip(b).all(|((ka, va), (kb, vb))| ka == kb && eq(va, vb))
}

impl NodeConfig {
    /// Whether the two serialize to the same JSON: every field equal, maps and objects with
    /// their keys in the same order (`==` on an `IndexMap` ignores order), numbers written
    /// alike (`0.0 == -0.0`, but they are written differently).
    pub fn writes_as(&self, other: &NodeConfig) -> bool {
        let value = json_writes_as;
        fn option(a: &Option<Value>, b: &Option<Value>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => json_writes_as(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
        }
        fn map<V>(a: &IndexMap<String, V>, b: &IndexMap<String, V>, eq: impl Fn(&V, &V) -> bool) -> bool {
            entries_alike(a.iter(), b.iter(), eq)
        }
        // Destructured whole, so that a field added to the struct must be added here too.
        let NodeConfig {
            enabled,
            materialized,
            tags,
            database,
            schema,
            alias,
            pre_hook,
            post_hook,
            unique_key,
            incremental_strategy,
            on_schema_change,
            full_refresh,
            grants,
            meta,
            persist_docs,
            quoting,
            column_types,
            quote_columns,
            delimiter,
            strategy,
            updated_at,
            check_cols,
            target_schema,
            target_database,
            invalidate_hard_deletes,
            severity,
            where_,
            limit,
            warn_if,
            error_if,
            fail_calc,
            store_failures,
            extra,
        } = self;
        *enabled == other.enabled
            && *materialized == other.materialized
            && *tags == other.tags
            && *database == other.database
            && *schema == other.schema
            && *alias == other.alias
            && *pre_hook == other.pre_hook
            && *post_hook == other.post_hook
            && option(unique_key, &other.unique_key)
            && *incremental_strategy == other.incremental_strategy
            && *on_schema_change == other.on_schema_change
            && *full_refresh == other.full_refresh
            && map(grants, &other.grants, |a, b| a == b)
            && map(meta, &other.meta, value)
            && map(persist_docs, &other.persist_docs, value)
            && map(quoting, &other.quoting, value)
            && map(column_types, &other.column_types, |a, b| a == b)
            && *quote_columns == other.quote_columns
            && *delimiter == other.delimiter
            && *strategy == other.strategy
            && *updated_at == other.updated_at
            && option(check_cols, &other.check_cols)
            && *target_schema == other.target_schema
            && *target_database == other.target_database
            && *invalidate_hard_deletes == other.invalidate_hard_deletes
            && *severity == other.severity
            && *where_ == other.where_
            && *limit == other.limit
            && *warn_if == other.warn_if
            && *error_if == other.error_if
            && *fail_calc == other.fail_calc
            && *store_failures == other.store_failures
            && map(extra, &other.extra, value)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: IndexMap<String, Value>,
    pub tags: Vec<String>,
    pub quote: Option<bool>,
    /// The docs blocks its description's `doc()` calls read (`doc.<package>.<name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_blocks: Vec<String>,
}

/// A node rendered at run time: its template asks the warehouse (see `render::late`).
#[derive(Clone, Debug)]
pub struct LateNode {
    /// The call that made it late, as `file:line:column`.
    pub call: String,
    /// What that call is, in words.
    pub message: String,
    /// What rendering it at run time reads (opaque outside `render`).
    pub bundle: serde_json::Value,
}

/// One model, seed, snapshot, test or analysis after rendering.
#[derive(Clone, Debug)]
pub struct Node {
    /// dbt's unique_id: `model.shop.orders`, `test.shop.not_null_orders_id.<hash>`.
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub package_name: String,
    /// Path below the resource's path root (dbt's `path`), e.g. `staging/stg_orders.sql`.
    pub path: String,
    /// Path below the package root (dbt's `original_file_path`), e.g. `models/staging/stg_orders.sql`.
    pub original_file_path: String,
    pub fqn: Vec<String>,
    pub relation: Relation,
    /// Shared by the nodes whose configs are alike (most nodes of a folder): written once,
    /// and a node is 1 kB smaller. `Arc::make_mut` to change one node's.
    pub config: std::sync::Arc<NodeConfig>,
    pub description: String,
    /// The docs blocks the description's `doc()` calls read (`doc.<package>.<name>`).
    pub doc_blocks: Vec<String>,
    /// The properties file that describes it, as dbt writes it: `<package>://<path>`.
    pub patch_path: Option<String>,
    pub columns: IndexMap<String, ColumnInfo>,
    /// The file's text (for seeds: empty; the CSV is at `original_file_path`), shared with the
    /// file itself where it is the whole file.
    pub raw_code: std::sync::Arc<str>,
    /// SQL as `dbt compile` writes it (ephemeral CTEs injected). `None` for seeds.
    pub compiled_code: Option<String>,
    /// For incremental models: the SQL rendered with `is_incremental()` true.
    pub compiled_code_incremental: Option<String>,
    /// Node and source unique_ids this node depends on, in first-use order.
    pub depends_on: Vec<String>,
    pub depends_on_macros: Vec<String>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<[String; 2]>,
    pub version: Option<String>,
    pub latest_version: Option<String>,
    pub test_metadata: Option<TestMetadata>,
    /// For tests: the model, seed, snapshot or source the test is attached to.
    pub attached_node: Option<String>,
    pub column_name: Option<String>,
    /// sha256 of the file's text (dbt's checksum).
    pub checksum: String,
    /// Absolute path of a seed's CSV file.
    pub seed_file: Option<std::path::PathBuf>,
    /// Where the node was defined, for diagnostics.
    pub origin: Option<Origin>,
    /// Set when the node is rendered at run time (its `compiled_code` is then none).
    pub late: Option<Box<LateNode>>,
}

impl Node {
    /// This node's own config to change (a copy of the shared one, if it is shared).
    pub fn config_mut(&mut self) -> &mut NodeConfig {
        std::sync::Arc::make_mut(&mut self.config)
    }

    /// A node with the given identity and every other field empty or default: the start for
    /// stages (and tests) that fill in what they know.
    pub fn new(resource_type: ResourceType, package_name: &str, name: &str, relation: Relation) -> Node {
        Node {
            unique_id: format!("{}.{package_name}.{name}", resource_type.as_str()),
            name: name.to_string(),
            resource_type,
            package_name: package_name.to_string(),
            path: format!("{name}.sql"),
            original_file_path: format!("models/{name}.sql"),
            fqn: vec![package_name.to_string(), name.to_string()],
            relation,
            config: std::sync::Arc::new(NodeConfig { enabled: true, ..NodeConfig::default() }),
            description: String::new(),
            doc_blocks: Vec::new(),
            patch_path: None,
            columns: IndexMap::new(),
            raw_code: std::sync::Arc::from(""),
            compiled_code: None,
            compiled_code_incremental: None,
            depends_on: Vec::new(),
            depends_on_macros: Vec::new(),
            refs: Vec::new(),
            sources: Vec::new(),
            version: None,
            latest_version: None,
            test_metadata: None,
            attached_node: None,
            column_name: None,
            checksum: String::new(),
            seed_file: None,
            origin: None,
            late: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SourceTable {
    /// `source.shop.raw.orders`
    pub unique_id: String,
    pub source_name: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub fqn: Vec<String>,
    pub relation: Relation,
    pub description: String,
    /// The docs blocks the description's `doc()` calls read.
    pub doc_blocks: Vec<String>,
    pub columns: IndexMap<String, ColumnInfo>,
    pub meta: IndexMap<String, Value>,
    pub tags: Vec<String>,
    pub loaded_at_field: Option<String>,
    pub origin: Option<Origin>,
}

/// A macro as the manifest lists it.
#[derive(Clone, Debug)]
pub struct MacroInfo {
    /// `macro.shop.cents_to_dollars`
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub macro_sql: String,
}

/// The target a project was compiled for. Credentials never appear here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    /// `duckdb`, `postgres`, ...
    pub adapter_type: String,
    pub database: String,
    pub schema: String,
    pub threads: Option<usize>,
    /// The output's settings with secrets kept as the `env_var(...)` references written in the
    /// profile (never their values): what a plan carries to open a connection later.
    pub connection: IndexMap<String, Value>,
}

/// Everything `render` produced for one project and target.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub project_name: String,
    /// Absolute path of the dbt project directory.
    pub project_root: std::path::PathBuf,
    /// The project's `target-path`, relative to the project root (default `target`).
    pub target_path: String,
    pub target: TargetInfo,
    /// Nodes in a stable order (by unique_id).
    pub nodes: Vec<Node>,
    pub sources: Vec<SourceTable>,
    pub macros: Vec<MacroInfo>,
    /// Rendered `on-run-start` / `on-run-end` statements.
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub invocation_id: String,
    pub generated_at: String,
    /// Warnings (and, when rendering failed, errors) found on the way.
    pub diagnostics: Diagnostics,
    /// What every node rendered at run time renders with (see `render::late`), when one is.
    pub late_context: Option<serde_json::Value>,
}

/// What `var(name)` renders for a runtime variable (`[export.airflow] runtime_vars`): a
/// placeholder the plan keeps and `run --vars` binds as a SQL literal.
pub fn runtime_var_marker(name: &str) -> String {
    format!("__orrery_runtime_var_{name}__")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(meta: &[(&str, Value)]) -> NodeConfig {
        NodeConfig {
            enabled: true,
            materialized: "table".into(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ..NodeConfig::default()
        }
    }

    fn json(c: &NodeConfig) -> Vec<u8> {
        let mut out = Vec::new();
        crate::json::to_vec_into(&mut out, c).expect("writes");
        out
    }

    #[test]
    fn configs_write_alike_only_when_their_json_is_the_same() {
        let a = config(&[("owner", "ops".into()), ("tier", serde_json::json!({"x": 1, "y": [0.5]}))]);
        let same = a.clone();
        assert!(a.writes_as(&same));
        assert_eq!(json(&a), json(&same));
        // The same entries in another order are `==` for an IndexMap, but not written alike.
        let reordered = config(&[("tier", serde_json::json!({"x": 1, "y": [0.5]})), ("owner", "ops".into())]);
        assert!(!a.writes_as(&reordered));
        assert_ne!(json(&a), json(&reordered));
        let inner = config(&[("owner", "ops".into()), ("tier", serde_json::json!({"y": [0.5], "x": 1}))]);
        assert!(!a.writes_as(&inner));
        // 0.0 == -0.0 as numbers, yet they are written differently.
        let zero = config(&[("w", serde_json::json!(0.0))]);
        let negative = config(&[("w", serde_json::json!(-0.0))]);
        assert_ne!(json(&zero), json(&negative));
        assert!(!zero.writes_as(&negative));
        let mut other = a.clone();
        other.severity = Some("warn".into());
        assert!(!a.writes_as(&other));
        other = a.clone();
        other.extra.insert("sql_header".into(), "set x = 1".into());
        assert!(!a.writes_as(&other));
    }
}
