use std::path::{Path, PathBuf};

use super::*;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses a fixture with a stable, relative path in its diagnostics.
fn parse_fixture(path: &Path) -> Result<LoadedPipeline, Diagnostics> {
    let relative = path.strip_prefix(manifest_dir()).unwrap_or(path);
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    let dir = path.parent().expect("fixture has a folder").to_path_buf();
    parse(SourceFile::new(relative, text), dir)
}

/// One line per diagnostic as a user reads it: `file:line:col: code: message (help)`.
fn render(diagnostics: &Diagnostics) -> String {
    fn line(d: &Diagnostic, indent: &str) -> String {
        let place = match d.location() {
            Some((file, Some((l, c)))) => format!("{}:{l}:{c}", file.display()),
            Some((file, None)) => file.display().to_string(),
            None => "-".to_string(),
        };
        let severity = if d.is_error() { "" } else { "warning " };
        let help = d.help.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
        let mut out = format!("{indent}{place}: {severity}{}: {}{help}\n", d.code, d.message);
        for related in &d.related {
            out.push_str(&line(related, "    "));
        }
        out
    }
    diagnostics.0.iter().map(|d| line(d, "")).collect()
}

#[test]
fn ok_fixtures() {
    insta::glob!("../../tests/fixtures/spec/ok", "*.toml", |path| {
        let loaded = match parse_fixture(path) {
            Ok(loaded) => loaded,
            Err(diagnostics) => panic!("{} should parse:\n{}", path.display(), render(&diagnostics)),
        };
        let mut out = serde_json::to_value(&loaded.pipeline).expect("pipeline serialises");
        if !loaded.warnings.is_empty() {
            out["__warnings"] = render(&loaded.warnings).lines().collect::<Vec<_>>().into();
        }
        insta::assert_json_snapshot!(out);
    });
}

#[test]
fn err_fixtures() {
    insta::glob!("../../tests/fixtures/spec/err", "*.toml", |path| {
        let diagnostics = match parse_fixture(path) {
            Ok(_) => panic!("{} should fail", path.display()),
            Err(diagnostics) => diagnostics,
        };
        assert!(diagnostics.has_errors());
        insta::assert_snapshot!(render(&diagnostics));
    });
}

/// No input may panic: every prefix of a valid file parses or gives diagnostics.
#[test]
fn truncated_files_never_panic() {
    let text = std::fs::read_to_string(manifest_dir().join("tests/fixtures/spec/ok/full.toml")).expect("fixture");
    for (end, _) in text.char_indices() {
        if let Err(diagnostics) = parse(SourceFile::new("orrery.toml", &text[..end]), PathBuf::from("/p")) {
            assert!(diagnostics.has_errors(), "a failed parse carries an error");
        }
    }
}

#[test]
fn selectors_keep_their_spans() {
    let text = "[pipeline]\nname = \"p\"\n[select]\ninclude = [\"+fct_orders\", \"tag:nightly\"]\n\n[[callbacks]]\nname = \"c\"\non = [\"failure\"]\nnodes = [\"fct_orders+\"]\n[callbacks.log]\n";
    let loaded = parse(SourceFile::new("orrery.toml", text), PathBuf::from("/p")).expect("parses");
    let at = |s: &Spanned<String>| {
        let span = s.span.clone().expect("span is filled");
        loaded.source.line_col(span.start)
    };
    assert_eq!(at(&loaded.pipeline.select.include[1]), (4, 27));
    assert_eq!(&text[loaded.pipeline.select.include[1].span.clone().expect("span")], "\"tag:nightly\"");
    assert_eq!(at(&loaded.pipeline.callbacks[0].nodes[0]), (9, 10));
}

#[test]
fn paths_resolve_against_the_file_dir() {
    let text = "[pipeline]\nname = \"p\"\n[project]\npath = \"dbt\"\n[profile]\nprofiles_dir = \"profiles\"\n";
    let loaded = parse(SourceFile::new("orrery.toml", text), PathBuf::from("/work/p")).expect("parses");
    assert_eq!(loaded.project_dir(), Path::new("/work/p/dbt"));
    assert_eq!(loaded.profiles_dir(), Some(PathBuf::from("/work/p/profiles")));
    assert_eq!(loaded.pipeline.project.path, Path::new("dbt"));
}

#[test]
fn missing_file_is_a_diagnostic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("orrery.toml");
    let diagnostics = load(&missing).expect_err("no file");
    assert_eq!(diagnostics.0.len(), 1);
    assert_eq!(diagnostics.0[0].code, crate::codes::spec::MISSING_FILE);
    assert!(diagnostics.0[0].message.contains("not found"), "{}", diagnostics.0[0].message);
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("orrery.toml");
    std::fs::write(&path, "[pipeline]\nname = \"p\"\n").expect("write");
    let loaded = load(&path).expect("loads");
    assert_eq!(loaded.dir, dir.path());
    assert_eq!(loaded.pipeline.pipeline.name, "p");
}

#[test]
fn plans_round_trip_through_json() {
    let path = manifest_dir().join("tests/fixtures/spec/ok/full.toml");
    let loaded = parse_fixture(&path).expect("full.toml parses");
    let json = serde_json::to_string(&loaded.pipeline).expect("serialises");
    let back: Pipeline = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
}

/// The checked-in schema must match the types; UPDATE_SCHEMAS=1 rewrites it.
#[test]
fn schema_is_up_to_date() {
    let path = manifest_dir().join("schemas/pipeline.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).expect("schema serialises") + "\n";
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(path.parent().expect("schemas dir")).expect("mkdir schemas");
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "schemas/pipeline.schema.json differs from the spec types; regenerate it with\n  \
         UPDATE_SCHEMAS=1 cargo test --no-default-features --lib spec::tests::schema_is_up_to_date"
    );
}
