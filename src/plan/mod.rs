//! The run plan: every selected node with the exact statements that build it, made at compile
//! time so that `exec` (or another machine with only the plan) runs it without the project.

pub mod change;
mod common;
mod duckdb;
mod postgres;
mod seed;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::node::{Compiled, Node, Relation, ResourceType, TargetInfo};

pub use seed::{SeedColumn, infer_seed_columns};

/// Bumped when a plan written by an older orrery can no longer be read.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    /// Written by `compile`: every node runs; reusable.
    Run,
    /// Written by `plan -o`: actions against state; applied once.
    Change,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunPlan {
    pub format_version: u32,
    pub orrery_version: String,
    pub kind: PlanKind,
    pub pipeline: String,
    pub target: PlanTarget,
    /// Change plans: the state serial they were made against (0: no state yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// Change plans: the state lineage they were made against (none: no state yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// Every selected node, in a topological order. Ephemeral models are inlined, not listed.
    pub nodes: Vec<PlanNode>,
    pub summary: PlanSummary,
    /// The target's settings, secrets kept as `env_var(...)` references; a DuckDB `path` is absolute.
    pub connection: IndexMap<String, Value>,
    /// `[execution]` of the pipeline file, as given.
    pub execution: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callbacks: Vec<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub artifacts: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub state: Value,
    pub hooks: PlanHooks,
    /// Runtime variables (`[export.airflow] runtime_vars`): their placeholders stand in the
    /// statements until `run --vars` binds each as a SQL literal of the given value's type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_vars: Vec<String>,
    /// What the nodes rendered at run time render with: the project's macros, vars, target
    /// and quoting, stored once (present when a node is rendered at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_context: Option<Value>,
    /// The runtime variables' values this run binds (set by `bind_runtime_vars`), for the
    /// statements of nodes rendered at run time.
    #[serde(skip)]
    #[schemars(skip)]
    pub bound_vars: IndexMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTarget {
    pub name: String,
    #[serde(rename = "type")]
    pub adapter_type: String,
    pub database: String,
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// Statements around the nodes, each run once per run on one connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanHooks {
    /// `create schema if not exists` for every schema a node writes to; first of all.
    pub create_schemas: Vec<String>,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSummary {
    pub nodes: usize,
    pub models: usize,
    pub seeds: usize,
    pub snapshots: usize,
    pub tests: usize,
    pub statements: usize,
    /// Change plans: nodes per action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<change::ActionCounts>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRelation {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

impl From<&Relation> for PlanRelation {
    fn from(r: &Relation) -> Self {
        PlanRelation { database: r.database.clone(), schema: r.schema.clone(), identifier: r.identifier.clone() }
    }
}

impl From<&PlanRelation> for Relation {
    fn from(r: &PlanRelation) -> Self {
        Relation { database: r.database.clone(), schema: r.schema.clone(), identifier: r.identifier.clone() }
    }
}

/// One node and how to run it.
///
/// The executor runs one list of statements, in order, on one connection:
/// - `statements_other_type` when the relation exists as that other type (a view where a
///   table is built, or the reverse);
/// - else `statements_incremental` when present and the relation exists;
/// - else `statements_create` when present and the relation does not exist (nothing to swap);
/// - else `statements`.
///
/// When a statement fails it calls `rollback` (the statements open a transaction, so the
/// previous relation stays as it was) and the node fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanNode {
    /// dbt's unique_id, e.g. `model.shop.orders`.
    pub id: String,
    pub name: String,
    /// The file it comes from, below its package (dbt's `original_file_path`); schedulers
    /// group tasks by its folder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `model`, `seed`, `snapshot` or `test`.
    pub resource_type: String,
    pub materialized: String,
    pub relation: PlanRelation,
    /// Ids of the plan's nodes this one waits for (through inlined ephemeral models).
    pub depends_on: Vec<String>,
    /// sha256 over the statements and the config: equal fingerprints build the same thing.
    pub fingerprint: String,
    /// Always `run` in a run plan.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub statements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements_incremental: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements_other_type: Option<OtherTypeStatements>,
    /// A first build, when the relation does not exist: created in place, without a swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements_create: Option<Vec<String>>,
    /// Models, seeds, snapshots: the ids of the tests on them (they gate its children with
    /// `test_behavior = "after_each"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PlanTest>,
    pub callbacks: Vec<String>,
    /// `at_run` for a node rendered at run time (its template asks the warehouse): its
    /// statements are empty in the plan and written by the worker that runs it, from `bundle`
    /// and the plan's `render_context`, once its parents finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<String>,
    /// The call that makes it so, as `file:line:column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_call: Option<String>,
    /// What rendering it reads: its template, config and resolved references (opaque here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Value>,
}

/// `PlanNode::render` of a node rendered at run time.
pub const RENDER_AT_RUN: &str = "at_run";

impl PlanNode {
    /// Whether the node is rendered at run time.
    pub fn is_late(&self) -> bool {
        self.render.as_deref() == Some(RENDER_AT_RUN)
    }
}

/// What runs instead when the relation exists as another type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtherTypeStatements {
    /// `table` or `view`: the type found in the warehouse.
    pub existing: String,
    /// The statements, each `null` standing for the one at the same place in the node's
    /// `statements` (the SQL shared by both lists is written once).
    pub statements: Vec<Option<String>>,
}

impl OtherTypeStatements {
    /// Every statement spelled out, nulls taken from `statements`; `None` when a null has no
    /// statement at its place.
    pub fn resolve<'a>(&'a self, statements: &'a [String]) -> Option<Vec<&'a String>> {
        self.spelled_out(statements).collect()
    }

    /// Each statement, a null taken from `statements` (`None` where it has none).
    fn spelled_out<'a>(&'a self, statements: &'a [String]) -> impl ExactSizeIterator<Item = Option<&'a String>> {
        self.statements.iter().enumerate().map(|(i, own)| own.as_ref().or_else(|| statements.get(i)))
    }
}

/// How to read a test's one result row `(failures, should_warn, should_error)`:
/// `should_error` and severity `error` → fail; else `should_warn` → warn; else pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTest {
    /// `error` or `warn`.
    pub severity: String,
    /// The node the test is attached to, if any.
    pub attached_node: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub full_refresh: bool,
    pub pipeline: String,
    /// `[execution]` of the pipeline file.
    pub execution: Value,
    pub callbacks: Vec<Value>,
    /// Node id → the node-scope callbacks that fire for it.
    pub node_callbacks: HashMap<String, Vec<String>>,
    pub artifacts: Value,
    pub state: Value,
    /// Vars left as placeholders for `run --vars`.
    pub runtime_vars: Vec<String>,
}

