//! The front half of every command: pipeline file → dbt project → compiled nodes → graph →
//! selection. Each step is one stage's public function; this file only hands values along,
//! and keeps going after a stage's errors where the next stage can still look for more, so
//! one run reports every problem.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::args::{Global, Selection};
use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::graph::{Graph, Selection as Selected, SelectorArg};
use crate::node::Compiled;
use crate::spec::{LoadedPipeline, Spanned};
use crate::{project, render, spec};

/// A compiled project, before its graph is built (the graph borrows it).
pub(super) struct Build {
    pub pipeline: LoadedPipeline,
    pub compiled: Compiled,
    /// Kept only so a short-lived command can skip freeing it (see [`Build::discard`]).
    #[allow(dead_code)]
    pub project: project::Project,
    /// Every warning of every stage so far.
    pub warnings: Diagnostics,
}

impl Build {
    /// Ends a command that exits right after: freeing a 10k-model project's many small
    /// allocations one by one takes longer than writing its artifacts.
    pub(super) fn discard(self) {
        std::mem::forget(self);
    }
}

/// `--vars` parsed as a YAML mapping.
pub(super) fn cli_vars(vars: Option<&str>) -> Result<IndexMap<String, serde_json::Value>, Diagnostic> {
    let Some(text) = vars else { return Ok(IndexMap::new()) };
    match serde_saphyr::from_str::<Option<IndexMap<String, serde_json::Value>>>(text) {
        Ok(map) => Ok(map.unwrap_or_default()),
        Err(err) => {
            let source = SourceFile::new("--vars", text.to_string());
            Err(Diagnostic::error(crate::codes::cli::VARS, format!("--vars is not a YAML mapping: {err}"))
                .at(&source, 0..text.len())
                .with_help("pass a mapping, e.g. --vars '{start_date: \"2024-01-01\"}'"))
        }
    }
}

/// Where the dbt project is when the pipeline file itself is invalid: `[project].path` if it
/// can still be read, else the file's directory, so the project is checked too.
fn fallback_options(pipeline_path: &Path) -> Option<project::LoadOptions> {
    let text = std::fs::read_to_string(pipeline_path).ok()?;
    let dir = pipeline_path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    let get = |t: &str, k: &str| table.get(t).and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_string);
    Some(project::LoadOptions {
        project_dir: dir.join(get("project", "path").unwrap_or_else(|| ".".into())),
        profiles_dir: get("profile", "profiles_dir").map(|p| dir.join(p)),
        profile: get("profile", "profile"),
        target: get("profile", "target"),
        inline_outputs: IndexMap::new(),
        vars: IndexMap::new(),
    })
}

/// Runs spec → project → render for one pipeline file.
pub(super) fn build(global: &Global, pipeline_path: &Path, full_refresh: bool) -> Result<Build, Diagnostics> {
    let mut problems = Diagnostics::new();
    let t = crate::timing::phase("spec");
    let loaded = match spec::load(pipeline_path) {
        Ok(loaded) => Some(loaded),
        Err(diagnostics) => {
            problems.extend(diagnostics);
            None
        }
    };
    let extra_vars = match cli_vars(global.vars.as_deref()) {
        Ok(vars) => vars,
        Err(diagnostic) => {
            problems.push(diagnostic);
            IndexMap::new()
        }
    };
    let options = match &loaded {
        Some(loaded) => {
            let pipeline = &loaded.pipeline;
            let mut vars = pipeline.project.vars.clone();
            vars.extend(extra_vars);
            // Runtime variables stay placeholders until `run --vars` binds them.
            for name in &pipeline.export.airflow.runtime_vars {
                vars.insert(name.clone(), serde_json::Value::String(crate::node::runtime_var_marker(name)));
            }
            project::LoadOptions {
                project_dir: loaded.project_dir(),
                profiles_dir: loaded.profiles_dir(),
                profile: pipeline.profile.profile.clone(),
                target: global.target.clone().or_else(|| pipeline.profile.target.clone()),
                inline_outputs: pipeline
                    .profile
                    .outputs
                    .iter()
                    .map(|(name, output)| (name.clone(), serde_json::to_value(output).unwrap_or_default()))
                    .collect(),
                vars,
            }
        }
        None => match fallback_options(pipeline_path) {
            Some(options) => options,
            None => return Err(problems),
        },
    };
    drop(t);
    let t = crate::timing::phase("project");
    let mut project = match project::load(&options) {
        Ok(project) => project,
        Err(diagnostics) => {
            problems.extend(diagnostics);
            return Err(problems);
        }
    };
    drop(t);
    let render_options = render::RenderOptions {
        full_refresh: full_refresh || loaded.as_ref().is_some_and(|l| l.pipeline.execution.full_refresh),
        ..render::RenderOptions::default()
    };
    let compiled = render::compile_all(&project, &render_options);
    let runtime_vars: Vec<String> = loaded.as_ref().map(|l| l.pipeline.export.airflow.runtime_vars.clone()).unwrap_or_default();
    if !runtime_vars.is_empty() && !compiled.diagnostics.has_errors() {
        // A second compile with every runtime variable empty: a node whose output differs
        // other than by the placeholder uses the value where the plan cannot bind it.
        for name in &runtime_vars {
            project.cli_vars.insert(name.clone(), serde_json::Value::String(String::new()));
        }
        let probe = render::compile_all(&project, &render_options);
        for name in &runtime_vars {
            project.cli_vars.insert(name.clone(), serde_json::Value::String(crate::node::runtime_var_marker(name)));
        }
        problems.extend(render::runtime_var_misuse(&compiled, &probe, &runtime_vars));
        problems.extend(render::runtime_var_in_identifier(&compiled, &runtime_vars));
    }
    // Render keeps the nodes it could compile next to its errors: the graph may find more.
    problems.extend(compiled.diagnostics.clone());
    let t = crate::timing::phase("graph");
    if let Err(diagnostics) = Graph::build(&compiled) {
        problems.extend(diagnostics);
    }
    drop(t);
    let t = crate::timing::phase("config_keys");
    problems.extend(crate::graph::unknown_config_keys(&compiled));
    drop(t);
    let Some(pipeline) = loaded else { return Err(problems) };
    if problems.has_errors() {
        problems.sort();
        return Err(problems);
    }
    let mut warnings = pipeline.warnings.clone();
    warnings.extend(problems);
    warnings.sort();
    Ok(Build { pipeline, compiled, project, warnings })
}

