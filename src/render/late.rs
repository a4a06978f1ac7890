//! Nodes rendered at run time ("late"): a node whose compile-pass render asks the warehouse
//! (`run_query`, `adapter.get_columns_in_relation`, …; see `context::warehouse`) is planned
//! with a render bundle instead of statements, and [`realize`]d on the worker that runs it, with
//! its connection, after its parents finished.
//!
//! A bundle holds what the node's render reads: its draft (template, merged config, tests'
//! kwargs), the nodes and sources its parse pass found it referring to, resolved; the project's
//! macros and the rest of the shared state ([`LateContext`]) are stored once per plan. Nothing in
//! them is a secret: the target is `target` as templates see it, and `env_var()` is called again
//! when the node renders.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::*;
use crate::node::{ColumnInfo, RefCall, TestMetadata};

/// The state every late node of a plan renders with.
#[derive(Serialize, Deserialize)]
pub(crate) struct LateContext {
    root_package: String,
    adapter: String,
    target: Json,
    package_order: Vec<String>,
    dispatch: HashMap<String, Vec<String>>,
    vars: HashMap<String, IndexMap<String, Json>>,
    quoting: [bool; 3],
    macro_files: Vec<LateMacroFile>,
}

#[derive(Serialize, Deserialize)]
struct LateMacroFile {
    package: String,
    path: String,
    /// The file as the user has it (for errors' file:line:col).
    shown_path: PathBuf,
    text: String,
}

/// One late node's bundle.
#[derive(Serialize, Deserialize)]
struct LateBundle {
    draft: LateDraft,
    /// Every node of each name the node refers to (its `ref()` resolves among them).
    targets: Vec<(String, Vec<Target>)>,
    sources: Vec<((String, String), (String, Relation))>,
}

/// A draft's parts, as a bundle stores them.
#[derive(Serialize, Deserialize)]
struct LateDraft {
    unique_id: String,
    name: String,
    resource_type: crate::node::ResourceType,
    package: String,
    path: String,
    original_file_path: String,
    fqn: Vec<String>,
    template: Option<String>,
    template_text: String,
    raw_code: String,
    source_path: PathBuf,
    source_text: String,
    offset: usize,
    config: serde_json::Map<String, Json>,
    relation: Relation,
    description: String,
    patch_path: Option<String>,
    columns: IndexMap<String, ColumnInfo>,
    version: Option<String>,
    latest_version: Option<String>,
    test: Option<(TestMetadata, Option<String>, Option<String>)>,
    parse_refs: Vec<RefCall>,
    parse_sources: Vec<[String; 2]>,
}

/// The plan's context for late nodes, from the project and the compile's shared state.
pub(super) fn context(project: &Project, shared: &Shared) -> Json {
    let macro_files = macros::project_macro_files(project)
        .into_iter()
        .map(|f| LateMacroFile {
            package: f.package,
            path: f.path,
            shown_path: f.source.path.as_ref().clone(),
            text: f.source.text.to_string(),
        })
        .collect();
    let context = LateContext {
        root_package: shared.root_package.clone(),
        adapter: shared.adapter.clone(),
        target: serde_json::to_value(&project.target_jinja).unwrap_or_default(),
        package_order: shared.package_order.clone(),
        dispatch: shared.dispatch.clone(),
        vars: shared.vars.clone(),
        quoting: [shared.quoting.database, shared.quoting.schema, shared.quoting.identifier],
        macro_files,
    };
    serde_json::to_value(context).unwrap_or_default()
}

/// A late draft's bundle.
pub(super) fn bundle(d: &Draft, shared: &Shared) -> Json {
    let mut names: Vec<&str> = d.parse_refs.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let targets = names.into_iter().filter_map(|n| Some((n.to_string(), shared.targets.get(n)?.clone()))).collect();
    let sources = d
        .parse_sources
        .iter()
        .filter_map(|[s, t]| {
            let key = (s.clone(), t.clone());
            let found = shared.sources.get(&key)?.clone();
            Some((key, found))
        })
        .collect();
    let draft = LateDraft {
        unique_id: d.unique_id.clone(),
        name: d.name.clone(),
        resource_type: d.resource_type,
        package: d.package.clone(),
        path: d.path.clone(),
        original_file_path: d.original_file_path.clone(),
        fqn: d.fqn.clone(),
        template: d.template.clone(),
        template_text: d.template_text.to_string(),
        raw_code: d.raw_code.to_string(),
        source_path: d.source.path.as_ref().clone(),
        source_text: d.source.text.to_string(),
        offset: d.offset,
        config: d.config.clone(),
        relation: d.relation.clone(),
        description: d.description.clone(),
        patch_path: d.patch_path.clone(),
        columns: d.columns.clone(),
        version: d.version.clone(),
        latest_version: d.latest_version.clone(),
        test: d.test.as_ref().map(|t| (t.metadata.clone(), t.attached_node.clone(), t.column_name.clone())),
        parse_refs: d.parse_refs.clone(),
        parse_sources: d.parse_sources.clone(),
    };
    serde_json::to_value(LateBundle { draft, targets, sources }).unwrap_or_default()
}

