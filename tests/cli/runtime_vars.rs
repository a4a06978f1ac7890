//! Runtime variables (`[export.airflow] runtime_vars`): placeholders in the plan, bound from
//! `run --vars` as SQL literals, refused where they would change control flow, and bound from
//! Airflow's run by the exported DAG.

use std::path::Path;

use crate::airflow::{airflow, airflow_venv};
use crate::harness::{Test, project_copy};

fn daily(project: &Path) -> Vec<String> {
    let conn = duckdb::Connection::open(project.join("rtv.duckdb")).expect("open the database");
    let mut stmt = conn.prepare("select cast(event_day as varchar) || ' ' || total from main.daily order by 1").expect("prepare");
    stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect()
}

#[test]
fn a_runtime_var_stays_a_placeholder_in_the_plan_and_run_binds_it_from_vars() {
    let dir = project_copy("tests/fixtures/projects/runtime_vars");
    let project = dir.path();
    Test::new().current_dir(project).args(["compile"]).run().status(0);
    let plan = std::fs::read_to_string(project.join("target/plan.json")).expect("plan.json");
    assert!(plan.contains("__orrery_runtime_var_ds__") && !plan.contains("{{"), "the plan keeps a placeholder, no Jinja");
    assert!(
        plan.contains("\"runtime_vars\": [\n    \"ds\"\n  ]") || plan.contains("\"runtime_vars\":[\"ds\"]"),
        "{}",
        &plan[..200.min(plan.len())]
    );

    // Without a value: one error naming it, nothing runs.
    Test::new().current_dir(project).args(["run"]).run().status(2).stderr_contains("runtime variable(s) `ds`");
    assert!(!project.join("rtv.duckdb").exists() || daily(project).is_empty());

    // Each run's value, as a SQL literal: the incremental model adds that day.
    Test::new().current_dir(project).args(["run", "--vars", "{ds: '2026-03-04'}"]).run().status(0);
    assert_eq!(daily(project), ["2026-03-04 15"]);
    Test::new().current_dir(project).args(["run", "--plan", "target/plan.json", "--vars", "{\"ds\": \"2026-03-05\"}"]).run().status(0);
    assert_eq!(daily(project), ["2026-03-04 15", "2026-03-05 11"]);
    // A quote in the value is escaped, not SQL: the whole value is one (invalid) date literal.
    Test::new()
        .current_dir(project)
        .args(["run", "--vars", "{ds: \"2026-03-06' or '1'='1\"}"])
        .run()
        .status(1)
        .stderr_contains("'2026-03-06'' or ''1''=''1'");
    assert_eq!(daily(project), ["2026-03-04 15", "2026-03-05 11"]);
}

#[test]
fn a_runtime_var_in_control_flow_is_a_compile_error_at_its_use() {
    let dir = project_copy("tests/fixtures/projects/runtime_vars");
    let project = dir.path();
    std::fs::write(project.join("models/flow.sql"), "{% if var('ds') %}select 1 as x{% else %}select 2 as x{% endif %}\n").unwrap();
    std::fs::write(project.join("models/shout.sql"), "select '{{ var(\"ds\") | upper }}' as d\n").unwrap();
    std::fs::write(project.join("models/fine.sql"), "select '{{ var(\"ds\") }}' as d\n").unwrap();
    let ran = Test::new().current_dir(project).args(["validate"]).run().status(2);
    let err = ran.stderr();
    assert_eq!(err.matches("render::runtime_var_control_flow").count(), 2, "{err}");
    assert!(err.contains("models/flow.sql:1:7") && err.contains("models/shout.sql:1:12"), "{err}");
    assert!(!err.contains("model.rtv.fine"), "{err}");
}

