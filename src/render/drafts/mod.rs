//! Nodes before rendering: one draft per model, seed, snapshot, analysis and test, with its
//! config from the project's config trees and properties yml; sources with rendered yml values.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::Environment;
use minijinja::value::Value;
use rayon::prelude::*;
use serde_json::{Map, Value as Json, json};

use super::context::{Ctx, NodeRender, Recorded, Shared};
use super::{TemplateOrigin, Templates};
use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::node::{ColumnInfo, Node, RefCall, Relation, ResourceType, SourceTable, TestMetadata};
use crate::project::{FileKind, Package, Project, yaml};

#[derive(Clone)]
pub struct TestDraft {
    pub metadata: TestMetadata,
    pub attached_node: Option<String>,
    pub column_name: Option<String>,
}

#[derive(Clone)]
pub struct Draft {
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub package: String,
    pub path: String,
    pub original_file_path: String,
    pub fqn: Vec<String>,
    pub template: Option<String>,
    /// The template's text and the node's `raw_code`: a model's file text itself, shared.
    pub template_text: Arc<str>,
    pub raw_code: Arc<str>,
    pub source: SourceFile,
    pub offset: usize,
    pub config: Map<String, Json>,
    pub enabled: bool,
    pub relation: Relation,
    pub description: String,
    /// `<package>://<properties file>` when a properties file describes it.
    pub patch_path: Option<String>,
    pub columns: IndexMap<String, ColumnInfo>,
    pub version: Option<String>,
    pub latest_version: Option<String>,
    pub test: Option<TestDraft>,
    pub parse_refs: Vec<RefCall>,
    pub parse_sources: Vec<[String; 2]>,
    pub seed_file: Option<std::path::PathBuf>,
}

const CONFIG_KEYS: &[&str] = &[
    "materialized",
    "enabled",
    "tags",
    "schema",
    "database",
    "alias",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "persist_docs",
    "full_refresh",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "meta",
    "grants",
    "docs",
    "contract",
    "quote_columns",
    "column_types",
    "delimiter",
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "severity",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "quoting",
    "group",
    "access",
    "sql_header",
    "invalidate_hard_deletes",
    "hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
    "event_time",
    "batch_size",
    "lookback",
    "begin",
    "concurrent_batches",
    "on_configuration_change",
    "unique_id",
    "incremental_predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "catalog",
    "static_analysis",
    "freshness",
    "loaded_at_field",
];

impl Draft {
    pub fn model_json(&self, rel: Option<&Relation>) -> Json {
        let mut config = self.config.clone();
        if let Some(r) = rel {
            config.insert("alias".into(), Json::String(r.identifier.clone()));
            config.insert("schema".into(), Json::String(r.schema.clone()));
            config.insert("database".into(), r.database.clone().map(Json::String).unwrap_or(Json::Null));
        }
        let mut m = json!({
            "unique_id": self.unique_id,
            "name": self.name,
            "resource_type": self.resource_type.as_str(),
            "package_name": self.package,
            "path": self.path,
            "original_file_path": self.original_file_path,
            "fqn": self.fqn,
            "tags": config.get("tags").cloned().unwrap_or(json!([])),
            "config": config,
            "description": self.description,
            "raw_code": &*self.raw_code,
            "version": self.version,
            "latest_version": self.latest_version,
            "refs": self.parse_refs.iter().map(|r| json!({"name": r.name, "package": r.package, "version": r.version})).collect::<Vec<_>>(),
            "sources": self.parse_sources,
            "columns": self.columns.iter().map(|(k, c)| (k.clone(), json!({"name": c.name, "description": c.description, "data_type": c.data_type, "meta": c.meta, "tags": c.tags}))).collect::<Map<_, _>>(),
        });
        if let Some(r) = rel {
            m["alias"] = json!(r.identifier);
            m["schema"] = json!(r.schema);
            m["database"] = json!(r.database);
            m["identifier"] = json!(r.identifier);
        }
        if let Some(t) = &self.test {
            m["column_name"] = json!(t.column_name);
            m["test_metadata"] = json!({"name": t.metadata.name, "namespace": t.metadata.namespace, "kwargs": t.metadata.kwargs});
        }
        m
    }

    /// dbt's checksum: the sha256 of the file stripped of surrounding whitespace (a snapshot's
    /// whole file, a seed's CSV); a generic test's of its generated code.
    fn checksum(&self) -> String {
        let seed;
        let text: &str = match self.resource_type {
            ResourceType::Seed => {
                let path = self.seed_file.clone().unwrap_or_else(|| std::path::PathBuf::from(&self.original_file_path));
                seed = std::fs::read(&path).unwrap_or_default();
                return sha256_hex(seed.trim_ascii());
            }
            ResourceType::Snapshot => &self.source.text,
            _ => &self.raw_code,
        };
        sha256_hex(text.trim().as_bytes())
    }

    /// The node this draft compiled to, its parts moved out of the draft.
    pub fn into_node(self, compiled_code: Option<String>, incremental: Option<String>, rec: Option<Recorded>) -> Node {
        let checksum = self.checksum();
        let config = shared_config(&self.config, self.enabled);
        let (depends_on, macros, refs, sources) = match rec {
            Some(r) => (r.depends_on, r.macros, r.refs, r.sources),
            None => (vec![], vec![], self.parse_refs, self.parse_sources),
        };
        let (test_metadata, attached_node, column_name) = match self.test {
            Some(t) => (Some(t.metadata), t.attached_node, t.column_name),
            None => (None, None, None),
        };
        Node {
            unique_id: self.unique_id,
            name: self.name,
            resource_type: self.resource_type,
            package_name: self.package,
            path: self.path,
            original_file_path: self.original_file_path,
            fqn: self.fqn,
            relation: self.relation,
            config,
            description: self.description,
            doc_blocks: Vec::new(),
            patch_path: self.patch_path,
            columns: self.columns,
            raw_code: self.raw_code,
            compiled_code,
            compiled_code_incremental: incremental,
            depends_on,
            depends_on_macros: macros,
            refs,
            sources,
            version: self.version,
            latest_version: self.latest_version,
            test_metadata,
            attached_node,
            column_name,
            checksum,
            seed_file: self.seed_file,
            origin: Some(crate::node::Origin { source: self.source, span: self.offset..self.offset }),
        }
    }
}

