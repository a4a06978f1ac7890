//! The minijinja environment with dbt's Jinja context; compiles a project into nodes.
//!
//! Two passes, as dbt: a parse pass (`execute` false) records `ref`/`source`/`config` calls,
//! then relations are resolved through `generate_*_name` and the compile pass renders SQL.

pub(crate) mod builtins;
mod config;
pub(crate) mod context;
mod descriptions;
mod drafts;
mod env;
mod hooks;
mod macros;
mod naming;
mod native_tests;
mod python;
mod rewrite;
mod runtime_vars;
mod shortcuts;
mod static_parse;
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
pub use env::{env_reads, env_var_function};
use hooks::{hooks_of, render_hooks, render_node_hooks};
use macros::{MacroSet, register_macros};
use naming::{resolve_relation, target_map};
pub use runtime_vars::{runtime_var_in_identifier, runtime_var_misuse};
use shortcuts::{read_parse_calls, write_pieces};

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

/// Where a template's text came from, to turn minijinja errors into file:line:col.
#[derive(Clone)]
pub(crate) struct TemplateOrigin {
    pub source: SourceFile,
    /// Byte offset of the template text in the file (snapshot bodies).
    pub offset: usize,
    /// Where the template text was rewritten before minijinja saw it: back to the file's text.
    pub map: Option<Arc<rewrite::SourceMap>>,
}

impl TemplateOrigin {
    pub(crate) fn new(source: SourceFile, offset: usize) -> Self {
        TemplateOrigin { source, offset, map: None }
    }

    /// A byte range of the template minijinja compiled, as a range of the file.
    fn file_range(&self, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match &self.map {
            Some(m) => self.offset + m.original(r.start)..self.offset + m.original(r.end).max(m.original(r.start)),
            None => self.offset + r.start..self.offset + r.end,
        }
    }
}

/// The text minijinja compiles for a template, and its map back when it differs.
pub(crate) fn prepared(text: &str) -> (String, Option<Arc<rewrite::SourceMap>>) {
    let calls = env::call_blocks(text);
    let (text, calls_map) = match &calls {
        Some((t, m)) => (t.as_str(), Some(m)),
        None => (text, None),
    };
    match (rewrite::python_operators(text), calls_map) {
        (Some((t, m)), Some(c)) => (t, Some(Arc::new(c.then(&m)))),
        (Some((t, m)), None) => (t, Some(Arc::new(m))),
        (None, Some(c)) => (text.to_string(), Some(Arc::new(c.clone()))),
        (None, None) => (text.to_string(), None),
    }
}

/// A template's source waiting in the loader.
enum LazySource {
    /// Loaded whenever asked (builtin macros: any thread may ask first).
    Shared(String),
    /// Loaded once, then the compiled template is all that is kept (drafts).
    Once(String),
}

/// Registers the drafts' templates and reports the syntax errors of those many drafts share
/// (generic tests'; the first draft of a name wins). They are prepared and compiled in
/// parallel: minijinja compiles a loader's template outside its lock, and each source is handed
/// over once, so nothing is held twice. A template of its own draft is only prepared (see
/// `Templates::own`): its syntax errors come from its first render.
fn register_draft_templates(
    env: &Environment<'static>,
    lazy: &std::sync::Mutex<HashMap<String, LazySource>>,
    templates: &mut Templates,
    drafts: &[Box<drafts::Draft>],
    diags: &mut Diagnostics,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    let pending: Vec<(&String, &drafts::Draft)> = drafts
        .iter()
        .filter_map(|d| d.template.as_ref().map(|t| (t, &**d)))
        .filter(|(t, _)| !templates.origins.contains_key(*t) && seen.insert(t.as_str()))
        .collect();
    let prepared_all: Vec<(String, String, TemplateOrigin, bool)> = pending
        .par_iter()
        .map(|(name, d)| {
            let (text, map) = prepared(&d.template_text);
            ((*name).clone(), text, TemplateOrigin { source: d.source.clone(), offset: d.offset, map }, d.test.is_some())
        })
        .collect();
    let mut names = Vec::new();
    {
        let mut sources = lazy.lock().unwrap_or_else(|e| e.into_inner());
        for (name, text, origin, shared) in prepared_all {
            templates.origins.insert(name.clone(), origin);
            if shared {
                sources.insert(name.clone(), LazySource::Once(text));
                names.push(name);
            } else {
                templates.own.insert(name, text);
            }
        }
    }
    let errors: Vec<Option<minijinja::Error>> = names.par_iter().map(|name| env.get_template(name).err()).collect();
    let mut broken = std::collections::HashSet::new();
    for (name, err) in names.into_iter().zip(errors) {
        if let Some(err) = err {
            diags.push(templates.diagnostic(&err, templates.origins.get(&name), crate::codes::render::SYNTAX));
            broken.insert(name);
        }
    }
    broken
}

