//! `plan` / `apply` / `state` on real projects: the change plan against the applied state,
//! stale plans, locks, and what an interrupted apply leaves behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{LIMIT, Test, Watchdog, project_copy};

fn tables(db: &Path, like: &str) -> Vec<String> {
    let conn = duckdb::Connection::open(db).expect("open database");
    let sql = format!("select table_name from information_schema.tables where table_name like '{like}' order by 1");
    let mut stmt = conn.prepare(&sql).expect("prepare");
    stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect()
}

/// The plan's lines for one action, as `<symbol> <action> <id> (<reason>)`, trimmed.
fn lines_with(stdout: &str, action: &str) -> Vec<String> {
    stdout.lines().map(str::trim).filter(|l| l.split_whitespace().nth(1) == Some(action)).map(str::to_string).collect()
}

fn state_of(project: &Path, pipeline: &str) -> Value {
    let text = std::fs::read_to_string(project.join(format!(".orrery/state/{pipeline}/dev.json"))).expect("state written");
    serde_json::from_str(&text).expect("state is JSON")
}

#[test]
fn plan_apply_plan_shows_creates_then_nothing_then_exactly_what_an_edit_changes() {
    let dir = project_copy("examples/shop");
    let project = dir.path();
    let first = Test::new().current_dir(project).args(["plan", "--detailed-exitcode", "-o", "p1.json"]).run().status(2);
    assert!(first.stdout().contains("Plan: 64 to create, 0 to replace, 0 to rebuild, 0 to drop, 0 unchanged."), "{}", first.stdout());
    Test::new().current_dir(project).args(["show", "p1.json"]).run().status(0);
    Test::new().current_dir(project).args(["apply", "p1.json"]).run().status(0);
    assert_eq!(state_of(project, "shop")["nodes"].as_object().unwrap().len(), 64);

    let again = Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);
    assert!(again.stdout().contains("No changes."), "{}", again.stdout());
    // That plan reused the compile before it (nothing changed); an environment variable a
    // model reads is an input like its file.
    assert!(project.join("target/orrery/compile_cache.json").is_file());
    let env_changed =
        Test::new().current_dir(project).env("SHOP_SALES_CHANNEL", "store").args(["plan", "--detailed-exitcode"]).run().status(2);
    let out = env_changed.stdout();
    assert_eq!(lines_with(&out, "replace"), ["-/+ replace model.shop.stg_baskets (sql_changed)"], "{out}");
    Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);

    // Applying the same plan again is refused, and changes nothing.
    let before = state_of(project, "shop");
    Test::new().current_dir(project).args(["apply", "p1.json"]).run().status(2).stderr_contains("the plan is stale");
    assert_eq!(state_of(project, "shop"), before);

    // Edit a staging view: it is replaced, the tables built from it rebuilt, the rest unchanged.
    let model = project.join("models/staging/stg_patrons.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, format!("{sql}\n-- reviewed\n")).unwrap();
    let edited = Test::new().current_dir(project).args(["plan", "--detailed-exitcode", "-o", "p2.json"]).run().status(2);
    let out = edited.stdout();
    assert_eq!(lines_with(&out, "replace"), ["-/+ replace model.shop.stg_patrons (sql_changed)"], "{out}");
    let rebuilt = lines_with(&out, "rebuild");
    assert!(rebuilt.contains(&"~ rebuild model.shop.dim_patrons (upstream_changed)".to_string()), "{out}");
    assert!(rebuilt.iter().all(|l| !l.contains("model.shop.stg_") && !l.contains("dim_teas")), "views and unrelated nodes stay: {out}");
    assert!(out.contains("to rebuild, 0 to drop,"), "{out}");
    Test::new().current_dir(project).args(["apply", "p2.json"]).run().status(0);
    Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);

    // A plan made before a run is stale after it.
    std::fs::write(&model, format!("{sql}\n-- reviewed twice\n")).unwrap();
    Test::new().current_dir(project).args(["plan", "-o", "p3.json"]).run().status(0);
    Test::new().current_dir(project).args(["run"]).run().status(0);
    Test::new().current_dir(project).args(["apply", "p3.json"]).run().status(2).stderr_contains("the plan is stale");

    // Delete a model: planned as a drop, and apply drops its relation.
    std::fs::remove_file(project.join("models/marts/mart_tea_sales.sql")).unwrap();
    let dropped = Test::new().current_dir(project).args(["plan", "--detailed-exitcode", "-o", "p4.json"]).run().status(2);
    let out = dropped.stdout();
    assert!(out.contains("! 1 relation(s) will be DROPPED"), "{out}");
    assert!(lines_with(&out, "drop").contains(&"- drop model.shop.mart_tea_sales (removed)".to_string()), "{out}");
    assert_eq!(tables(&project.join("shop.duckdb"), "mart_tea_sales"), ["mart_tea_sales"]);
    Test::new().current_dir(project).args(["apply", "p4.json"]).run().status(0);
    assert!(tables(&project.join("shop.duckdb"), "mart_tea_sales").is_empty());
    assert!(state_of(project, "shop")["nodes"].get("model.shop.mart_tea_sales").is_none());
    Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);

    // A relation dropped behind orrery's back: only --refresh asks the warehouse.
    duckdb::Connection::open(project.join("shop.duckdb")).unwrap().execute_batch("drop table main_marts.dim_patrons").unwrap();
    Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);
    let refreshed = Test::new().current_dir(project).args(["plan", "--refresh", "--detailed-exitcode"]).run().status(2);
    let out = refreshed.stdout();
    assert_eq!(lines_with(&out, "create"), ["+ create model.shop.dim_patrons (missing_in_warehouse)"], "{out}");
    // --replace forces one node; --destroy plans dropping everything in state.
    let forced = Test::new().current_dir(project).args(["plan", "--replace", "stg_teas"]).run().status(0);
    assert!(lines_with(&forced.stdout(), "replace").contains(&"-/+ replace model.shop.stg_teas (requested)".to_string()));
    let destroy = Test::new().current_dir(project).args(["plan", "--destroy"]).run().status(0);
    assert!(destroy.stdout().contains("0 to create, 0 to replace, 0 to rebuild, 62 to drop"), "{}", destroy.stdout());
}

