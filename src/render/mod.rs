//! The minijinja environment with dbt's Jinja context; compiles a project into nodes.
//!
//! Two passes, as dbt: a parse pass (`execute` false) records `ref`/`source`/`config` calls,
//! then relations are resolved through `generate_*_name` and the compile pass renders SQL.

pub mod builtins;
pub mod context;
mod descriptions;
mod drafts;
mod env;
mod native_tests;
mod pyformat;
#[cfg(test)]
mod python_differential;
mod pytime;
mod rewrite;
mod static_parse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use minijinja::Environment;
use minijinja::value::Value;
use rayon::prelude::*;
use serde_json::Value as Json;

pub use env::{env_reads, env_var_function};

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::node::{Compiled, Node, NodeConfig, Relation, ResourceType};
use crate::project::Project;
use context::{Ctx, MacroRef, NodeRender, Recorded, Shared, Target};
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
    pub fn new(source: SourceFile, offset: usize) -> Self {
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
            diags.push(templates.diagnostic(&err, templates.origins.get(&name), "render::syntax"));
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
    pub fn diagnostic(&self, err: &minijinja::Error, fallback: Option<&TemplateOrigin>, code: &str) -> Diagnostic {
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

    // Macros: dbt's own first, so that a project's macro of the same name wins.
    let mut macros: crate::FastMap<String, crate::FastMap<String, MacroRef>> = Default::default();
    // Each project macro's own text (one `{% macro %}` block), to tell which are inert.
    let mut macro_texts: Vec<(String, String)> = Vec::new();
    let mut add_macro_file = |env: &mut Environment<'static>,
                              package: &str,
                              file_name: &str,
                              text: &str,
                              source: SourceFile,
                              diags: &mut Diagnostics| {
        // orrery's own macros are known to compile (tests check): they are compiled when called.
        let builtin = source.path.starts_with("<dbt>/");
        let add = |env: &mut Environment<'static>, name: String, text: String| {
            if builtin {
                lazy.lock().unwrap_or_else(|e| e.into_inner()).insert(name, LazySource::Shared(text));
                Ok(())
            } else {
                env.add_template_owned(name, text)
            }
        };
        let template = format!("{package}://{file_name}");
        let (processed, pre_map) = env::preprocess_macros(text);
        let (compiled_text, ops_map) = match rewrite::python_operators(&processed) {
            Some((t, m)) => (t, pre_map.then(&m)),
            None => (processed.clone(), pre_map),
        };
        // One template per macro: a call then evaluates its own macro, not the whole file.
        if let Some(blocks) = env::macro_blocks(&compiled_text) {
            for (name, range) in blocks {
                let template = format!("{package}://{file_name}#{name}");
                let lines = compiled_text[..range.start].matches('\n').count();
                let text = format!("{}{}", "\n".repeat(lines), &compiled_text[range.clone()]);
                let map = ops_map.then(&rewrite::SourceMap::slice(lines, range.start, range.len()));
                let origin = TemplateOrigin { source: source.clone(), offset: 0, map: Some(Arc::new(map)) };
                if let Err(err) = add(env, template.clone(), text) {
                    let mut t = Templates::default();
                    t.origins.insert(template.clone(), origin.clone());
                    diags.push(t.diagnostic(&err, Some(&origin), "render::syntax"));
                    continue;
                }
                templates.origins.insert(template.clone(), origin);
                let unique_id = format!("macro.{package}.{name}");
                if !builtin {
                    macro_texts.push((unique_id.clone(), compiled_text[range.clone()].to_string()));
                }
                macros
                    .entry(package.to_string())
                    .or_default()
                    .insert(name.clone(), MacroRef { unique_id, name, package: package.to_string(), template });
            }
            return;
        }
        let origin = TemplateOrigin { source: source.clone(), offset: 0, map: Some(Arc::new(ops_map)) };
        if let Err(err) = add(env, template.clone(), compiled_text) {
            let mut t = Templates::default();
            t.origins.insert(template.clone(), origin.clone());
            diags.push(t.diagnostic(&err, Some(&origin), "render::syntax"));
            return;
        }
        templates.origins.insert(template.clone(), origin);
        for name in env::macro_names(&processed) {
            macros.entry(package.to_string()).or_default().insert(
                name.clone(),
                MacroRef { unique_id: format!("macro.{package}.{name}"), name, package: package.to_string(), template: template.clone() },
            );
        }
    };
    for (file, text) in builtins::macro_files() {
        add_macro_file(&mut env, "dbt", file, text, SourceFile::new(format!("<dbt>/{file}"), *text), &mut diags);
    }
    let mut macro_infos = Vec::new();
    for pkg in &project.packages {
        for f in pkg.files.iter().filter(|f| f.kind == crate::project::FileKind::Macro) {
            add_macro_file(&mut env, &pkg.name, &f.original_file_path, &f.source.text, f.source.clone(), &mut diags);
            for name in env::macro_names(&env::preprocess_macros(&f.source.text).0) {
                macro_infos.push(crate::node::MacroInfo {
                    unique_id: format!("macro.{}.{name}", pkg.name),
                    name,
                    package_name: pkg.name.clone(),
                    original_file_path: f.original_file_path.clone(),
                    macro_sql: f.source.text.to_string(),
                });
            }
        }
    }
    let mut package_order: Vec<String> = project.packages.iter().map(|p| p.name.clone()).collect();
    package_order.push("dbt".into());
    let dispatch: HashMap<String, Vec<String>> = project.root_package().dispatch.iter().cloned().collect();

    // Macros a template may call without being rendered in the parse pass (see static_parse).
    // Of those, the macros whose calls can be rendered once per distinct arguments.
    let (inert_macros, pure_macros) = {
        let is_macro =
            |id: &str| id.starts_with("orrery_macro__") || macros.contains_key(id) || macros.values().any(|m| m.contains_key(id));
        let mut inert = crate::FastSet::default();
        let mut pure = crate::FastSet::default();
        for (id, text) in macro_texts {
            if static_parse::macro_is_pure(&text, &is_macro) {
                pure.insert(id.clone());
            }
            if static_parse::macro_is_inert(&text, &is_macro) {
                inert.insert(id);
            }
        }
        (inert, pure)
    };
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
                return Err(Diagnostic::warning("render::skipped", "skipped after a syntax error"));
            }
            if !options.plain {
                let read = pieces.get(i).filter(|(_, own)| *own).and_then(|(p, _)| p.as_deref());
                if let Some(rec) = read_parse_calls(&base, &inert_macros, d, read) {
                    return Ok(rec);
                }
            }
            let node = new_render(&base, d, false, false, None, drafts::LazyModel::value_of(&parse_drafts, i, false), None);
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
    let mut shared = Arc::try_unwrap(base).unwrap_or_else(|a| (*a).clone());
    drop_aside(std::mem::take(&mut shared.targets));
    let shared_arc = Arc::new(shared);
    let relations: Vec<Result<Relation, Diagnostic>> =
        drafts.par_iter().map(|d| resolve_relation(&env, &shared_arc, d, &project.target, &templates)).collect();
    for (d, r) in drafts.iter_mut().zip(relations) {
        match r {
            Ok(rel) => d.relation = rel,
            Err(diag) => diags.push(diag),
        }
    }
    let mut shared = Arc::try_unwrap(shared_arc).unwrap_or_else(|a| (*a).clone());
    shared.targets = target_map(&drafts, &project.target);
    // `graph` is large; build it only when some template could read it.
    let mentions_graph = drafts.iter().any(|d| d.template_text.contains("graph"))
        || project
            .packages
            .iter()
            .flat_map(|p| &p.files)
            .any(|f| f.kind == crate::project::FileKind::Macro && f.source.text.contains("graph"));
    if mentions_graph {
        shared.graph = context::json_value(&drafts::graph_json(&drafts, &sources));
    }
    let shared = Arc::new(shared);

    // Compile pass.
    drop(t);
    let t = crate::timing::phase("render.compile");
    let drafts = Arc::new(drafts);
    // Per draft: its SQL, its incremental variant and what its render recorded.
    type Rendered = Option<Result<(String, Option<String>, Recorded), Diagnostic>>;
    let compiled: Vec<Rendered> = drafts
        .par_iter()
        .enumerate()
        .zip(keep.par_iter())
        .map(|((i, d), keep)| {
            if !keep || !d.enabled || d.resource_type == ResourceType::Seed {
                return None;
            }
            let model = drafts::LazyModel::value_of(&drafts, i, true);
            let kwargs = d.test.as_ref().map(|_| Value::from(()));
            let node = new_render(&shared, d, true, false, Some(d.relation.clone()), model.clone(), kwargs);
            if let Some(sql) = d.test.as_ref().filter(|_| !options.plain).and_then(|_| native_tests::render(&shared, d, &node)) {
                return Some(Ok((sql, None, take_recorded(&node))));
            }
            if d.test.is_some() {
                match drafts::test_kwargs(&env, &kwarg_exprs, &node, d, &templates) {
                    Ok(kw) => {
                        // The kwargs' own ref()/source() calls (the tested model) are dependencies too.
                        let from_kwargs = take_recorded(&node);
                        let node2 = new_render(&shared, d, true, false, Some(d.relation.clone()), model.clone(), Some(kw));
                        return Some(render_draft(&env, d, &node2, &templates).map(|sql| {
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
            let pieces = pieces.get(i).and_then(|(p, _)| p.as_deref());
            let mut tmpl = None;
            let mut render = |node: &Arc<NodeRender>| -> Result<String, Diagnostic> {
                if let Some(sql) = pieces.and_then(|p| write_pieces(p, node)) {
                    return Ok(sql);
                }
                let compiled = match tmpl.take() {
                    Some(t) => t,
                    None => draft_template(&env, d, &templates)?,
                };
                let sql = render_template(compiled.as_ref(), d, node, &templates);
                tmpl = Some(compiled);
                sql
            };
            let sql = match render(&node) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            let mut rec = take_recorded(&node);
            if let Err(e) = render_node_hooks(&env, &node, d, &mut rec) {
                return Some(Err(e));
            }
            let incremental = if d.config.get("materialized").and_then(Json::as_str) == Some("incremental") {
                let inc = new_render(&shared, d, true, true, Some(d.relation.clone()), model, None);
                match render(&inc) {
                    Ok(s) => Some(s),
                    Err(e) => return Some(Err(e)),
                }
            } else {
                None
            };
            Some(Ok((sql, incremental, rec)))
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
    // `filter_map` over the vector's own iterator collects in place (a node is large).
    let mut nodes: Vec<Node> = nodes.into_iter().flatten().collect();
    nodes.sort_by(|a: &Node, b: &Node| a.unique_id.cmp(&b.unique_id));

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

/// What the parse render of `d` would record, read off its text when it is simple enough.
/// `pieces`: the draft's own text already read as pieces, if it could be.
fn read_parse_calls(
    shared: &Shared,
    inert_macros: &crate::FastSet<String>,
    d: &Draft,
    pieces: Option<&[static_parse::Piece<'_>]>,
) -> Option<Recorded> {
    d.template.as_ref()?;
    let inert = |name: &str| shared.find_macro(&d.package, name).is_some_and(|m| inert_macros.contains(&m.unique_id));
    let calls = match (&d.test, pieces) {
        (None, Some(pieces)) => static_parse::calls_of_pieces(pieces, &inert)?,
        (None, None) => static_parse::calls(&d.template_text, &inert)?,
        // A generic test's parse render evaluates its arguments only; with orrery's own
        // `get_where_subquery` and no other Jinja, only the tested model's ref or source records.
        (Some(_), _) => {
            shared.builtin_where_subquery(&d.package)?;
            let call = static_parse::single_call(drafts::plain_test_target(d)?)?;
            if !matches!(call, static_parse::Call::Ref(_) | static_parse::Call::Source(..)) {
                return None;
            }
            vec![call]
        }
    };
    let mut rec = Recorded::default();
    for call in calls {
        match call {
            // A call that would fail is left to the render, which reports it as it always has.
            static_parse::Call::Ref(call) => {
                shared.ref_target(&d.package, &call)?;
                if !rec.refs.contains(&call) {
                    rec.refs.push(call);
                }
            }
            static_parse::Call::Source(source, table) => {
                if !shared.sources.contains_key(&(source.clone(), table.clone())) {
                    return None;
                }
                let pair = [source, table];
                if !rec.sources.contains(&pair) {
                    rec.sources.push(pair);
                }
            }
            static_parse::Call::Var { name, has_default } => {
                if !has_default && !shared.vars.get(&d.package).is_some_and(|vars| vars.contains_key(&name)) {
                    return None;
                }
            }
            static_parse::Call::Config(items) => {
                for (key, value) in items {
                    context::merge_config(&mut rec.config, &key, context::json_of(&value));
                }
            }
        }
    }
    Some(rec)
}

/// What rendering a template of `pieces` (see [`static_parse::pieces`]) writes for `node`, its
/// calls recorded as the render records them; `None` (nothing recorded) when a call is not one
/// this can write: an unknown, disabled or ephemeral ref, an unset var, a var or macro result
/// other than a string or integer, a macro call no other node has rendered with these arguments.
fn write_pieces(pieces: &[static_parse::Piece<'_>], node: &NodeRender) -> Option<String> {
    use static_parse::{Call, Piece};
    let shared = &node.shared;
    let printable = |v: &Value| {
        matches!(v.kind(), minijinja::value::ValueKind::String | minijinja::value::ValueKind::Number)
            && (v.as_str().is_some() || v.as_i64().is_some())
    };
    let mut out = String::with_capacity(pieces.iter().map(|p| if let Piece::Text(t) = p { t.len() } else { 40 }).sum());
    let mut rec = Recorded::default();
    let mut skipping = false;
    for piece in pieces {
        match piece {
            Piece::Incremental => skipping = !node.incremental,
            Piece::EndIncremental => skipping = false,
            _ if skipping => {}
            Piece::Text(t) => out.push_str(t),
            Piece::This => out.push_str(&shared.relation_sql(node.this.as_ref()?)),
            Piece::Call { name, positional, keywords } => match static_parse::context_call(name, positional, keywords) {
                Some(call @ (Call::Ref(_) | Call::Source(..))) => {
                    let resolved = shared.resolve(&node.package, call)?;
                    out.push_str(&resolved.sql(shared));
                    resolved.record(&mut rec);
                }
                Some(Call::Config(items)) => {
                    for (key, value) in items {
                        context::merge_config(&mut rec.config, &key, context::json_of(&value));
                    }
                }
                Some(Call::Var { name, .. }) => {
                    let value = match shared.vars.get(&node.package).and_then(|vars| vars.get(&name)) {
                        Some(v) => context::json_value(v),
                        None => positional.get(1)?.clone(),
                    };
                    if !printable(&value) {
                        return None;
                    }
                    out.push_str(&value.to_string());
                }
                None if static_parse::is_context_name(name) => return None,
                None => {
                    let m = shared.find_macro(&node.package, name)?;
                    let mut args = positional.clone();
                    if !keywords.is_empty() {
                        args.push(Value::from(keywords.iter().cloned().collect::<minijinja::value::Kwargs>()));
                    }
                    let value = shared.memo.lookup(node, m, &args)?;
                    if !printable(&value) {
                        return None;
                    }
                    rec.add_macro(&m.unique_id);
                    out.push_str(&value.to_string());
                }
            },
        }
    }
    node.rec.lock().unwrap_or_else(|e| e.into_inner()).absorb(rec);
    Some(out)
}

fn take_recorded(node: &Arc<NodeRender>) -> Recorded {
    let mut guard = node.rec.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *guard)
}

fn new_render(
    shared: &Arc<Shared>,
    d: &Draft,
    execute: bool,
    incremental: bool,
    this: Option<Relation>,
    model: Value,
    test_kwargs: Option<Value>,
) -> Arc<NodeRender> {
    Arc::new(NodeRender {
        shared: shared.clone(),
        package: d.package.clone(),
        execute,
        incremental,
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
    compiled.map(Some).map_err(|e| templates.diagnostic(&e, Some(&origin), "render::syntax"))
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
    tmpl.render(root).map_err(|e| templates.diagnostic(&e, Some(&origin), "render::template"))
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

fn target_map(drafts: &[Box<Draft>], _target: &crate::node::TargetInfo) -> crate::FastMap<String, Vec<Target>> {
    // The targets (a dozen strings each) made in parallel, then filed by name in draft order.
    let targets: Vec<Target> = drafts
        .par_iter()
        .filter(|d| matches!(d.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot))
        .map(|d| Target {
            unique_id: d.unique_id.clone(),
            package: d.package.clone(),
            name: d.name.clone(),
            version: d.version.clone(),
            latest_version: d.latest_version.clone(),
            relation: d.relation.clone(),
            ephemeral: d.config.get("materialized").and_then(Json::as_str) == Some("ephemeral"),
            enabled: d.enabled,
        })
        .collect();
    let mut map: crate::FastMap<String, Vec<Target>> = crate::FastMap::with_capacity_and_hasher(targets.len(), Default::default());
    for t in targets {
        match map.get_mut(t.name.as_str()) {
            Some(same_name) => same_name.push(t),
            None => {
                map.insert(t.name.clone(), vec![t]);
            }
        }
    }
    map
}

/// Calls a `generate_*_name` macro visible from the node's package and trims its output.
fn call_generate(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    d: &Draft,
    macro_name: &str,
    custom: Option<&Json>,
    target: &crate::node::TargetInfo,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let Some(m) = shared.find_macro(&d.package, macro_name) else {
        return Err(Diagnostic::error("render::missing_macro", format!("macro `{macro_name}` not found")));
    };
    // dbt's own macros, not overridden anywhere: their result without rendering them.
    if m.package == "dbt"
        && shared.dispatch(&d.package, macro_name, Some("dbt")).is_some_and(|i| i.package == "dbt" && i.name.starts_with("default__"))
        && let Some(name) = default_generated_name(d, macro_name, custom, target)
    {
        return Ok(name);
    }
    let node = new_render(shared, d, true, false, None, context::json_value(&d.model_json(None)), None);
    let f = context::macro_value(&node, m);
    let state = env.empty_state();
    let custom = custom.filter(|v| !v.is_null()).map(context::json_value).unwrap_or(Value::from(()));
    let mut st = state;
    let v = f.call(&mut st, &[custom, node.model.clone()]).map_err(|e| templates.diagnostic(&e, Some(&origin), "render::template"))?;
    Ok(v.to_string().trim().to_string())
}

/// dbt's default `generate_*_name` results; `None` for a value only Jinja can print.
fn default_generated_name(d: &Draft, macro_name: &str, custom: Option<&Json>, target: &crate::node::TargetInfo) -> Option<String> {
    let custom = custom.filter(|v| !v.is_null());
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let name = match (macro_name, custom) {
        ("generate_schema_name", None) => target.schema.clone(),
        ("generate_schema_name", Some(c)) => format!("{}_{}", target.schema, text(c)?.trim()),
        ("generate_database_name", None) => target.database.clone(),
        ("generate_database_name", Some(c)) => text(c)?,
        ("generate_alias_name", Some(Json::String(c))) if !c.is_empty() => c.trim().to_string(),
        ("generate_alias_name", Some(c)) if !matches!(c, Json::String(_) | Json::Bool(false)) => return None,
        ("generate_alias_name", _) => match &d.version {
            Some(v) if !v.is_empty() => format!("{}_v{}", d.name, v.replace('.', "_")),
            _ => d.name.clone(),
        },
        _ => return None,
    };
    Some(name.trim().to_string())
}

fn resolve_relation(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    d: &Draft,
    target: &crate::node::TargetInfo,
    templates: &Templates,
) -> Result<Relation, Diagnostic> {
    if !d.enabled {
        return Ok(Relation { database: Some(target.database.clone()), schema: target.schema.clone(), identifier: d.name.clone() });
    }
    let cfg = &d.config;
    let (db_cfg, schema_cfg) =
        if d.resource_type == ResourceType::Snapshot && (cfg.contains_key("target_schema") || cfg.contains_key("target_database")) {
            (cfg.get("target_database").or(cfg.get("database")), cfg.get("target_schema"))
        } else {
            (cfg.get("database"), cfg.get("schema"))
        };
    // dbt configures every test with the custom schema `dbt_test__audit` (where stored
    // failures go) unless it is given another.
    let audit;
    let schema_cfg = match schema_cfg {
        None if d.resource_type == ResourceType::Test => {
            audit = Json::String("dbt_test__audit".into());
            Some(&audit)
        }
        given => given,
    };
    let legacy_snapshot = d.resource_type == ResourceType::Snapshot && cfg.contains_key("target_schema");
    let database = call_generate(env, shared, d, "generate_database_name", db_cfg, target, templates)?;
    let schema = if legacy_snapshot {
        schema_cfg.and_then(Json::as_str).unwrap_or(&target.schema).to_string()
    } else {
        call_generate(env, shared, d, "generate_schema_name", schema_cfg, target, templates)?
    };
    let identifier = if d.resource_type == ResourceType::Test {
        cfg.get("alias").and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| d.name.clone())
    } else {
        call_generate(env, shared, d, "generate_alias_name", cfg.get("alias"), target, templates)?
    };
    Ok(Relation { database: Some(database), schema, identifier })
}

/// A `pre_hook` / `post_hook` value as a list of SQL templates.
fn hooks_of(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| match v {
                Json::String(s) => s.clone(),
                Json::Object(m) => m.get("sql").and_then(Json::as_str).unwrap_or_default().to_string(),
                other => other.to_string(),
            })
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// Renders a node's `pre_hook` / `post_hook` with the node's own context (`this`, `target`…),
/// as dbt renders them when the node runs.
fn render_node_hooks(env: &Environment<'static>, node: &Arc<NodeRender>, d: &Draft, rec: &mut Recorded) -> Result<(), Diagnostic> {
    // d.config already holds the parse pass's config() calls, hooks included.
    let (pre_hook, post_hook) = (hooks_of(d.config.get("pre_hook")), hooks_of(d.config.get("post_hook")));
    if pre_hook.is_empty() && post_hook.is_empty() {
        return Ok(());
    }
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    let render = |hooks: &[String]| -> Result<Vec<String>, Diagnostic> {
        hooks
            .iter()
            .map(|hook| {
                env.render_str(hook, root.clone()).map_err(|e| {
                    Diagnostic::error("render::hook", format!("hook of {}: {}", d.unique_id, e.detail().unwrap_or("error")))
                        .at(&d.source, 0..0)
                        .with_help("hooks are Jinja templates rendered with the node's context (this, target, var…)")
                })
            })
            .collect()
    };
    rec.hooks = Some((render(&pre_hook)?, render(&post_hook)?));
    Ok(())
}

fn render_hooks(env: &Environment<'static>, shared: &Arc<Shared>, hooks: &[String], diags: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for hook in hooks {
        let node = Arc::new(NodeRender {
            shared: shared.clone(),
            package: shared.root_package.clone(),
            execute: true,
            incremental: false,
            this: None,
            model: Value::from(()),
            config: Default::default(),
            test_kwargs: None,
            rec: Mutex::new(Recorded::default()),
        });
        let root = Value::from_object(Ctx { node, package: Arc::from(shared.root_package.as_str()) });
        match env.render_str(hook, root) {
            Ok(s) => out.push(s),
            Err(e) => diags.push(Diagnostic::error("render::hook", format!("on-run hook: {}", e.detail().unwrap_or("error")))),
        }
    }
    out
}

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

/// Runtime variables used where the plan cannot bind them: `compiled` rendered each runtime
/// variable as its placeholder, `probe` as an empty string. A node whose SQL, hooks or
/// materialization differ other than by the placeholder used the value in control flow (an
/// `if`, a comparison's branch, a filter, a string method, `length`): an error at the `var()`
/// call when it is in the node's own file.
pub fn runtime_var_misuse(compiled: &Compiled, probe: &Compiled, names: &[String]) -> Diagnostics {
    let mut found = Diagnostics::new();
    let probes: HashMap<&str, &Node> = probe.nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect();
    let strip = |text: &str| names.iter().fold(text.to_string(), |t, name| t.replace(&crate::node::runtime_var_marker(name), ""));
    let texts = |n: &Node| {
        [
            n.compiled_code.clone().unwrap_or_default(),
            n.compiled_code_incremental.clone().unwrap_or_default(),
            n.config.pre_hook.join("\n"),
            n.config.post_hook.join("\n"),
            n.config.materialized.clone(),
        ]
    };
    for node in &compiled.nodes {
        let Some(other) = probes.get(node.unique_id.as_str()) else { continue };
        let same = texts(node).iter().zip(texts(other).iter()).all(|(a, b)| strip(a) == *b);
        if same {
            continue;
        }
        let used: Vec<&String> = names.iter().filter(|n| node.raw_code.contains(n.as_str())).collect();
        let shown = used.first().map_or_else(|| names.join("`, `"), |n| n.to_string());
        let mut diagnostic = Diagnostic::error(
            "render::runtime_var_control_flow",
            format!(
                "{}: runtime variable `{shown}` changes what the node compiles to (an `if`, a filter or a string method on it); it is bound only at run time",
                node.unique_id
            ),
        )
        .with_help("use a runtime variable only as a value in SQL, e.g. `where day = '{{ var(\"ds\") }}'`, or remove it from [export.airflow] runtime_vars");
        diagnostic = at_var_call(diagnostic, node, used.first().map(|n| n.as_str()));
        found.push(diagnostic);
    }
    found
}

/// `diagnostic` placed at the node's first `var('name')` call, else at the node's file.
fn at_var_call(diagnostic: Diagnostic, node: &Node, name: Option<&str>) -> Diagnostic {
    let call = name.and_then(|name| {
        let origin = node.origin.as_ref()?;
        let pattern = regex::Regex::new(&format!(r#"var\(\s*['"]{}['"]"#, regex::escape(name))).ok()?;
        let m = pattern.find(&origin.source.text)?;
        Some((origin.source.clone(), m.range()))
    });
    match call {
        Some((source, span)) => diagnostic.at(&source, span),
        None => diagnostic.with_file(&node.original_file_path),
    }
}

/// Runtime variables whose placeholder lands inside a `"quoted identifier"` of a node's SQL
/// or hooks: a value is bound as data and can never be a name, so each is an error at the
/// `var()` call.
pub fn runtime_var_in_identifier(compiled: &Compiled, names: &[String]) -> Diagnostics {
    let dialect = crate::sql::Dialect::of(&compiled.target.adapter_type);
    let mut found = Diagnostics::new();
    for node in &compiled.nodes {
        let texts = [node.compiled_code.as_deref(), node.compiled_code_incremental.as_deref()]
            .into_iter()
            .flatten()
            .chain(node.config.pre_hook.iter().map(String::as_str))
            .chain(node.config.post_hook.iter().map(String::as_str));
        let texts: Vec<&str> = texts.collect();
        for name in names {
            let marker = crate::node::runtime_var_marker(name);
            if texts.iter().all(|t| crate::sql::bind::in_identifiers(t, dialect, &marker).is_empty()) {
                continue;
            }
            let diagnostic = Diagnostic::error(
                "render::runtime_var_in_identifier",
                format!("{}: runtime variable `{name}` stands inside a quoted identifier; it is bound as a value, never as a name", node.unique_id),
            )
            .with_help("use the runtime variable as a value, e.g. `where day = '{{ var(\"ds\") }}'`, or remove it from [export.airflow] runtime_vars");
            found.push(at_var_call(diagnostic, node, Some(name)));
        }
    }
    found
}

#[cfg(test)]
mod builtin_tests {
    use super::*;

    /// Builtin macros are compiled only when a project calls them: each must compile.
    #[test]
    fn every_builtin_macro_file_compiles() {
        let options = RenderOptions::default();
        let env = env::new_environment(options.run_started_at, &options.invocation_id, false);
        for (file, text) in builtins::macro_files() {
            let (processed, _) = env::preprocess_macros(text);
            let prepared = rewrite::python_operators(&processed).map_or(processed, |(t, _)| t);
            if let Err(err) = env.template_from_str(&prepared) {
                panic!("{file}: {err:#}");
            }
        }
    }
}

#[cfg(test)]
mod parse_reading_tests {
    use super::*;

    fn load(dir: &std::path::Path) -> Option<Project> {
        let options =
            crate::project::LoadOptions { project_dir: dir.to_path_buf(), profiles_dir: Some(dir.to_path_buf()), ..Default::default() };
        crate::project::load(&options).ok()
    }

    /// Everything a node carries from the parse pass and the compile pass, as text.
    fn outcome(compiled: &Compiled) -> Vec<String> {
        let mut out: Vec<String> = compiled
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} config={} refs={:?} sources={:?} depends_on={:?} macros={:?} enabled={}\n{:?}\n{:?}",
                    n.unique_id,
                    serde_json::to_string(&*n.config).unwrap_or_default(),
                    n.refs,
                    n.sources,
                    n.depends_on,
                    n.depends_on_macros,
                    n.config.enabled,
                    n.compiled_code,
                    n.compiled_code_incremental
                )
            })
            .collect();
        out.extend(compiled.diagnostics.0.iter().map(|d| format!("{d:?}")));
        out
    }

    /// Compiles `dir` with every shortcut (parse calls read, pure macro calls remembered, simple
    /// templates written from their pieces, dbt's generic tests written natively) and without
    /// any (`RenderOptions::plain`), and checks both give the same nodes and diagnostics.
    /// False when the project does not load here.
    fn assert_shortcuts_agree(dir: &std::path::Path) -> bool {
        // A project whose profile needs a server's settings (pg) is left to its own tests.
        let Some(project) = load(dir) else { return false };
        let options = RenderOptions::default();
        let rendered = compile_all(&project, &RenderOptions { plain: true, ..options.clone() });
        let by_reading = compile_all(&project, &options);
        let (a, b) = (outcome(&rendered), outcome(&by_reading));
        assert_eq!(a.len(), b.len(), "{}", dir.display());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{}", dir.display());
        }
        true
    }

    /// The same on projects this repository does not hold, e.g. fetched dbt projects with their
    /// packages installed: `ORRERY_COMPARE_PROJECTS=dir1:dir2 cargo test -- --ignored shortcuts`.
    #[test]
    #[ignore = "needs projects named by ORRERY_COMPARE_PROJECTS"]
    fn shortcuts_agree_with_rendering_on_given_projects() {
        let dirs = std::env::var("ORRERY_COMPARE_PROJECTS").unwrap_or_default();
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            assert!(assert_shortcuts_agree(std::path::Path::new(dir)), "{dir} does not load");
        }
    }

    /// Every shortcut gives what rendering gives on every example and test project (errors
    /// included), and the parse reader is used on them.
    #[test]
    fn reading_parse_calls_gives_what_rendering_them_gives() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("examples/shop"), root.join("examples/clinic")];
        for entry in std::fs::read_dir(root.join("tests/fixtures/projects")).expect("test projects").flatten() {
            if entry.path().join("dbt_project.yml").is_file() {
                dirs.push(entry.path());
            }
        }
        let mut read = 0;
        let mut compared = 0;
        for dir in &dirs {
            if !assert_shortcuts_agree(dir) {
                continue;
            }
            compared += 1;
            let Some(project) = load(dir) else { continue };
            let never = |_: &str| false;
            read += project
                .packages
                .iter()
                .flat_map(|p| &p.files)
                .filter(|f| f.kind == crate::project::FileKind::Model)
                .filter(|f| static_parse::calls(&f.source.text, &never).is_some())
                .count();
        }
        assert!(compared >= 5, "only {compared} projects compared");
        assert!(read >= 10, "only {read} model files were simple enough to read");
    }
}

#[cfg(test)]
mod macro_memo_tests {
    use super::*;

    fn write(root: &std::path::Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, text).expect("write");
        }
    }

    #[test]
    fn a_pure_macro_called_alike_from_many_nodes_gives_each_its_own_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("dbt_project.yml", "name: root\nprofile: p\nvars:\n  unit: cents\n  utils:\n    unit: pennies\n"),
                ("profiles.yml", "p:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: x.duckdb\n      schema: main\n"),
                ("macros/m.sql", "{% macro scaled(c, f=1) -%} ({{ c }} * {{ f }} /* {{ var('unit') }} */) {%- endmacro %}"),
                ("models/a.sql", "select {{ scaled('x', f=2) }}, {{ scaled('x', f=2) }}, {{ scaled('y') }}"),
                ("models/b.sql", "select {{ scaled('x', f=2) }}, {{ scaled('x', 3) }}, {{ scaled('x', f='2') }}"),
                // Lists, numbers as strings and strings that spell other keys' parts.
                (
                    "models/d.sql",
                    "select {{ scaled(['x'], f=2) }}, {{ scaled('x', f=[2]) }}, {{ scaled('x', ['2']) }}, {{ scaled('1:x') }}, {{ scaled(1) }}, {{ scaled('x]', f=none) }}, {{ scaled('x', f=true) }}",
                ),
                ("dbt_packages/utils/dbt_project.yml", "name: utils\n"),
                ("dbt_packages/utils/models/c.sql", "select {{ scaled('x', f=2) }}"),
            ],
        );
        let options = crate::project::LoadOptions {
            project_dir: dir.path().to_path_buf(),
            profiles_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let project = crate::project::load(&options).expect("project");
        let memoized = compile(&project, &RenderOptions::default()).expect("compiles");
        let plain = compile(&project, &RenderOptions { plain: true, ..RenderOptions::default() }).expect("compiles");
        let sql = |c: &Compiled, id: &str| {
            let node = c.nodes.iter().find(|n| n.unique_id == id).unwrap_or_else(|| panic!("{id}"));
            (node.compiled_code.clone().unwrap_or_default(), node.depends_on_macros.clone())
        };
        let expected = [
            ("model.root.a", "select (x * 2 /* cents */), (x * 2 /* cents */), (y * 1 /* cents */)"),
            ("model.root.b", "select (x * 2 /* cents */), (x * 3 /* cents */), (x * 2 /* cents */)"),
            ("model.utils.c", "select (x * 2 /* pennies */)"),
        ];
        assert_eq!(sql(&memoized, "model.root.d"), sql(&plain, "model.root.d"));
        for (id, want) in expected {
            assert_eq!(sql(&memoized, id).0, want, "{id}");
            assert_eq!(sql(&memoized, id), sql(&plain, id), "{id}");
            assert_eq!(sql(&memoized, id).1, vec!["macro.root.scaled".to_string()], "{id}");
        }
    }
}