#[derive(Default)]
pub(crate) struct Templates {
    pub origins: crate::FastMap<String, TemplateOrigin>,
    /// The prepared text of each template only one draft renders (a model's, snapshot's,
    /// analysis' or singular test's): compiled for each render and dropped after it, not kept
    /// in the environment, since minijinja keeps room for 256 instructions in every compiled
    /// template (about 12 KB each, over 100 MB at 10,000 models).
    pub own: crate::FastMap<String, String>,
}

impl Templates {
    /// A minijinja error as a diagnostic at the innermost template location known.
    pub(crate) fn diagnostic(&self, err: &minijinja::Error, fallback: Option<&TemplateOrigin>, code: &str) -> Diagnostic {
        let mut message = err.detail().map(str::to_string).unwrap_or_else(|| err.kind().to_string());
        let mut located: Option<(&minijinja::Error, &TemplateOrigin)> = None;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(me) = e.downcast_ref::<minijinja::Error>() {
                if let Some(detail) = me.detail() {
                    message = detail.to_string();
                }
                if let Some(origin) = me.name().and_then(|n| self.origins.get(n))
                    && me.line().is_some()
                {
                    located = Some((me, origin));
                }
            }
            cur = e.source();
        }
        let diag = Diagnostic::error(code, message);
        match located {
            Some((me, origin)) => match me.range() {
                Some(r) => diag.at(&origin.source, origin.file_range(r)),
                None => {
                    let (base_line, _) = origin.source.line_col(origin.offset);
                    let line = base_line + me.line().unwrap_or(1) - 1;
                    let start = origin.source.offset_of(line, 1);
                    let end = origin.source.text[start..].find('\n').map_or(origin.source.text.len(), |i| start + i);
                    diag.at(&origin.source, start..end)
                }
            },
            None => match fallback {
                Some(o) => diag.with_file(o.source.path.as_ref().clone()),
                None => diag,
            },
        }
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
    let t_macros = crate::timing::phase("render.macros");
    let mut diags = project.warnings.clone();
    let mut env = env::new_environment(options.run_started_at, &options.invocation_id, options.full_refresh);
    let mut templates = Templates::default();
    // Templates compiled on first use (orrery's builtin macros, which a project mostly never
    // calls) or all at once in parallel (the drafts'): minijinja asks this loader for them.
    // A builtin may be loaded by two threads at once (minijinja loads outside its lock), so
    // its source stays; a draft's is loaded once, before rendering, and is handed over.
    let lazy: Arc<std::sync::Mutex<HashMap<String, LazySource>>> = Arc::default();
    env.set_auto_reload(false);
    env.set_loader({
        let lazy = lazy.clone();
        move |name| {
            let mut sources = lazy.lock().unwrap_or_else(|e| e.into_inner());
            Ok(match sources.get(name) {
                Some(LazySource::Shared(text)) => Some(text.clone()),
                Some(LazySource::Once(_)) => match sources.remove(name) {
                    Some(LazySource::Once(text)) => Some(text),
                    _ => None,
                },
                None => None,
            })
        }
    });

