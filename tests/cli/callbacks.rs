//! Callbacks end to end: a real `orrery run` on DuckDB fires command callbacks that save the
//! context they got on stdin; the tests read those files field by field.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{LIMIT, Test, Watchdog, output_within, project_copy};

const PROJECT: &str = "tests/fixtures/projects/callbacks";

/// The callback files a run left in out/: `<callback>.<node>.<status>`.
fn fired(project: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(project.join("out")) else { return BTreeSet::new() };
    entries.flatten().filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json").map(str::to_string)).collect()
}

fn context(project: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(project.join("out").join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("callback {name} did not fire: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: stdin was not one JSON object ({e}): {text}"))
}

fn run_results(project: &Path) -> Value {
    let text = std::fs::read_to_string(project.join("target/run_results.json")).expect("run_results.json written");
    serde_json::from_str(&text).expect("run_results.json is JSON")
}

fn result_of<'r>(results: &'r Value, id: &str) -> &'r Value {
    results["results"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["unique_id"] == id))
        .unwrap_or_else(|| panic!("{id} missing from run_results"))
}

fn status_of(results: &Value, id: &str) -> String {
    result_of(results, id)["status"].as_str().unwrap_or_default().to_string()
}

/// dbt's run_results has no `cancelled` status: a cancelled node is an `error` whose message
/// says why.
fn assert_cancelled(results: &Value, id: &str, why: &str) {
    let result = result_of(results, id);
    assert_eq!(result["status"], "error", "{result}");
    let message = result["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{id}: {message:?} does not say {why:?}");
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn success_and_failure_fire_once_each_with_the_full_context_and_never_for_skipped_nodes() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    let ran = Test::new()
        .current_dir(project)
        .args(["run", "--run-id", "manual-run-7", "--event", r#"{"trigger": "test"}"#])
        .args(["--select", "ok_model", "ok_child", "bad_model", "bad_child", "tested_model", "picky_child"])
        .run()
        .status(1);

    assert_eq!(
        fired(project),
        set(&[
            "on_success.ok_model.success",
            "on_success.ok_child.success",
            "on_failure.bad_model.failure",
            "on_failure.picky_child.failure",
            "on_failure.tested_model.failure",
            "pipeline_done.pipeline.failure",
        ]),
        "stderr:\n{}",
        ran.stderr()
    );

    let ok = context(project, "on_success.ok_model.success");
    assert_eq!(ok["block_uuid"], "on_success");
    assert_eq!(ok["parent_block_uuid"], "ok_model");
    assert_eq!(ok["pipeline_uuid"], "cbpipe");
    assert_eq!(ok["run_id"], "manual-run-7");
    assert_eq!(ok["pipeline_run"]["id"], "manual-run-7");
    assert_eq!(ok["pipeline_run"]["pipeline_uuid"], "cbpipe");
    assert_eq!(ok["status"], "success");
    assert_eq!(ok["attempt"], 1);
    assert_eq!(ok["error"], Value::Null);
    assert_eq!(ok["event"], serde_json::json!({ "trigger": "test" }));
    assert_eq!(ok["relation"]["schema"], "main");
    assert_eq!(ok["relation"]["identifier"], "ok_model");
    assert_eq!(ok["relation"]["database"], "cb");
    assert_eq!(ok["target_name"], "dev");
    assert_eq!(ok["target_type"], "duckdb");
    assert_eq!(ok["run_results"], Value::Null);
    assert!(ok.get("__input").is_none(), "no fetch_inputs, no __input");
    assert!(ok["duration_ms"].is_u64());
    let execution_date = ok["execution_date"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(execution_date).expect("RFC 3339 execution_date");
    assert_eq!(ok["ds"], parsed.format("%Y-%m-%d").to_string());
    assert_eq!(ok["hr"], parsed.format("%H").to_string());
    let partition = ok["execution_partition"].as_str().unwrap();
    assert!(partition.starts_with("manual-run-7/") && partition.len() == "manual-run-7/".len() + 15, "{partition}");
    // Every node of the run shares the run's partition and pipeline_run.
    let child = context(project, "on_success.ok_child.success");
    assert_eq!(child["execution_partition"], ok["execution_partition"]);
    assert_eq!(child["pipeline_run"], ok["pipeline_run"]);
    let env = std::fs::read_to_string(project.join("out/on_success.ok_model.success.env")).unwrap();
    assert_eq!(
        env.lines().collect::<Vec<_>>(),
        [
            "ORRERY_CALLBACK=on_success",
            "ORRERY_NODE=ok_model",
            "ORRERY_PIPELINE=cbpipe",
            "ORRERY_RUN_ID=manual-run-7",
            "ORRERY_STATUS=success",
        ]
    );

    // failure fires once, after the last retry.
    let bad = context(project, "on_failure.bad_model.failure");
    assert_eq!(bad["status"], "failure");
    assert_eq!(bad["attempt"], 2);
    assert!(bad["error"].as_str().unwrap().contains("a_table_that_does_not_exist"), "{bad}");
    assert_eq!(bad["__input"], serde_json::json!({}));
    // fetch_inputs: the first input_limit rows of each relation the node reads.
    let picky = context(project, "on_failure.picky_child.failure");
    assert_eq!(picky["__input"], serde_json::json!({ "ok_model": [{ "id": 1, "label": "a" }] }));
    assert!(picky["error"].as_str().unwrap().contains("picky_child refuses"), "{picky}");
    // With after_each a failing test fails its model, named in `error`.
    let tested = context(project, "on_failure.tested_model.failure");
    assert!(tested["error"].as_str().unwrap().contains("test `not_null_tested_model_id` failed"), "{tested}");

    let pipeline = context(project, "pipeline_done.pipeline.failure");
    assert_eq!(pipeline["parent_block_uuid"], Value::Null);
    assert_eq!(pipeline["relation"], Value::Null);
    assert_eq!(pipeline["status"], "failure");
    let counts = &pipeline["run_results"]["counts"];
    // ok_model, ok_child, tested_model and 3 passing or warning tests / bad_model, picky_child, one test / bad_child
    assert_eq!(counts["failure"], 3, "{pipeline}");
    assert_eq!(counts["skipped"], 1, "{pipeline}");
    assert_eq!(counts["cancelled"], 0, "{pipeline}");
    assert!(pipeline["run_results"]["path"].as_str().unwrap().ends_with("run_results.json"));

    let results = run_results(project);
    assert_eq!(status_of(&results, "model.cbproj.bad_child"), "skipped");
    assert_eq!(status_of(&results, "model.cbproj.bad_model"), "error");
    assert_eq!(status_of(&results, "model.cbproj.ok_model"), "success");
}

/// Spawns `orrery run --format json` and waits for the `started` event of `node`.
fn start_and_wait_for(project: &Path, args: &[&str], node: &str) -> (std::process::Child, std::thread::JoinHandle<String>, Watchdog) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orrery"))
        .current_dir(project)
        .args(["--format", "json", "run"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orrery");
    let watchdog = Watchdog::new(child.id(), LIMIT);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let wanted = format!("model.cbproj.{node}");
    loop {
        let line = lines.next().expect("orrery ended before the node started").expect("read stdout");
        let event: Value = serde_json::from_str(&line).unwrap_or_default();
        if event["event"] == "started" && event["node"] == wanted.as_str() {
            break;
        }
    }
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, rest, watchdog)
}

#[test]
fn sigint_interrupts_the_running_query_fires_cancelled_and_exits_130() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    let (mut child, rest, _watchdog) = start_and_wait_for(project, &["--select", "slow_model"], "slow_model");
    // Let the query get going inside DuckDB.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "orrery still running 10 s after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    let latency = sent.elapsed();
    eprintln!("SIGINT to exit: {} ms", latency.as_millis());
    let _ = rest.join();
    assert_eq!(status.code(), Some(130));

    assert_eq!(fired(project), set(&["on_failure.slow_model.cancelled", "pipeline_done.pipeline.cancelled"]));
    let cancelled = context(project, "on_failure.slow_model.cancelled");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["error"].as_str().unwrap().contains("SIGINT"), "{cancelled}");
    assert_eq!(context(project, "pipeline_done.pipeline.cancelled")["run_results"]["counts"]["cancelled"], 1);
    assert_cancelled(&run_results(project), "model.cbproj.slow_model", "SIGINT");
}

#[test]
fn a_node_timeout_cancels_that_node_alone_and_the_run_goes_on() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    let start = Instant::now();
    Test::new().current_dir(project).args(["run", "-p", "orrery_timeout.toml", "--select", "slow_model", "ok_model"]).run().status(1);
    assert!(start.elapsed() < Duration::from_secs(60), "the timeout did not stop the query");
    assert_eq!(fired(project), set(&["on_any.slow_model.cancelled", "on_any.ok_model.success"]),);
    let cancelled = context(project, "on_any.slow_model.cancelled");
    assert!(cancelled["error"].as_str().unwrap().contains("timed out after 1s"), "{cancelled}");
    let results = run_results(project);
    assert_cancelled(&results, "model.cbproj.slow_model", "timed out after 1s");
    assert_eq!(status_of(&results, "model.cbproj.ok_model"), "success");
}

