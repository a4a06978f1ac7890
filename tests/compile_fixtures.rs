//! Compiles each example project and diffs every compiled file against what `dbt compile`
//! wrote (tests/fixtures/dbt/<project>/compiled*/**), byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orrery::artifacts::compiled::{compiled_path, hook_files};
use orrery::project::{LoadOptions, load};
use orrery::render::{RenderOptions, compile};

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixture dir").flatten() {
        let p = entry.path();
        if p.is_dir() { files_below(&p, out) } else { out.push(p) }
    }
}

/// Compiles `examples/<project>` for `target` and diffs it against dbt's files in `fixture`.
fn compiles_like_dbt(project: &str, target: Option<&str>, fixture: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let project_dir = root.join("examples").join(project);
    let options = LoadOptions {
        project_dir: project_dir.clone(),
        profiles_dir: Some(project_dir.clone()),
        target: target.map(str::to_string),
        ..Default::default()
    };
    let project = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
    let compiled = compile(&project, &RenderOptions::default()).unwrap_or_else(|d| panic!("compile: {:#?}", d.0));

    let mut ours: BTreeMap<String, String> = BTreeMap::new();
    for node in &compiled.nodes {
        if let Some(sql) = &node.compiled_code {
            let rel = compiled_path(&compiled, node);
            let rel = rel.strip_prefix("target/compiled").unwrap_or(&rel).display().to_string();
            ours.insert(rel, sql.clone());
        }
    }
    for (path, sql) in hook_files(&compiled) {
        let rel = path.strip_prefix("target/compiled").unwrap_or(&path).display().to_string();
        ours.insert(rel, sql.to_string());
    }
    let expected_dir = root.join("tests/fixtures/dbt").join(fixture);
    let mut expected = Vec::new();
    files_below(&expected_dir, &mut expected);
    let mut failures = Vec::new();
    for path in &expected {
        let rel = path.strip_prefix(&expected_dir).expect("below").display().to_string();
        let want = std::fs::read_to_string(path).expect("fixture");
        match ours.get(&rel) {
            None => failures.push(format!("missing: {rel}")),
            Some(got) if *got != want => failures.push(format!("differs: {rel}\n--- dbt\n{want}\n--- orrery\n{got}\n")),
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} files do not match:\n{}", failures.len(), expected.len(), failures.join("\n"));
}

#[test]
fn shop_compiles_like_dbt() {
    compiles_like_dbt("shop", None, "shop/compiled");
}

#[test]
fn clinic_compiles_like_dbt() {
    compiles_like_dbt("clinic", None, "clinic/compiled");
}

#[test]
fn clinic_prod_target_compiles_like_dbt() {
    compiles_like_dbt("clinic", Some("prod"), "clinic/compiled@prod");
}

#[test]
fn broken_models_report_every_error_with_a_location() {
    let dir = std::env::var("ORRERY_ERR_DIR").unwrap_or_else(|_| format!("{}/tests/fixtures/projects/broken", env!("CARGO_MANIFEST_DIR")));
    let options = LoadOptions { project_dir: dir.clone().into(), profiles_dir: Some(dir.into()), ..Default::default() };
    let project = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
    let errors = compile(&project, &RenderOptions::default()).expect_err("errors");
    let shown: Vec<String> = errors.0.iter().map(|d| format!("{d:?}")).collect();
    insta::assert_snapshot!(shown.join("\n"));
}

#[test]
fn shop_postgres_target_compiles_like_dbt_postgres() {
    compiles_like_dbt("shop", Some("pg"), "shop/compiled@pg");
}

/// An example project compiled by orrery, and the manifest dbt compiled it to.
fn example_and_dbt_manifest(project: &str) -> (orrery::node::Compiled, serde_json::Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let project_dir = root.join("examples").join(project);
    let options = LoadOptions { project_dir: project_dir.clone(), profiles_dir: Some(project_dir.clone()), ..Default::default() };
    let loaded = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
    let compiled = compile(&loaded, &RenderOptions::default()).unwrap_or_else(|d| panic!("compile: {:#?}", d.0));
    let dbt = std::fs::read_to_string(root.join("tests/fixtures/dbt").join(project).join("manifest.json")).expect("manifest");
    (compiled, serde_json::from_str(&dbt).expect("JSON"))
}

/// Every node's checksum is dbt's (the file stripped of surrounding whitespace; a snapshot's
/// whole file; a seed's CSV), so tools comparing manifests see no change where there is none.
#[test]
fn checksums_are_dbts() {
    for project in ["shop", "clinic"] {
        let (compiled, manifest) = example_and_dbt_manifest(project);
        let mut differ = Vec::new();
        let mut compared = 0;
        for node in &compiled.nodes {
            if manifest["nodes"][&node.unique_id]["checksum"]["name"] == "sha256" {
                compared += 1;
            }
            if let Some(theirs) = manifest["nodes"][&node.unique_id]["checksum"]["checksum"].as_str()
                && manifest["nodes"][&node.unique_id]["checksum"]["name"] == "sha256"
                && theirs != node.checksum
            {
                differ.push(node.unique_id.clone());
            }
        }
        assert!(compared > 15, "{project}: only {compared} checksums compared");
        assert!(differ.is_empty(), "{project}: checksums differ from dbt's: {differ:?}");
    }
}

/// What the manifest says of each node and source beyond its SQL — its dependencies in dbt's
/// order, schema (tests included: dbt's `dbt_test__audit` custom schema), the properties file
/// that describes it, descriptions with their `doc()` calls resolved and the docs blocks they
/// read — is what dbt's says.
#[test]
fn manifest_descriptions_schemas_and_patch_paths_are_dbts() {
    for project in ["shop", "clinic"] {
        let (compiled, dbt) = example_and_dbt_manifest(project);
        let manifest = orrery::artifacts::manifest::manifest_json(&compiled);
        let mut differ = Vec::new();
        let (mut docs_compared, mut patches_compared) = (0, 0);
        let columns_of = |columns: &indexmap::IndexMap<String, orrery::node::ColumnInfo>| -> serde_json::Value {
            columns
                .iter()
                .map(|(k, c)| (k.clone(), serde_json::json!({"description": c.description, "doc_blocks": c.doc_blocks})))
                .collect()
        };
        let theirs_columns = |theirs: &serde_json::Value| -> serde_json::Value {
            theirs["columns"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, c)| (k.clone(), serde_json::json!({"description": c["description"], "doc_blocks": c["doc_blocks"]})))
                        .collect()
                })
                .unwrap_or_default()
        };
        for node in &compiled.nodes {
            let theirs = &dbt["nodes"][&node.unique_id];
            if theirs.is_null() {
                continue;
            }
            let ours = serde_json::json!({
                "schema": node.relation.schema, "patch_path": node.patch_path, "description": node.description,
                "doc_blocks": node.doc_blocks, "columns": columns_of(&node.columns),
            });
            let want = serde_json::json!({
                "schema": theirs["schema"], "patch_path": theirs["patch_path"], "description": theirs["description"],
                "doc_blocks": theirs["doc_blocks"], "columns": theirs_columns(theirs),
            });
            // The manifest as written: dependencies in dbt's order (sources, then refs).
            let written = &manifest["nodes"][&node.unique_id]["depends_on"]["nodes"];
            if !theirs["depends_on"]["nodes"].is_null() && *written != theirs["depends_on"]["nodes"] {
                differ
                    .push(format!("{} depends_on.nodes:\n  orrery {written}\n  dbt    {}", node.unique_id, theirs["depends_on"]["nodes"]));
            }
            patches_compared += usize::from(!theirs["patch_path"].is_null());
            docs_compared += theirs["columns"]
                .as_object()
                .map_or(0, |m| m.values().filter(|c| c["doc_blocks"].as_array().is_some_and(|b| !b.is_empty())).count());
            if ours != want {
                differ.push(format!("{}:\n  orrery {ours}\n  dbt    {want}", node.unique_id));
            }
        }
        for source in &compiled.sources {
            let theirs = &dbt["sources"][&source.unique_id];
            let ours = serde_json::json!({"description": source.description, "doc_blocks": source.doc_blocks, "columns": columns_of(&source.columns)});
            let want = serde_json::json!({"description": theirs["description"], "doc_blocks": theirs["doc_blocks"], "columns": theirs_columns(theirs)});
            if ours != want {
                differ.push(format!("{}:\n  orrery {ours}\n  dbt    {want}", source.unique_id));
            }
        }
        assert!(
            patches_compared > 5 && docs_compared > 1,
            "{project}: {patches_compared} patch paths, {docs_compared} doc() columns compared"
        );
        assert!(differ.is_empty(), "{project}: {} differ from dbt's manifest:\n{}", differ.len(), differ.join("\n"));
    }
}