/// Builds the run plan of the selected nodes (given in a topological order).
pub fn build_run_plan(compiled: &Compiled, selected_in_topo_order: &[&Node], opts: &PlanOptions) -> (RunPlan, Diagnostics) {
    let mut diagnostics = Diagnostics::new();
    let target = &compiled.target;
    let dialect = match Dialect::of(&target.adapter_type) {
        Ok(dialect) => Some(dialect),
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            None
        }
    };
    let dialect_ok = dialect.is_some();

    let by_id: crate::FastMap<&str, &Node> = compiled.nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect();
    let planned: Vec<&Node> = selected_in_topo_order.iter().copied().filter(|n| is_planned(n)).collect();
    let planned_ids: crate::FastSet<&str> = planned.iter().map(|n| n.unique_id.as_str()).collect();

    let t = crate::timing::phase("plan.statements");
    // Each node's statements and fingerprint are independent: built in parallel, kept in order,
    // straight into the plan's list (a node's rare diagnostics beside it, in a list of their own).
    let (mut nodes, found): (Vec<PlanNode>, Vec<Diagnostics>) = planned
        .par_iter()
        .map(|node| {
            let mut found = Diagnostics::new();
            let built = match dialect {
                Some(dialect) if node.late.is_none() => {
                    dialect.statements(node, effective_full_refresh(node, opts.full_refresh), &compiled.project_root, &mut found)
                }
                _ => common::Built::default(),
            };
            let test = (node.resource_type == ResourceType::Test)
                .then(|| PlanTest { severity: test_severity(node), attached_node: node.attached_node.clone() });
            let plan_node = PlanNode {
                id: node.unique_id.clone(),
                name: node.name.clone(),
                path: node.original_file_path.clone(),
                resource_type: node.resource_type.as_str().to_string(),
                materialized: node.config.materialized.clone(),
                relation: PlanRelation::from(&node.relation),
                depends_on: resolve_depends_on(node, &by_id, &planned_ids),
                fingerprint: fingerprint(node, &built),
                action: "run".into(),
                reason: None,
                statements: built.statements,
                statements_incremental: built.statements_incremental,
                statements_other_type: built.statements_other_type,
                statements_create: built.statements_create,
                tests: Vec::new(),
                test,
                callbacks: opts.node_callbacks.get(&node.unique_id).cloned().unwrap_or_default(),
                render: node.late.as_ref().map(|_| RENDER_AT_RUN.to_string()),
                late_call: node.late.as_ref().map(|l| l.call.clone()),
                bundle: node.late.as_ref().map(|l| l.bundle.clone()),
            };
            (plan_node, found)
        })
        .unzip();
    drop(t);
    let _t = crate::timing::phase("plan.assemble");
    let mut schemas: Vec<String> = Vec::new();
    let mut seen_schemas: HashSet<(Option<&str>, &str)> = HashSet::new();
    for node in planned.iter().filter(|n| n.resource_type != ResourceType::Test) {
        // PostgreSQL creates schemas in the current database only.
        let database = match dialect {
            Some(Dialect::Postgres) => None,
            _ => node.relation.database.as_deref(),
        };
        if seen_schemas.insert((database, node.relation.schema.as_str())) {
            schemas.push(common::create_schema(database, &node.relation.schema));
        }
    }
    for found in found {
        diagnostics.extend(found);
    }
    attach_tests(&mut nodes);

    let summary = PlanSummary {
        nodes: nodes.len(),
        models: count(&nodes, "model"),
        seeds: count(&nodes, "seed"),
        snapshots: count(&nodes, "snapshot"),
        tests: count(&nodes, "test"),
        statements: nodes.iter().map(|n| n.statements.len() + n.statements_incremental.as_ref().map_or(0, Vec::len)).sum(),
        actions: None,
    };
    let plan = RunPlan {
        format_version: FORMAT_VERSION,
        orrery_version: env!("CARGO_PKG_VERSION").to_string(),
        kind: PlanKind::Run,
        pipeline: opts.pipeline.clone(),
        serial: None,
        lineage: None,
        target: PlanTarget {
            name: target.name.clone(),
            adapter_type: target.adapter_type.clone(),
            database: target.database.clone(),
            schema: target.schema.clone(),
            threads: target.threads,
        },
        nodes,
        summary,
        connection: plan_connection(target, &compiled.project_root),
        execution: opts.execution.clone(),
        callbacks: opts.callbacks.clone(),
        artifacts: opts.artifacts.clone(),
        state: opts.state.clone(),
        hooks: PlanHooks {
            create_schemas: if dialect_ok { schemas } else { Vec::new() },
            on_run_start: compiled.on_run_start.iter().filter(|s| !s.trim().is_empty()).cloned().collect(),
            on_run_end: compiled.on_run_end.iter().filter(|s| !s.trim().is_empty()).cloned().collect(),
        },
        runtime_vars: opts.runtime_vars.clone(),
        render_context: compiled.late_context.clone(),
        bound_vars: IndexMap::new(),
    };
    (plan, diagnostics)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    DuckDb,
    Postgres,
}