#[test]
fn a_failing_required_callback_fails_its_node_and_skips_the_children() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    std::fs::write(
        project.join("orrery.toml"),
        r#"
[pipeline]
name = "cbpipe"

[execution]
test_behavior = "none"

[[callbacks]]
name = "gate"
on = ["success"]
nodes = ["ok_model"]
required = true
[callbacks.command]
argv = ["sh", "-c", "echo 'gate says no' >&2; exit 3"]

[[callbacks]]
name = "optional"
on = ["success"]
nodes = ["ok_model"]
[callbacks.command]
argv = ["sh", "-c", "exit 4"]
"#,
    )
    .unwrap();
    let ran = Test::new().current_dir(project).args(["run", "--select", "ok_model", "ok_child"]).run().status(1);
    let stderr = ran.stderr();
    assert!(stderr.contains("CALLBACK FAILED gate (success) for model.cbproj.ok_model: `sh` exited 3: gate says no"), "{stderr}");
    assert!(stderr.contains("CALLBACK FAILED optional (success) for model.cbproj.ok_model: `sh` exited 4"), "{stderr}");
    let results = run_results(project);
    assert_eq!(status_of(&results, "model.cbproj.ok_model"), "error");
    assert_eq!(status_of(&results, "model.cbproj.ok_child"), "skipped");
}