/// The node config of a draft's config, shared with the nodes before it whose drafts' configs
/// were written alike (each worker keeps the last few): most nodes of a folder share one.
fn shared_config(config: &Map<String, Json>, enabled: bool) -> Arc<crate::node::NodeConfig> {
    type Seen = crate::Recent<(Map<String, Json>, bool), Arc<crate::node::NodeConfig>>;
    thread_local! {
        static SEEN: std::cell::RefCell<Seen> =
            const { std::cell::RefCell::new(crate::Recent::new()) };
    }
    SEEN.with_borrow_mut(|seen| {
        let Ok(made) = seen.get_or_make(
            |(seen, was_enabled)| *was_enabled == enabled && crate::node::json_map_writes_as(seen, config),
            || Ok::<_, std::convert::Infallible>(((config.clone(), enabled), Arc::new(super::node_config(config, enabled)))),
        );
        made.clone()
    })
}

/// dbt's file checksum: the sha256 of the file's text, as lowercase hex.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    crate::hex_digest(&sha2::Sha256::digest(data))
}

/// Each package's effective vars: its own, then the root's global and package-scoped ones, then --vars.
pub fn package_vars(project: &Project) -> HashMap<String, IndexMap<String, Json>> {
    let names: Vec<&str> = project.packages.iter().map(|p| p.name.as_str()).collect();
    let root = project.root_package();
    let mut out = HashMap::new();
    for pkg in &project.packages {
        let mut vars: IndexMap<String, Json> = IndexMap::new();
        let mut apply = |source: &IndexMap<String, Json>, scoped_only: bool| {
            for (k, v) in source {
                if names.contains(&k.as_str()) && v.is_object() {
                    continue;
                }
                if !scoped_only {
                    vars.insert(k.clone(), v.clone());
                }
            }
            if let Some(Json::Object(scoped)) = source.get(&pkg.name) {
                for (k, v) in scoped {
                    vars.insert(k.clone(), v.clone());
                }
            }
        };
        if !pkg.is_root {
            apply(&pkg.vars, false);
        }
        apply(&root.vars, false);
        for (k, v) in &project.cli_vars {
            vars.insert(k.clone(), v.clone());
        }
        out.insert(pkg.name.clone(), vars);
    }
    out
}

/// Every docs block by name: the packages defining it and its text, in package order.
pub fn docs_index(project: &Project) -> super::descriptions::DocsIndex {
    let mut out: super::descriptions::DocsIndex = HashMap::new();
    for pkg in &project.packages {
        for f in pkg.files.iter().filter(|f| f.kind == FileKind::Docs) {
            for c in super::env::DOCS.captures_iter(&f.source.text) {
                out.entry(c[1].to_string()).or_default().push((pkg.name.clone(), c[2].trim().to_string()));
            }
        }
    }
    out
}

fn resource_key(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Model => "models",
        ResourceType::Seed => "seeds",
        ResourceType::Snapshot => "snapshots",
        ResourceType::Analysis => "analyses",
        ResourceType::Test => "tests",
        ResourceType::Source => "sources",
    }
}

fn apply_level(level: &Json, into: &mut Map<String, Json>) {
    let Json::Object(m) = level else { return };
    for (k, v) in m {
        if let Some(key) = k.strip_prefix('+') {
            super::context::merge_config(into, key, v.clone());
        } else if CONFIG_KEYS.contains(&k.as_str())
            && (!v.is_object()
                || matches!(k.as_str(), "meta" | "grants" | "persist_docs" | "docs" | "contract" | "quoting" | "column_types"))
        {
            super::context::merge_config(into, k, v.clone());
        }
    }
}

/// Applies a `models:`-style tree along an fqn: top level, package, then each folder.
fn apply_tree(tree: Option<&Json>, fqn: &[String], into: &mut Map<String, Json>) {
    let Some(tree) = tree else { return };
    apply_level(tree, into);
    let mut cur = tree;
    for part in &fqn[..fqn.len().saturating_sub(1)] {
        match cur.get(part.as_str()) {
            Some(next) if next.is_object() => {
                apply_level(next, into);
                cur = next;
            }
            _ => return,
        }
    }
    if let Some(leaf) = fqn.last().and_then(|n| cur.get(n.as_str()))
        && leaf.is_object()
    {
        apply_level(leaf, into);
    }
}

fn tree_config(project: &Project, pkg: &Package, rt: ResourceType, fqn: &[String]) -> Map<String, Json> {
    let mut cfg = Map::new();
    match rt {
        ResourceType::Model | ResourceType::Analysis => {
            cfg.insert("materialized".into(), json!("view"));
        }
        ResourceType::Seed => {
            cfg.insert("materialized".into(), json!("seed"));
        }
        ResourceType::Snapshot => {
            cfg.insert("materialized".into(), json!("snapshot"));
        }
        ResourceType::Test => {
            for (k, v) in
                [("materialized", "test"), ("severity", "ERROR"), ("warn_if", "!= 0"), ("error_if", "!= 0"), ("fail_calc", "count(*)")]
            {
                cfg.insert(k.into(), json!(v));
            }
        }
        ResourceType::Source => {}
    }
    cfg.insert("enabled".into(), json!(true));
    let key = resource_key(rt);
    if !pkg.is_root {
        apply_tree(pkg.config_trees.get(key), fqn, &mut cfg);
    }
    apply_tree(project.root_package().config_trees.get(key), fqn, &mut cfg);
    cfg
}

