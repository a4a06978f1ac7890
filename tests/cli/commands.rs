//! `compile` and `graph` on the example, as a user runs them.

use crate::harness::{Test, project_copy};

#[test]
fn compile_writes_dbt_artifacts_and_a_run_plan() {
    let dir = project_copy("examples/shop");
    let ran = Test::new().current_dir(dir.path()).args(["compile", "--format", "json"]).run().status(0);
    assert_eq!(ran.json()["ok"], true);
    let target = dir.path().join("target");

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("manifest.json")).expect("manifest.json")).expect("JSON");
    assert_eq!(manifest["metadata"]["dbt_schema_version"], "https://schemas.getdbt.com/dbt/manifest/v12.json");
    let fct = &manifest["nodes"]["model.shop.fct_baskets"];
    assert_eq!(fct["config"]["materialized"], "incremental");
    assert!(fct["depends_on"]["nodes"].as_array().is_some_and(|d| !d.is_empty()), "{fct}");
    assert!(manifest["child_map"]["model.shop.stg_baskets"].as_array().is_some_and(|c| !c.is_empty()));

    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("plan.json")).expect("plan.json")).expect("JSON");
    assert_eq!(plan["kind"], "run");
    let node = plan["nodes"].as_array().expect("nodes").iter().find(|n| n["id"] == "model.shop.fct_baskets").expect("planned");
    assert!(node["statements_incremental"].as_array().is_some_and(|s| !s.is_empty()), "both variants planned");
    assert!(target.join("compiled/shop/models/marts/fct_baskets.sql").exists());
    assert!(target.join("compiled/shop/analyses/patron_city_mix.sql").exists());
}

#[test]
fn a_plan_never_holds_a_secret() {
    let dir = project_copy("examples/shop");
    let secret = "hunter2-orrery-secret";
    // a DuckDB output with a credential in its settings, given through env_var as dbt allows
    let profiles = dir.path().join("profiles.yml");
    let text = std::fs::read_to_string(&profiles).expect("profiles.yml");
    let text = text.replace(
        "      threads: 4\n",
        "      threads: 4\n      settings:\n        s3_secret_access_key: \"{{ env_var('SHOP_S3_SECRET') }}\"\n",
    );
    std::fs::write(&profiles, text).expect("write profiles.yml");
    Test::new().current_dir(dir.path()).env("SHOP_S3_SECRET", secret).env("SHOP_PG_PASSWORD", secret).args(["compile"]).run().status(0);
    // and compiling works with the secret unset: it is resolved only when a connection opens
    Test::new().current_dir(dir.path()).args(["validate"]).run().status(0);
    for file in ["target/plan.json", "target/manifest.json"] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("artifact");
        assert!(!text.contains(secret), "{file} holds the secret");
    }
    let plan = std::fs::read_to_string(dir.path().join("target/plan.json")).expect("plan");
    assert!(plan.contains("SHOP_S3_SECRET"), "the plan keeps the reference to the secret");
}