#[test]
fn validate_reports_every_bad_callback_setting_with_its_span() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    std::fs::write(
        project.join("orrery.toml"),
        r#"[pipeline]
name = "cbpipe"

[artifacts]
remote_path = "ftp://host/{{ run_id }}"

[[callbacks]]
name = "two_actions"
on = ["success"]
[callbacks.log]
[callbacks.command]
argv = ["true"]

[[callbacks]]
name = "bad_event"
on = ["finished"]
[callbacks.log]

[[callbacks]]
name = "bad_scheme"
on = ["success"]
[callbacks.upload]
to = "ftp://bucket/{{ run_id }}"

[[callbacks]]
name = "bad_template"
on = ["failure"]
[callbacks.log]
line = "{{ status "

[[callbacks]]
name = "unknown_variable"
on = ["failure"]
[callbacks.command]
argv = ["echo", "{{ stauts }}"]
"#,
    )
    .unwrap();
    let ran = Test::new().current_dir(project).args(["validate"]).run().status(2);
    let stderr = ran.stderr();
    for expected in [
        "has two actions",
        "finished",
        "[callbacks.upload] to: unknown object store scheme `ftp://`",
        "[artifacts] remote_path: unknown object store scheme `ftp://`",
        "this template does not parse",
        "`stauts` is not a callback context variable",
        "did you mean `status`?",
        "orrery.toml:5:15",
        "orrery.toml:23:6",
        "orrery.toml:29:8",
        "orrery.toml:35:17",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // Nothing ran: no database, no callback output.
    assert!(!project.join("cb.duckdb").exists());
    assert!(fired(project).is_empty());
}

