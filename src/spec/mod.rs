//! The orrery.toml pipeline types, loaded with spans.
//!
//! Loading checks the spanned TOML document against the schema generated from the types
//! (reporting every problem at once), then deserialises it with serde.

mod check;
mod spanned;
mod types;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};

pub use spanned::Spanned;
pub use types::*;

/// A parsed pipeline file with the source its spans point into.
#[derive(Clone, Debug)]
pub struct LoadedPipeline {
    pub pipeline: Pipeline,
    pub source: SourceFile,
    /// The absolute directory of the pipeline file; relative paths in it start here.
    pub dir: PathBuf,
    pub warnings: Diagnostics,
}

impl LoadedPipeline {
    /// The dbt project directory: the file's directory joined with `[project].path`.
    pub fn project_dir(&self) -> PathBuf {
        self.dir.join(&self.pipeline.project.path)
    }

    /// `[profile].profiles_dir` joined to the file's directory, when given.
    pub fn profiles_dir(&self) -> Option<PathBuf> {
        self.pipeline.profile.profiles_dir.as_ref().map(|p| self.dir.join(p))
    }
}

/// Reads and parses a pipeline file.
pub fn load(path: &Path) -> Result<LoadedPipeline, Diagnostics> {
    if !path.is_file() {
        let shown = crate::diagnostics::display_path(path);
        let message = if path.exists() {
            format!("pipeline file `{}` is not a file", shown.display())
        } else {
            format!("pipeline file `{}` not found", shown.display())
        };
        let help = "create an orrery.toml with a [pipeline] table (see schemas/pipeline.schema.json), or pass --pipeline PATH";
        return Err(Diagnostic::error(crate::codes::spec::MISSING_FILE, message).with_help(help).with_file(shown).into());
    }
    let source = SourceFile::read(path)?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = absolute.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    parse(source, dir)
}

/// Parses a pipeline file's text; `dir` is the directory relative paths start from.
pub fn parse(source: SourceFile, dir: PathBuf) -> Result<LoadedPipeline, Diagnostics> {
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let text = source.text.clone();
    let doc = match DeTable::parse(&text) {
        Ok(doc) => doc,
        Err(err) => return Err(syntax_error(&source, &err).into()),
    };

    let mut checker = check::Checker::new(schema_value(), &source);
    checker.check_document(&doc);
    let mut diagnostics = checker.diagnostics;
    check_callback_names(&source, doc.get_ref(), &mut diagnostics);
    check_templates_and_urls(&source, doc.get_ref(), &mut diagnostics);
    check_warnings(&source, doc.get_ref(), &mut diagnostics);
    if diagnostics.has_errors() {
        diagnostics.sort();
        return Err(diagnostics);
    }

    let mut pipeline = match Pipeline::deserialize(toml::de::Deserializer::from(doc.clone())) {
        Ok(pipeline) => pipeline,
        // The schema check should have caught it; serde's message is still better than none.
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            let diagnostic = Diagnostic::error(crate::codes::spec::INVALID, err.message().to_string())
                .with_help("see schemas/pipeline.schema.json for the expected shape")
                .at(&source, span);
            diagnostics.push(diagnostic);
            diagnostics.sort();
            return Err(diagnostics);
        }
    };
    fill_spans(&mut pipeline, doc.get_ref());
    plain_datetimes(&mut pipeline);
    let warnings = diagnostics.into_result()?;
    Ok(LoadedPipeline { pipeline, source, dir, warnings })
}

/// The JSON Schema of orrery.toml, generated from the types.
pub fn json_schema() -> serde_json::Value {
    schema_value().clone()
}

fn schema_value() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(Pipeline).to_value())
}

fn syntax_error(source: &SourceFile, err: &toml::de::Error) -> Diagnostic {
    let message = err.message().trim().to_string();
    let span = err.span().unwrap_or(0..0);
    Diagnostic::error(crate::codes::spec::SYNTAX, format!("invalid TOML: {message}"))
        .with_help("fix the TOML syntax here; https://toml.io describes the format")
        .at(source, span)
}

