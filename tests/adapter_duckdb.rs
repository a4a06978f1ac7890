//! The plan's DuckDB statements against a real DuckDB: every materialization builds what dbt-duckdb
//! builds, failures leave the previous relation, incrementals and snapshots change what they should.
#![cfg(feature = "duckdb")]

use std::path::{Path, PathBuf};

use orrery::adapter::{self, AdapterErrorKind, Connection, RelationType};
use orrery::diagnostics::Diagnostics;
use orrery::node::{Compiled, Node, Relation, ResourceType, TargetInfo};
use orrery::plan::{PlanOptions, RunPlan, build_run_plan};
use serde_json::{Value, json};

fn node(kind: ResourceType, name: &str, materialized: &str, sql: &str) -> Node {
    let relation = Relation { database: Some("shop".into()), schema: "main".into(), identifier: name.into() };
    let mut node = Node::new(kind, "shop", name, relation);
    node.config_mut().materialized = materialized.into();
    node.raw_code = sql.into();
    node.compiled_code = Some(sql.into());
    node
}

const PEOPLE: &str = "\"shop\".\"main\".\"people\"";

/// The project of /tmp's reference run: a seed and one model per materialization.
fn project(dir: &Path) -> Compiled {
    let mut people = node(ResourceType::Seed, "people", "seed", "");
    people.compiled_code = None;
    people.seed_file = Some(dir.join("people.csv"));
    people.config_mut().column_types.insert("age".into(), "bigint".into());
    let mut models = vec![people];
    let mut add = |name: &str, materialized: &str, sql: String, f: &dyn Fn(&mut Node)| {
        let mut n = node(ResourceType::Model, name, materialized, &sql);
        n.depends_on = vec!["seed.shop.people".into()];
        f(&mut n);
        models.push(n);
    };
    add("v", "view", format!("select * from {PEOPLE}"), &|_| {});
    add("t", "table", format!("select id, name from {PEOPLE}"), &|_| {});
    add("inc_append", "incremental", format!("select id, name from {PEOPLE}"), &|n| {
        n.compiled_code_incremental =
            Some(format!("select id, name from {PEOPLE}\n where id > (select max(id) from \"shop\".\"main\".\"inc_append\")"));
    });
    add("inc_di", "incremental", format!("select id, name from {PEOPLE}"), &|n| n.config_mut().unique_key = Some(json!("id")));
    add("inc_merge", "incremental", format!("select id, name from {PEOPLE}"), &|n| {
        n.config_mut().unique_key = Some(json!("id"));
        n.config_mut().incremental_strategy = Some("merge".into());
    });
    let snap = |name: &str, f: &dyn Fn(&mut Node)| {
        let mut n = node(ResourceType::Snapshot, name, "snapshot", &format!("select * from {PEOPLE}"));
        n.relation.schema = "snapshots".into();
        n.config_mut().unique_key = Some(json!("id"));
        n.depends_on = vec!["seed.shop.people".into()];
        f(&mut n);
        n
    };
    models.push(snap("snap_ts", &|n| {
        n.config_mut().strategy = Some("timestamp".into());
        n.config_mut().updated_at = Some("seen".into());
    }));
    models.push(snap("snap_check", &|n| {
        n.config_mut().strategy = Some("check".into());
        n.config_mut().check_cols = Some(json!(["name", "age"]));
    }));
    models.push(snap("snap_all", &|n| {
        n.config_mut().strategy = Some("check".into());
        n.config_mut().check_cols = Some(json!("all"));
    }));
    let mut test = node(ResourceType::Test, "not_null_t_name", "test", "select name\nfrom \"shop\".\"main\".\"t\"\nwhere name is null");
    test.relation.schema = "main_dbt_test__audit".into();
    test.config_mut().severity = Some("warn".into());
    test.depends_on = vec!["model.shop.t".into()];
    models.push(test);
    Compiled {
        project_name: "shop".into(),
        project_root: dir.to_path_buf(),
        target_path: "target".into(),
        target: TargetInfo {
            name: "dev".into(),
            adapter_type: "duckdb".into(),
            database: "shop".into(),
            schema: "main".into(),
            threads: Some(2),
            connection: [("type".to_string(), json!("duckdb")), ("path".to_string(), json!("shop.duckdb"))].into_iter().collect(),
        },
        nodes: models,
        sources: Vec::new(),
        macros: Vec::new(),
        on_run_start: Vec::new(),
        on_run_end: Vec::new(),
        invocation_id: "x".into(),
        generated_at: "2026-01-01T00:00:00Z".into(),
        diagnostics: Diagnostics::new(),
        late_context: None,
    }
}