#[test]
fn secrets_never_reach_contexts_logs_uploads_or_run_results() {
    const PASSWORD: &str = "pw-Zq81-never-show";
    const TOKEN: &str = "tok-Xy77-never-show";
    let dir = project_copy(PROJECT);
    let project = dir.path();
    let uploads = tempfile::tempdir().unwrap();
    std::fs::write(
        project.join("orrery.toml"),
        format!(
            r#"[pipeline]
name = "cbpipe"

[execution]
test_behavior = "none"

[artifacts]
remote_path = "file://{uploads}/artifacts"

[[callbacks]]
name = "leaky"
on = ["success", "failure"]
[callbacks.command]
argv = ["sh", "-c", "echo \"pw=$ORRERY_TEST_PASSWORD token=$DBT_ENV_SECRET_TOKEN\" >&2; exit 1"]

[[callbacks]]
name = "record"
on = ["success", "failure"]
[callbacks.command]
argv = ["./scripts/record.sh", "{{{{ block_uuid }}}}.{{{{ parent_block_uuid }}}}.{{{{ status }}}}"]

[[callbacks]]
name = "log_all"
on = ["success", "failure"]
[callbacks.log]
path = "logs/callbacks.jsonl"

[[callbacks]]
name = "upload_all"
on = ["success", "failure"]
scope = "pipeline"
[callbacks.upload]
to = "file://{uploads}/target"
"#,
            uploads = uploads.path().display()
        ),
    )
    .unwrap();
    let ran = Test::new()
        .current_dir(project)
        .env("ORRERY_TEST_PASSWORD", PASSWORD)
        .env("DBT_ENV_SECRET_TOKEN", TOKEN)
        .args(["run", "--select", "ok_model", "bad_model"])
        .run()
        .status(1);
    // The leak would be here: the callback's stderr is reported.
    assert!(ran.stderr().contains("pw=***** token=*****"), "{}", ran.stderr());
    let json = Test::new()
        .current_dir(project)
        .env("ORRERY_TEST_PASSWORD", PASSWORD)
        .env("DBT_ENV_SECRET_TOKEN", TOKEN)
        .args(["--format", "json", "run", "--select", "ok_model", "bad_model"])
        .run()
        .status(1);
    let mut seen = vec![ran.stdout(), ran.stderr(), json.stdout(), json.stderr()];
    for root in [project, uploads.path()] {
        for file in walk(root) {
            if file.extension().is_some_and(|e| e == "duckdb" || e == "wal") {
                continue;
            }
            seen.push(String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned());
        }
    }
    assert!(project.join("logs/callbacks.jsonl").exists() && project.join("out/record.ok_model.success.json").exists());
    assert!(uploads.path().join("target/run_results.json").exists() && walk(&uploads.path().join("artifacts")).len() > 3);
    for text in &seen {
        assert!(!text.contains(PASSWORD) && !text.contains(TOKEN), "a secret leaked into:\n{text}");
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { files.push(path) }
        }
    }
    files
}

/// moto's S3 server, started by scripts/test.sh, and a Python with boto3 to look inside it.
pub(crate) fn s3() -> (String, String) {
    let endpoint = std::env::var("ORRERY_TEST_S3_ENDPOINT")
        .expect("ORRERY_TEST_S3_ENDPOINT is unset: run the tests with scripts/test.sh, which starts an S3 server");
    let python = std::env::var("ORRERY_TEST_PYTHON").expect("ORRERY_TEST_PYTHON is unset: run scripts/test.sh");
    (endpoint, python)
}