    let MacroSet { macros, infos: mut macro_infos, inert: inert_macros, pure: pure_macros } =
        register_macros(project, &mut env, &lazy, &mut templates, &mut diags);
    let mut package_order: Vec<String> = project.packages.iter().map(|p| p.name.clone()).collect();
    package_order.push("dbt".into());
    let dispatch: HashMap<String, Vec<String>> = project.root_package().dispatch.iter().cloned().collect();

    let vars = drafts::package_vars(project);
    // Docs blocks by name with their packages (for descriptions), and the text `doc()` reads:
    // the last definition, in package order.
    let docs_index = drafts::docs_index(project);
    let docs = docs_index.iter().filter_map(|(name, defs)| Some((name.clone(), defs.last()?.1.clone()))).collect();
    let target_value = context::json_value(&serde_json::to_value(&project.target_jinja).unwrap_or_default());

    let base_shared = Shared {
        root_package: project.name.clone(),
        adapter: project.target.adapter_type.clone(),
        target: target_value.clone(),
        macros,
        package_order,
        dispatch,
        targets: Default::default(),
        sources: Default::default(),
        vars,
        graph: Value::from(()),
        docs,
        quoting: quote_policy(&project.root_package().project_yml),
        memo: context::MacroMemo::new(if options.plain { Default::default() } else { pure_macros }),
    };

    // Sources and drafts from files and properties yml (yml Jinja rendered with the base context).
    drop(t_macros);
    let t = crate::timing::phase("render.drafts");
    let mut base = Arc::new(base_shared);
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
    // Each template simple enough to be written from its pieces, read once for both passes
    // (and whether it is the draft's own text, which the parse reader reads).
    let pieces: Vec<(Option<Vec<static_parse::Piece<'_>>>, bool)> = if options.plain {
        Vec::new()
    } else {
        drafts
            .par_iter()
            .map(|d| match d.template.as_ref().and_then(|name| templates.own.get(name)) {
                Some(text) => (static_parse::pieces(text), text.as_str() == &*d.template_text),
                None => (None, false),
            })
            .collect()
    };
    // Parse pass.
    let parse_drafts = Arc::new(std::mem::take(&mut drafts));
    let parsed: Vec<Result<Recorded, Diagnostic>> = parse_drafts
        .par_iter()
        .enumerate()
        .map(|(i, d)| {
            if d.template.as_ref().is_some_and(|t| broken.contains(t)) {
                return Err(Diagnostic::warning(crate::codes::render::SKIPPED, "skipped after a syntax error"));
            }
            if !options.plain {
                let read = pieces.get(i).filter(|(_, own)| *own).and_then(|(p, _)| p.as_deref());
                if let Some(rec) = read_parse_calls(&base, &inert_macros, d, read) {
                    return Ok(rec);
                }
            }
            let node = new_render(&base, d, Pass::Parse, None, drafts::LazyModel::value_of(&parse_drafts, i, false), None);
            if d.test.is_some() {
                return drafts::test_kwargs(&env, &kwarg_exprs, &node, d, &templates).map(|_| take_recorded(&node));
            }
            render_draft(&env, d, &node, &templates).map(|_| take_recorded(&node))
        })
        .collect();
    // Every render of the pass is dropped by now, so this is the only owner left.
    let mut drafts = Arc::try_unwrap(parse_drafts).unwrap_or_else(|shared| shared.as_ref().clone());
    // Each draft takes its parse render's findings, in parallel; a draft whose render failed
    // is not compiled (its error, if an error, reported in order).
    let outcomes: Vec<Result<(), Diagnostic>> = drafts
        .par_iter_mut()
        .zip(parsed.into_par_iter())
        .map(|(d, r)| {
            let outcome = r.map(|rec| {
                for (k, v) in rec.config {
                    context::merge_config(&mut d.config, &k, v);
                }
                d.parse_refs = rec.refs;
                d.parse_sources = rec.sources;
            });
            if d.config.get("enabled").and_then(Json::as_bool) == Some(false) {
                d.enabled = false;
            }
            outcome
        })
        .collect();
    let keep: Vec<bool> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(()) => true,
            Err(diag) => {
                if diag.is_error() {
                    diags.push(diag);
                }
                false
            }
        })
        .collect();

    // Relations through generate_*_name.
    drop(t);
    let t = crate::timing::phase("render.relations");
    let shared = resolve_relations(&env, base, &mut drafts, project, &templates, &sources, &mut diags);

    // Compile pass.
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
    let compiled: Vec<Rendered> = drafts
        .par_iter()
        .enumerate()
        .zip(keep.par_iter())
        .map(|((i, d), keep)| {
            if !keep || !d.enabled || d.resource_type == ResourceType::Seed {
                return None;
            }
            compile_draft(&inputs, &drafts, i, d)
        })
        .collect();
    // The templates' pieces (about 1 KB a template) are done with: their memory goes to the nodes.
    pieces.into_par_iter().for_each(drop);

    // Converted where they lie (the vector's own iterator collects in place).
    let results: Vec<Option<(String, Option<String>, Recorded)>> = compiled
        .into_iter()
        .map(|r| match r {
            Some(Ok(v)) => Some(v),
            Some(Err(d)) => {
                diags.push(d);
                None
            }
            None => None,
        })
        .collect();

    // Ephemeral CTE injection, recursively, as dbt inlines them.
    drop(t);
    let _t = crate::timing::phase("render.nodes");
    let mut nodes = assemble_nodes(drafts, results);

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
    }
}