#[cfg(test)]
mod shortcut_edge_tests {
    use super::*;

    /// Templates at the edges of what the shortcuts take — CRLF line ends, whitespace control
    /// around incremental blocks, vars of every JSON type, versioned and package refs, sources
    /// with their own quoting, ephemeral refs, repeated pure macro calls — compile to the same
    /// nodes with and without them.
    #[test]
    fn edge_templates_compile_alike_with_and_without_shortcuts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: &[(&str, &str)] = &[
            ("dbt_project.yml", "name: root\nprofile: p\nvars:\n  s: text\n  i: 7\n  f: 0.5\n  b: true\n  l: [1, 2]\n  n: null\n"),
            ("profiles.yml", "p:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: x.duckdb\n      schema: main\n"),
            ("macros/m.sql", "{% macro twice(c) -%} ({{ c }} * 2) {%- endmacro %}\n{% macro label(x='a') %}'{{ x }}'{% endmacro %}\n"),
            ("models/base.sql", "select 1 as id\r\n"),
            ("models/eph.sql", "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('base') }}\n"),
            ("models/vers_v1.sql", "select 1 as id\n"),
            ("models/vers_v2.sql", "select 2 as id\n"),
            (
                "models/props.yml",
                "version: 2\nmodels:\n  - name: vers\n    latest_version: 2\n    versions:\n      - v: 1\n      - v: 2\nsources:\n  - name: raw\n    schema: raw_data\n    quoting:\n      identifier: false\n    tables:\n      - name: events\n",
            ),
            (
                "models/crlf.sql",
                "{{ config(materialized='table') }}\r\nselect {{ twice('id') }}, {{ twice('id') }}\r\nfrom {{ ref('base') }}\r\n",
            ),
            (
                "models/inc.sql",
                "{{- config(materialized='incremental', unique_key='id') -}}\nselect * from {{ ref('base') }}\n{%- if is_incremental() %}\n  where id > (select max(id) from {{ this }}) {# newest #}\n{%- endif %}\n",
            ),
            (
                "models/vars.sql",
                "select '{{ var(\"s\") }}', {{ var('i') }}, {{ var('f') }}, {{ var('b') }}, {{ var('l') }}, '{{ var('n') }}', {{ var('missing', 3) }}\n",
            ),
            (
                "models/refs.sql",
                "select * from {{ ref('vers') }}, {{ ref('vers', v=1) }}, {{ ref('root', 'base') }}, {{ source('raw', 'events') }}\n",
            ),
            ("models/uses_eph.sql", "select * from {{ ref('eph') }} {#- comment -#}  \n  where {{ label() }} = {{ label(x='b') }}\n\n"),
        ];
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, text).expect("write");
        }
        let options = crate::project::LoadOptions {
            project_dir: dir.path().to_path_buf(),
            profiles_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let project = crate::project::load(&options).expect("project");
        let plain = compile_all(&project, &RenderOptions { plain: true, ..RenderOptions::default() });
        let fast = compile_all(&project, &RenderOptions::default());
        assert!(!plain.diagnostics.has_errors(), "{:?}", plain.diagnostics);
        let view = |c: &Compiled| -> Vec<String> {
            c.nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} {:?} {:?} {:?} {:?} {:?} {:?}",
                        n.unique_id, n.refs, n.sources, n.depends_on, n.depends_on_macros, n.compiled_code, n.compiled_code_incremental
                    )
                })
                .collect()
        };
        let (a, b) = (view(&plain), view(&fast));
        assert_eq!(a.len(), 9, "{a:#?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y);
        }
    }
}
