//! `orrery export airflow`: the exported DAG imported and run by a real Airflow 3 (installed in
//! a virtualenv by scripts/test.sh), its task graph compared with the plan's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Test, output_within, project_copy};

pub(crate) fn airflow_venv() -> String {
    std::env::var("ORRERY_TEST_AIRFLOW").expect("ORRERY_TEST_AIRFLOW is unset: run the tests with scripts/test.sh, which installs Airflow")
}

/// Runs `args` with the virtualenv's programs in a throwaway AIRFLOW_HOME over `dags`.
pub(crate) fn airflow(venv: &str, home: &Path, dags: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(format!("{venv}/bin/{program}"));
    command
        .args(args)
        .env("AIRFLOW_HOME", home)
        .env("AIRFLOW__CORE__DAGS_FOLDER", dags)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("NO_COLOR", "1");
    output_within(&mut command, std::time::Duration::from_secs(600), &format!("{program} {args:?}"))
}

/// What the DAG should be, from the plan alone: one task per model, seed and snapshot (with
/// `after_each` a test of one model runs in its task; a test of several is a task), the
/// plan's edges between them, and the closing task after all.
fn expected_graph(plan: &Value) -> BTreeMap<String, Vec<String>> {
    let nodes = plan["nodes"].as_array().unwrap();
    let is_task = |n: &Value| n["resource_type"] != "test" || n["depends_on"].as_array().unwrap().len() != 1;
    let tasks: Vec<&Value> = nodes.iter().filter(|n| is_task(n)).collect();
    let ids: Vec<String> = tasks.iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &tasks {
        let mut upstream: Vec<String> =
            node["depends_on"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).filter(|d| ids.contains(d)).collect();
        upstream.sort();
        graph.insert(node["id"].as_str().unwrap().to_string(), upstream);
    }
    let mut all = ids.clone();
    all.sort();
    graph.insert("orrery_finish".into(), all);
    graph
}