/// Renders the Jinja in dbt_project.yml's config values (`+enabled: "{{ var('x', false) }}"`),
/// as dbt renders the project file, into the values Python's Jinja would give: `True`/`False`
/// a boolean, `None` null, a whole number a number, anything else a string. Hooks are left for
/// their node to render; a value that fails to render stays as written (`check_tree_strings`
/// reports it).
fn render_tree_strings(env: &Environment<'static>, shared: &Arc<Shared>, package: &str, config: &mut Map<String, Json>) {
    for (key, value) in config.iter_mut() {
        let Json::String(text) = value else { continue };
        if matches!(key.as_str(), "pre-hook" | "post-hook" | "pre_hook" | "post_hook") || !(text.contains("{{") || text.contains("{%")) {
            continue;
        }
        let Ok(rendered) = render_yml_str(env, shared, package, text) else { continue };
        let trimmed = rendered.trim();
        *value = match trimmed {
            "True" | "true" => Json::Bool(true),
            "False" | "false" => Json::Bool(false),
            "None" => Json::Null,
            _ => trimmed.parse::<i64>().map_or_else(|_| Json::String(rendered), Json::from),
        };
    }
}

/// Reports each config value of a package's dbt_project.yml whose Jinja does not render, once,
/// at its place in the file (rendering it for each node, `render_tree_strings` keeps the text).
fn check_tree_strings(env: &Environment<'static>, shared: &Arc<Shared>, pkg: &Package, errors: &mut Vec<Diagnostic>) {
    fn walk(value: &Json, key: &str, found: &mut Vec<String>) {
        match value {
            Json::Object(m) => m.iter().for_each(|(k, v)| walk(v, k, found)),
            Json::String(text)
                if !matches!(key.trim_start_matches('+'), "pre-hook" | "post-hook" | "pre_hook" | "post_hook")
                    && (text.contains("{{") || text.contains("{%")) =>
            {
                found.push(text.clone())
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    pkg.config_trees.values().for_each(|tree| walk(tree, "", &mut found));
    for text in found {
        let Err(e) = render_yml_str(env, shared, &pkg.name, &text) else { continue };
        let msg = format!("in a config value of dbt_project.yml: {}", e.detail().unwrap_or("template error"));
        let error = Diagnostic::error("render::yaml", msg).with_help("fix the Jinja of this value, or set the var it reads");
        errors.push(match &pkg.project_source {
            Some(source) => {
                let base = source.text.find(&text).unwrap_or(0);
                let r = e.range().unwrap_or(0..text.len());
                error.at(source, base + r.start.min(text.len())..base + r.end.min(text.len()))
            }
            None => error,
        });
    }
}

/// Renders Jinja in a yml string value with the package's context.
fn render_yml_str(env: &Environment<'static>, shared: &Arc<Shared>, package: &str, text: &str) -> Result<String, minijinja::Error> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    let node = Arc::new(NodeRender {
        shared: shared.clone(),
        package: package.to_string(),
        execute: false,
        incremental: false,
        this: None,
        model: Value::from(()),
        config: Map::new(),
        test_kwargs: None,
        rec: Mutex::new(Recorded::default()),
    });
    env.render_str(text, Value::from_object(Ctx { node, package: Arc::from(package) }))
}

fn columns_of(entry: &Json) -> IndexMap<String, ColumnInfo> {
    let mut out = IndexMap::new();
    if let Some(Json::Array(cols)) = entry.get("columns") {
        for c in cols {
            let Some(name) = yaml::str_at(c, "name") else { continue };
            out.insert(
                name.to_string(),
                ColumnInfo {
                    name: name.to_string(),
                    description: yaml::str_at(c, "description").unwrap_or_default().to_string(),
                    data_type: yaml::str_at(c, "data_type").map(str::to_string),
                    meta: match c.get("meta") {
                        Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        _ => IndexMap::new(),
                    },
                    tags: yaml::strings_at(c, "tags").unwrap_or_default(),
                    quote: c.get("quote").and_then(Json::as_bool),
                    doc_blocks: Vec::new(),
                },
            );
        }
    }
    out
}

fn tests_of(entry: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for key in ["data_tests", "tests"] {
        if let Some(Json::Array(items)) = entry.get(key) {
            out.extend(items.iter().cloned());
        }
    }
    out
}

/// A yml entry that patches a node: its file, package and the entry.
struct Patch {
    file: SourceFile,
    original_file_path: String,
    path: String,
    entry: Json,
}

/// A generic test to create once targets are known.
struct PendingTest {
    package: String,
    patch_file: SourceFile,
    original_file_path: String,
    yml_path: String,
    /// model name / seed / snapshot, or (source, table).
    target_name: String,
    target_ref: String,
    attached: String,
    version: Option<String>,
    is_source: bool,
    node_name: String,
    source_pair: Option<(String, String)>,
    column: Option<String>,
    definition: Json,
}

// Boxed: drafts are large and are sorted and moved as pointers (see the render.drafts phase).
#[allow(clippy::vec_box)]
pub fn collect(
    project: &Project,
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    _templates: &Templates,
    diags: &mut Diagnostics,
) -> (Vec<SourceTable>, Vec<Box<Draft>>) {
    let mut sources = Vec::new();
    let mut drafts = Vec::new();
    let mut pending_tests = Vec::new();
    let target = &project.target;
    let yml_errors = std::cell::RefCell::new(Vec::new());
    for pkg in &project.packages {
        check_tree_strings(env, shared, pkg, &mut yml_errors.borrow_mut());
    }

    for pkg in &project.packages {
        let mut patches: HashMap<(&'static str, String), Patch> = HashMap::new();
        let tt = crate::timing::phase("render.drafts.yaml");
        // The package's properties files, parsed and checked in parallel.
        let parsed: Vec<(&crate::project::ProjectFile, Result<Json, Diagnostic>, Vec<Diagnostic>)> = pkg
            .files
            .par_iter()
            .filter(|f| f.kind == FileKind::Properties)
            .map(|f| match yaml::parse(&f.source, "project::yaml") {
                Ok(doc) => {
                    let problems = crate::project::properties::check(&f.source, &doc);
                    (f, Ok(doc), problems)
                }
                Err(d) => (f, Err(d), Vec::new()),
            })
            .collect();
        drop(tt);
        let tt = crate::timing::phase("render.drafts.patches");
        for (f, doc, problems) in parsed {
            let doc = match doc {
                Ok(d) => d,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            for d in problems {
                diags.push(d);
            }
            for (key, kind) in [("models", "model"), ("seeds", "seed"), ("snapshots", "snapshot"), ("analyses", "analysis")] {
                if let Some(Json::Array(items)) = doc.get(key) {
                    for item in items {
                        if let Some(name) = yaml::str_at(item, "name") {
                            patches.insert(
                                (kind, name.to_string()),
                                Patch {
                                    file: f.source.clone(),
                                    original_file_path: f.original_file_path.clone(),
                                    path: f.path.clone(),
                                    entry: item.clone(),
                                },
                            );
                        }
                    }
                }
            }
            if let Some(Json::Array(srcs)) = doc.get("sources") {
                for src in srcs {
                    let Some(sname) = yaml::str_at(src, "name") else { continue };
                    let rendered = |v: Option<&Json>| -> Option<String> {
                        let s = v?.as_str()?;
                        match render_yml_str(env, shared, &pkg.name, s) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                // The value's own text in the file, then the error's place inside it.
                                let base = f.source.text.find(s).unwrap_or(0);
                                let r = e.range().unwrap_or(0..s.len());
                                let span = base + r.start.min(s.len())..base + r.end.min(s.len());
                                let msg = format!("in source `{sname}`: {}", e.detail().unwrap_or("template error"));
                                yml_errors.borrow_mut().push(Diagnostic::error("render::yaml", msg).at(&f.source, span));
                                None
                            }
                        }
                    };
                    let database = rendered(src.get("database")).or_else(|| Some(target.database.clone()));
                    let schema = rendered(src.get("schema")).unwrap_or_else(|| sname.to_string());
                    let dirs: Vec<String> = f
                        .path
                        .split('/')
                        .collect::<Vec<_>>()
                        .split_last()
                        .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default();
                    if let Some(Json::Array(tables)) = src.get("tables") {
                        for t in tables {
                            let Some(tname) = yaml::str_at(t, "name") else { continue };
                            let identifier = rendered(t.get("identifier")).unwrap_or_else(|| tname.to_string());
                            let mut fqn = vec![pkg.name.clone()];
                            fqn.extend(dirs.iter().cloned());
                            fqn.push(sname.to_string());
                            fqn.push(tname.to_string());
                            let unique_id = format!("source.{}.{sname}.{tname}", pkg.name);
                            let start = f.source.text.find(&format!("name: {tname}")).unwrap_or(0);
                            sources.push(SourceTable {
                                unique_id: unique_id.clone(),
                                source_name: sname.to_string(),
                                name: tname.to_string(),
                                package_name: pkg.name.clone(),
                                original_file_path: f.original_file_path.clone(),
                                fqn,
                                relation: Relation { database: database.clone(), schema: schema.clone(), identifier },
                                description: yaml::str_at(t, "description").unwrap_or_default().to_string(),
                                doc_blocks: Vec::new(),
                                columns: columns_of(t),
                                meta: match t.get("meta") {
                                    Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                                    _ => IndexMap::new(),
                                },
                                tags: yaml::strings_at(t, "tags").unwrap_or_default(),
                                loaded_at_field: yaml::str_at(t, "loaded_at_field")
                                    .or(yaml::str_at(src, "loaded_at_field"))
                                    .map(str::to_string),
                                origin: Some(crate::node::Origin { source: f.source.clone(), span: start..start }),
                            });
                            let target_name = format!("{sname}_{tname}");
                            let mut add = |column: Option<String>, def: Json| {
                                pending_tests.push(PendingTest {
                                    package: pkg.name.clone(),
                                    patch_file: f.source.clone(),
                                    original_file_path: f.original_file_path.clone(),
                                    yml_path: f.path.clone(),
                                    target_name: target_name.clone(),
                                    target_ref: format!("source('{sname}', '{tname}')"),
                                    attached: unique_id.clone(),
                                    version: None,
                                    is_source: true,
                                    node_name: String::new(),
                                    source_pair: Some((sname.to_string(), tname.to_string())),
                                    column,
                                    definition: def,
                                })
                            };
                            for def in tests_of(t) {
                                add(None, def);
                            }
                            if let Some(Json::Array(cols)) = t.get("columns") {
                                for c in cols {
                                    let cname = yaml::str_at(c, "name").map(str::to_string);
                                    for def in tests_of(c) {
                                        add(cname.clone(), def);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        // Model versions whose file is named by `defined_in`: file stem → (model, version, latest).
        let mut defined_in: HashMap<String, (String, String, Option<String>)> = HashMap::new();
        for ((kind, name), p) in &patches {
            let Some(Json::Array(vs)) = p.entry.get("versions").filter(|_| *kind == "model") else { continue };
            let versions: Vec<String> = vs.iter().filter_map(|x| x.get("v").map(json_scalar)).collect();
            let latest = p.entry.get("latest_version").map(json_scalar).or_else(|| max_version(&versions));
            for (ve, v) in vs.iter().zip(&versions) {
                if let Some(file) = yaml::str_at(ve, "defined_in") {
                    defined_in.insert(file.to_string(), (name.clone(), v.clone(), latest.clone()));
                }
            }
        }

        drop(tt);
        let tt = crate::timing::phase("render.drafts.files");
        // Each file's drafts and pending tests, files in parallel.
        let per_file: Vec<(Vec<Box<Draft>>, Vec<PendingTest>)> = pkg
            .files
            .par_iter()
            .map(|f| {
                let mut drafts: Vec<Box<Draft>> = Vec::new();
                let mut pending_tests = Vec::new();
                let stem = f.path.rsplit('/').next().unwrap_or(&f.path);
                let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s).to_string();
                let dirs: Vec<String> = f
                    .path
                    .split('/')
                    .collect::<Vec<_>>()
                    .split_last()
                    .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default();
                let (rt, kind) = match f.kind {
                    FileKind::Model => (ResourceType::Model, "model"),
                    FileKind::Seed => (ResourceType::Seed, "seed"),
                    FileKind::Analysis => (ResourceType::Analysis, "analysis"),
                    FileKind::SingularTest => (ResourceType::Test, "test"),
                    FileKind::Snapshot => (ResourceType::Snapshot, "snapshot"),
                    _ => return (drafts, pending_tests),
                };
                // (name, template text, offset, version)
                type Unit = (String, Arc<str>, usize, Option<String>, Option<String>);
                let mut units: Vec<Unit> = Vec::new();
                if rt == ResourceType::Snapshot {
                    for c in super::env::SNAPSHOT.captures_iter(&f.source.text) {
                        let body = c.get(4).map_or("", |m| m.as_str());
                        let off = c.get(4).map_or(0, |m| m.start());
                        units.push((c[2].to_string(), Arc::from(body), off, None, None));
                    }
                } else {
                    // Versioned models: `<name>_v<N>.sql` patched by a yml entry with `versions:`.
                    let mut name = stem.clone();
                    let mut version = None;
                    let mut latest = None;
                    if rt == ResourceType::Model {
                        if let Some((base, v, l)) = defined_in.get(&stem) {
                            name = base.clone();
                            version = Some(v.clone());
                            latest = l.clone();
                        } else if let Some((base, v)) = stem.rsplit_once("_v")
                            && let Some(p) = patches.get(&("model", base.to_string()))
                            && let Some(Json::Array(vs)) = p.entry.get("versions")
                        {
                            let versions: Vec<String> = vs.iter().filter_map(|x| x.get("v").map(json_scalar)).collect();
                            if versions.iter().any(|x| x == v) {
                                name = base.to_string();
                                version = Some(v.to_string());
                                latest = p.entry.get("latest_version").map(json_scalar).or_else(|| max_version(&versions));
                            }
                        }
                    }
                    units.push((name, f.source.text.clone(), 0, version, latest));
                }
                // Exactly as many drafts as units (mostly one): a vector's first push would make
                // room for four.
                drafts.reserve_exact(units.len());
                for (name, text, offset, version, latest) in units {
                    let mut fqn = vec![pkg.name.clone()];
                    if rt == ResourceType::Analysis {
                        fqn.push("analysis".into());
                    }
                    fqn.extend(dirs.iter().cloned());
                    if rt == ResourceType::Snapshot {
                        fqn.push(stem.clone());
                    }
                    fqn.push(name.clone());
                    if let Some(v) = &version {
                        fqn.push(format!("v{v}"));
                    }
                    let mut config = tree_config(project, pkg, rt, &fqn);
                    render_tree_strings(env, shared, &pkg.name, &mut config);
                    let patch = patches.get(&(kind, name.clone()));
                    let mut description = String::new();
                    let mut columns = IndexMap::new();
                    if let Some(p) = patch {
                        if let Some(Json::Object(c)) = p.entry.get("config") {
                            for (k, v) in c {
                                super::context::merge_config(&mut config, k, v.clone());
                            }
                        }
                        description = yaml::str_at(&p.entry, "description").unwrap_or_default().to_string();
                        columns = columns_of(&version_entry(&p.entry, version.as_deref()));
                        if let Some(v) = &version
                            && let Some(Json::Array(vs)) = p.entry.get("versions")
                            && let Some(ve) = vs.iter().find(|x| x.get("v").map(json_scalar).as_deref() == Some(v.as_str()))
                            && let Some(Json::Object(c)) = ve.get("config")
                        {
                            for (k, v) in c {
                                super::context::merge_config(&mut config, k, v.clone());
                            }
                        }
                    }
                    let unique_id = match &version {
                        Some(v) => format!("{kind}.{}.{name}.v{v}", pkg.name),
                        None => format!("{kind}.{}.{name}", pkg.name),
                    };
                    let template = (rt != ResourceType::Seed).then(|| format!("{}://{}#{}", pkg.name, f.original_file_path, name));
                    let enabled = config.get("enabled").and_then(Json::as_bool) != Some(false);
                    drafts.push(Box::new(Draft {
                        unique_id: unique_id.clone(),
                        name: name.clone(),
                        resource_type: rt,
                        package: pkg.name.clone(),
                        path: f.path.clone(),
                        original_file_path: f.original_file_path.clone(),
                        fqn,
                        template,
                        raw_code: if rt == ResourceType::Seed { Arc::from("") } else { text.clone() },
                        template_text: text,
                        source: f.source.clone(),
                        offset,
                        config,
                        enabled,
                        relation: Relation {
                            database: Some(target.database.clone()),
                            schema: target.schema.clone(),
                            identifier: name.clone(),
                        },
                        description,
                        patch_path: patch.map(|p| format!("{}://{}", pkg.name, p.original_file_path)),
                        columns,
                        version: version.clone(),
                        latest_version: latest,
                        test: None,
                        parse_refs: vec![],
                        parse_sources: vec![],
                        seed_file: (rt == ResourceType::Seed).then(|| f.abs_path.clone()),
                    }));
                    if let Some(p) = patch
                        && matches!(rt, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)
                    {
                        let target_ref = match &version {
                            Some(v) => format!("ref('{name}', version='{v}')"),
                            None => format!("ref('{name}')"),
                        };
                        let target_name = match &version {
                            Some(v) => format!("{name}_v{v}"),
                            None => name.clone(),
                        };
                        let mut add = |column: Option<String>, def: Json| {
                            pending_tests.push(PendingTest {
                                package: pkg.name.clone(),
                                patch_file: p.file.clone(),
                                original_file_path: p.original_file_path.clone(),
                                yml_path: p.path.clone(),
                                target_name: target_name.clone(),
                                target_ref: target_ref.clone(),
                                attached: unique_id.clone(),
                                version: version.clone(),
                                is_source: false,
                                node_name: name.clone(),
                                source_pair: None,
                                column,
                                definition: def,
                            })
                        };
                        let entry = version_entry(&p.entry, version.as_deref());
                        for def in tests_of(&entry) {
                            add(None, def);
                        }
                        if let Some(Json::Array(cols)) = entry.get("columns") {
                            for c in cols {
                                let cname = yaml::str_at(c, "name").map(str::to_string);
                                for def in tests_of(c) {
                                    add(cname.clone(), def);
                                }
                            }
                        }
                    }
                }
                (drafts, pending_tests)
            })
            .collect();
        drop(tt);
        let _tt = crate::timing::phase("render.drafts.merge");
        // Room for the generic tests too, made from the pending ones below (growing the
        // vector then would copy it whole).
        let tests: usize = pending_tests.len() + per_file.iter().map(|(_, t)| t.len()).sum::<usize>();
        drafts.reserve(per_file.iter().map(|(d, _)| d.len()).sum::<usize>() + tests);
        for (d, t) in per_file {
            drafts.extend(d);
            pending_tests.extend(t);
        }
    }

    for d in yml_errors.into_inner() {
        diags.push(d);
    }
    let t = crate::timing::phase("render.drafts.tests");
    let tests: Vec<Result<Box<Draft>, Diagnostic>> =
        pending_tests.into_par_iter().map(|t| generic_test(project, env, shared, t).map(Box::new)).collect();
    drafts.reserve(tests.len());
    for t in tests {
        match t {
            Ok(d) => drafts.push(d),
            Err(d) => diags.push(d),
        }
    }
    drop(t);
    let _t = crate::timing::phase("render.drafts.sort");
    drafts.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    (sources, drafts)
}

/// A model's yml entry as one of its versions sees it: the version's tests (else the model's)
/// and the model's columns narrowed by `include` / `exclude`, the version's own ones last.
/// An unversioned entry is itself, borrowed.
fn version_entry<'a>(entry: &'a Json, version: Option<&str>) -> Cow<'a, Json> {
    let Some(v) = version else { return Cow::Borrowed(entry) };
    let Some(ve) =
        entry.get("versions").and_then(Json::as_array).and_then(|vs| vs.iter().find(|x| x.get("v").map(json_scalar).as_deref() == Some(v)))
    else {
        return Cow::Borrowed(entry);
    };
    let mut out = entry.clone();
    let Some(obj) = out.as_object_mut() else { return Cow::Borrowed(entry) };
    for key in ["data_tests", "tests"] {
        if ve.get(key).is_some() {
            obj.remove("data_tests");
            obj.remove("tests");
            obj.insert(key.to_string(), ve[key].clone());
        }
    }
    if let Some(Json::Array(vcols)) = ve.get("columns") {
        let base: Vec<Json> = entry.get("columns").and_then(Json::as_array).cloned().unwrap_or_default();
        let mut cols = Vec::new();
        let own: Vec<&Json> = vcols.iter().filter(|c| c.get("include").is_none()).collect();
        if let Some(rule) = vcols.iter().find(|c| c.get("include").is_some()) {
            let included = |n: &str| match rule.get("include") {
                Some(Json::String(s)) if s == "all" || s == "*" => true,
                Some(Json::Array(names)) => names.iter().any(|x| x.as_str() == Some(n)),
                _ => false,
            };
            let excluded =
                |n: &str| rule.get("exclude").and_then(Json::as_array).is_some_and(|xs| xs.iter().any(|x| x.as_str() == Some(n)));
            for c in &base {
                let n = yaml::str_at(c, "name").unwrap_or_default();
                if included(n) && !excluded(n) && !own.iter().any(|o| yaml::str_at(o, "name") == Some(n)) {
                    cols.push(c.clone());
                }
            }
        }
        cols.extend(own.into_iter().cloned());
        obj.insert("columns".into(), Json::Array(cols));
    }
    Cow::Owned(out)
}

fn json_scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn max_version(versions: &[String]) -> Option<String> {
    versions
        .iter()
        .max_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        })
        .cloned()
}

const TEST_CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

fn generic_test(project: &Project, env: &Environment<'static>, shared: &Arc<Shared>, t: PendingTest) -> Result<Draft, Diagnostic> {
    let (test_name, mut args): (String, Map<String, Json>) = match &t.definition {
        Json::String(s) => (s.clone(), Map::new()),
        Json::Object(m) if m.contains_key("test_name") => {
            let mut m = m.clone();
            let name = m.remove("test_name").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            (name, m)
        }
        Json::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            (k, v.as_object().cloned().unwrap_or_default())
        }
        _ => {
            let (line, col) = yaml::find_line(&t.patch_file.text, "name", &t.target_name).unwrap_or((1, 1));
            return Err(Diagnostic::error("project::test", "a test must be a name or a mapping with one key").at_line_col(
                &t.patch_file,
                line,
                col,
            ));
        }
    };
    if let Some(c) = &t.column {
        args.insert("column_name".into(), Json::String(c.clone()));
    }
    if let Some(Json::Object(a)) = args.remove("arguments") {
        for (k, v) in a {
            args.insert(k, v);
        }
    }
    let (namespace, short) = match test_name.split_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, test_name.clone()),
    };
    let pkg = project.packages.iter().find(|p| p.name == t.package).unwrap_or(project.root_package());
    let mut yml_config = Map::new();
    for key in TEST_CONFIG_ARGS {
        if let Some(v) = args.remove(*key) {
            yml_config.insert((*key).to_string(), v);
        }
    }
    if let Some(Json::Object(c)) = args.remove("config") {
        for (k, v) in c {
            yml_config.insert(k, v);
        }
    }
    let description = args.remove("description").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let custom_name = args.remove("name").and_then(|v| v.as_str().map(str::to_string));
    let mut type_name = if t.is_source { format!("source_{short}") } else { short.clone() };
    if let Some(ns) = &namespace {
        type_name = format!("{ns}_{type_name}");
    }
    let mut name_kwargs: IndexMap<String, Json> = args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    name_kwargs.insert("model".into(), Json::String(format!("{{{{ get_where_subquery({}) }}}}", t.target_ref)));
    let test_target = match &t.source_pair {
        Some((s, tb)) => super::builtins::TestTarget::Source { source: s, table: tb },
        None => super::builtins::TestTarget::Node { name: &t.node_name, version: t.version.as_deref() },
    };
    let _ = &type_name;
    let named = super::builtins::test_node_name(&short, namespace.as_deref(), test_target, &name_kwargs);
    let (short_name, full_name, hash) = match custom_name {
        Some(n) => {
            let h = super::builtins::unique_id_hash(&n, &short, namespace.as_deref(), &name_kwargs);
            (n.clone(), n, h)
        }
        None => (named.file_name().to_string(), named.name.clone(), named.unique_id_suffix.clone()),
    };
    // Jinja in test config values is rendered at parse time, as dbt does.
    let mut rendered_cfg = Map::new();
    for (k, v) in yml_config {
        let v = match &v {
            Json::String(s) => Json::String(render_yml_str(env, shared, &t.package, s).unwrap_or_else(|_| s.clone())),
            other => other.clone(),
        };
        if !v.is_null() {
            rendered_cfg.insert(k, v);
        }
    }
    if short_name != full_name && !rendered_cfg.contains_key("alias") {
        rendered_cfg.insert("alias".into(), Json::String(short_name.clone()));
    }
    let dirs: Vec<String> =
        t.yml_path.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
    let mut fqn = vec![t.package.clone()];
    fqn.extend(dirs);
    fqn.push(full_name.clone());
    let mut config = tree_config(project, pkg, ResourceType::Test, &fqn);
    render_tree_strings(env, shared, &t.package, &mut config);
    for (k, v) in rendered_cfg {
        super::context::merge_config(&mut config, &k, v);
    }
    let mut kwargs: IndexMap<String, Json> = args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    kwargs.insert("model".into(), Json::String(format!("{{{{ get_where_subquery({}) }}}}", t.target_ref)));
    let macro_name = match &namespace {
        Some(ns) => format!("{ns}.test_{short}"),
        None => format!("test_{short}"),
    };
    let raw_code: Arc<str> = Arc::from(format!("{{{{ {macro_name}(**_dbt_generic_test_kwargs) }}}}"));
    let enabled = config.get("enabled").and_then(Json::as_bool) != Some(false);
    let _ = t.version;
    Ok(Draft {
        unique_id: format!("test.{}.{full_name}.{hash}", t.package),
        name: full_name,
        resource_type: ResourceType::Test,
        package: t.package.clone(),
        path: format!("{short_name}.sql"),
        original_file_path: t.original_file_path.clone(),
        fqn,
        // One template per yml file and test macro: its text is the same for every such test.
        template: Some(format!("{}://{}#{macro_name}", t.package, t.original_file_path)),
        template_text: raw_code.clone(),
        raw_code,
        source: t.patch_file.clone(),
        offset: 0,
        config,
        enabled,
        relation: Relation { database: None, schema: String::new(), identifier: short_name },
        description,
        patch_path: None,
        columns: IndexMap::new(),
        version: None,
        latest_version: None,
        test: Some(TestDraft {
            metadata: TestMetadata { name: short, namespace, kwargs },
            attached_node: Some(t.attached),
            column_name: t.column,
        }),
        parse_refs: vec![],
        parse_sources: vec![],
        seed_file: None,
    })
}

/// `_dbt_generic_test_kwargs`: each kwarg rendered natively, as dbt does.
/// The `model` variable of one draft, built on first use: most templates never read it.
pub struct LazyModel {
    drafts: Arc<Vec<Box<Draft>>>,
    idx: usize,
    with_relation: bool,
    cell: std::sync::OnceLock<Value>,
}

impl std::fmt::Debug for LazyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.value(), f)
    }
}