/// The graph and selection of a build: `--select` replaces `[select].include`; excludes add
/// up. Selectors from orrery.toml point back at it in diagnostics.
pub(super) fn select<'a>(build: &'a Build, selection: &Selection) -> Result<(Graph<'a>, Selected<'a>), Diagnostics> {
    // `build` checked this compile's graph for duplicates and cycles when it was made.
    let graph = Graph::build_checked(&build.compiled)?;
    let source = &build.pipeline.source;
    let from_file = |items: &[Spanned<String>]| -> Vec<SelectorArg> {
        items
            .iter()
            .map(|s| match &s.span {
                Some(span) => SelectorArg::new(s.value.clone()).at(source, span.clone()),
                None => SelectorArg::new(s.value.clone()),
            })
            .collect()
    };
    let include = if selection.select.is_empty() {
        from_file(&build.pipeline.pipeline.select.include)
    } else {
        selection.select.iter().map(SelectorArg::from).collect()
    };
    let mut exclude = from_file(&build.pipeline.pipeline.select.exclude);
    exclude.extend(selection.exclude.iter().map(SelectorArg::from));
    let selected = graph.select(&include, &exclude)?;
    Ok((graph, selected))
}

/// The pipeline files `validate` checks: the arguments, else `--pipeline`.
pub(super) fn pipeline_paths(global: &Global, given: &[PathBuf]) -> Vec<PathBuf> {
    if given.is_empty() { vec![global.pipeline.clone()] } else { given.to_vec() }
}

/// Each node-scope callback's nodes: node id → the names of the callbacks that fire for it.
/// A callback without `nodes` fires for every node; its selectors point back at orrery.toml.
pub(super) fn callback_nodes(build: &Build, graph: &Graph<'_>) -> Result<std::collections::HashMap<String, Vec<String>>, Diagnostics> {
    let mut by_node: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut problems = Diagnostics::new();
    let source = &build.pipeline.source;
    for callback in &build.pipeline.pipeline.callbacks {
        if callback.scope != spec::Scope::Node {
            continue;
        }
        let selected = if callback.nodes.is_empty() {
            graph.select_all()
        } else {
            let include: Vec<SelectorArg> = callback
                .nodes
                .iter()
                .map(|s| match &s.span {
                    Some(span) => SelectorArg::new(s.value.clone()).at(source, span.clone()),
                    None => SelectorArg::new(s.value.clone()),
                })
                .collect();
            match graph.select(&include, &[]) {
                Ok(selected) => selected,
                Err(diagnostics) => {
                    problems.extend(diagnostics);
                    continue;
                }
            }
        };
        for id in selected.ids() {
            by_node.entry((*id).to_string()).or_default().push(callback.name.clone());
        }
    }
    problems.into_result().map(|_| by_node)
}