/// dbt's cross-database macros (`dbt.dateadd(...)`, `dbt.type_string()`, ...) compile to what
/// dbt-duckdb compiles them to, whitespace included: each case of
/// `tests/fixtures/dbt/cross_db/cases.txt` as a model, against `expected.json` (made by dbt with
/// `regen.py` there).
#[test]
fn cross_database_macros_compile_as_dbt_duckdb() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/dbt/cross_db");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).expect("expected.json")).expect("JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("models")).expect("models");
    std::fs::write(dir.path().join("dbt_project.yml"), "name: xdb\nversion: '1.0'\nprofile: xdb\n").expect("project");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "xdb:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: xdb.duckdb\n      schema: main\n",
    )
    .expect("profiles");
    let cases: Vec<&String> = expected.keys().collect();
    for (i, case) in cases.iter().enumerate() {
        std::fs::write(dir.path().join("models").join(format!("case_{i:02}.sql")), format!("<<<{case}>>>")).expect("model");
    }
    let options = LoadOptions { project_dir: dir.path().to_path_buf(), profiles_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let loaded = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
    let compiled = compile(&loaded, &RenderOptions::default()).unwrap_or_else(|d| panic!("compile: {:#?}", d.0));
    let mut differ = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let node = compiled.nodes.iter().find(|n| n.name == format!("case_{i:02}")).expect("compiled");
        let want = expected[case.as_str()].as_str().expect("text");
        if node.compiled_code.as_deref() != Some(want) {
            differ.push(format!("{case}\n  dbt    {want:?}\n  orrery {:?}", node.compiled_code));
        }
    }
    assert!(cases.len() > 30, "only {} cases", cases.len());
    assert!(differ.is_empty(), "{} of {} differ:\n{}", differ.len(), cases.len(), differ.join("\n"));
}

