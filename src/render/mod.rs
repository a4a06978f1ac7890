//! Compiles a project into nodes with dbt's Jinja, in the phases `compile_all` calls in order.
//!
//! Two passes, as dbt: a parse pass records `ref`/`source`/`config` calls, then relations are
//! resolved through `generate_*_name` and the compile pass renders SQL. Where things live:
//! - `templates`: the environment's loader, each template's origin (file:line:col) and text;
//!   `rewrite` and `env::call_blocks`: the source rewrites minijinja needs, with their `SourceMap`.
//! - `env`: the environment's globals, filters and tests; `python/`: Python's behaviour the
//!   templates see (`repr`, `%` formatting, `datetime`, checked against CPython).
//! - `macros`: the project's and packages' macros registered; `builtins/`: orrery's own Jinja for
//!   dbt's global macros, generic test names, ephemeral CTEs.
//! - `drafts/`: nodes before rendering (files, properties yml, config merging, generic tests,
//!   `graph`); `naming`: each relation through `generate_*_name`.
//! - `context/`: what one render sees (`ref`, `source`, `config`, `var`, `this`, macro calls,
//!   relations as templates see them); `passes`: the parse and compile passes over the drafts.
//! - `shortcuts/`: reading and writing simple templates without rendering (`static_parse`) and
//!   dbt's four generic tests natively (`native_tests`), checked against plain rendering.
//! - `hooks`, `descriptions`, `runtime_vars`, `config`: hooks, `doc()` in descriptions, runtime
//!   variables' compile-time checks, and a node's typed config.

pub(crate) mod builtins;
mod config;
pub(crate) mod context;
mod descriptions;
mod drafts;
mod env;
mod hooks;
mod late;
mod macros;
mod naming;
mod passes;
mod python;
mod rewrite;
mod runtime_vars;
mod shortcuts;
mod templates;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use minijinja::Environment;
use minijinja::value::Value;
use rayon::prelude::*;
use serde_json::Value as Json;

pub(crate) use config::node_config;
pub use context::{QueryResult, Warehouse};
pub use env::{add_type_filters, env_reads, env_var_function};
use hooks::{hooks_of, render_hooks, render_node_hooks};
pub use late::realize;
use macros::{MacroSet, register_macros};
use naming::{resolve_relation, target_map};
use passes::{CompileInputs, ParseInputs, compile_pass, new_render, parse_pass, template_pieces};
pub use runtime_vars::{runtime_var_in_identifier, runtime_var_misuse};
use shortcuts::{native_tests, read_parse_calls, static_parse, write_pieces};
use templates::{LazySource, register_draft_templates};
pub(crate) use templates::{TemplateOrigin, Templates};

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::node::{Compiled, Node, NodeConfig, Relation, ResourceType};
use crate::project::Project;
use context::{Ctx, MacroRef, NodeRender, Pass, Recorded, Shared, Target};
use drafts::Draft;

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub full_refresh: bool,
    pub invocation_id: String,
    pub run_started_at: DateTime<Utc>,
    /// No shortcuts: render every template in the parse pass, also those [`static_parse`] can
    /// read, and every call of a pure macro, also those it has rendered (tests compare the two).
    pub plain: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { full_refresh: false, invocation_id: uuid::Uuid::new_v4().to_string(), run_started_at: Utc::now(), plain: false }
    }
}

/// dbt_project.yml's `quoting:` (every part quoted unless set false).
fn quote_policy(project_yml: &Json) -> crate::relation::QuotePolicy {
    let part = |key: &str| project_yml.get("quoting").and_then(|q| q.get(key)).and_then(Json::as_bool).unwrap_or(true);
    crate::relation::QuotePolicy { database: part("database"), schema: part("schema"), identifier: part("identifier") }
}

/// Renders every node of a project to dbt-identical SQL.
pub fn compile(project: &Project, options: &RenderOptions) -> Result<Compiled, Diagnostics> {
    let compiled = compile_all(project, options);
    if compiled.diagnostics.has_errors() { Err(compiled.diagnostics) } else { Ok(compiled) }
}