fn malformed(what: &str, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(crate::codes::render::LATE_BUNDLE, format!("the plan's {what} for a node rendered at run time is malformed: {e}"))
        .with_help("write the plan again with this orrery (`orrery compile` or `orrery plan -o`)")
}

/// Renders a late node with a connection: its node as a static one would have compiled
/// (`compiled_code`, and the incremental variant of an incremental model), ready for the plan's
/// statements. A render error is the node's failure, at its file:line:column.
pub fn realize(context: &Json, bundle: &Json, warehouse: Box<dyn Warehouse>, options: &RenderOptions) -> Result<Node, Diagnostic> {
    let context: LateContext = serde_json::from_value(context.clone()).map_err(|e| malformed("render context", e))?;
    let bundle: LateBundle = serde_json::from_value(bundle.clone()).map_err(|e| malformed("render bundle", e))?;
    let mut diags = Diagnostics::new();
    let (mut env, lazy) = templates::environment(options);
    env.add_global("flags", env::flags(options.full_refresh, "build"));
    let mut templates = Templates::default();
    let files: Vec<macros::MacroFile> = context
        .macro_files
        .into_iter()
        .map(|f| macros::MacroFile { package: f.package, path: f.path, source: SourceFile::new(f.shown_path, f.text) })
        .collect();
    let set = macros::register_macro_files(&files, &mut env, &lazy, &mut templates, &mut diags);
    if let Some(first) = diags.errors().next() {
        return Err(first.clone());
    }
    let [database, schema, identifier] = context.quoting;
    let shared = Arc::new(Shared {
        root_package: context.root_package,
        adapter: context.adapter,
        target: context::json_value(&context.target),
        macros: set.macros,
        package_order: context.package_order,
        dispatch: context.dispatch,
        targets: bundle.targets.into_iter().collect(),
        sources: bundle.sources.into_iter().collect(),
        vars: context.vars,
        graph: Value::from(()),
        docs: HashMap::new(),
        quoting: crate::relation::QuotePolicy { database, schema, identifier },
        memo: context::MacroMemo::new(Default::default()),
        live: Some(Arc::new(Mutex::new(warehouse))),
    });
    let d = bundle.draft;
    let draft = Box::new(Draft {
        unique_id: d.unique_id,
        name: d.name,
        resource_type: d.resource_type,
        package: d.package,
        path: d.path,
        original_file_path: d.original_file_path,
        fqn: d.fqn,
        template: d.template,
        template_text: Arc::from(d.template_text),
        raw_code: Arc::from(d.raw_code),
        source: SourceFile::new(d.source_path, d.source_text),
        offset: d.offset,
        config: d.config,
        enabled: true,
        relation: d.relation,
        description: d.description,
        patch_path: d.patch_path,
        columns: d.columns,
        version: d.version,
        latest_version: d.latest_version,
        test: d.test.map(|(metadata, attached_node, column_name)| drafts::TestDraft { metadata, attached_node, column_name }),
        parse_refs: d.parse_refs,
        parse_sources: d.parse_sources,
        seed_file: None,
    });
    let drafts = vec![draft];
    register_draft_templates(&env, &lazy, &mut templates, &drafts, &mut diags);
    if let Some(first) = diags.errors().next() {
        return Err(first.clone());
    }
    let kwarg_exprs = drafts::KwargExprs::default();
    let inputs =
        CompileInputs { env: &env, shared: &shared, templates: &templates, kwarg_exprs: &kwarg_exprs, pieces: &Vec::new(), plain: true };
    let drafts = Arc::new(drafts);
    let rendered = passes::compile_draft(&inputs, &drafts, 0, &drafts[0]);
    let drafts = Arc::try_unwrap(drafts).unwrap_or_else(|shared| shared.as_ref().clone());
    let draft = drafts.into_iter().next().ok_or_else(|| malformed("render bundle", "no node"))?;
    match rendered {
        Some(Ok((sql, incremental, rec))) => Ok(draft.into_node(Some(sql), incremental, Some(rec))),
        Some(Err(diag)) => Err(diag),
        None => Err(malformed("render bundle", "nothing to render")),
    }
}
