//! target/run_results.json in dbt's v6 format, from a neutral per-node record, so that the
//! executor and the CLI need not share plan types with this writer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::diagnostics::Diagnostic;

pub const SCHEMA_VERSION: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";
/// The dbt release whose run_results.json we reproduce; readers check it as a version number.
pub const DBT_VERSION: &str = "1.11.0";

/// A node's final state, as orrery knows it; mapped to dbt's words per resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    Success,
    Warn,
    /// A test whose query returned failing rows.
    Fail,
    Error,
    Skipped,
    /// dbt has no such status: written as `error`, with the reason in `message`.
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
}

/// One node's result.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeResult {
    /// dbt's unique_id, e.g. `model.shop.orders`.
    pub unique_id: String,
    /// `model`, `seed`, `snapshot`, `test`…
    pub resource_type: String,
    pub status: NodeStatus,
    /// The 0-based worker that ran it, written `Thread-<n+1> (worker)`.
    pub thread: Option<usize>,
    pub compile: Option<Timing>,
    pub execute: Option<Timing>,
    pub execution_time: Duration,
    /// dbt's `message`: e.g. `OK`, `INSERT 2`, `Got 1 result, configured to warn if != 0`.
    pub message: Option<String>,
    /// The adapter's own status line (`adapter_response._message`), e.g. `OK`.
    pub adapter_message: Option<String>,
    /// `adapter_response.code`, e.g. `INSERT`.
    pub adapter_code: Option<String>,
    pub rows_affected: Option<u64>,
    /// Tests: the number of failing rows.
    pub failures: Option<u64>,
    pub compiled_code: Option<String>,
    /// The quoted relation, e.g. `"db"."main"."orders"`.
    pub relation_name: Option<String>,
}

/// The run as a whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub invocation_id: String,
    pub started_at: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub elapsed: Duration,
    /// The command's arguments as dbt lists them (`which`, `select`, `threads`…).
    pub args: Value,
    /// `DBT_ENV_CUSTOM_ENV_*` variables without the prefix (see [`custom_env`]).
    pub env: BTreeMap<String, String>,
}

/// The `DBT_ENV_CUSTOM_ENV_` variables dbt copies into artifact metadata, prefix removed.
pub fn custom_env() -> BTreeMap<String, String> {
    std::env::vars().filter_map(|(key, value)| key.strip_prefix("DBT_ENV_CUSTOM_ENV_").map(|k| (k.to_string(), value))).collect()
}

/// The run_results.json document.
pub fn to_json(invocation: &Invocation, results: &[NodeResult]) -> Value {
    json!({
        "metadata": {
            "dbt_schema_version": SCHEMA_VERSION,
            "dbt_version": DBT_VERSION,
            "generated_at": timestamp(invocation.generated_at),
            "invocation_id": invocation.invocation_id,
            "invocation_started_at": timestamp(invocation.started_at),
            "env": invocation.env,
        },
        "results": results.iter().map(result_json).collect::<Vec<_>>(),
        "elapsed_time": invocation.elapsed.as_secs_f64(),
        "args": invocation.args,
    })
}

/// Writes run_results.json atomically: a temporary file in the same folder, then a rename.
pub fn write(path: &Path, invocation: &Invocation, results: &[NodeResult]) -> Result<(), Box<Diagnostic>> {
    write_value(path, &to_json(invocation, results))
}