/// Like [`compile`], but keeps every node it could compile next to the errors of the others
/// (in `Compiled::diagnostics`), so later stages can look for more problems in one run.
pub fn compile_all(project: &Project, options: &RenderOptions) -> Compiled {
    let _all = crate::timing::phase("render");
    let t = crate::timing::phase("render.macros");
    let mut diags = project.warnings.clone();
    let (mut env, lazy) = templates::environment(options);
    let mut templates = Templates::default();
    let MacroSet { macros, infos: mut macro_infos, inert: inert_macros, pure: pure_macros } =
        register_macros(project, &mut env, &lazy, &mut templates, &mut diags);
    let docs_index = drafts::docs_index(project);
    let base = base_shared(project, options, macros, pure_macros, &docs_index);

    // Sources and drafts from files and properties yml (yml Jinja rendered with the base context).
    drop(t);
    let t = crate::timing::phase("render.drafts");
    let mut base = Arc::new(base);
    let (sources, mut drafts) = drafts::collect(project, &env, &base, &templates, &mut diags);
    drop(t);
    let t = crate::timing::phase("render.templates");
    // The templates are filed by name while the targets are (each mostly one thread's work).
    let (broken, (source_map, targets)) = rayon::join(
        || register_draft_templates(&env, &lazy, &mut templates, &drafts, &mut diags),
        || {
            let source_map =
                sources.iter().map(|s| ((s.source_name.clone(), s.name.clone()), (s.unique_id.clone(), s.relation.clone()))).collect();
            (source_map, target_map(&drafts, &project.target))
        },
    );
    {
        let shared = Arc::make_mut(&mut base);
        shared.sources = source_map;
        shared.targets = targets;
    }

    drop(t);
    let t = crate::timing::phase("render.parse");
    let kwarg_exprs = drafts::KwargExprs::default();
    let pieces = template_pieces(&drafts, &templates, options.plain);
    let parse = ParseInputs {
        env: &env,
        base: &base,
        templates: &templates,
        broken: &broken,
        inert_macros: &inert_macros,
        kwarg_exprs: &kwarg_exprs,
        pieces: &pieces,
        plain: options.plain,
    };
    let keep = parse_pass(&parse, &mut drafts, &mut diags);

    drop(t);
    let t = crate::timing::phase("render.relations");
    let shared = resolve_relations(&env, base, &mut drafts, project, &templates, &sources, &mut diags);

    drop(t);
    let t = crate::timing::phase("render.compile");
    let drafts = Arc::new(drafts);
    let inputs = CompileInputs {
        env: &env,
        shared: &shared,
        templates: &templates,
        kwarg_exprs: &kwarg_exprs,
        pieces: &pieces,
        plain: options.plain,
    };
    let mut late_marks = Vec::new();
    let results = compile_pass(&inputs, &drafts, &keep, &mut diags, &mut late_marks);
    let late_context = (!late_marks.is_empty()).then(|| late::context(project, &shared));
    let late_nodes = late_nodes(&drafts, &shared, late_marks);
    // The templates' pieces (about 1 KB a template) are done with: their memory goes to the nodes.
    pieces.into_par_iter().for_each(drop);

    drop(t);
    let _t = crate::timing::phase("render.nodes");
    let mut nodes = assemble_nodes(drafts, results, late_nodes);

    let on_run_start = render_hooks(&env, &shared, &project.on_run_start, &mut diags);
    let on_run_end = render_hooks(&env, &shared, &project.on_run_end, &mut diags);
    // Done with: freed on a pool thread while the caller goes on (the graph is built next).
    drop_aside((shared, templates, env));
    macro_infos.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    let mut sources = sources;
    sources.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    // Descriptions with `doc()` calls, as dbt's manifest has them (few have any).
    for node in &mut nodes {
        descriptions::resolve_node(node, &project.name, &docs_index);
    }
    for source in &mut sources {
        descriptions::resolve_source(source, &project.name, &docs_index);
    }

    diags.sort();
    Compiled {
        project_name: project.name.clone(),
        project_root: project.root.clone(),
        target_path: project.target_path.clone(),
        target: project.target.clone(),
        nodes,
        sources,
        macros: macro_infos,
        on_run_start,
        on_run_end,
        invocation_id: options.invocation_id.clone(),
        generated_at: options.run_started_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        diagnostics: diags,
        late_context,
    }
}

