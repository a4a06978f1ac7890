//! Render cases as fixture files. Each `tests/fixtures/render/<case>.sql` is a small dbt project
//! in one file: a YAML header between the first two `---` lines, with the project's `vars` and its
//! other `files` (path → text), both optional, then the case's own model, written to
//! `models/<case>.sql`:
//!
//! ```text
//! ---
//! vars: {s: text, i: 7}
//! files:
//!   macros/m.sql: |
//!     {% macro twice(c) -%} ({{ c }} * 2) {%- endmacro %}
//!   models/base.sql: select 1 as id
//! ---
//! select {{ twice('id') }} from {{ ref('base') }}
//! ```
//!
//! Each case is compiled with orrery's shortcuts (parse calls read without rendering, pure macro
//! calls remembered, ...) and without them (`RenderOptions::plain`); the two must give the same
//! nodes, sources and diagnostics. The snapshot (`tests/snapshots/render_fixtures__render_cases@
//! <case>.sql.snap`) holds the case model's compiled SQL — `¶` marks where the text ends, `␍` a
//! carriage return — and every diagnostic as `<file>:<line>:<col>: <code>: <message>`, the file
//! relative to the project. A case named `err_*` must fail to compile; any other must compile
//! without errors.

use std::fmt::Write as _;
use std::path::Path;

use orrery::diagnostics::{Diagnostic, Severity};
use orrery::node::Compiled;
use orrery::project::{LoadOptions, load};
use orrery::render::{RenderOptions, compile_all};
use serde_json::Value;

/// One fixture file, read.
struct Case {
    /// `vars` of dbt_project.yml, when given.
    vars: Option<Value>,
    /// Other project files, path below the project → text.
    files: Vec<(String, String)>,
    /// The case's own model.
    model: String,
}

/// Splits a fixture into its YAML header and its model (the text after the second `---` line,
/// byte for byte: CRLF line ends stay).
fn parse_case(text: &str) -> Result<Case, String> {
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(|l| l.trim_end_matches(['\r', '\n'])) != Some("---") {
        return Err("a case starts with a `---` line".into());
    }
    let header_start = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut offset = header_start;
    let mut bounds = None;
    for line in lines {
        if line.trim_end_matches(['\r', '\n']) == "---" {
            bounds = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let (header_end, model_start) = bounds.ok_or("no second `---` line ends the header")?;
    let header = &text[header_start..header_end];
    let header: Value =
        if header.trim().is_empty() { Value::Null } else { serde_saphyr::from_str::<Value>(header).map_err(|e| format!("header: {e}"))? };
    let mut case = Case { vars: None, files: Vec::new(), model: text[model_start..].to_string() };
    match header {
        Value::Null => {}
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("vars", vars @ Value::Object(_)) => case.vars = Some(vars),
                    ("files", Value::Object(files)) => {
                        for (path, text) in files {
                            let Value::String(text) = text else { return Err(format!("files: `{path}` is not text")) };
                            if Path::new(&path).is_absolute() || path.split('/').any(|p| p == ".." || p.is_empty()) {
                                return Err(format!("files: `{path}` is not a relative path below the project"));
                            }
                            case.files.push((path, text));
                        }
                    }
                    (key, _) => return Err(format!("header: `{key}` is not `vars` (a mapping) or `files` (path → text)")),
                }
            }
        }
        _ => return Err("header: not a mapping".into()),
    }
    Ok(case)
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Lays the case out as a project in `root`.
fn write_project(root: &Path, name: &str, case: &Case) {
    let mut project = String::from("name: fixture\nprofile: fixture\nconfig-version: 2\n");
    if let Some(vars) = &case.vars {
        // JSON is YAML (a flow mapping).
        writeln!(project, "vars: {vars}").expect("string");
    }
    write(root, "dbt_project.yml", &project);
    write(
        root,
        "profiles.yml",
        "fixture:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: fixture.duckdb\n      schema: main\n",
    );
    let model_path = format!("models/{name}.sql");
    for (path, text) in &case.files {
        assert!(*path != model_path, "{name}: `files` must not hold the case's own model `{model_path}`");
        write(root, path, text);
    }
    write(root, &model_path, &case.model);
}

/// Everything the two compiles must agree on, one entry per node, source or diagnostic.
fn outcome(compiled: &Compiled) -> Vec<String> {
    let mut out: Vec<String> = compiled.nodes.iter().map(|n| format!("{n:#?}")).collect();
    out.extend(compiled.sources.iter().map(|s| format!("{s:#?}")));
    out.extend(compiled.macros.iter().map(|m| format!("{m:#?}")));
    out.push(format!("on-run-start {:?}\non-run-end {:?}", compiled.on_run_start, compiled.on_run_end));
    let mut diagnostics: Vec<String> =
        compiled.diagnostics.0.iter().map(|d| format!("{d:?} help={:?} related={:?}", d.help, d.related)).collect();
    diagnostics.sort();
    out.extend(diagnostics);
    out
}