const CSV1: &str = "id,name,age,score,active,born,seen,amount\n\
1,Ann,30,1.5,true,2020-01-01,2020-01-01 10:00:00,10\n\
2,\"Bob, Jr\",40,2.25,false,2021-02-03,2021-02-03 11:30:00,\n\
3,,50,3,true,,2022-03-04 12:00:00,30\n";

/// Bob renamed (and seen later), a new row 4.
const CSV2: &str = "id,name,age,score,active,born,seen,amount\n\
1,Ann,30,1.5,true,2020-01-01,2020-01-01 10:00:00,10\n\
2,Robert,40,2.25,false,2021-02-03,2023-01-01 00:00:00,\n\
3,,50,3,true,,2022-03-04 12:00:00,30\n\
4,Dan,20,4,false,2024-01-01,2024-01-01 00:00:00,40\n";

fn plan_for(compiled: &Compiled, full_refresh: bool) -> RunPlan {
    let order: Vec<&Node> = compiled.nodes.iter().collect();
    let (plan, diagnostics) = build_run_plan(compiled, &order, &PlanOptions { full_refresh, ..PlanOptions::default() });
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.0);
    plan
}

/// What `exec` does per node: pick the variant, run the statements, roll back on failure.
/// Per node: its name and the test row (tests), or the database error.
type Outcomes = Vec<(String, Result<Option<Vec<Value>>, String>)>;

fn run(conn: &mut dyn Connection, plan: &RunPlan) -> Outcomes {
    for s in plan.hooks.create_schemas.iter().chain(&plan.hooks.on_run_start) {
        conn.execute(s).expect("hook runs");
    }
    let mut outcomes = Vec::new();
    for node in &plan.nodes {
        let existing = conn.relation_type(&Relation::from(&node.relation)).expect("lookup works");
        let statements: Vec<&String> = match (&node.statements_other_type, &node.statements_incremental, existing) {
            (Some(other), _, Some(t)) if other.existing == t.as_str() => other.resolve(&node.statements).expect("no dangling null"),
            (_, Some(incremental), Some(_)) => incremental.iter().collect(),
            _ => node.statements.iter().collect(),
        };
        let mut result = Ok(None);
        for sql in statements {
            if node.test.is_some() {
                match conn.query(sql) {
                    Ok(rows) => result = Ok(rows.rows.into_iter().next()),
                    Err(err) => result = Err(err.message),
                }
            } else if let Err(err) = conn.execute(sql) {
                result = Err(err.message);
            }
            if result.is_err() {
                conn.rollback().expect("rollback works");
                break;
            }
        }
        outcomes.push((node.name.clone(), result));
    }
    outcomes
}

fn rows(conn: &mut dyn Connection, sql: &str) -> Vec<Vec<Value>> {
    conn.query(sql).map(|r| r.rows).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn columns(conn: &mut dyn Connection, relation: &str) -> Vec<(String, String)> {
    rows(conn, &format!("select column_name, column_type from (describe {relation})"))
        .into_iter()
        .map(|r| (r[0].as_str().unwrap_or("").to_string(), r[1].as_str().unwrap_or("").to_string()))
        .collect()
}

struct Project {
    dir: tempfile::TempDir,
    conn: Box<dyn Connection>,
}

fn setup() -> Project {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("people.csv"), CSV1).expect("csv written");
    let compiled = project(dir.path());
    let conn = adapter::connect(&compiled.target, dir.path()).expect("DuckDB opens");
    Project { dir, conn }
}