/// The nodes, from the drafts and their compile results: ephemeral models inlined as CTEs,
/// recursively, as dbt inlines them; hooks into the config; sorted by unique id.
fn assemble_nodes(drafts: Arc<Vec<Box<Draft>>>, results: Vec<Option<(String, Option<String>, Recorded)>>) -> Vec<Node> {
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
    let nodes: Vec<Option<Node>> = drafts
        .into_par_iter()
        .zip(results.into_par_iter())
        .map(|(d, result)| {
            if !d.enabled {
                return None;
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

/// Per draft of the compile pass: its SQL, its incremental variant and what its render recorded.
type Rendered = Option<Result<(String, Option<String>, Recorded), Diagnostic>>;

/// What the compile pass reads for every draft.
struct CompileInputs<'a, 'e, 'p> {
    env: &'e Environment<'static>,
    shared: &'a Arc<Shared>,
    templates: &'a Templates,
    kwarg_exprs: &'a drafts::KwargExprs<'e>,
    /// Each draft's template as pieces, when it is simple enough (see `static_parse`).
    pieces: &'a [(Option<Vec<static_parse::Piece<'p>>>, bool)],
    plain: bool,
}

/// The compile pass of draft `i`: a native test's SQL, a generic test rendered with its
/// kwargs, or a template written from its pieces or rendered (both variants of an incremental
/// model), with its hooks.
fn compile_draft(inputs: &CompileInputs<'_, '_, '_>, all: &Arc<Vec<Box<Draft>>>, i: usize, d: &Draft) -> Rendered {
    let model = drafts::LazyModel::value_of(all, i, true);
    let kwargs = d.test.as_ref().map(|_| Value::from(()));
    let node = new_render(inputs.shared, d, Pass::Compile, Some(d.relation.clone()), model.clone(), kwargs);
    if let Some(sql) = d.test.as_ref().filter(|_| !inputs.plain).and_then(|_| native_tests::render(inputs.shared, d, &node)) {
        return Some(Ok((sql, None, take_recorded(&node))));
    }
    if d.test.is_some() {
        match drafts::test_kwargs(inputs.env, inputs.kwarg_exprs, &node, d, inputs.templates) {
            Ok(kw) => {
                // The kwargs' own ref()/source() calls (the tested model) are dependencies too.
                let from_kwargs = take_recorded(&node);
                let node2 = new_render(inputs.shared, d, Pass::Compile, Some(d.relation.clone()), model.clone(), Some(kw));
                return Some(render_draft(inputs.env, d, &node2, inputs.templates).map(|sql| {
                    let mut rec = from_kwargs;
                    rec.absorb(take_recorded(&node2));
                    (sql, None, rec)
                }));
            }
            Err(diag) => return Some(Err(diag)),
        }
    }
    // A template simple enough is written from its pieces; any other is compiled
    // (once, for both variants) and rendered.
    let pieces = inputs.pieces.get(i).and_then(|(p, _)| p.as_deref());
    let mut tmpl = None;
    let mut render = |node: &Arc<NodeRender>| -> Result<String, Diagnostic> {
        if let Some(sql) = pieces.and_then(|p| write_pieces(p, node)) {
            return Ok(sql);
        }
        let compiled = match tmpl.take() {
            Some(t) => t,
            None => draft_template(inputs.env, d, inputs.templates)?,
        };
        let sql = render_template(compiled.as_ref(), d, node, inputs.templates);
        tmpl = Some(compiled);
        sql
    };
    let sql = match render(&node) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let mut rec = take_recorded(&node);
    if let Err(e) = render_node_hooks(inputs.env, &node, d, &mut rec) {
        return Some(Err(e));
    }
    let incremental = if d.config.get("materialized").and_then(Json::as_str) == Some("incremental") {
        let inc = new_render(inputs.shared, d, Pass::Incremental, Some(d.relation.clone()), model, None);
        match render(&inc) {
            Ok(s) => Some(s),
            Err(e) => return Some(Err(e)),
        }
    } else {
        None
    };
    Some(Ok((sql, incremental, rec)))
}

fn take_recorded(node: &Arc<NodeRender>) -> Recorded {
    let mut guard = node.rec.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *guard)
}