impl Dialect {
    /// The dialect of an adapter type, or the error that orrery writes none for it.
    fn of(adapter_type: &str) -> Result<Dialect, Diagnostic> {
        match adapter_type {
            "duckdb" => Ok(Dialect::DuckDb),
            "postgres" => Ok(Dialect::Postgres),
            other => Err(Diagnostic::error(
                crate::codes::plan::UNSUPPORTED_ADAPTER,
                format!("orrery cannot write statements for adapter type `{other}` yet"),
            )
            .with_help("use a `duckdb` or `postgres` target")),
        }
    }

    /// A node's statements in this dialect.
    fn statements(self, node: &Node, full_refresh: bool, project_root: &std::path::Path, found: &mut Diagnostics) -> common::Built {
        match self {
            Dialect::DuckDb => common::statements(&duckdb::DuckDb, node, full_refresh, project_root, found),
            Dialect::Postgres => common::statements(&postgres::Postgres, node, full_refresh, project_root, found),
        }
    }
}

fn is_planned(node: &Node) -> bool {
    node.resource_type.is_executable() && node.config.enabled && node.config.materialized != "ephemeral"
}

fn effective_full_refresh(node: &Node, flag: bool) -> bool {
    // A model's own `full_refresh` config wins over the flag, as in dbt.
    node.config.full_refresh.unwrap_or(flag)
}