impl LazyModel {
    pub fn value_of(drafts: &Arc<Vec<Box<Draft>>>, idx: usize, with_relation: bool) -> Value {
        Value::from_object(LazyModel { drafts: drafts.clone(), idx, with_relation, cell: std::sync::OnceLock::new() })
    }

    fn value(&self) -> &Value {
        self.cell.get_or_init(|| {
            let d = &self.drafts[self.idx];
            super::context::json_value(&d.model_json(self.with_relation.then_some(&d.relation)))
        })
    }
}

impl minijinja::value::Object for LazyModel {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.value().get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        match self.value().try_iter() {
            Ok(keys) => minijinja::value::Enumerator::Values(keys.collect()),
            Err(_) => minijinja::value::Enumerator::Empty,
        }
    }
}

/// Test kwargs' expressions compiled once per shape: `ref('a')` and `ref('b')` are both
/// `ref(__kwarg_0)`, so 4000 tests compile a handful of expressions, not 4000.
#[derive(Default)]
pub struct KwargExprs<'env> {
    cache: Mutex<HashMap<String, Arc<minijinja::Expression<'env, 'static>>>>,
}

/// `s` with its string literals replaced by `__kwarg_<i>`, and their values.
fn kwarg_shape(s: &str) -> Option<(String, Vec<(String, Value)>)> {
    let mut shape = String::with_capacity(s.len());
    let mut args = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['\'', '"']) {
        let q = rest.as_bytes()[i] as char;
        let end = rest[i + 1..].find(q)? + i + 1;
        let literal = &rest[i + 1..end];
        if literal.contains('\\') {
            return None;
        }
        shape.push_str(&rest[..i]);
        let name = format!("__kwarg_{}", args.len());
        shape.push_str(&name);
        args.push((name, Value::from(literal)));
        rest = &rest[end + 1..];
    }
    shape.push_str(rest);
    Some((shape, args))
}

