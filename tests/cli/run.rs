//! `orrery run` on DuckDB against what `dbt build` with dbt-duckdb built from the same projects.

use std::path::Path;

use crate::harness::{Test, project_copy, repo_root};
use crate::relations;

pub(crate) fn assert_same_relations(db: &Path, fixture: &str) {
    let expected = relations::fixture(&repo_root().join(fixture));
    let mut built = relations::dump(db);
    let diffs = relations::differences(&mut built, &expected);
    assert!(diffs.is_empty(), "relations differ from {fixture}:\n{}", diffs.join("\n"));
}

/// Copies the second-run seeds over the project (dbt's fixtures ran a second build on them).
fn apply_second_run(project: &Path, fixture_dir: &str) {
    let seeds = repo_root().join(fixture_dir).join("second_run");
    if seeds.exists() {
        crate::harness::copy_dir(&seeds, project);
    }
}

fn builds_like_dbt(example: &str, db_file: &str) {
    let dir = project_copy(&format!("examples/{example}"));
    let pipeline = dir.path().join("orrery.toml");
    Test::new().args(["run", "-p"]).args([&pipeline]).run().status(0);
    assert_same_relations(&dir.path().join(db_file), &format!("tests/fixtures/dbt/{example}/relations.json"));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("run_results.json written"))
            .expect("run_results.json is JSON");
    assert_eq!(results["metadata"]["dbt_schema_version"], "https://schemas.getdbt.com/dbt/run-results/v6.json");
    assert!(results["results"].as_array().is_some_and(|r| !r.is_empty()));

    // A second run over changed seeds: incrementals append / update by unique_key, snapshots version.
    apply_second_run(dir.path(), &format!("tests/fixtures/dbt/{example}"));
    Test::new().args(["run", "-p"]).args([&pipeline]).run().status(0);
    assert_same_relations(&dir.path().join(db_file), &format!("tests/fixtures/dbt/{example}/relations_second_run.json"));
}

#[test]
fn the_shop_builds_the_relations_dbt_builds() {
    builds_like_dbt("shop", "shop.duckdb");
}

#[test]
fn the_clinic_builds_the_relations_dbt_builds() {
    builds_like_dbt("clinic", "clinic.duckdb");
}

mod incremental {
    use std::path::Path;

    use crate::harness::{Test, project_copy};

    fn query(db: &Path, sql: &str) -> Vec<String> {
        let conn = duckdb::Connection::open(db).expect("open database");
        let mut stmt = conn.prepare(sql).expect("prepare");
        stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect()
    }

    fn rows(db: &Path, relation: &str) -> Vec<String> {
        query(db, &format!("select id || ':' || status from {relation} order by id, status"))
    }

    fn write_events(project: &Path, rows: &[&str]) {
        let mut csv = String::from("id,status,updated_at\n");
        for row in rows {
            csv.push_str(row);
            csv.push('\n');
        }
        std::fs::write(project.join("seeds/events.csv"), csv).expect("write seed");
    }

    #[test]
    fn incremental_runs_append_and_update_by_key_and_full_refresh_rebuilds() {
        let dir = project_copy("tests/fixtures/projects/incremental");
        let (project, db) = (dir.path(), dir.path().join("incremental.duckdb"));
        let run = |args: &[&str]| Test::new().current_dir(project).args(["run"]).args(args).run().status(0);

        run(&[]);
        assert_eq!(rows(&db, "events_latest"), ["1:new", "2:new"]);
        assert_eq!(rows(&db, "events_log"), ["1:new", "2:new"]);

        write_events(project, &["1,paid,2024-01-02 00:00:00", "2,new,2024-01-01 00:00:00", "3,new,2024-01-02 00:00:00"]);
        run(&[]);
        // unique_key: row 1 updated in place, row 3 added; append: only the new rows added
        assert_eq!(rows(&db, "events_latest"), ["1:paid", "2:new", "3:new"]);
        assert_eq!(rows(&db, "events_log"), ["1:new", "1:paid", "2:new", "3:new"]);

        run(&["--full-refresh"]);
        assert_eq!(rows(&db, "events_log"), ["1:paid", "2:new", "3:new"]);
    }

    #[test]
    fn a_saved_plan_runs_with_no_project_present() {
        let dir = project_copy("tests/fixtures/projects/incremental");
        let (project, db) = (dir.path(), dir.path().join("incremental.duckdb"));
        Test::new().current_dir(project).args(["run"]).run().status(0);

        write_events(project, &["1,paid,2024-01-02 00:00:00", "2,new,2024-01-01 00:00:00", "3,new,2024-01-02 00:00:00"]);
        Test::new().current_dir(project).args(["compile"]).run().status(0);
        let elsewhere = tempfile::tempdir().expect("temp dir");
        let plan = elsewhere.path().join("plan.json");
        std::fs::copy(project.join("target/plan.json"), &plan).expect("copy plan");
        for gone in ["models", "seeds", "target"] {
            std::fs::remove_dir_all(project.join(gone)).expect("remove");
        }
        for gone in ["dbt_project.yml", "profiles.yml", "orrery.toml"] {
            std::fs::remove_file(project.join(gone)).expect("remove");
        }

        Test::new().current_dir(elsewhere.path()).args(["run", "--plan", "plan.json"]).run().status(0);
        assert_eq!(rows(&db, "events_latest"), ["1:paid", "2:new", "3:new"]);
        assert_eq!(rows(&db, "events_log"), ["1:new", "1:paid", "2:new", "3:new"]);
        assert!(elsewhere.path().join("run_results.json").exists(), "run_results.json beside the plan");
    }

    #[test]
    fn a_failing_model_skips_its_descendants_and_keeps_its_previous_relation() {
        let dir = project_copy("tests/fixtures/projects/incremental");
        let (project, db) = (dir.path(), dir.path().join("incremental.duckdb"));
        Test::new().current_dir(project).args(["run"]).run().status(0);
        assert_eq!(query(&db, "select cast(n as varchar) from event_counts"), ["2"]);

        let model = project.join("models/event_counts.sql");
        let good = std::fs::read_to_string(&model).expect("read model");
        std::fs::write(&model, good.replace("select", "selekt")).expect("break model");
        write_events(project, &["1,paid,2024-01-02 00:00:00", "2,new,2024-01-01 00:00:00", "3,new,2024-01-02 00:00:00"]);
        let ran = Test::new().current_dir(project).args(["run"]).run().status(1);
        let stderr = ran.stderr();
        assert!(stderr.contains("ERROR model.incremental.event_counts"), "{stderr}");
        assert!(stderr.to_lowercase().contains("parser error"), "the database's error is shown:\n{stderr}");
        assert!(stderr.contains("SKIP model.incremental.event_counts_report"), "{stderr}");
        // the independent branch still built, the failed table kept its previous version
        assert_eq!(rows(&db, "events_log"), ["1:new", "1:paid", "2:new", "3:new"]);
        assert_eq!(query(&db, "select cast(n as varchar) from event_counts"), ["2"]);
        assert_eq!(query(&db, "select cast(n as varchar) from event_counts_report"), ["2"]);

        std::fs::write(&model, good).expect("fix model");
        Test::new().current_dir(project).args(["run"]).run().status(0);
        assert_eq!(query(&db, "select cast(n as varchar) from event_counts"), ["3"]);
    }
}
