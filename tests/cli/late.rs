//! Nodes rendered at run time (tests/fixtures/projects/late): templates that ask the warehouse
//! while they render are planned as late, shown as `(known after apply)`, and rendered on the
//! worker that runs them, with its connection; a render error then fails that node at its
//! file:line:column.

use crate::harness::{Test, project_copy};
use crate::relations;

fn row(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

#[test]
fn templates_that_ask_the_warehouse_render_at_run_time() {
    let dir = project_copy("tests/fixtures/projects/late");
    let project = dir.path();

    // `validate` never connects (there is no database yet) and lists the late nodes as notes.
    let validated = Test::new().current_dir(project).args(["validate"]).run().status(0);
    assert!(
        validated.stderr().contains("note: model.late.items_wide is rendered at run time: models/items_wide.sql:2:26 asks the warehouse"),
        "{}",
        validated.stderr()
    );
    assert!(!project.join("late.duckdb").exists(), "validate opened the database");

    // Planned late: no statements, the call that makes it so, its bundle.
    Test::new().current_dir(project).args(["compile"]).run().status(0);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("target/plan.json")).expect("plan")).expect("json");
    let node = |id: &str| plan["nodes"].as_array().expect("nodes").iter().find(|n| n["id"] == id).cloned().expect("node");
    let wide = node("model.late.items_wide");
    assert_eq!(wide["render"], "at_run");
    assert_eq!(wide["late_call"], "models/items_wide.sql:2:26", "the first warehouse call: adapter.get_columns_in_relation");
    assert_eq!(wide["statements"].as_array().map(Vec::len), Some(0));
    assert_eq!(wide["depends_on"], serde_json::json!(["model.late.items"]));
    assert_eq!(node("model.late.counted")["render"], "at_run");
    assert!(node("model.late.items").get("render").is_none(), "a static node stays static");
    assert!(plan["render_context"]["macro_files"].as_array().is_some_and(|f| !f.is_empty()), "the macros, once");
    assert!(!project.join("target/compiled/late/models/items_wide.sql").exists(), "a late node has no compiled SQL before it runs");

    // `plan` shows what it learns only while applying.
    let planned = Test::new().current_dir(project).args(["plan"]).run().status(0).stdout();
    assert!(
        planned.contains(
            "create model.late.items_wide (new)\n        statements: (known after apply), rendered at run time: models/items_wide.sql:2:26"
        ),
        "{planned}"
    );

    // Run: rendered with the live connection, after its parents.
    Test::new().current_dir(project).args(["run"]).run().status(0);
    let built = relations::dump(&project.join("late.duckdb"));
    let wide = &built["main.items_wide"];
    assert_eq!(
        wide.columns.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
        ["id_copy", "name_copy", "first_id"],
        "one column per column the warehouse had, and the value it answered"
    );
    assert_eq!(wide.rows, vec![row(&["1", "a", "1"]), row(&["2", "b", "1"])]);
    assert_eq!(built["main.counted"].rows, vec![row(&["2"])]);
    // Its compiled SQL where dbt writes it.
    let compiled = std::fs::read_to_string(project.join("target/compiled/late/models/items_wide.sql")).expect("compiled at run time");
    assert_eq!(compiled, "select\n  \"id\" as id_copy,\n  \"name\" as name_copy,\n  1 as first_id\nfrom \"late\".\"main\".\"items\"");

    // A render error at run time fails that node, at its place in the template.
    let ran = Test::new().current_dir(project).args(["run", "--vars", "{fail_late: true}"]).run();
    assert_ne!(ran.output.status.code(), Some(0));
    let out = format!("{}{}", ran.stdout(), ran.stderr());
    assert!(out.contains("ERROR model.late.items_wide: models/items_wide.sql:8:"), "{out}");
    assert!(out.contains("stopped at run time"), "{out}");
    assert!(out.contains("PASS=3"), "the other nodes ran: {out}");
}