/// Adds one task's results to the run_results of the same scheduled run (`run --node
/// --run-id`): results of other nodes stay, this run's nodes are replaced, and a file of
/// another run is started over. A lock file beside it serialises parallel tasks.
pub fn merge(path: &Path, run_id: &str, invocation: &Invocation, results: &[NodeResult]) -> Result<(), Box<Diagnostic>> {
    let lock_path = path.with_extension("json.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let _lock = loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock_path) {
            Ok(file) => break LockFile(lock_path.clone(), file),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => {
                return Err(Box::new(
                    Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot lock {}: {err}", lock_path.display()))
                        .with_help("remove the .lock file if no orrery task is running"),
                ));
            }
        }
    };
    let mut merged = to_json(invocation, results);
    let previous: Option<Value> = std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(previous) = previous.filter(|p| p["args"]["run_id"] == run_id) {
        let ours: std::collections::HashSet<&str> = results.iter().map(|r| r.unique_id.as_str()).collect();
        let kept = previous["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !ours.contains(r["unique_id"].as_str().unwrap_or_default()))
            .cloned();
        let mine = merged["results"].as_array().cloned().unwrap_or_default();
        merged["results"] = Value::Array(kept.chain(mine).collect());
        merged["metadata"]["invocation_id"] = previous["metadata"]["invocation_id"].clone();
        merged["metadata"]["invocation_started_at"] = previous["metadata"]["invocation_started_at"].clone();
        let elapsed = previous["elapsed_time"].as_f64().unwrap_or(0.0) + invocation.elapsed.as_secs_f64();
        merged["elapsed_time"] = elapsed.into();
    }
    write_value(path, &merged)
}