fn new_render(
    shared: &Arc<Shared>,
    d: &Draft,
    pass: Pass,
    this: Option<Relation>,
    model: Value,
    test_kwargs: Option<Value>,
) -> Arc<NodeRender> {
    Arc::new(NodeRender {
        shared: shared.clone(),
        package: d.package.clone(),
        pass,
        this,
        model,
        config: d.config.clone(),
        test_kwargs,
        rec: Mutex::new(Recorded::default()),
    })
}

/// A draft's compiled template: a shared one from the environment, its own compiled now.
fn draft_template<'e>(
    env: &'e Environment<'static>,
    d: &Draft,
    templates: &'e Templates,
) -> Result<Option<minijinja::Template<'e, 'e>>, Diagnostic> {
    let Some(tname) = &d.template else { return Ok(None) };
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let compiled = match templates.own.get_key_value(tname) {
        Some((name, text)) => env.template_from_named_str(name, text),
        None => env.get_template(tname),
    };
    compiled.map(Some).map_err(|e| templates.diagnostic(&e, Some(&origin), crate::codes::render::SYNTAX))
}

fn render_template(
    tmpl: Option<&minijinja::Template<'_, '_>>,
    d: &Draft,
    node: &Arc<NodeRender>,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let Some(tmpl) = tmpl else { return Ok(String::new()) };
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    tmpl.render(root).map_err(|e| templates.diagnostic(&e, Some(&origin), crate::codes::render::TEMPLATE))
}

fn render_draft(env: &Environment<'static>, d: &Draft, node: &Arc<NodeRender>, templates: &Templates) -> Result<String, Diagnostic> {
    let tmpl = draft_template(env, d, templates)?;
    render_template(tmpl.as_ref(), d, node, templates)
}

/// Drops `value` on a pool thread while this one goes on: freeing a map of thousands of entries
/// takes milliseconds that would otherwise hold up everything after it.
fn drop_aside<T: Send + 'static>(value: T) {
    rayon::spawn(move || drop(value));
}