/// Config values in dbt_project.yml are Jinja, rendered as dbt renders the project file:
/// `+enabled: "{{ var('load_raw', false) }}"` disables a folder until the var is set, and a
/// rendered `+materialized` is the text it renders to (dbt-labs/jaffle-shop does the first).
#[test]
fn templated_config_in_dbt_project_yml_is_rendered() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("models/raw")).expect("models");
    std::fs::write(
        dir.path().join("dbt_project.yml"),
        "name: xdb\nversion: '1.0'\nprofile: xdb\nmodels:\n  xdb:\n    +materialized: \"{{ 'table' if target.name == 'dev' else 'view' }}\"\n    raw:\n      +enabled: \"{{ var('load_raw', false) }}\"\n",
    )
    .expect("project");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "xdb:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: xdb.duckdb\n      schema: main\n",
    )
    .expect("profiles");
    std::fs::write(dir.path().join("models/a.sql"), "select 1 as id").expect("model");
    std::fs::write(dir.path().join("models/raw/b.sql"), "select 2 as id").expect("model");
    let compiled_with = |vars: &str| {
        let options = LoadOptions {
            project_dir: dir.path().to_path_buf(),
            profiles_dir: Some(dir.path().to_path_buf()),
            vars: serde_yaml_vars(vars),
            ..Default::default()
        };
        let loaded = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
        let compiled = compile(&loaded, &RenderOptions::default()).unwrap_or_else(|d| panic!("compile: {:#?}", d.0));
        compiled.nodes.iter().filter(|n| n.config.enabled).map(|n| (n.name.clone(), n.config.materialized.clone())).collect::<Vec<_>>()
    };
    assert_eq!(compiled_with(""), [("a".to_string(), "table".to_string())]);
    assert_eq!(compiled_with("load_raw"), [("a".to_string(), "table".to_string()), ("b".to_string(), "table".to_string())]);
}

/// `--vars` with one var set to true, or none.
fn serde_yaml_vars(name: &str) -> indexmap::IndexMap<String, serde_json::Value> {
    let mut vars = indexmap::IndexMap::new();
    if !name.is_empty() {
        vars.insert(name.to_string(), serde_json::Value::Bool(true));
    }
    vars
}

/// A config value in dbt_project.yml whose Jinja fails (a var nobody set) is one error at its
/// place in the file, not a value taken as written.
#[test]
fn a_config_value_that_fails_to_render_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("models")).expect("models");
    let project_yml = "name: xdb\nversion: '1.0'\nprofile: xdb\nmodels:\n  xdb:\n    +enabled: \"{{ var('not_set') }}\"\n";
    std::fs::write(dir.path().join("dbt_project.yml"), project_yml).expect("project");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "xdb:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: xdb.duckdb\n      schema: main\n",
    )
    .expect("profiles");
    std::fs::write(dir.path().join("models/a.sql"), "select 1 as id").expect("model");
    std::fs::write(dir.path().join("models/b.sql"), "select 2 as id").expect("model");
    let options = LoadOptions { project_dir: dir.path().to_path_buf(), profiles_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let loaded = load(&options).unwrap_or_else(|d| panic!("load: {:#?}", d.0));
    let errors = compile(&loaded, &RenderOptions::default()).expect_err("a config value that fails is an error");
    let found: Vec<_> = errors.0.iter().filter(|d| d.code == "render::yaml").collect();
    assert_eq!(found.len(), 1, "{:#?}", errors.0);
    assert!(found[0].message.contains("not_set"), "{}", found[0].message);
    let (file, line_col) = found[0].location().expect("located");
    assert!(file.ends_with("dbt_project.yml"), "{file:?}");
    assert_eq!(line_col.map(|(line, _)| line), Some(6));
}
