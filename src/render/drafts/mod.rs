//! Nodes before rendering: one draft per model, seed, snapshot, analysis and test, with its
//! config from the project's config trees and properties yml; sources with rendered yml values.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
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

mod config;
mod generic_tests;
mod graph;

pub(super) use config::*;
pub(super) use generic_tests::*;
pub(super) use graph::*;

#[derive(Clone)]
pub(super) struct TestDraft {
    pub metadata: TestMetadata,
    pub attached_node: Option<String>,
    pub column_name: Option<String>,
}

#[derive(Clone)]
pub(super) struct Draft {
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
    pub(super) fn model_json(&self, rel: Option<&Relation>) -> Json {
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
    pub(super) fn into_node(self, compiled_code: Option<String>, incremental: Option<String>, rec: Option<Recorded>) -> Node {
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
            late: None,
        }
    }
}

/// dbt's file checksum: the sha256 of the file's text, as lowercase hex.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    crate::hex_digest(&sha2::Sha256::digest(data))
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
pub(super) fn collect(
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
            .map(|f| match yaml::parse(&f.source, crate::codes::project::YAML) {
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
                                yml_errors.borrow_mut().push(Diagnostic::error(crate::codes::render::YAML, msg).at(&f.source, span));
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

        // Model versions whose file is not `<name>_v<v>`: file stem → (model, version, latest).
        // As dbt looks a version's file up: `defined_in` when given, else `<name>_v<v>`, and
        // for the latest version only, when that file does not exist, the unsuffixed `<name>`.
        let model_stems: HashSet<&str> = pkg.files.iter().filter(|f| f.kind == FileKind::Model).map(|f| file_stem(&f.path)).collect();
        let mut defined_in: HashMap<String, (String, String, Option<String>)> = HashMap::new();
        for ((kind, name), p) in &patches {
            let Some(Json::Array(vs)) = p.entry.get("versions").filter(|_| *kind == "model") else { continue };
            let versions: Vec<String> = vs.iter().filter_map(|x| x.get("v").map(json_scalar)).collect();
            let latest = p.entry.get("latest_version").map(json_scalar).or_else(|| max_version(&versions));
            for (ve, v) in vs.iter().zip(&versions) {
                let file = match yaml::str_at(ve, "defined_in") {
                    Some(file) => file.to_string(),
                    None if latest.as_ref() == Some(v)
                        && !model_stems.contains(format!("{name}_v{v}").as_str())
                        && model_stems.contains(name.as_str()) =>
                    {
                        name.clone()
                    }
                    None => continue,
                };
                defined_in.insert(file, (name.clone(), v.clone(), latest.clone()));
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
                let stem = file_stem(&f.path).to_string();
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
                    // As dbt reads a file: stripped of surrounding whitespace (its raw_code, and
                    // what renders); the offset keeps locations in the file right.
                    let text = &f.source.text;
                    let start = text.len() - text.trim_start().len();
                    let stripped = text.trim();
                    let text = if stripped.len() == text.len() { text.clone() } else { Arc::from(stripped) };
                    units.push((name, text, start, version, latest));
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

/// A file's name without its folders and extension (`models/stg_x.sql` → `stg_x`).
fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}