impl<'env> KwargExprs<'env> {
    fn eval(&self, env: &'env Environment<'static>, root: &Value, expr: &str) -> Result<Value, minijinja::Error> {
        let Some((shape, args)) = kwarg_shape(expr) else {
            return env.compile_expression_owned(expr.to_string())?.eval(root.clone());
        };
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&shape).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(env.compile_expression_owned(shape.clone())?);
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(shape, c.clone());
                c
            }
        };
        compiled.eval(minijinja::value::merge_maps([root.clone(), Value::from_pairs(args)]))
    }
}

/// For a generic test whose arguments hold no Jinja but its `model` (`{{ get_where_subquery(
/// ref(...)) }}` or `source(...)`), that `ref(...)` or `source(...)` call's text.
pub fn plain_test_target(d: &Draft) -> Option<&str> {
    fn plain(v: &Json) -> bool {
        match v {
            Json::String(s) => !s.contains("{{") && !s.contains("{%") && !LOOKS_LIKE_FUNC.is_match(s),
            Json::Array(a) => a.iter().all(plain),
            Json::Object(m) => m.values().all(plain),
            _ => true,
        }
    }
    let t = d.test.as_ref()?;
    let mut target = None;
    for (k, v) in &t.metadata.kwargs {
        match (k.as_str(), v) {
            ("column_name", Json::String(_)) => {}
            ("model", Json::String(s)) => target = Some(s.strip_prefix("{{ get_where_subquery(")?.strip_suffix(") }}")?),
            _ if plain(v) => {}
            _ => return None,
        }
    }
    target
}