#[test]
fn apply_without_a_plan_file_refuses_without_a_terminal_unless_auto_approved() {
    let dir = project_copy("examples/shop");
    let project = dir.path();
    Test::new().current_dir(project).args(["apply"]).run().status(2).stderr_contains("needs a terminal to confirm, or --auto-approve");
    assert!(!project.join("shop.duckdb").exists(), "nothing ran");
    Test::new().current_dir(project).args(["apply", "--auto-approve"]).run().status(0);
    Test::new().current_dir(project).args(["plan", "--detailed-exitcode"]).run().status(0);
}

#[test]
fn a_killed_apply_leaves_its_lock_and_a_state_true_to_what_finished() {
    const PASSWORD: &str = "pw-deploy-Q4-never-show";
    let dir = project_copy("tests/fixtures/projects/callbacks");
    let project = dir.path();
    let select = ["--select", "ok_model", "ok_child", "slow_model"];
    let planned = Test::new()
        .current_dir(project)
        .env("ORRERY_TEST_PASSWORD", PASSWORD)
        .args(["plan", "-o", "plan.json"])
        .args(select)
        .run()
        .status(0);
    assert!(planned.stdout().contains("to create"), "{}", planned.stdout());

    let mut apply = Command::new(env!("CARGO_BIN_EXE_orrery"))
        .current_dir(project)
        .env("ORRERY_TEST_PASSWORD", PASSWORD)
        .args(["--format", "json", "apply", "plan.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply");
    let _watchdog = Watchdog::new(apply.id(), LIMIT);
    let mut finished = Vec::new();
    let mut slow_started = false;
    for line in BufReader::new(apply.stdout.take().unwrap()).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap_or_default();
        let node = event["node"].as_str().unwrap_or_default().to_string();
        match event["event"].as_str() {
            Some("finished") => finished.push(node),
            Some("started") if node == "model.cbproj.slow_model" => slow_started = true,
            _ => {}
        }
        if slow_started && finished.iter().any(|n| n == "model.cbproj.ok_child") {
            break;
        }
    }

    // A second apply (or run) meanwhile fails on the lock, naming its id, owner and time.
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(project.join(".orrery/state/cbpipe/dev.lock")).unwrap()).unwrap();
    let id = lock["id"].as_str().unwrap().to_string();
    let second = Test::new()
        .current_dir(project)
        .args(["apply", "--auto-approve", "--lock-timeout", "300ms", "--select", "slow_model"])
        .run()
        .status(2);
    let stderr = second.stderr();
    assert!(stderr.contains(&id) && stderr.contains("for `apply`") && stderr.contains(lock["who"].as_str().unwrap()), "{stderr}");
    assert!(stderr.contains(&lock["when"].as_str().unwrap()[..16]), "{stderr}");

    Command::new("kill").args(["-9", &apply.id().to_string()]).status().unwrap();
    let _ = apply.wait();

    // The holder is gone: the lock is reported stale with the command that releases it.
    let stale = Test::new().current_dir(project).args(["run", "--select", "ok_model"]).run().status(2);
    stale.stderr_contains("a process that is gone").stderr_contains(&format!("orrery state unlock {id}"));
    Test::new().current_dir(project).args(["state", "unlock", &id]).run().status(0);

    // Exactly what did not finish is planned again; nothing in state claims a missing relation.
    let replanned = Test::new()
        .current_dir(project)
        .env("ORRERY_TEST_PASSWORD", PASSWORD)
        .args(["plan", "--detailed-exitcode"])
        .args(select)
        .run()
        .status(2);
    let out = replanned.stdout();
    assert_eq!(lines_with(&out, "create"), ["+ create model.cbproj.slow_model (new)"], "{out}");
    assert!(lines_with(&out, "replace").is_empty() && lines_with(&out, "rebuild").is_empty(), "{out}");
    let state = state_of(project, "cbpipe");
    let db = project.join("cb.duckdb");
    for (id, node) in state["nodes"].as_object().unwrap() {
        if node["resource_type"] != "test" {
            let name = node["relation"]["identifier"].as_str().unwrap();
            assert_eq!(tables(&db, name), [name], "state claims {id}, which does not exist");
        }
    }
    // No plan, state or output holds the profile password.
    for file in ["plan.json", ".orrery/state/cbpipe/dev.json", "target/plan.json"] {
        assert!(!std::fs::read_to_string(project.join(file)).unwrap().contains(PASSWORD), "{file}");
    }
    for text in [planned.stdout(), planned.stderr(), replanned.stdout(), replanned.stderr()] {
        assert!(!text.contains(PASSWORD));
    }
}