fn table<'a, 'i>(value: Option<&'a toml::Spanned<DeValue<'i>>>) -> Option<&'a DeTable<'i>> {
    value.and_then(|v| v.get_ref().as_table())
}

fn array<'a, 'i>(value: Option<&'a toml::Spanned<DeValue<'i>>>) -> &'a [toml::Spanned<DeValue<'i>>] {
    value.and_then(|v| v.get_ref().as_array()).map_or(&[], |a| a)
}

/// Callback names are their identity in the callback context, so they must be unique.
fn check_callback_names(source: &SourceFile, doc: &DeTable<'_>, diagnostics: &mut Diagnostics) {
    let mut seen: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
    for callback in array(doc.get("callbacks")) {
        let Some(name) = table(Some(callback)).and_then(|t| t.get("name")) else { continue };
        let Some(text) = name.get_ref().as_str() else { continue };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == text) {
            let earlier = Diagnostic::error(crate::codes::spec::DUPLICATE_CALLBACK, "first defined here").at(source, first.clone());
            diagnostics.push(
                Diagnostic::error(crate::codes::spec::DUPLICATE_CALLBACK, format!("callback `{text}` is defined twice"))
                    .with_help("give each [[callbacks]] entry its own name")
                    .at(source, name.span())
                    .with_related(earlier),
            );
        } else {
            seen.push((text, name.span()));
        }
    }
}

/// Every string of a callback action is a template over the callback context, and the
/// places that name an object store need a scheme orrery can open: both checked here, with
/// spans, so a typo fails `validate` instead of a run.
fn check_templates_and_urls(source: &SourceFile, doc: &DeTable<'_>, diagnostics: &mut Diagnostics) {
    const ACTIONS: &[&str] = &["upload", "command", "webhook", "log"];
    for (index, callback) in array(doc.get("callbacks")).iter().enumerate() {
        let Some(callback) = table(Some(callback)) else { continue };
        for action in ACTIONS {
            let Some(value) = callback.get(*action) else { continue };
            let Some(fields) = value.get_ref().as_table() else { continue };
            for (key, field) in fields {
                // Store options are builder settings, given as written.
                if key.get_ref() == "options" {
                    continue;
                }
                let path = format!("callbacks[{index}].{action}.{}", key.get_ref());
                check_template_strings(source, field, &path, diagnostics);
            }
            if let Some(to) = fields.get("to").filter(|_| *action == "upload") {
                check_store_url(source, to, "[callbacks.upload] to", diagnostics);
            }
            if let Some(url) = fields.get("url").filter(|_| *action == "webhook")
                && let Some(text) = url.get_ref().as_str()
                && !(text.starts_with("http://") || text.starts_with("https://") || text.starts_with("{{"))
            {
                diagnostics.push(
                    Diagnostic::error(crate::codes::spec::CALLBACK_URL, format!("webhook url `{text}` is not an http:// or https:// URL"))
                        .with_help("give the full URL, e.g. `https://hooks.example.com/orrery`")
                        .at(source, url.span()),
                );
            }
        }
    }
    if let Some(artifacts) = table(doc.get("artifacts"))
        && let Some(remote) = artifacts.get("remote_path")
    {
        check_template_strings(source, remote, "artifacts.remote_path", diagnostics);
        check_store_url(source, remote, "[artifacts] remote_path", diagnostics);
    }
    if let Some(state) = table(doc.get("state"))
        && let Some(backend) = state.get("backend")
        && backend.get_ref().as_str() != Some("local")
    {
        check_store_url(source, backend, "[state] backend", diagnostics);
    }
}

