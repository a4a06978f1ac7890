use crate::harness::Test;

/// (file, line, column) of every diagnostic that is an error.
fn error_locations(report: &serde_json::Value) -> Vec<(String, u64, u64, String)> {
    report["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["file"].as_str().unwrap_or("").to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
                d["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(errors: &[(String, u64, u64, String)], file: &str, line: u64, column: u64, words: &str) -> bool {
    errors.iter().any(|(f, l, c, m)| f.ends_with(file) && *l == line && *c == column && m.contains(words))
}

#[test]
fn every_broken_input_is_reported_in_one_run_with_its_location() {
    let ran = Test::new().args(["validate", "-p", "tests/fixtures/broken/all/orrery.toml", "--format", "json"]).run().status(2);
    let report = ran.json();
    assert_eq!(report["ok"], false);
    let errors = error_locations(&report);
    let shown = format!("{errors:#?}");
    // a typo'd key in orrery.toml, with a suggestion
    assert!(has(&errors, "broken/all/orrery.toml", 5, 1, "thread"), "{shown}");
    assert!(report.to_string().contains("threads"), "no did-you-mean: {shown}");
    // a bad YAML indent
    assert!(errors.iter().any(|(f, l, _, _)| f.ends_with("models/schema.yml") && *l == 5), "{shown}");
    // an unclosed {% if %}: points at the `if` that is never closed
    assert!(errors.iter().any(|(f, l, _, _)| f.ends_with("models/a.sql") && *l == 2), "{shown}");
    // a ref to a missing model, at the call
    assert!(has(&errors, "models/b.sql", 2, 9, "missing_model"), "{shown}");
    // a two-model cycle, naming its path
    assert!(errors.iter().any(|(_, _, _, m)| m.contains("model.broken.c") && m.contains("model.broken.d")), "{shown}");
    // a missing env var, named, at its line
    assert!(has(&errors, "models/e.sql", 2, 12, "ORRERY_TEST_UNSET_VAR"), "{shown}");
}

#[test]
fn broken_input_renders_source_lines_for_people() {
    let ran = Test::new().args(["validate", "-p", "tests/fixtures/broken/all/orrery.toml"]).run().status(2);
    let stderr = ran.stderr();
    assert!(stderr.contains("orrery.toml:5:1"), "{stderr}");
    assert!(stderr.contains("thread = 4"), "no source line shown:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_example_is_valid() {
    Test::new().args(["validate", "-p", "examples/shop/orrery.toml"]).run().status(0);
}

#[test]
fn a_missing_pipeline_file_is_an_input_error() {
    Test::new()
        .args(["validate", "-p", "tests/fixtures/does-not-exist/orrery.toml"])
        .run()
        .status(2)
        .stderr_contains("does-not-exist/orrery.toml");
}

#[test]
fn garbage_inputs_never_panic() {
    let cases: &[(&str, &str)] = &[
        ("orrery.toml", "[pipeline\nname = "),
        ("orrery.toml", "[pipeline]\nname = \"Bad Name!\"\n"),
        ("orrery.toml", "[pipeline]\nname = \"x\"\n[execution]\nretry_delay = \"soon\"\nthreads = -1\n"),
        ("dbt_project.yml", "name: [unterminated\n"),
        ("models/m.sql", "{{ ref() }} {% endfor %} {{ config(materialized=) }}"),
        ("models/m.sql", "{% macro x( %}"),
        ("models/schema.yml", "version: 2\nmodels: 7\n"),
        ("models/schema.yml", "version: 2\nsources:\n  - name: s\n    tables: {}\n"),
        ("profiles.yml", "x: [\n"),
    ];
    for (file, text) in cases {
        let dir = crate::harness::project_copy("tests/fixtures/broken/all");
        // start from a valid project, then break one file
        for name in ["models/a.sql", "models/b.sql", "models/c.sql", "models/d.sql", "models/e.sql", "models/schema.yml"] {
            let _ = std::fs::remove_file(dir.path().join(name));
        }
        std::fs::write(dir.path().join("orrery.toml"), "[pipeline]\nname = \"broken\"\n").expect("write");
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        let ran = Test::new().current_dir(dir.path()).args(["validate"]).run();
        let stderr = ran.stderr();
        assert!(!stderr.contains("panicked"), "{file}: {text:?} panicked:\n{stderr}");
        assert_eq!(ran.output.status.code(), Some(2), "{file}: {text:?}\n{stderr}");
    }
}

#[test]
fn unknown_config_keys_are_warnings_with_a_suggestion() {
    let ran = Test::new().args(["validate", "-p", "tests/fixtures/projects/config_keys/orrery.toml", "--format", "json"]).run().status(0);
    let report = ran.json();
    let warning = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "graph::unknown_config_key")
        .unwrap_or_else(|| panic!("no warning: {report}"));
    assert_eq!(warning["severity"], "warning");
    assert!(warning["message"].as_str().is_some_and(|m| m.contains("materalized_as")));
    assert_eq!((warning["line"].as_u64(), warning["column"].as_u64()), (Some(1), Some(33)));
}