/// Whether a test argument is a call the render evaluates (`ref(...)`, `var(...)`, ...).
pub fn looks_like_call(value: &str) -> bool {
    LOOKS_LIKE_FUNC.is_match(value)
}

static LOOKS_LIKE_FUNC: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$").expect("regex"));

pub fn test_kwargs<'env>(
    env: &'env Environment<'static>,
    exprs: &KwargExprs<'env>,
    node: &Arc<NodeRender>,
    d: &Draft,
    templates: &Templates,
) -> Result<Value, Diagnostic> {
    // A value that is one `{{ expression }}` and nothing else.
    static ONE_EXPR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^\{\{\s*([^{}%]+?)\s*\}\}$").expect("regex"));
    let Some(t) = &d.test else { return Ok(Value::from(())) };
    let origin = TemplateOrigin::new(d.source.clone(), 0);
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    let mut out: IndexMap<String, Value> = IndexMap::new();
    let render_value = |key: &str, v: &Json| -> Result<Value, minijinja::Error> {
        fn go<'env>(
            env: &'env Environment<'static>,
            exprs: &KwargExprs<'env>,
            root: &Value,
            key: &str,
            v: &Json,
        ) -> Result<Value, minijinja::Error> {
            Ok(match v {
                Json::String(s) if key == "column_name" => Value::from(s.clone()),
                Json::String(s) if LOOKS_LIKE_FUNC.is_match(s) => exprs.eval(env, root, s)?,
                Json::String(s) if s.contains("{{") || s.contains("{%") => {
                    match ONE_EXPR.captures(s).filter(|_| !s.contains("{{-") && !s.contains("-}}")) {
                        Some(c) => Value::from(exprs.eval(env, root, &c[1])?.to_string()),
                        None => Value::from(env.render_str(s, root.clone())?),
                    }
                }
                Json::Array(a) => Value::from(a.iter().map(|x| go(env, exprs, root, "", x)).collect::<Result<Vec<_>, _>>()?),
                Json::Object(m) => {
                    let mut map = IndexMap::new();
                    for (k, x) in m {
                        map.insert(k.clone(), go(env, exprs, root, "", x)?);
                    }
                    Value::from_pairs(map)
                }
                other => super::context::json_value(other),
            })
        }
        go(env, exprs, &root, key, v)
    };
    for (k, v) in &t.metadata.kwargs {
        let value = render_value(k, v).map_err(|e| {
            let mut diag = templates.diagnostic(&e, Some(&origin), "render::test");
            if diag.span.is_none()
                && let Some(target) = t.attached_node.as_deref().and_then(|a| a.rsplit('.').next())
                && let Some((line, col)) = yaml::find_line(&d.source.text, "name", target)
            {
                diag = diag.at_line_col(&d.source, line, col);
            }
            diag
        })?;
        out.insert(k.clone(), value);
    }
    Ok(Value::from_pairs(out))
}

/// The `graph` variable: what the parse pass knows about every node and source.
pub fn graph_json(drafts: &[Box<Draft>], sources: &[SourceTable]) -> Json {
    let nodes: Map<String, Json> =
        drafts.iter().filter(|d| d.enabled).map(|d| (d.unique_id.clone(), d.model_json(Some(&d.relation)))).collect();
    let srcs: Map<String, Json> = sources
        .iter()
        .map(|s| {
            (
                s.unique_id.clone(),
                json!({
                    "unique_id": s.unique_id, "name": s.name, "source_name": s.source_name, "resource_type": "source",
                    "package_name": s.package_name, "database": s.relation.database, "schema": s.relation.schema,
                    "identifier": s.relation.identifier, "fqn": s.fqn, "description": s.description, "tags": s.tags,
                }),
            )
        })
        .collect();
    json!({ "nodes": nodes, "sources": srcs, "exposures": {}, "metrics": {}, "groups": {} })
}