/// A diagnostic as `<file>:<line>:<col>: <code>: <message>` (` (warning)` after a warning), its
/// help and related places on indented lines; paths relative to the project `roots`.
fn show(d: &Diagnostic, roots: &[String]) -> String {
    let mut s = match d.location() {
        Some((file, Some((line, col)))) => format!("{}:{line}:{col}: ", file.display()),
        Some((file, None)) => format!("{}: ", file.display()),
        None => "<no file>: ".to_string(),
    };
    write!(s, "{}: {}", d.code, d.message).expect("string");
    if d.severity == Severity::Warning {
        s.push_str(" (warning)");
    }
    if let Some(help) = &d.help {
        write!(s, "\n    help: {help}").expect("string");
    }
    for related in &d.related {
        write!(s, "\n    related: {}", show(related, &[]).replace('\n', "\n    ")).expect("string");
    }
    for root in roots {
        s = s.replace(&format!("{root}/"), "").replace(root.as_str(), "<project>");
    }
    s
}

/// A text as it is, made visible where a snapshot would lose it: `␍` for each carriage return
/// and `¶` at its end (insta trims trailing whitespace and folds CRLF).
fn exact(text: &str) -> String {
    format!("{}¶", text.replace('\r', "␍"))
}

#[test]
fn render_cases() {
    let mut failures: Vec<String> = Vec::new();
    let (mut cases, mut error_cases) = (0, 0);
    insta::glob!("fixtures/render/*.sql", |path| {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("case name").to_string();
        let text = std::fs::read_to_string(path).expect("fixture");
        let case = parse_case(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if name.contains("crlf") {
            // A checkout that turned CRLF into LF would test nothing.
            assert!(case.model.contains("\r\n"), "{name}: the model has no CRLF line ends");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        write_project(dir.path(), &name, &case);
        let mut roots = vec![dir.path().display().to_string()];
        if let Ok(real) = dir.path().canonicalize() {
            roots.insert(0, real.display().to_string());
        }

        let options =
            LoadOptions { project_dir: dir.path().to_path_buf(), profiles_dir: Some(dir.path().to_path_buf()), ..Default::default() };
        // A project that does not load (its YAML is wrong) has only the loader's diagnostics.
        let (plain, diagnostics) = match load(&options) {
            Ok(project) => {
                let shortcuts = RenderOptions::default();
                let plain = compile_all(&project, &RenderOptions { plain: true, ..shortcuts.clone() });
                let fast = compile_all(&project, &shortcuts);
                let (a, b) = (outcome(&plain), outcome(&fast));
                if a != b {
                    let first = a.iter().zip(&b).find(|(x, y)| x != y);
                    failures.push(match first {
                        Some((x, y)) => format!("{name}: shortcuts change the outcome\n--- plain\n{x}\n--- with shortcuts\n{y}"),
                        None => format!("{name}: shortcuts change the outcome: {} entries plain, {} with shortcuts", a.len(), b.len()),
                    });
                }
                let diagnostics = plain.diagnostics.0.clone();
                (Some(plain), diagnostics)
            }
            Err(d) => (None, d.0),
        };

        cases += 1;
        let has_errors = diagnostics.iter().any(Diagnostic::is_error);
        error_cases += usize::from(has_errors);
        if name.starts_with("err_") != has_errors {
            failures.push(format!(
                "{name}: {} (a case named err_* must fail, any other must compile)",
                if has_errors { "fails to compile" } else { "compiles" }
            ));
        }

        let mut shown = String::new();
        let id = format!("model.fixture.{name}");
        match plain.as_ref().and_then(|c| c.nodes.iter().find(|n| n.unique_id == id)) {
            Some(node) => {
                if let Some(sql) = &node.compiled_code {
                    writeln!(shown, "-- compiled_code\n{}", exact(sql)).expect("string");
                    if let Some(sql) = &node.compiled_code_incremental {
                        writeln!(shown, "-- compiled_code_incremental\n{}", exact(sql)).expect("string");
                    }
                    for (what, ids) in [("depends_on", &node.depends_on), ("depends_on_macros", &node.depends_on_macros)] {
                        if !ids.is_empty() {
                            writeln!(shown, "-- {what}\n{}", ids.join("\n")).expect("string");
                        }
                    }
                } else if let Some(late) = &node.late {
                    // Rendered at run time: the call that makes it so, and what it depends on.
                    let call = roots.iter().fold(late.call.clone(), |c, root| c.replace(&format!("{root}/"), ""));
                    writeln!(shown, "-- rendered at run time, from {call}\n{}", late.message).expect("string");
                    if !node.depends_on.is_empty() {
                        writeln!(shown, "-- depends_on\n{}", node.depends_on.join("\n")).expect("string");
                    }
                } else if !has_errors {
                    failures.push(format!("{name}: `{id}` has no compiled SQL"));
                }
            }
            None if !has_errors => failures.push(format!("{name}: no node `{id}`")),
            None => {}
        }
        let mut diagnostics: Vec<String> = diagnostics.iter().map(|d| show(d, &roots)).collect();
        diagnostics.sort();
        if !diagnostics.is_empty() {
            writeln!(shown, "-- diagnostics\n{}", diagnostics.join("\n")).expect("string");
        }
        insta::assert_snapshot!(shown);
    });
    assert!(cases >= 45, "only {cases} render cases");
    assert!(error_cases >= 10, "only {error_cases} render cases with errors");
    assert!(failures.is_empty(), "{} failure(s):\n\n{}", failures.len(), failures.join("\n\n"));
}