fn path(p: &Project) -> PathBuf {
    p.dir.path().to_path_buf()
}

fn all_ok(outcomes: &Outcomes) {
    let failed: Vec<_> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn every_materialization_builds_what_dbt_duckdb_builds() {
    let mut p = setup();
    let compiled = project(&path(&p));
    let outcomes = run(p.conn.as_mut(), &plan_for(&compiled, false));
    all_ok(&outcomes);
    let conn = p.conn.as_mut();
    // Seed types as dbt-duckdb's agate inference gives them (age from column_types).
    assert_eq!(
        columns(conn, PEOPLE),
        [
            ("id", "INTEGER"),
            ("name", "VARCHAR"),
            ("age", "BIGINT"),
            ("score", "DOUBLE"),
            ("active", "BOOLEAN"),
            ("born", "DATE"),
            ("seen", "TIMESTAMP"),
            ("amount", "INTEGER")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        rows(conn, &format!("select * from {PEOPLE} order by id")),
        vec![
            vec![json!(1), json!("Ann"), json!(30), json!(1.5), json!(true), json!("2020-01-01"), json!("2020-01-01 10:00:00"), json!(10)],
            vec![
                json!(2),
                json!("Bob, Jr"),
                json!(40),
                json!(2.25),
                json!(false),
                json!("2021-02-03"),
                json!("2021-02-03 11:30:00"),
                Value::Null
            ],
            vec![json!(3), Value::Null, json!(50), json!(3.0), json!(true), Value::Null, json!("2022-03-04 12:00:00"), json!(30)],
        ]
    );
    let kinds: Vec<Option<RelationType>> = ["v", "t", "inc_di"]
        .iter()
        .map(|n| {
            conn.relation_type(&Relation { database: Some("shop".into()), schema: "main".into(), identifier: (*n).into() }).ok().flatten()
        })
        .collect();
    assert_eq!(kinds, [Some(RelationType::View), Some(RelationType::Table), Some(RelationType::Table)]);
    assert_eq!(rows(conn, "select count(*) from shop.main.v"), vec![vec![json!(3)]]);
    let snap_cols: Vec<String> = columns(conn, "shop.snapshots.snap_ts").into_iter().map(|c| c.0).collect();
    assert_eq!(
        snap_cols,
        [
            "id",
            "name",
            "age",
            "score",
            "active",
            "born",
            "seen",
            "amount",
            "dbt_scd_id",
            "dbt_updated_at",
            "dbt_valid_from",
            "dbt_valid_to"
        ]
    );
    // The warn test: one null name → failures 1, should_warn, should_error (the executor reads severity).
    let test = outcomes.iter().find(|(n, _)| n == "not_null_t_name").map(|(_, r)| r.clone());
    assert_eq!(test, Some(Ok(Some(vec![json!(1), json!(true), json!(true)]))));
    // No temporary or backup relation is left behind.
    assert_eq!(rows(conn, "select count(*) from information_schema.tables where table_name like '%__dbt_%'"), vec![vec![json!(0)]]);
}

#[test]
fn a_failing_table_model_leaves_the_previous_table() {
    let mut p = setup();
    let mut compiled = project(&path(&p));
    all_ok(&run(p.conn.as_mut(), &plan_for(&compiled, false)));
    for n in compiled.nodes.iter_mut().filter(|n| n.name == "t") {
        n.compiled_code = Some(format!("select id, no_such_column from {PEOPLE}"));
    }
    let outcomes = run(p.conn.as_mut(), &plan_for(&compiled, false));
    let t = outcomes.iter().find(|(n, _)| n == "t").map(|(_, r)| r.clone());
    assert!(matches!(&t, Some(Err(msg)) if msg.contains("no_such_column")), "{t:?}");
    assert_eq!(rows(p.conn.as_mut(), "select id, name from shop.main.t order by id").len(), 3);
    // A view where a table now goes is replaced too.
    for n in compiled.nodes.iter_mut().filter(|n| n.name == "t") {
        n.compiled_code = Some(format!("select id, name from {PEOPLE} where id < 3"));
    }
    for n in compiled.nodes.iter_mut().filter(|n| n.name == "v") {
        n.config_mut().materialized = "table".into();
    }
    all_ok(&run(p.conn.as_mut(), &plan_for(&compiled, false)));
    let rel = Relation { database: Some("shop".into()), schema: "main".into(), identifier: "v".into() };
    assert_eq!(p.conn.relation_type(&rel).ok().flatten(), Some(RelationType::Table));
    // Fixed: the table is rebuilt from the new SQL.
    assert_eq!(rows(p.conn.as_mut(), "select count(*) from shop.main.t"), vec![vec![json!(2)]]);
}

#[test]
fn second_runs_append_update_and_version() {
    let mut p = setup();
    let compiled = project(&path(&p));
    all_ok(&run(p.conn.as_mut(), &plan_for(&compiled, false)));
    std::fs::write(path(&p).join("people.csv"), CSV2).expect("csv written");
    let compiled = project(&path(&p));
    all_ok(&run(p.conn.as_mut(), &plan_for(&compiled, false)));
    let conn = p.conn.as_mut();
    let names = |conn: &mut dyn Connection, rel: &str| rows(conn, &format!("select id, name from shop.main.{rel} order by id, name"));
    // append: only id 4 is new (Bob keeps his old name there).
    assert_eq!(
        names(conn, "inc_append"),
        vec![vec![json!(1), json!("Ann")], vec![json!(2), json!("Bob, Jr")], vec![json!(3), Value::Null], vec![json!(4), json!("Dan")]]
    );
    let updated =
        vec![vec![json!(1), json!("Ann")], vec![json!(2), json!("Robert")], vec![json!(3), Value::Null], vec![json!(4), json!("Dan")]];
    assert_eq!(names(conn, "inc_di"), updated);
    assert_eq!(names(conn, "inc_merge"), updated);
    // Snapshots: Bob's first version is closed, Robert's is open; Dan is new; the rest untouched.
    for snap in ["snap_ts", "snap_check", "snap_all"] {
        let versions = rows(conn, &format!("select id, name, dbt_valid_to is null from shop.snapshots.{snap} order by id, dbt_valid_from"));
        assert_eq!(
            versions,
            vec![
                vec![json!(1), json!("Ann"), json!(true)],
                vec![json!(2), json!("Bob, Jr"), json!(false)],
                vec![json!(2), json!("Robert"), json!(true)],
                vec![json!(3), Value::Null, json!(true)],
                vec![json!(4), json!("Dan"), json!(true)],
            ],
            "{snap}"
        );
    }
    // --full-refresh rebuilds the incrementals from scratch.
    all_ok(&run(conn, &plan_for(&compiled, true)));
    assert_eq!(names(conn, "inc_append"), updated);
}

#[test]
fn interrupt_cancels_a_running_query() {
    let mut p = setup();
    let handle = p.conn.interrupt_handle();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let canceller = std::thread::spawn(move || {
        // Interrupt repeatedly until the query has ended, so the test cannot race its start.
        while rx.recv_timeout(std::time::Duration::from_millis(50)).is_err() {
            handle.interrupt();
        }
    });
    let result = p.conn.query("select count(*) from range(100000000) a, range(100000000) b");
    tx.send(()).expect("canceller waits");
    canceller.join().expect("canceller ends");
    assert_eq!(result.err().map(|e| e.kind), Some(AdapterErrorKind::Interrupted));
    // The connection stays usable.
    assert_eq!(rows(p.conn.as_mut(), "select 42"), vec![vec![json!(42)]]);
}

#[test]
fn clones_share_the_database() {
    let mut p = setup();
    let mut other = p.conn.try_clone().expect("second connection");
    p.conn.execute("create table shared as select 7 as x").expect("created");
    assert_eq!(rows(other.as_mut(), "select x from shared"), vec![vec![json!(7)]]);
}