/// The state every render starts from: the project's macros, vars, docs, target and quoting;
/// sources, targets and `graph` are filled in later.
fn base_shared(
    project: &Project,
    options: &RenderOptions,
    macros: crate::FastMap<String, crate::FastMap<String, MacroRef>>,
    pure_macros: crate::FastSet<String>,
    docs_index: &descriptions::DocsIndex,
) -> Shared {
    let mut package_order: Vec<String> = project.packages.iter().map(|p| p.name.clone()).collect();
    package_order.push("dbt".into());
    // The text `doc()` reads: the last definition, in package order.
    let docs = docs_index.iter().filter_map(|(name, defs)| Some((name.clone(), defs.last()?.1.clone()))).collect();
    Shared {
        root_package: project.name.clone(),
        adapter: project.target.adapter_type.clone(),
        target: context::json_value(&serde_json::to_value(&project.target_jinja).unwrap_or_default()),
        macros,
        package_order,
        dispatch: project.root_package().dispatch.iter().cloned().collect(),
        targets: Default::default(),
        sources: Default::default(),
        vars: drafts::package_vars(project),
        graph: Value::from(()),
        docs,
        quoting: quote_policy(&project.root_package().project_yml),
        memo: context::MacroMemo::new(if options.plain { Default::default() } else { pure_macros }),
        live: None,
    }
}

/// Each late draft's mark and what its node depends on: the nodes and sources its parse pass
/// found (as dbt fixes `depends_on` at parse time), by draft index.
fn late_nodes(
    drafts: &[Box<Draft>],
    shared: &Shared,
    marks: Vec<(usize, Diagnostic)>,
) -> HashMap<usize, (Box<crate::node::LateNode>, Recorded)> {
    marks
        .into_iter()
        .map(|(i, diag)| {
            let d = &drafts[i];
            let mut rec = Recorded::default();
            for call in &d.parse_refs {
                if let Some(target) = shared.ref_target(&d.package, call) {
                    rec.add_ref(call.clone(), &target.unique_id);
                }
            }
            for [s, t] in &d.parse_sources {
                if let Some((uid, _)) = shared.sources.get(&(s.clone(), t.clone())) {
                    rec.add_source([s.clone(), t.clone()], uid);
                }
            }
            let call = diag.place().unwrap_or_else(|| d.original_file_path.clone());
            let late = crate::node::LateNode { call, message: diag.message.clone(), bundle: late::bundle(d, shared) };
            (i, (Box::new(late), rec))
        })
        .collect()
}