fn check_template_strings(source: &SourceFile, value: &toml::Spanned<DeValue<'_>>, path: &str, diagnostics: &mut Diagnostics) {
    match value.get_ref() {
        DeValue::String(text) => {
            if let Err(problem) = crate::callback::template::check(text) {
                diagnostics.push(
                    Diagnostic::error(crate::codes::spec::CALLBACK_TEMPLATE, format!("`{path}`: {}", problem.message))
                        .with_help(problem.help)
                        .at(source, value.span()),
                );
            }
        }
        DeValue::Array(items) => items.iter().for_each(|item| check_template_strings(source, item, path, diagnostics)),
        DeValue::Table(fields) => fields.values().for_each(|item| check_template_strings(source, item, path, diagnostics)),
        _ => {}
    }
}

fn check_store_url(source: &SourceFile, value: &toml::Spanned<DeValue<'_>>, what: &str, diagnostics: &mut Diagnostics) {
    let Some(text) = value.get_ref().as_str() else { return };
    if let Err(message) = crate::store::known_scheme(text) {
        diagnostics.push(
            Diagnostic::error(crate::codes::spec::STORE_URL, format!("{what}: {message}"))
                .with_help(format!(
                    "use one of {}",
                    crate::store::SCHEMES.iter().map(|s| format!("`{s}://`")).collect::<Vec<_>>().join(", ")
                ))
                .at(source, value.span()),
        );
    }
}

/// Settings that are valid but have no effect as written.
fn check_warnings(source: &SourceFile, doc: &DeTable<'_>, diagnostics: &mut Diagnostics) {
    if let Some(execution) = table(doc.get("execution")) {
        let deferred = execution.get("mode").and_then(|m| m.get_ref().as_str()) == Some("deferred");
        if let (Some(limit), false) = (execution.get("max_in_flight"), deferred) {
            diagnostics.push(
                Diagnostic::warning(crate::codes::spec::UNUSED_KEY, "`max_in_flight` has no effect unless `mode = \"deferred\"`")
                    .with_help("remove it, or set `mode = \"deferred\"`")
                    .at(source, limit.span()),
            );
        }
    }
    for callback in array(doc.get("callbacks")) {
        let mut seen: Vec<&str> = Vec::new();
        for event in array(table(Some(callback)).and_then(|t| t.get("on"))) {
            let Some(text) = event.get_ref().as_str() else { continue };
            if seen.contains(&text) {
                diagnostics.push(
                    Diagnostic::warning(crate::codes::spec::DUPLICATE_EVENT, format!("event `{text}` is listed twice"))
                        .with_help("list each event once; the callback fires once per event")
                        .at(source, event.span()),
                );
            }
            seen.push(text);
        }
    }
}

/// Copies the selectors' spans from the document (serde cannot see them).
fn fill_spans(pipeline: &mut Pipeline, doc: &DeTable<'_>) {
    fn copy(target: &mut [Spanned<String>], source: &[toml::Spanned<DeValue<'_>>]) {
        for (item, spanned) in target.iter_mut().zip(source) {
            item.span = Some(spanned.span());
        }
    }
    let select = table(doc.get("select"));
    copy(&mut pipeline.select.include, array(select.and_then(|s| s.get("include"))));
    copy(&mut pipeline.select.exclude, array(select.and_then(|s| s.get("exclude"))));
    for (callback, raw) in pipeline.callbacks.iter_mut().zip(array(doc.get("callbacks"))) {
        copy(&mut callback.nodes, array(table(Some(raw)).and_then(|t| t.get("nodes"))));
    }
}

/// TOML dates in free-form values become their text (as dbt's `--vars` YAML would print them).
fn plain_datetimes(pipeline: &mut Pipeline) {
    fn fix(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if map.len() == 1
                    && let Some(serde_json::Value::String(text)) = map.get("$__toml_private_datetime")
                {
                    *value = serde_json::Value::String(text.clone());
                    return;
                }
                map.values_mut().for_each(fix);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(fix),
            _ => {}
        }
    }
    pipeline.project.vars.values_mut().for_each(fix);
    pipeline.profile.outputs.values_mut().flat_map(|o| o.values_mut()).for_each(fix);
}

#[cfg(test)]
mod tests;
