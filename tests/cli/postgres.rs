//! `orrery run` on a real PostgreSQL server: the one scripts/test.sh starts on loopback
//! (ORRERY_TEST_PG_*). Each test works in a database of its own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use orrery::adapter::{self, Connection};
use orrery::node::TargetInfo;
use serde_json::Value;

use crate::harness::{LIMIT, Test, Watchdog, output_within, project_copy, repo_root};
use crate::relations;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test.sh, which starts PostgreSQL"))
}

/// A session on database `dbname` of the test server.
pub(crate) fn connect(dbname: &str) -> Box<dyn Connection> {
    let mut connection = IndexMap::new();
    connection.insert("host".to_string(), Value::String(env("ORRERY_TEST_PG_HOST")));
    connection.insert("port".to_string(), Value::String(env("ORRERY_TEST_PG_PORT")));
    connection.insert("user".to_string(), Value::String(env("ORRERY_TEST_PG_USER")));
    connection.insert("password".to_string(), Value::String("{{ env_var('ORRERY_TEST_PG_PASSWORD') }}".into()));
    connection.insert("dbname".to_string(), Value::String(dbname.into()));
    let target = TargetInfo {
        name: "test".into(),
        adapter_type: "postgres".into(),
        database: dbname.into(),
        schema: "public".into(),
        threads: None,
        connection,
    };
    adapter::connect(&target, Path::new(".")).unwrap_or_else(|e| panic!("connect to {dbname}: {e}"))
}

/// A new, empty database; its name.
fn fresh_database(prefix: &str) -> String {
    let name = format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    connect("postgres").execute(&format!("create database {name}")).expect("create database");
    name
}

fn count(conn: &mut dyn Connection, sql: &str) -> Result<i64, String> {
    let rows = conn.query(sql).map_err(|e| e.message)?;
    rows.rows.first().and_then(|r| r.first()).and_then(Value::as_i64).ok_or_else(|| format!("no count from {sql}"))
}