/// Runs boto3 against the test server: `script` gets `s3` (a client) and `bucket`.
pub(crate) fn boto3(python: &str, endpoint: &str, bucket: &str, script: &str) -> String {
    let program = format!(
        "import boto3, json, sys\n\
         s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',\n\
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         bucket = '{bucket}'\n{script}"
    );
    let output = output_within(Command::new(python).args(["-c", &program]), Duration::from_secs(120), "boto3");
    assert!(output.status.success(), "boto3 failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn uploads_reach_s3_and_file_urls_with_the_target_folder_layout() {
    let (endpoint, python) = s3();
    let bucket = format!("orrery-test-{}", std::process::id());
    boto3(&python, &endpoint, &bucket, "s3.create_bucket(Bucket=bucket)");
    let dir = project_copy(PROJECT);
    let project = dir.path();
    let files = tempfile::tempdir().unwrap();
    let options = format!(r#"options = {{ endpoint = "{endpoint}", allow_http = "true", region = "us-east-1" }}"#);
    std::fs::write(
        project.join("orrery.toml"),
        format!(
            r#"[pipeline]
name = "cbpipe"

[artifacts]
remote_path = "s3://{bucket}/artifacts/{{{{ pipeline_uuid }}}}"
{options}

[[callbacks]]
name = "to_s3"
on = ["success"]
scope = "pipeline"
[callbacks.upload]
to = "s3://{bucket}/runs/{{{{ pipeline_uuid }}}}/{{{{ run_id }}}}"
include = ["compiled/**", "run_results.json", "manifest.json"]
{options}

[[callbacks]]
name = "tarball"
on = ["success"]
scope = "pipeline"
[callbacks.upload]
to = "s3://{bucket}/tarballs/{{{{ run_id }}}}"
tarball = true
{options}

[[callbacks]]
name = "to_file"
on = ["success"]
nodes = ["ok_model"]
[callbacks.upload]
to = "file://{files}/{{{{ parent_block_uuid }}}}"
include = ["manifest.json"]
"#,
            files = files.path().display()
        ),
    )
    .unwrap();
    Test::new()
        .current_dir(project)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["run", "--run-id", "r1", "--select", "ok_model"])
        .run()
        .status(0);

    let target = project.join("target");
    let listing = boto3(&python, &endpoint, &bucket, "for o in s3.list_objects_v2(Bucket=bucket).get('Contents', []): print(o['Key'])");
    let keys: BTreeSet<&str> = listing.lines().collect();
    let mut expected = BTreeSet::new();
    for relative in ["run_results.json", "manifest.json", "compiled/cbproj/models/ok_model.sql"] {
        expected.insert(format!("runs/cbpipe/r1/{relative}"));
    }
    for relative in ["run_results.json", "manifest.json", "plan.json", "compiled/cbproj/models/ok_model.sql"] {
        expected.insert(format!("artifacts/cbpipe/runs/r1/{relative}"));
    }
    expected.insert("tarballs/r1/target.tar.gz".into());
    for key in &expected {
        assert!(keys.contains(key.as_str()), "missing s3 key {key} in:\n{listing}");
    }
    assert!(!keys.iter().any(|k| k.starts_with("runs/cbpipe/r1/plan.json")), "include globs were not applied");
    // The bytes are the target folder's.
    for relative in ["run_results.json", "compiled/cbproj/models/ok_model.sql"] {
        let got = boto3(
            &python,
            &endpoint,
            &bucket,
            &format!("sys.stdout.write(s3.get_object(Bucket=bucket, Key='runs/cbpipe/r1/{relative}')['Body'].read().decode())"),
        );
        assert_eq!(got, std::fs::read_to_string(target.join(relative)).unwrap(), "{relative}");
    }
    // The tarball holds the target folder's files at their paths.
    let members = boto3(
        &python,
        &endpoint,
        &bucket,
        "import io, tarfile\n\
         body = s3.get_object(Bucket=bucket, Key='tarballs/r1/target.tar.gz')['Body'].read()\n\
         tar = tarfile.open(fileobj=io.BytesIO(body), mode='r:gz')\n\
         import hashlib\n\
         for m in tar.getmembers(): print(m.name, hashlib.sha256(tar.extractfile(m).read()).hexdigest())",
    );
    for relative in ["manifest.json", "plan.json", "run_results.json", "compiled/cbproj/models/ok_model.sql"] {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(std::fs::read(target.join(relative)).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(members.lines().any(|l| l == format!("{relative} {hex}")), "{relative} ({hex}) not in the tarball:\n{members}");
    }
    // file:// keeps the path under the target folder below the rendered prefix.
    let copied = std::fs::read(files.path().join("ok_model/manifest.json")).expect("file:// upload");
    assert_eq!(copied, std::fs::read(target.join("manifest.json")).unwrap());
    // `compile` copies its artifacts under compile/.
    Test::new()
        .current_dir(project)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["compile", "--select", "ok_model"])
        .run()
        .status(0);
    let compiled = boto3(
        &python,
        &endpoint,
        &bucket,
        "sys.stdout.write(s3.get_object(Bucket=bucket, Key='artifacts/cbpipe/compile/plan.json')['Body'].read().decode())",
    );
    assert_eq!(compiled, std::fs::read_to_string(target.join("plan.json")).unwrap());
}

/// A loopback HTTP server answering each request with the next status of `statuses`;
/// returns its URL and the requests it got (head and body). It gives up waiting after `limit`
/// (a callback that never calls fails its test on the count, not by hanging it).
fn http_server(statuses: &'static [u16], limit: Duration) -> (String, std::thread::JoinHandle<Vec<(String, String)>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut requests = Vec::new();
        for &status in statuses {
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return requests,
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let Ok(n) = stream.read(&mut chunk) else { return requests };
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break (head.to_string(), body.to_string());
                    }
                } else if n == 0 {
                    return requests;
                }
            };
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(reply.as_bytes()).unwrap();
            requests.push((head, body));
        }
        requests
    });
    (url, handle)
}