fn test_severity(node: &Node) -> String {
    match node.config.severity.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("warn") => "warn".into(),
        _ => "error".into(),
    }
}

/// Dependencies on planned nodes; an inlined ephemeral model passes on its own dependencies.
fn resolve_depends_on(node: &Node, by_id: &crate::FastMap<&str, &Node>, planned: &crate::FastSet<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<&str> = node.depends_on.iter().rev().map(String::as_str).collect();
    let mut seen: crate::FastSet<&str> = Default::default();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if planned.contains(id) {
            out.push(id.to_string());
        } else if let Some(dep) = by_id.get(id).filter(|d| d.config.materialized == "ephemeral") {
            stack.extend(dep.depends_on.iter().rev().map(String::as_str));
        }
    }
    out
}

fn attach_tests(nodes: &mut [PlanNode]) {
    let mut pairs = Vec::new();
    {
        let index: crate::FastMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        for node in nodes.iter().filter(|n| n.test.is_some()) {
            for dep in &node.depends_on {
                if let Some(&i) = index.get(dep.as_str()) {
                    pairs.push((i, node.id.clone()));
                }
            }
        }
    }
    for (i, test) in pairs {
        nodes[i].tests.push(test);
    }
}

fn count(nodes: &[PlanNode], kind: &str) -> usize {
    nodes.iter().filter(|n| n.resource_type == kind).count()
}

/// sha256 over what builds the node: its type, materialization and relation, every statement
/// list, then its config as JSON. Each text goes in whole behind its length (so no two
/// different inputs run together into the same bytes), an absent list as a marker of its own:
/// the statements, most of the bytes hashed, are not escaped into JSON first.
fn fingerprint(node: &Node, built: &common::Built) -> String {
    fn text(h: &mut Sha256, s: &str) {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    fn list<'a>(h: &mut Sha256, statements: Option<impl ExactSizeIterator<Item = &'a str>>) {
        match statements {
            None => h.update([0]),
            Some(all) => {
                h.update([1]);
                h.update((all.len() as u64).to_le_bytes());
                for s in all {
                    text(h, s);
                }
            }
        }
    }
    fn strs(list: &[String]) -> impl ExactSizeIterator<Item = &str> {
        list.iter().map(String::as_str)
    }
    let mut h = Sha256::new();
    text(&mut h, node.resource_type.as_str());
    text(&mut h, &node.config.materialized);
    match &node.relation.database {
        Some(d) => {
            h.update([1]);
            text(&mut h, d);
        }
        None => h.update([0]),
    }
    text(&mut h, &node.relation.schema);
    text(&mut h, &node.relation.identifier);
    // A late node's statements are written at run time: what they are written from instead.
    if let Some(late) = &node.late {
        text(&mut h, &late.bundle.to_string());
    }
    list(&mut h, Some(strs(&built.statements)));
    list(&mut h, built.statements_incremental.as_deref().map(strs));
    match &built.statements_other_type {
        None => h.update([0]),
        Some(other) => {
            h.update([1]);
            text(&mut h, &other.existing);
            // Hashed spelled out, as before its nulls: fingerprints in state stay valid.
            list(&mut h, Some(other.spelled_out(&built.statements).map(|s| s.map_or("", String::as_str))));
        }
    }
    // The config's JSON, most of what is hashed per node after the statements, is the same for
    // most nodes (folder-wide settings): each worker keeps the last few configs it wrote.
    thread_local! {
        static WRITTEN: std::cell::RefCell<crate::Recent<Arc<crate::node::NodeConfig>, Vec<u8>>> =
            const { std::cell::RefCell::new(crate::Recent::new()) };
    }
    WRITTEN.with_borrow_mut(|written| {
        let config = &node.config;
        let Ok(json) = written.get_or_make(
            |c| Arc::ptr_eq(c, config) || c.writes_as(config),
            || {
                // Writing into a vector cannot fail; a config value JSON cannot hold only changes the hash.
                let mut json = Vec::new();
                let _ = crate::json::to_vec_into(&mut json, &**config);
                Ok::<_, std::convert::Infallible>((config.clone(), json))
            },
        );
        h.update(json);
    });
    crate::hex_digest(&h.finalize())
}