#[test]
fn the_exported_dag_imports_matches_the_plan_and_airflow_runs_it_end_to_end() {
    let venv = airflow_venv();
    let dir = project_copy("examples/shop");
    let project = dir.path();
    let toml = std::fs::read_to_string(project.join("orrery.toml")).unwrap();
    std::fs::write(
        project.join("orrery.toml"),
        format!("{toml}\n[export.airflow]\norrery = \"{}\"\ndefault_args = {{ owner = \"data\" }}\n", env!("CARGO_BIN_EXE_orrery")),
    )
    .unwrap();
    Test::new().current_dir(project).args(["export", "airflow", "-o", "dags"]).run().status(0);
    let dags = project.join("dags");
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(dags.join("shop.plan.json")).unwrap()).unwrap();

    // Parsing: no import errors, and the task graph is the plan's.
    let home = tempfile::tempdir().unwrap();
    let script = "import json, sys\n\
        from airflow.dag_processing.dagbag import DagBag\n\
        from airflow.serialization.serialized_objects import DagSerialization\n\
        bag = DagBag(dag_folder=sys.argv[1])\n\
        dag = bag.dags['shop']\n\
        print(json.dumps({'errors': {str(k): v for k, v in bag.import_errors.items()}, 'max_active_tasks': dag.max_active_tasks,\n\
          'owner': dag.default_args.get('owner'),\n\
          'groups': {t.task_id: t.task_group.group_id for t in dag.tasks if t.task_group and t.task_group.group_id},\n\
          'graph': {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},\n\
          'commands': all(repr(t.task_id) in t.bash_command or t.task_id in t.bash_command for t in dag.tasks if t.task_id != 'orrery_finish'),\n\
          'serialized': len(DagSerialization.from_dict(DagSerialization.to_dict(dag)).tasks)}))";
    let parsed = airflow(&venv, home.path(), &dags, "python", &["-c", script, dags.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&parsed.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output: {}", String::from_utf8_lossy(&parsed.stderr)));
    let dag: Value = serde_json::from_str(line).unwrap();
    assert_eq!(dag["errors"], serde_json::json!({}));
    assert_eq!(dag["max_active_tasks"], 1, "DuckDB: one task at a time");
    assert_eq!(dag["owner"], "data");
    // A task group per folder of the project.
    assert_eq!(dag["groups"]["model.shop.stg_patrons"], "models__staging");
    assert_eq!(dag["groups"]["model.shop.dim_patrons"], "models__marts");
    let graph: BTreeMap<String, Vec<String>> = serde_json::from_value(dag["graph"].clone()).unwrap();
    assert_eq!(graph, expected_graph(&plan));
    // Each task runs its own node, and the DAG serializes as the scheduler stores it.
    assert_eq!(dag["commands"], true);
    assert_eq!(dag["serialized"].as_u64(), Some(graph.len() as u64));

    // `airflow dags test`: every task runs orrery for its node; the relations are dbt's.
    let migrated = airflow(&venv, home.path(), &dags, "airflow", &["db", "migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let ran = airflow(&venv, home.path(), &dags, "airflow", &["dags", "test", "shop", "2024-01-03"]);
    let log = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
    assert!(ran.status.success() && log.contains("state=success"), "the DAG run failed:\n{log}");
    crate::run::assert_same_relations(&project.join("shop.duckdb"), "tests/fixtures/dbt/shop/relations.json");
    // One run: one run_results with every node, and the pipeline's callback once.
    let results: Value = serde_json::from_str(&std::fs::read_to_string(dags.join("run_results.json")).unwrap()).unwrap();
    assert_eq!(results["results"].as_array().unwrap().len(), plan["nodes"].as_array().unwrap().len());
    assert!(results["args"]["run_id"].as_str().unwrap().starts_with("manual__"));
    assert_eq!(log.matches("CALLBACK run_log (success) for the pipeline").count(), 1, "{log}");
    assert_eq!(log.matches("CALLBACK alert").count(), 0);
}

#[test]
fn a_failing_node_fails_its_task_skips_downstream_and_fires_its_failure_callback_once() {
    let venv = airflow_venv();
    let dir = project_copy("tests/fixtures/projects/callbacks");
    let project = dir.path();
    let record = project.join("scripts/record.sh");
    std::fs::write(
        project.join("orrery.toml"),
        format!(
            r#"[pipeline]
name = "cbpipe"

[execution]
retries = 1
retry_delay = "10ms"

[export.airflow]
orrery = "{orrery}"

[[callbacks]]
name = "on_failure"
on = ["failure"]
[callbacks.command]
argv = ["{record}", "{{{{ block_uuid }}}}.{{{{ parent_block_uuid }}}}.{{{{ status }}}}"]

[[callbacks]]
name = "done"
on = ["success", "failure"]
scope = "pipeline"
[callbacks.command]
argv = ["{record}", "{{{{ block_uuid }}}}.pipeline.{{{{ status }}}}"]
"#,
            orrery = env!("CARGO_BIN_EXE_orrery"),
            record = record.display()
        ),
    )
    .unwrap();
    let select = ["--select", "ok_model", "ok_child", "bad_model", "bad_child"];
    Test::new().current_dir(project).args(["export", "airflow", "-o", "dags"]).args(select).run().status(0);
    let dags = project.join("dags");
    let home = tempfile::tempdir().unwrap();
    let migrated = airflow(&venv, home.path(), &dags, "airflow", &["db", "migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let ran = airflow(&venv, home.path(), &dags, "airflow", &["dags", "test", "cbpipe", "2024-01-03"]);
    let log = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
    assert!(log.contains("state=failed"), "the DAG run should fail:\n{log}");

    // Airflow's view: the failing task failed, its child upstream_failed, the siblings ran.
    let script = "import json\n\
        from airflow.models.taskinstance import TaskInstance\n\
        from airflow.utils.session import create_session\n\
        with create_session() as s:\n    \
        print(json.dumps({ti.task_id: str(ti.state) for ti in s.query(TaskInstance).filter(TaskInstance.dag_id == 'cbpipe')}))";
    let states = airflow(&venv, home.path(), &dags, "python", &["-c", script]);
    let stdout = String::from_utf8_lossy(&states.stdout);
    let states: BTreeMap<String, String> = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    let state = |id: &str| states.get(id).cloned().unwrap_or_default();
    assert_eq!(state("model.cbproj.bad_model"), "failed", "{states:?}");
    assert_eq!(state("model.cbproj.bad_child"), "upstream_failed", "{states:?}");
    assert_eq!(state("model.cbproj.ok_model"), "success", "{states:?}");
    assert_eq!(state("model.cbproj.ok_child"), "success", "{states:?}");
    assert_eq!(state("orrery_finish"), "failed", "{states:?}");

    // The failure callback fired once (after orrery's own retry), and the run's once.
    let mut fired: Vec<String> = std::fs::read_dir(dags.join("out"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json").map(str::to_string))
        .collect();
    fired.sort();
    assert_eq!(fired, ["done.pipeline.failure", "on_failure.bad_model.failure"]);
    let context: Value =
        serde_json::from_str(&std::fs::read_to_string(dags.join("out/on_failure.bad_model.failure.json")).unwrap()).unwrap();
    assert_eq!(context["attempt"], 2);
    assert!(context["run_id"].as_str().unwrap().starts_with("manual__"));
    // run_results of the run records all of it.
    let results: Value = serde_json::from_str(&std::fs::read_to_string(dags.join("run_results.json")).unwrap()).unwrap();
    let status: BTreeMap<String, String> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(status.get("model.cbproj.bad_model").map(String::as_str), Some("error"));
    assert_eq!(status.get("model.cbproj.ok_child").map(String::as_str), Some("success"));
    assert!(status.iter().filter(|(id, _)| id.starts_with("test.cbproj.")).all(|(_, s)| s == "pass"), "{status:?}");
}