/// The nodes, from the drafts and their compile results: ephemeral models inlined as CTEs,
/// recursively, as dbt inlines them; hooks into the config; sorted by unique id.
fn assemble_nodes(
    drafts: Arc<Vec<Box<Draft>>>,
    results: Vec<Option<(String, Option<String>, Recorded)>>,
    mut late: HashMap<usize, (Box<crate::node::LateNode>, Recorded)>,
) -> Vec<Node> {
    // Only an ephemeral model's SQL is read across nodes (to inline it): kept aside, so that
    // every other node's parts are moved, not copied, into its node, all nodes in parallel.
    let inlined: std::collections::HashSet<&str> =
        results.iter().flatten().flat_map(|(_, _, rec)| rec.ephemerals.iter().map(String::as_str)).collect();
    let ephemerals: HashMap<String, (String, String, Vec<String>)> = drafts
        .iter()
        .zip(&results)
        .filter(|(d, _)| inlined.contains(d.unique_id.as_str()))
        .filter_map(|(d, r)| {
            let (sql, _, rec) = r.as_ref()?;
            Some((d.unique_id.clone(), (d.relation.identifier.clone(), sql.clone(), rec.ephemerals.clone())))
        })
        .collect();
    drop(inlined);
    let lookup = |uid: &str| {
        let (identifier, sql, ctes) = ephemerals.get(uid)?;
        Some(builtins::Ephemeral { identifier, sql, ctes })
    };
    let drafts = Arc::try_unwrap(drafts).unwrap_or_else(|shared| shared.as_ref().clone());
    let mut late: Vec<Option<(Box<crate::node::LateNode>, Recorded)>> = (0..drafts.len()).map(|i| late.remove(&i)).collect();
    let nodes: Vec<Option<Node>> = drafts
        .into_par_iter()
        .zip(results.into_par_iter())
        .zip(late.par_iter_mut())
        .map(|((d, result), late)| {
            if !d.enabled {
                return None;
            }
            if let Some((mark, rec)) = late.take() {
                let mut node = d.into_node(None, None, Some(rec));
                node.late = Some(mark);
                return Some(node);
            }
            let (sql, inc, mut rec) = match result {
                Some((s, inc, rec)) => (Some(s), inc, Some(rec)),
                None => (None, None, None),
            };
            let ctes = rec.as_ref().map(|r| builtins::collect_ctes(&r.ephemerals, &lookup)).unwrap_or_default();
            let inject = |s: String| if ctes.is_empty() { s } else { builtins::inject_ctes(&s, &ctes) };
            let compiled_code = if d.resource_type == ResourceType::Seed { None } else { sql.map(inject) };
            let compiled_code_incremental = inc.map(inject);
            let hooks = rec.as_mut().and_then(|r| r.hooks.take());
            let mut node = d.into_node(compiled_code, compiled_code_incremental, rec);
            if let Some((pre, post)) = hooks {
                let config = node.config_mut();
                config.pre_hook = pre;
                config.post_hook = post;
            }
            Some(node)
        })
        .collect();
    // `filter_map` over the vector's own iterator collects in place (a node is large);
    // `flatten`, clippy's suggestion, does not: it made a second vector, 10 MB more peak at 10k.
    #[allow(clippy::filter_map_identity)]
    let mut nodes: Vec<Node> = nodes.into_iter().filter_map(std::convert::identity).collect();
    nodes.sort_by(|a: &Node, b: &Node| a.unique_id.cmp(&b.unique_id));
    nodes
}

/// Each draft's relation through the `generate_*_name` macros, then the shared state the
/// compile pass reads: the targets `ref()` resolves to and, when a template could read it,
/// `graph`.
fn resolve_relations(
    env: &Environment<'static>,
    base: Arc<Shared>,
    drafts: &mut [Box<Draft>],
    project: &Project,
    templates: &Templates,
    sources: &[crate::node::SourceTable],
    diags: &mut Diagnostics,
) -> Arc<Shared> {
    let mut shared = Arc::try_unwrap(base).unwrap_or_else(|a| (*a).clone());
    drop_aside(std::mem::take(&mut shared.targets));
    let shared_arc = Arc::new(shared);
    let relations: Vec<Result<Relation, Diagnostic>> =
        drafts.par_iter().map(|d| resolve_relation(env, &shared_arc, d, &project.target, templates)).collect();
    for (d, r) in drafts.iter_mut().zip(relations) {
        match r {
            Ok(rel) => d.relation = rel,
            Err(diag) => diags.push(diag),
        }
    }
    let mut shared = Arc::try_unwrap(shared_arc).unwrap_or_else(|a| (*a).clone());
    shared.targets = target_map(drafts, &project.target);
    // `graph` is large; build it only when some template could read it.
    let mentions_graph = drafts.iter().any(|d| d.template_text.contains("graph"))
        || project
            .packages
            .iter()
            .flat_map(|p| &p.files)
            .any(|f| f.kind == crate::project::FileKind::Macro && f.source.text.contains("graph"));
    if mentions_graph {
        shared.graph = context::json_value(&drafts::graph_json(drafts, sources));
    }
    Arc::new(shared)
}

/// Drops `value` on a pool thread while this one goes on: freeing a map of thousands of entries
/// takes milliseconds that would otherwise hold up everything after it.
fn drop_aside<T: Send + 'static>(value: T) {
    rayon::spawn(move || drop(value));
}