#[test]
fn the_exported_dag_binds_ds_from_the_airflow_run() {
    let venv = airflow_venv();
    let dir = project_copy("tests/fixtures/projects/runtime_vars");
    let project = dir.path();
    let toml = std::fs::read_to_string(project.join("orrery.toml")).unwrap();
    std::fs::write(project.join("orrery.toml"), format!("{toml}orrery = \"{}\"\n", env!("CARGO_BIN_EXE_orrery"))).unwrap();
    Test::new().current_dir(project).args(["export", "airflow", "-o", "dags"]).run().status(0);
    let dags = project.join("dags");
    let home = tempfile::tempdir().unwrap();
    let migrated = airflow(&venv, home.path(), &dags, "airflow", &["db", "migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let ran = airflow(&venv, home.path(), &dags, "airflow", &["dags", "test", "rtv", "2026-03-04"]);
    let log = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
    assert!(ran.status.success() && log.contains("state=success"), "the DAG run failed:\n{log}");
    // The DAG ran beside its plan: the database is where the plan's absolute path points.
    assert_eq!(daily(project), ["2026-03-04 15"], "{log}");
}

/// A model with the runtime variable in every lexical context: after a line comment holding a
/// quote, inside a string literal, inside a block comment, after a dollar-quoted body, in code.
pub(crate) const CONTEXTS_MODEL: &str = "-- don't\nselect {{ var('ds') }} as after_line_comment,\n    'day: {{ var(\"ds\") }}' as in_string,\n    /* {{ var('ds') }} */ $$it's$$ as dollar_body,\n    {{ var('ds') }} as after_dollar,\n    {{ var('ds') }} || '' as plain\n";

/// A value a naive splice would turn into SQL: a quote, a line comment and a comment closer.
pub(crate) const NASTY: &str = "it's -- a */ b";

/// What the model's one row holds when `ds` is `value`.
pub(crate) fn contexts_row(value: &str) -> Vec<String> {
    vec![value.to_string(), format!("day: {value}"), "it's".to_string(), value.to_string(), value.to_string()]
}

fn contexts(project: &Path) -> Vec<String> {
    let conn = duckdb::Connection::open(project.join("rtv.duckdb")).expect("open the database");
    let mut stmt = conn
        .prepare("select typeof(after_line_comment), after_line_comment, in_string, dollar_body, after_dollar, plain from main.contexts")
        .expect("prepare");
    let row = stmt
        .query_row([], |r| Ok((1..6).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>().map(|v| (r.get::<_, String>(0), v))))
        .expect("one row")
        .expect("text columns");
    assert_eq!(row.0.expect("type"), "VARCHAR", "a string value is a string literal in code");
    row.1
}

#[test]
fn a_runtime_var_binds_by_the_sql_around_it_on_duckdb() {
    let dir = project_copy("tests/fixtures/projects/runtime_vars");
    let project = dir.path();
    std::fs::write(project.join("models/contexts.sql"), CONTEXTS_MODEL).unwrap();
    // Before: the quote in `-- don't` made the placeholder look quoted, and `2026-03-04` ran as
    // arithmetic (2019).
    Test::new().current_dir(project).args(["run", "--select", "contexts", "--vars", "{ds: \"2026-03-04\"}"]).run().status(0);
    assert_eq!(contexts(project), contexts_row("2026-03-04"));
    let vars = serde_json::json!({ "ds": NASTY }).to_string();
    Test::new().current_dir(project).args(["run", "--select", "contexts", "--vars", &vars]).run().status(0);
    assert_eq!(contexts(project), contexts_row(NASTY));
    // The same from the compiled plan, as the Airflow DAG runs it.
    Test::new().current_dir(project).args(["compile", "--select", "contexts"]).run().status(0);
    Test::new().current_dir(project).args(["run", "--plan", "target/plan.json", "--vars", "{ds: \"x */ y\"}"]).run().status(0);
    assert_eq!(contexts(project), contexts_row("x */ y"));
}

#[test]
fn a_runtime_var_inside_a_quoted_identifier_is_a_compile_error_at_its_call() {
    let dir = project_copy("tests/fixtures/projects/runtime_vars");
    let project = dir.path();
    std::fs::write(project.join("models/named.sql"), "select 1 as \"col_{{ var('ds') }}\"\n").unwrap();
    let ran = Test::new().current_dir(project).args(["compile"]).run().status(2);
    let err = ran.stderr();
    assert!(err.contains("render::runtime_var_in_identifier") && err.contains("models/named.sql:1:21"), "{err}");
}