#[test]
fn plans_and_state_live_on_an_object_store_and_apply_needs_no_checkout() {
    let (endpoint, python) = crate::callbacks::s3();
    let bucket = format!("orrery-deploy-{}", std::process::id());
    crate::callbacks::boto3(&python, &endpoint, &bucket, "s3.create_bucket(Bucket=bucket)");
    let dir = project_copy("tests/fixtures/projects/callbacks");
    let project = dir.path();
    std::fs::write(
        project.join("orrery.toml"),
        format!(
            r#"[pipeline]
name = "cbpipe"

[state]
backend = "s3://{bucket}/state"
options = {{ endpoint = "{endpoint}", allow_http = "true", region = "us-east-1" }}
"#
        ),
    )
    .unwrap();
    let s3_env = |test: Test| {
        test.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT", &endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
    };
    let plan_url = format!("s3://{bucket}/plans/p1.json");
    s3_env(Test::new()).current_dir(project).args(["plan", "-o", &plan_url, "--select", "ok_model", "ok_child"]).run().status(0);

    // Another machine: no checkout, only the plan's URL.
    let elsewhere = tempfile::tempdir().unwrap();
    s3_env(Test::new()).current_dir(elsewhere.path()).args(["show", &plan_url]).run().status(0);
    s3_env(Test::new()).current_dir(elsewhere.path()).args(["apply", &plan_url]).run().status(0);
    assert_eq!(tables(&project.join("cb.duckdb"), "ok_%"), ["ok_child", "ok_model"]);
    let listing = crate::callbacks::boto3(
        &python,
        &endpoint,
        &bucket,
        "for o in s3.list_objects_v2(Bucket=bucket, Prefix='state/').get('Contents', []): print(o['Key'])",
    );
    assert_eq!(listing.lines().collect::<Vec<_>>(), ["state/cbpipe/dev.json"], "the lock is released after apply");
    let state: Value = serde_json::from_str(&crate::callbacks::boto3(
        &python,
        &endpoint,
        &bucket,
        "sys.stdout.write(s3.get_object(Bucket=bucket, Key='state/cbpipe/dev.json')['Body'].read().decode())",
    ))
    .unwrap();
    assert_eq!(state["serial"], 1);
    assert!(state["nodes"].get("model.cbproj.ok_child").is_some());

    s3_env(Test::new()).current_dir(project).args(["plan", "--detailed-exitcode", "--select", "ok_model", "ok_child"]).run().status(0);
    s3_env(Test::new()).current_dir(elsewhere.path()).args(["apply", &plan_url]).run().status(2).stderr_contains("the plan is stale");

    // A lock held elsewhere stops a run, naming it; `state unlock` releases it.
    crate::callbacks::boto3(
        &python,
        &endpoint,
        &bucket,
        "s3.put_object(Bucket=bucket, Key='state/cbpipe/dev.lock', Body=json.dumps({'id': 'lock-42', 'who': 'ci', \
         'pid': 1, 'host': 'another-host', 'operation': 'apply', 'when': '2026-11-22T08:00:00Z'}).encode())",
    );
    s3_env(Test::new())
        .current_dir(project)
        .args(["run", "--select", "ok_model"])
        .run()
        .status(2)
        .stderr_contains("lock lock-42 held by ci (pid 1 on another-host) for `apply` since 2026-11-22T08:00:00Z");
    s3_env(Test::new()).current_dir(project).args(["state", "unlock", "lock-42"]).run().status(0);
    s3_env(Test::new()).current_dir(project).args(["run", "--select", "ok_model"]).run().status(0);
}