/// Every relation of `dbname`, dumped by tests/fixtures/dbt/dump_relations_pg.py as the
/// reference data was.
fn dump(dbname: &str, manifest: &Path, out: &Path) {
    let script = repo_root().join("tests/fixtures/dbt/dump_relations_pg.py");
    let mut command = Command::new(env("ORRERY_TEST_PYTHON"));
    command
        .arg(script)
        .arg(manifest)
        .arg(out)
        .env("PGHOST", env("ORRERY_TEST_PG_HOST"))
        .env("PGPORT", env("ORRERY_TEST_PG_PORT"))
        .env("PGUSER", env("ORRERY_TEST_PG_USER"))
        .env("PGPASSWORD", env("ORRERY_TEST_PG_PASSWORD"))
        .env("PGDATABASE", dbname);
    let output = output_within(&mut command, Duration::from_secs(120), "dump_relations_pg.py");
    assert!(output.status.success(), "dump_relations_pg.py failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn assert_same_relations(dbname: &str, project: &Path, fixture: &str) {
    let out = project.join("relations.json");
    dump(dbname, &project.join("target/manifest.json"), &out);
    let mut built = relations::fixture(&out);
    let expected = relations::fixture(&repo_root().join(fixture));
    let diffs = relations::differences(&mut built, &expected);
    assert!(diffs.is_empty(), "relations differ from {fixture}:\n{}", diffs.join("\n"));
}

/// The project's pipeline file with `extra` added to its `[execution]` table, as `<name>.toml`.
fn pipeline_variant(project: &Path, name: &str, extra: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(project.join("orrery.toml")).expect("read orrery.toml");
    assert!(text.contains("[execution]\n"), "the pipeline has an [execution] table");
    let path = project.join(format!("{name}.toml"));
    std::fs::write(&path, text.replacen("[execution]\n", &format!("[execution]\n{extra}\n"), 1)).expect("write pipeline");
    path
}

const DEFERRED: &str = "mode = \"deferred\"\nmax_in_flight = 8";

fn shop_run(project: &Path, dbname: &str) -> Test {
    shop_run_with(&project.join("orrery.toml"), dbname)
}

fn shop_run_with(pipeline: &Path, dbname: &str) -> Test {
    Test::new()
        .args(["run", "--target", "pg", "-p"])
        .args([pipeline])
        .env("SHOP_PG_HOST", &env("ORRERY_TEST_PG_HOST"))
        .env("SHOP_PG_PORT", &env("ORRERY_TEST_PG_PORT"))
        .env("SHOP_PG_USER", &env("ORRERY_TEST_PG_USER"))
        .env("SHOP_PG_PASSWORD", &env("ORRERY_TEST_PG_PASSWORD"))
        .env("SHOP_PG_DBNAME", dbname)
}

#[test]
fn the_shop_builds_on_postgres_the_relations_dbt_postgres_builds() {
    let dir = project_copy("examples/shop");
    let dbname = fresh_database("shop");
    let ran = shop_run(dir.path(), &dbname).run().status(0);
    let summary = format!("{}{}", ran.stdout(), ran.stderr());
    assert!(summary.contains("PASS=62 WARN=2 ERROR=0"), "{summary}");
    assert_same_relations(&dbname, dir.path(), "tests/fixtures/dbt/shop/relations_postgres.json");

    // The second run over changed seeds: incrementals, snapshots, seeds reloaded, tables rebuilt in place.
    crate::harness::copy_dir(&repo_root().join("tests/fixtures/dbt/shop/second_run"), dir.path());
    shop_run(dir.path(), &dbname).run().status(0);
    assert_same_relations(&dbname, dir.path(), "tests/fixtures/dbt/shop/relations_postgres_second_run.json");

    // The password reached the server and nothing else.
    let password = env("ORRERY_TEST_PG_PASSWORD");
    for file in ["target/run_results.json", "target/plan.json", "target/manifest.json", "target/orrery/runs.log"] {
        if let Ok(text) = std::fs::read_to_string(dir.path().join(file)) {
            assert!(!text.contains(&password), "{file} holds the password");
        }
    }
}

#[test]
fn in_deferred_mode_the_shop_builds_the_same_relations() {
    let dir = project_copy("examples/shop");
    let dbname = fresh_database("shopdeferred");
    let pipeline = pipeline_variant(dir.path(), "deferred", DEFERRED);
    let ran = shop_run_with(&pipeline, &dbname).run().status(0);
    let summary = format!("{}{}", ran.stdout(), ran.stderr());
    assert!(summary.contains("PASS=62 WARN=2 ERROR=0"), "{summary}");
    assert!(!summary.contains("runs blocking"), "{summary}");
    assert_same_relations(&dbname, dir.path(), "tests/fixtures/dbt/shop/relations_postgres.json");
    crate::harness::copy_dir(&repo_root().join("tests/fixtures/dbt/shop/second_run"), dir.path());
    shop_run_with(&pipeline, &dbname).run().status(0);
    assert_same_relations(&dbname, dir.path(), "tests/fixtures/dbt/shop/relations_postgres_second_run.json");
    // The log callback of the pipeline fired once per run, in this mode too.
    let log = std::fs::read_to_string(dir.path().join("target/orrery/runs.log")).expect("runs.log");
    assert_eq!(log.lines().count(), 2, "{log}");
}

fn pg_project() -> (tempfile::TempDir, String) {
    let dir = project_copy("tests/fixtures/projects/pg");
    let dbname = fresh_database("pgproj");
    (dir, dbname)
}

fn pg_run(project: &Path, dbname: &str) -> Test {
    pg_run_with(&project.join("orrery.toml"), dbname)
}

fn pg_run_with(pipeline: &Path, dbname: &str) -> Test {
    Test::new().args(["run", "-p"]).args([pipeline]).env("PGPROJ_DBNAME", dbname)
}

#[test]
fn readers_never_see_an_error_or_an_empty_table_while_it_is_rebuilt() {
    let (dir, dbname) = pg_project();
    pg_run(dir.path(), &dbname).args(["--select", "big", "big_view"]).run().status(0);

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = [("main.big", 100_000), ("main.big_view", 50_000)]
        .into_iter()
        .map(|(relation, expected)| {
            let (stop, reads, dbname) = (stop.clone(), reads.clone(), dbname.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut conn = connect(&dbname);
                while !stop.load(Ordering::SeqCst) {
                    let n = count(conn.as_mut(), &format!("select count(*) from {relation}")).map_err(|e| format!("{relation}: {e}"))?;
                    if n != expected {
                        return Err(format!("{relation}: {n} rows, expected {expected}"));
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();
    // Each rebuild of `big` takes over 0.2 s on the server: the readers overlap all of them.
    for _ in 0..4 {
        pg_run(dir.path(), &dbname).args(["--select", "big"]).run().status(0);
    }
    stop.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.join().expect("reader thread").unwrap_or_else(|e| panic!("a reader saw: {e}"));
    }
    let reads = reads.load(Ordering::SeqCst);
    eprintln!("{reads} reads during 4 rebuilds");
    assert!(reads > 20, "only {reads} reads overlapped the rebuilds");
}

fn sleeping_queries(admin: &mut dyn Connection, dbname: &str) -> i64 {
    count(
        admin,
        &format!(
            "select count(*) from pg_stat_activity where datname = '{dbname}' and query like '%pg_sleep(600)%' \
             and pid <> pg_backend_pid()"
        ),
    )
    .expect("pg_stat_activity")
}

fn sigint_cancels_the_query_on_the_server(extra: &str) {
    let (dir, dbname) = pg_project();
    let pipeline = pipeline_variant(dir.path(), "variant", extra);
    let mut admin = connect("postgres");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orrery"))
        .args(["run", "--select", "sleepy", "-p"])
        .arg(&pipeline)
        .env("PGPROJ_DBNAME", &dbname)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orrery");
    let _watchdog = Watchdog::new(child.id(), LIMIT);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sleeping_queries(admin.as_mut(), &dbname) == 0 {
        assert!(Instant::now() < deadline, "the pg_sleep(600) query never showed in pg_stat_activity");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "orrery still running 10 s after SIGINT");
        std::thread::sleep(Duration::from_millis(5));
    };
    let latency = sent.elapsed();
    eprintln!("SIGINT to exit ({extra:?}): {} ms", latency.as_millis());
    assert_eq!(status.code(), Some(130));
    // The cancel request reached the server before orrery exited.
    assert_eq!(sleeping_queries(admin.as_mut(), &dbname), 0, "the query still runs on the server");
    let events = std::fs::read_to_string(dir.path().join("target/events.log")).expect("events.log written");
    assert!(events.lines().any(|l| l.starts_with("sleepy") && l.ends_with("cancelled")), "{events}");
}

#[test]
fn sigint_cancels_the_query_on_the_server_and_fires_cancelled() {
    sigint_cancels_the_query_on_the_server("");
}

#[test]
fn in_deferred_mode_sigint_cancels_the_query_on_the_server_too() {
    sigint_cancels_the_query_on_the_server(DEFERRED);
}

/// Runs `sleepy` (pg_sleep(600)) beside `other` with `setting`, blocking and deferred: the run
/// exits 1 saying `says`, `sleepy` fired `cancelled`, its query is gone from the server, and
/// `other` fired `other_event`.
fn stops_the_sleeping_query(setting: &str, other: &str, says: &str, other_event: &str) {
    for extra in [setting.to_string(), format!("{setting}\nmode = \"deferred\"")] {
        let (dir, dbname) = pg_project();
        let pipeline = pipeline_variant(dir.path(), "variant", &extra);
        let started = Instant::now();
        let ran = pg_run_with(&pipeline, &dbname).args(["--select", "sleepy", other]).run().status(1);
        assert!(started.elapsed() < Duration::from_secs(60), "{extra}: pg_sleep(600) was not stopped");
        let out = format!("{}{}", ran.stdout(), ran.stderr());
        assert!(out.contains(says), "{extra}: {out}");
        assert_eq!(sleeping_queries(connect("postgres").as_mut(), &dbname), 0, "{extra}: the query still runs");
        let events = std::fs::read_to_string(dir.path().join("target/events.log")).expect("events.log");
        assert!(events.lines().any(|l| l == "sleepy cancelled"), "{extra}: {events}");
        assert!(events.lines().any(|l| l == format!("{other} {other_event}")), "{extra}: {events}");
    }
}

#[test]
fn a_node_timeout_cancels_that_query_on_the_server_in_both_modes() {
    // The other node goes on.
    stops_the_sleeping_query("node_timeout = \"1s\"", "big", "timed out after 1s", "success");
}

#[test]
fn fail_fast_cancels_the_other_query_on_the_server_in_both_modes() {
    // `broken` fails after 0.5 s, when sleepy (both are roots, threads = 2) is running.
    stops_the_sleeping_query("fail_fast = true", "broken", "division by zero", "failure");
}

#[test]
fn sslmode_encrypts_and_verifies_as_libpq_does() {
    let root_cert = env("ORRERY_TEST_PG_SSLROOTCERT");
    let (dir, dbname) = pg_project();
    let run = |mode: &str, root: &str| {
        pg_run(dir.path(), &dbname).env("PGPROJ_SSLMODE", mode).env("PGPROJ_SSLROOTCERT", root).args(["--select", "tls_check"]).run()
    };
    let mut db = connect(&dbname);
    let mut encrypted = |mode: &str, root: &str| {
        run(mode, root).status(0);
        let rows = db.query("select ssl from main.tls_check").expect("tls_check");
        rows.rows.first().and_then(|r| r.first()).and_then(Value::as_bool).expect("one boolean")
    };
    assert!(!encrypted("disable", ""));
    assert!(encrypted("prefer", ""), "libpq's default encrypts when the server can");
    assert!(encrypted("require", ""));
    assert!(encrypted("verify-full", &root_cert), "the server's certificate, trusted through sslrootcert");
    // A self-signed certificate the system does not trust: one clear error, nothing runs.
    let refused = run("verify-full", "").status(2);
    let err = refused.stderr();
    assert!(err.contains("cannot connect to target `dev`") && err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn grants_are_applied_and_revoked_as_the_config_changes() {
    let (dir, dbname) = pg_project();
    let mut admin = connect("postgres");
    for role in ["orrery_reader_a", "orrery_reader_b"] {
        admin.execute(&format!("do $$ begin create role {role}; exception when duplicate_object then null; end $$")).expect("create role");
    }
    let mut db = connect(&dbname);
    let granted = |db: &mut dyn Connection, role: &str| {
        count(db, &format!("select count(*) from information_schema.role_table_grants where grantee = '{role}' and table_name = 'granted'"))
            .expect("grants")
    };
    pg_run(dir.path(), &dbname).args(["--select", "granted"]).run().status(0);
    assert_eq!((granted(db.as_mut(), "orrery_reader_a"), granted(db.as_mut(), "orrery_reader_b")), (1, 0));
    // Rebuilt in place with another reader: the first loses the privilege.
    pg_run(dir.path(), &dbname).args(["--select", "granted", "--vars", "{reader: orrery_reader_b}"]).run().status(0);
    assert_eq!((granted(db.as_mut(), "orrery_reader_a"), granted(db.as_mut(), "orrery_reader_b")), (0, 1));
}

#[test]
fn connection_problems_are_one_clear_error_before_any_node_starts() {
    let (dir, dbname) = pg_project();
    let wrong = "wrong-secret-9f3a";
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port().to_string()
    };
    let cases: [(&str, Test, &str); 3] = [
        ("wrong password", pg_run(dir.path(), &dbname).env("ORRERY_TEST_PG_PASSWORD", wrong), "password authentication failed"),
        ("unreachable host", pg_run(dir.path(), &dbname).env("ORRERY_TEST_PG_PORT", &closed_port), "cannot connect"),
        ("missing database", pg_run(dir.path(), "no_such_database"), "does not exist"),
    ];
    for (case, test, reason) in cases {
        let ran = test.run().status(2);
        let (out, err) = (ran.stdout(), ran.stderr());
        assert!(err.contains("target `dev`"), "{case}: the error names no target:\n{err}");
        assert!(err.contains(reason), "{case}: {reason:?} missing:\n{err}");
        assert_eq!(err.matches("cannot connect to target").count(), 1, "{case}: one error:\n{err}");
        for text in [&out, &err] {
            assert!(!text.contains(wrong) && !text.contains(&env("ORRERY_TEST_PG_PASSWORD")), "{case}: a password shows");
        }
        assert!(!out.contains("OK ") && !dir.path().join("target/events.log").exists(), "{case}: a node ran:\n{out}");
    }
}

#[test]
fn a_runtime_var_binds_by_the_sql_around_it_on_postgres() {
    use crate::runtime_vars::{CONTEXTS_MODEL, NASTY, contexts_row};
    let (dir, dbname) = pg_project();
    let project = dir.path();
    let toml = std::fs::read_to_string(project.join("orrery.toml")).unwrap();
    std::fs::write(project.join("orrery.toml"), format!("{toml}\n[export.airflow]\nruntime_vars = [\"ds\"]\n")).unwrap();
    std::fs::write(project.join("models/contexts.sql"), CONTEXTS_MODEL).unwrap();
    for value in ["2026-03-04", NASTY] {
        let vars = serde_json::json!({ "ds": value }).to_string();
        pg_run(project, &dbname).args(["--select", "contexts", "--vars", &vars]).run().status(0);
        let rows = connect(&dbname)
            .query("select pg_typeof(after_line_comment)::text, after_line_comment, in_string, dollar_body, after_dollar, plain from main.contexts")
            .expect("query");
        let row: Vec<String> = rows.rows[0].iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(row[0], "text", "a string value is a string literal in code");
        assert_eq!(row[1..], contexts_row(value)[..]);
    }
}