struct LockFile(std::path::PathBuf, #[allow(dead_code)] std::fs::File);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_value(path: &Path, value: &Value) -> Result<(), Box<Diagnostic>> {
    let fail = |err: &dyn std::fmt::Display| {
        Box::new(
            Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot write {}: {err}", path.display()))
                .with_help("check that the target folder is writable"),
        )
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    // A new file renamed over the old one. Streamed in blocks: serde_json's own writer on the
    // bare file made a system call per token (about 220,000 `write` calls at 1k models).
    crate::replace::write(path, None, |file| crate::json::to_writer(file, value).map_err(std::io::Error::from)).map_err(|e| fail(&e))
}

fn result_json(node: &NodeResult) -> Value {
    let is_test = matches!(node.resource_type.as_str(), "test" | "unit_test");
    let is_seed = node.resource_type == "seed";
    let skipped = node.status == NodeStatus::Skipped;
    let status = match (node.status, is_test) {
        (NodeStatus::Success, true) => "pass",
        (NodeStatus::Success | NodeStatus::Warn, false) => "success",
        (NodeStatus::Warn, true) => "warn",
        (NodeStatus::Fail, true) => "fail",
        (NodeStatus::Fail | NodeStatus::Error | NodeStatus::Cancelled, _) => "error",
        (NodeStatus::Skipped, _) => "skipped",
    };
    let timing: Vec<Value> = [("compile", node.compile), ("execute", node.execute)]
        .into_iter()
        .filter_map(|(name, t)| {
            t.map(|t| json!({"name": name, "started_at": timestamp(t.started_at), "completed_at": timestamp(t.completed_at)}))
        })
        .collect();
    // dbt reports the adapter's response only for nodes that ran to the end.
    let mut adapter_response = Map::new();
    if matches!(node.status, NodeStatus::Success | NodeStatus::Warn | NodeStatus::Fail) {
        if let Some(message) = &node.adapter_message {
            adapter_response.insert("_message".into(), json!(message));
        }
        if let Some(code) = &node.adapter_code {
            adapter_response.insert("code".into(), json!(code));
        }
        if let Some(rows) = node.rows_affected {
            adapter_response.insert("rows_affected".into(), json!(rows));
        }
    }
    let execution_time = if node.execution_time.is_zero() { json!(0) } else { json!(node.execution_time.as_secs_f64()) };
    json!({
        "status": status,
        "timing": timing,
        "thread_id": node.thread.map_or_else(|| "main".to_string(), |t| format!("Thread-{} (worker)", t + 1)),
        "execution_time": execution_time,
        "adapter_response": adapter_response,
        "message": node.message,
        "failures": node.failures,
        "unique_id": node.unique_id,
        // As dbt: seeds carry neither compiled code nor a relation name here; skipped nodes
        // were not compiled.
        "compiled": if is_seed { Value::Null } else { json!(!skipped) },
        "compiled_code": if is_seed || skipped { None } else { node.compiled_code.as_deref() },
        "relation_name": if is_seed { None } else { node.relation_name.as_deref() },
        "batch_results": Value::Null,
    })
}

/// dbt's timestamps: UTC, microseconds, a `Z`.
fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_795_000_000_000_000 + micros).expect("in range")
    }

    fn node(unique_id: &str, resource_type: &str, status: NodeStatus) -> NodeResult {
        let ran = status != NodeStatus::Skipped;
        NodeResult {
            unique_id: unique_id.into(),
            resource_type: resource_type.into(),
            status,
            thread: ran.then_some(1),
            compile: ran.then(|| Timing { started_at: at(0), completed_at: at(10) }),
            execute: ran.then(|| Timing { started_at: at(20), completed_at: at(125_020) }),
            execution_time: if ran { Duration::from_micros(125_020) } else { Duration::ZERO },
            message: None,
            adapter_message: Some("OK".into()),
            adapter_code: None,
            rows_affected: None,
            failures: None,
            compiled_code: Some("select 1".into()),
            // dbt names no relation for a test (without store_failures).
            relation_name: (resource_type != "test").then(|| r#""db"."main"."x""#.into()),
        }
    }

    fn sample() -> (Invocation, Vec<NodeResult>) {
        let invocation = Invocation {
            invocation_id: "6f0c2a1e-0000-4000-8000-000000000000".into(),
            started_at: at(0),
            generated_at: at(2_500_000),
            elapsed: Duration::from_millis(2500),
            args: json!({"which": "build", "threads": 4}),
            env: BTreeMap::from([("TEAM".to_string(), "data".to_string())]),
        };
        let results = vec![
            NodeResult {
                message: Some("INSERT 2".into()),
                adapter_message: Some("INSERT 2".into()),
                adapter_code: Some("INSERT".into()),
                rows_affected: Some(2),
                ..node("seed.shop.people", "seed", NodeStatus::Success)
            },
            NodeResult { message: Some("OK".into()), ..node("model.shop.orders", "model", NodeStatus::Success) },
            NodeResult {
                message: Some("Catalog Error: Table with name nope does not exist!".into()),
                ..node("model.shop.bad", "model", NodeStatus::Error)
            },
            node("model.shop.after_bad", "model", NodeStatus::Skipped),
            NodeResult {
                message: Some("cancelled: timed out after 30m".into()),
                ..node("model.shop.slow", "model", NodeStatus::Cancelled)
            },
            NodeResult { failures: Some(0), ..node("test.shop.unique_orders_id.1a2b3c", "test", NodeStatus::Success) },
            NodeResult {
                failures: Some(1),
                message: Some("Got 1 result, configured to warn if != 0".into()),
                ..node("test.shop.accepted_values_x.4d5e6f", "test", NodeStatus::Warn)
            },
            NodeResult {
                failures: Some(3),
                message: Some("Got 3 results, configured to fail if != 0".into()),
                ..node("test.shop.not_null_x.7a8b9c", "test", NodeStatus::Fail)
            },
        ];
        (invocation, results)
    }

    #[test]
    fn writes_dbt_v6_run_results() {
        let (invocation, results) = sample();
        insta::assert_json_snapshot!(to_json(&invocation, &results));
    }

    #[test]
    fn has_the_fields_of_a_dbt_1_11_run_results_file_in_order() {
        // Key order of `dbt build` with dbt-core 1.11.16 and dbt-duckdb 1.11.1.
        let (invocation, results) = sample();
        let doc = to_json(&invocation, &results);
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&doc), ["metadata", "results", "elapsed_time", "args"]);
        assert_eq!(
            keys(&doc["metadata"]),
            ["dbt_schema_version", "dbt_version", "generated_at", "invocation_id", "invocation_started_at", "env"]
        );
        for result in doc["results"].as_array().into_iter().flatten() {
            assert_eq!(
                keys(result),
                [
                    "status",
                    "timing",
                    "thread_id",
                    "execution_time",
                    "adapter_response",
                    "message",
                    "failures",
                    "unique_id",
                    "compiled",
                    "compiled_code",
                    "relation_name",
                    "batch_results"
                ]
            );
        }
    }

    #[test]
    fn write_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("target/run_results.json");
        let (invocation, results) = sample();
        write(&path, &invocation, &results[..1]).expect("first write");
        write(&path, &invocation, &results).expect("second write");
        let text = std::fs::read_to_string(&path).expect("written");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["results"].as_array().map(Vec::len), Some(results.len()));
        let leftovers = std::fs::read_dir(path.parent().expect("parent")).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