#[test]
fn graph_prints_the_selected_dag() {
    let ran =
        Test::new().args(["graph", "-p", "examples/shop/orrery.toml", "--format", "json", "--select", "+fct_baskets"]).run().status(0);
    let graph = ran.json();
    let ids: Vec<&str> = graph["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
    assert!(ids.contains(&"model.shop.fct_baskets") && ids.contains(&"model.shop.stg_baskets"), "{ids:?}");
    assert!(!ids.contains(&"model.shop.dim_patrons"), "a descendant is not an ancestor: {ids:?}");
    let edges = graph["edges"].as_array().expect("edges");
    assert!(edges.iter().any(|e| e[0] == "model.shop.stg_baskets" && e[1] == "model.shop.fct_baskets"));

    let mermaid = Test::new().args(["graph", "-p", "examples/shop/orrery.toml", "--syntax", "mermaid"]).run().status(0);
    assert!(mermaid.stdout().starts_with("flowchart"), "{}", mermaid.stdout());
}

#[test]
fn a_selector_that_matches_nothing_is_an_input_error() {
    Test::new()
        .args(["compile", "-p", "examples/shop/orrery.toml", "--select", "no_such_model"])
        .run()
        .status(2)
        .stderr_contains("no_such_model");
}

/// `test_behavior`: how a compiled plan's tests are placed for the scheduler.
#[test]
fn tests_gate_their_models_children_only_with_after_each() {
    use orrery::exec::plan_run::{TestBehavior, phases};
    let dir = project_copy("examples/shop");
    Test::new().current_dir(dir.path()).args(["compile"]).run().status(0);
    let plan = orrery::plan::RunPlan::read(&dir.path().join("target/plan.json")).expect("plan");
    let task = |phase: &orrery::exec::plan_run::Phase, id: &str| {
        (0..phase.dag.len()).find(|&t| phase.dag.task(t).id == id).unwrap_or_else(|| panic!("{id} not planned"))
    };
    let test_on_stg_baskets = "test.shop.not_null_stg_baskets_basket_id.cb2f500adb";

    let each = phases(&plan, TestBehavior::AfterEach).expect("a DAG, even with relationships tests");
    assert_eq!(each.len(), 1);
    let (child, test) = (task(&each[0], "model.shop.fct_baskets"), task(&each[0], test_on_stg_baskets));
    assert!(each[0].dag.task(child).deps.contains(&test), "fct_baskets waits for the tests on stg_baskets");

    let all = phases(&plan, TestBehavior::AfterAll).expect("phases");
    assert_eq!(all.len(), 2, "models first, then every test");
    assert!(all[0].nodes.iter().all(|&i| plan.nodes[i].resource_type != "test"));
    assert!(all[1].nodes.iter().all(|&i| plan.nodes[i].resource_type == "test"));

    let none = phases(&plan, TestBehavior::None).expect("phases");
    assert!(none[0].nodes.iter().all(|&i| plan.nodes[i].resource_type != "test"));
}

#[test]
fn a_project_macro_overrides_get_where_subquery_in_every_test() {
    let dir = project_copy("examples/shop");
    std::fs::write(
        dir.path().join("macros/where_override.sql"),
        "{% macro get_where_subquery(relation) %}{{ return('(select * from ' ~ relation ~ ' where true) overridden') }}{% endmacro %}\n",
    )
    .expect("write macro");
    Test::new().current_dir(dir.path()).args(["compile"]).run().status(0);
    let target = dir.path().join("target");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("manifest.json")).expect("manifest.json")).expect("JSON");
    let tests: Vec<&serde_json::Value> = manifest["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .filter(|n| n["resource_type"] == "test" && n["test_metadata"].is_object())
        .collect();
    assert!(!tests.is_empty());
    for test in tests {
        let sql = test["compiled_code"].as_str().expect("compiled");
        assert!(sql.contains(") overridden"), "{}: {sql}", test["unique_id"]);
        let macros = test["depends_on"]["macros"].as_array().expect("macros");
        assert!(macros.iter().any(|m| m == "macro.shop.get_where_subquery"), "{macros:?}");
        assert!(!macros.iter().any(|m| m == "macro.dbt.get_where_subquery"), "{macros:?}");
    }
}

#[test]
fn templates_that_panicked_are_errors_at_their_place() {
    // Each exited 101 (a panic in the `%` formatting or datetime code) before.
    let dir = project_copy("examples/shop");
    let cases = [
        ("wide.sql", "select '{{ '%.70000f' % 1.5 }}' as x\n"),
        ("huge.sql", "select '{{ '%99999999999999999999d' % 1 }}' as x\n"),
        ("tall.sql", "select '{{ '%9999999999d' % 1 }}' as x\n"),
        ("late.sql", "select '{{ modules.datetime.date(9999, 12, 31) + modules.datetime.timedelta(days=1) }}' as x\n"),
        ("span.sql", "select '{{ modules.datetime.date(9999, 1, 1) - modules.datetime.date(1, 1, 1) }}' as x\n"),
    ];
    for (name, sql) in cases {
        std::fs::write(dir.path().join("models").join(name), sql).expect("write model");
    }
    let ran = Test::new().current_dir(dir.path()).args(["validate"]).run().status(2);
    let err = ran.stderr();
    for (name, _) in &cases[..4] {
        assert!(err.contains(&format!("models/{name}:1:")), "{name} not reported at its line:\n{err}");
    }
    // date(9999, 1, 1) - date(1, 1, 1) is a fine timedelta in Python: it compiles.
    assert!(!err.contains("span.sql"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn durations_too_long_for_a_clock_are_input_errors() {
    // `Instant + Duration` overflowed (a panic) before.
    let dir = project_copy("examples/shop");
    Test::new().current_dir(dir.path()).args(["run", "--lock-timeout", "500000000000y"]).run().status(2).stderr_contains("too long");
    let toml = std::fs::read_to_string(dir.path().join("orrery.toml")).expect("orrery.toml");
    std::fs::write(
        dir.path().join("orrery.toml"),
        format!("{toml}\n[[callbacks]]\nname = \"slow\"\non = [\"success\"]\ntimeout = \"500000000000y\"\n[callbacks.log]\n"),
    )
    .expect("write orrery.toml");
    let ran = Test::new().current_dir(dir.path()).args(["validate"]).run().status(2);
    let line = std::fs::read_to_string(dir.path().join("orrery.toml")).unwrap().lines().position(|l| l.starts_with("timeout")).unwrap() + 1;
    ran.stderr_contains("spec::invalid_duration").stderr_contains("too long").stderr_contains(&format!("orrery.toml:{line}:"));
}