#[test]
fn the_webhook_server_gives_up_when_no_request_comes() {
    // Before, it blocked in accept() forever, and so did the test that joined it.
    let started = Instant::now();
    let (_url, server) = http_server(&[200], Duration::from_millis(300));
    assert!(server.join().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_run_that_hangs_fails_its_test_within_its_limit() {
    let dir = project_copy(PROJECT);
    let project = dir.path();
    std::fs::write(
        project.join("orrery.toml"),
        "[pipeline]\nname = \"cbpipe\"\n\n[[callbacks]]\nname = \"stuck\"\non = [\"success\"]\nscope = \"pipeline\"\ntimeout = \"10m\"\n[callbacks.command]\nargv = [\"sleep\", \"600\"]\n",
    )
    .unwrap();
    let started = Instant::now();
    let hung = std::panic::catch_unwind(|| {
        Test::new().current_dir(project).args(["run", "--select", "ok_model"]).limit(Duration::from_secs(3)).run();
    });
    let message = hung.expect_err("the harness let a hung run go on").downcast::<String>().map(|m| *m).unwrap_or_default();
    assert!(message.contains("did not finish within 3 s and was killed"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(30), "killed only after {:?}", started.elapsed());
}

#[test]
fn a_webhook_posts_the_context_with_its_headers_and_retries() {
    let (url, server) = http_server(&[503, 200], Duration::from_secs(60));
    let dir = project_copy(PROJECT);
    let project = dir.path();
    std::fs::write(
        project.join("orrery.toml"),
        format!(
            r#"[pipeline]
name = "cbpipe"

[[callbacks]]
name = "hook"
on = ["success"]
scope = "pipeline"
[callbacks.webhook]
url = "{url}"
headers = {{ X-Run = "{{{{ run_id }}}}" }}
retries = 2
"#
        ),
    )
    .unwrap();
    let ran = Test::new().current_dir(project).args(["run", "--run-id", "hooked", "--select", "ok_model"]).run().status(0);
    let requests = server.join().unwrap();
    assert_eq!(requests.len(), 2, "one failed attempt, one retry");
    let (head, body) = &requests[1];
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-run: hooked"), "{head}");
    let context: Value = serde_json::from_str(body).unwrap();
    assert_eq!(context["block_uuid"], "hook");
    assert_eq!(context["status"], "success");
    assert_eq!(context["run_results"]["counts"]["success"], 3);
    assert!(ran.stderr().contains("CALLBACK hook (success) for the pipeline: POST"), "{}", ran.stderr());
}