/// The connection settings a plan carries: references stay references; a DuckDB file path is
/// made absolute so the plan runs from anywhere.
fn plan_connection(target: &TargetInfo, project_root: &Path) -> IndexMap<String, Value> {
    let mut connection = target.connection.clone();
    if let (true, Some(Value::String(path))) = (target.adapter_type == "duckdb", connection.get("path")) {
        let local = path != ":memory:" && !path.is_empty() && !path.contains("{{") && !path.contains("://");
        if local && Path::new(path).is_relative() {
            let full = project_root.join(path).display().to_string();
            connection.insert("path".into(), Value::String(full));
        }
    }
    connection
}

impl RunPlan {
    /// The target to open connections with (see [`crate::adapter::connect`]).
    pub fn target_info(&self) -> TargetInfo {
        TargetInfo {
            name: self.target.name.clone(),
            adapter_type: self.target.adapter_type.clone(),
            database: self.target.database.clone(),
            schema: self.target.schema.clone(),
            threads: self.target.threads,
            connection: self.connection.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the plan atomically (a temporary file renamed over the target).
    pub fn write(&self, path: &Path) -> Result<(), Diagnostic> {
        self.write_over(path, None)
    }

    /// Writes the plan atomically, over `spare` when given (see [`crate::replace`]): for the
    /// plan `compile` writes again and again in the same place.
    pub fn write_over(&self, path: &Path, spare: Option<&Path>) -> Result<(), Diagnostic> {
        let io_err = |err: std::io::Error| {
            Diagnostic::error(crate::codes::plan::WRITE, format!("cannot write {}: {err}", path.display())).with_file(path)
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        // crate::json streams in blocks of its own: the file needs no buffer of its own.
        crate::replace::write(path, spare, |file| {
            crate::json::to_writer_pretty(&mut *file, self).map_err(std::io::Error::from)?;
            std::io::Write::write_all(file, b"\n")
        })
        .map_err(io_err)
    }

    pub fn read(path: &Path) -> Result<RunPlan, Diagnostic> {
        let source = SourceFile::read(path)?;
        let plan: RunPlan = serde_json::from_str(&source.text).map_err(|err| {
            Diagnostic::error(crate::codes::plan::INVALID, format!("{} is not a valid plan: {err}", path.display()))
                .at_line_col(&source, err.line(), err.column())
                .with_help("write it again with `orrery compile`")
        })?;
        if plan.format_version > FORMAT_VERSION {
            return Err(Diagnostic::error(
                crate::codes::plan::FORMAT_VERSION,
                format!("{} has plan format {}, this orrery reads up to {FORMAT_VERSION}", path.display(), plan.format_version),
            )
            .with_file(path)
            .with_help("upgrade orrery"));
        }
        if let Some(node) = plan.nodes.iter().find(|n| n.statements_other_type.as_ref().is_some_and(|o| o.resolve(&n.statements).is_none()))
        {
            let error = Diagnostic::error(
                crate::codes::plan::INVALID,
                format!(
                    "{} is not a valid plan: {}'s statements_other_type has a null past the end of its statements",
                    path.display(),
                    node.id
                ),
            )
            .with_help("write it again with `orrery compile`");
            // At the node's `statements_other_type` key: the first after its quoted id.
            let key = source.text.find(&format!("\"{}\"", node.id)).and_then(|at| {
                source.text[at..].find("\"statements_other_type\"").map(|k| at + k..at + k + "\"statements_other_type\"".len())
            });
            return Err(match key {
                Some(span) => error.at(&source, span),
                None => error.with_file(path),
            });
        }
        Ok(plan)
    }
}

/// `schemas/plan.schema.json`, as checked in.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RunPlan);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

impl RunPlan {
    /// Replaces each runtime variable's placeholder in every statement with its value from
    /// `values` (`--vars`), as the SQL around it requires (`crate::sql::bind`): a typed literal
    /// in code, escaped text inside a string literal, neutralised text inside a comment. A
    /// runtime variable without a value, or one that cannot be data where it stands (inside a
    /// quoted identifier), is an error naming it and the node.
    pub fn bind_runtime_vars(&mut self, values: &IndexMap<String, Value>) -> Result<(), Diagnostic> {
        if self.runtime_vars.is_empty() {
            return Ok(());
        }
        let missing: Vec<&String> = self.runtime_vars.iter().filter(|n| !values.contains_key(n.as_str())).collect();
        if !missing.is_empty() {
            let names = missing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            return Err(Diagnostic::error(
                crate::codes::run::RUNTIME_VAR_MISSING,
                format!("the plan needs the runtime variable(s) {names}"),
            )
            .with_help(format!("pass them with --vars, e.g. --vars '{{{}: \"2024-01-01\"}}'", missing[0])));
        }
        self.bound_vars = values.clone();
        let binder = Binder::new(self);
        for node in &mut self.nodes {
            binder.node(node)?;
        }
        for hook in self.hooks.on_run_start.iter_mut().chain(&mut self.hooks.on_run_end) {
            binder.text("a run hook", hook)?;
        }
        Ok(())
    }

    /// A node rendered at run time, realized (`render::realize`): the plan's node with the
    /// statements a static node of that SQL would have, its runtime variables bound as the
    /// plan's were.
    pub fn realized(
        &self,
        planned: &PlanNode,
        node: &Node,
        full_refresh: bool,
        project_root: &std::path::Path,
    ) -> Result<PlanNode, Diagnostic> {
        let mut found = Diagnostics::new();
        let dialect = Dialect::of(&self.target.adapter_type)?;
        let built = dialect.statements(node, effective_full_refresh(node, full_refresh), project_root, &mut found);
        if let Some(error) = found.errors().next() {
            return Err(error.clone());
        }
        let mut realized = planned.clone();
        realized.statements = built.statements;
        realized.statements_incremental = built.statements_incremental;
        realized.statements_other_type = built.statements_other_type;
        realized.statements_create = built.statements_create;
        if !self.runtime_vars.is_empty() {
            Binder::new(self).node(&mut realized)?;
        }
        Ok(realized)
    }
}

/// Binds the plan's runtime variables (their values in `bound_vars`) into statements.
struct Binder {
    dialect: crate::sql::Dialect,
    /// (name, placeholder, value)
    bindings: Vec<(String, String, Value)>,
}

impl Binder {
    fn new(plan: &RunPlan) -> Self {
        let dialect = crate::sql::Dialect::of(&plan.target.adapter_type);
        let bindings = plan
            .runtime_vars
            .iter()
            .filter_map(|n| Some((n.clone(), crate::node::runtime_var_marker(n), plan.bound_vars.get(n.as_str())?.clone())))
            .collect();
        Binder { dialect, bindings }
    }

    fn text(&self, owner: &str, sql: &mut String) -> Result<(), Diagnostic> {
        for (name, marker, value) in &self.bindings {
            *sql = crate::sql::bind::bind(sql, self.dialect, marker, value).map_err(|e| {
                Diagnostic::error(
                    crate::codes::run::RUNTIME_VAR_UNBINDABLE,
                    format!("{owner}: runtime variable `{name}` cannot be bound: {e}"),
                )
                .with_help("use a runtime variable as a value (in code, a string literal or a comment), never inside a quoted name")
            })?;
        }
        Ok(())
    }

    fn node(&self, node: &mut PlanNode) -> Result<(), Diagnostic> {
        let owner = node.id.clone();
        let mut texts: Vec<&mut String> = node.statements.iter_mut().collect();
        for list in [&mut node.statements_incremental, &mut node.statements_create].into_iter().flatten() {
            texts.extend(list.iter_mut());
        }
        if let Some(other) = &mut node.statements_other_type {
            texts.extend(other.statements.iter_mut().flatten());
        }
        for sql in texts {
            self.text(&owner, sql)?;
        }
        Ok(())
    }
}
