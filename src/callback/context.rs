//! The callback context of DESIGN.md (Mage's callback keyword arguments), built once per event.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::plan::PlanRelation;

/// The context's top-level names; a template using any other is rejected by `validate`.
pub const CONTEXT_KEYS: &[&str] = &[
    "block_uuid",
    "parent_block_uuid",
    "pipeline_uuid",
    "run_id",
    "pipeline_run",
    "execution_date",
    "ds",
    "hr",
    "execution_partition",
    "event",
    "status",
    "attempt",
    "error",
    "duration_ms",
    "rows_affected",
    "relation",
    "target_name",
    "target_type",
    "run_results",
    "__input",
];

/// What every event of one run shares.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: String,
    pub pipeline: String,
    pub started_at: DateTime<Utc>,
    /// `--event`, else `{}`.
    pub event: Value,
    pub target_name: String,
    pub target_type: String,
    /// Where commands run and relative log paths start: the pipeline file's directory.
    pub workdir: PathBuf,
    /// The dbt target folder uploads read from.
    pub target_dir: PathBuf,
}

/// A new run id: `YYYYMMDDTHHMMSSZ-xxxxxxxx`.
pub fn new_run_id(at: DateTime<Utc>) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &random[..8])
}

impl RunInfo {
    /// `<run_id>/<run start as YYYYMMDDTHHMMSS>`: the same for every node of a run.
    pub fn execution_partition(&self) -> String {
        format!("{}/{}", self.run_id, self.started_at.format("%Y%m%dT%H%M%S"))
    }

    /// The context of the run itself (pipeline scope, `[artifacts].remote_path`).
    pub fn run_context(&self) -> Value {
        let mut context = self.base(self.started_at);
        context.insert("status".into(), Value::Null);
        Value::Object(context)
    }

    fn base(&self, execution_date: DateTime<Utc>) -> Map<String, Value> {
        let mut map = Map::new();
        let run_date = rfc3339(self.started_at);
        map.insert("block_uuid".into(), Value::Null);
        map.insert("parent_block_uuid".into(), Value::Null);
        map.insert("pipeline_uuid".into(), self.pipeline.clone().into());
        map.insert("run_id".into(), self.run_id.clone().into());
        map.insert("pipeline_run".into(), json!({ "id": self.run_id, "pipeline_uuid": self.pipeline, "execution_date": run_date }));
        map.insert("execution_date".into(), rfc3339(execution_date).into());
        map.insert("ds".into(), execution_date.format("%Y-%m-%d").to_string().into());
        map.insert("hr".into(), execution_date.format("%H").to_string().into());
        map.insert("execution_partition".into(), self.execution_partition().into());
        map.insert("event".into(), self.event.clone());
        map.insert("status".into(), Value::Null);
        map.insert("attempt".into(), Value::Null);
        map.insert("error".into(), Value::Null);
        map.insert("duration_ms".into(), Value::Null);
        map.insert("rows_affected".into(), Value::Null);
        map.insert("relation".into(), Value::Null);
        map.insert("target_name".into(), self.target_name.clone().into());
        map.insert("target_type".into(), self.target_type.clone().into());
        map.insert("run_results".into(), Value::Null);
        map
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A node's outcome as callbacks see it.
#[derive(Clone, Debug)]
pub struct NodeOutcome {
    pub name: String,
    pub status: crate::spec::Event,
    pub attempt: u32,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: Option<u64>,
    pub rows_affected: Option<u64>,
    pub relation: Option<PlanRelation>,
}

/// The run's outcome for pipeline-scope callbacks.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub status: crate::spec::Event,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// Where run_results.json was written.
    pub run_results_path: String,
    pub counts: RunCounts,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RunCounts {
    pub success: usize,
    pub failure: usize,
    pub skipped: usize,
    pub cancelled: usize,
}

pub fn event_name(event: crate::spec::Event) -> &'static str {
    match event {
        crate::spec::Event::Success => "success",
        crate::spec::Event::Failure => "failure",
        crate::spec::Event::Cancelled => "cancelled",
    }
}

impl RunInfo {
    /// A node event's context (without `block_uuid`, set per callback).
    pub fn node_context(&self, node: &NodeOutcome) -> Map<String, Value> {
        let mut map = self.base(node.started_at);
        map.insert("parent_block_uuid".into(), node.name.clone().into());
        map.insert("status".into(), event_name(node.status).into());
        map.insert("attempt".into(), node.attempt.into());
        map.insert("error".into(), node.error.clone().map(|e| crate::secrets::scrub(&e)).into());
        map.insert("duration_ms".into(), node.duration_ms.into());
        map.insert("rows_affected".into(), node.rows_affected.into());
        if let Some(relation) = &node.relation {
            map.insert(
                "relation".into(),
                json!({ "database": relation.database, "schema": relation.schema, "identifier": relation.identifier }),
            );
        }
        map
    }

    /// The run's context for pipeline-scope callbacks.
    pub fn pipeline_context(&self, run: &RunOutcome) -> Map<String, Value> {
        let mut map = self.base(self.started_at);
        map.insert("status".into(), event_name(run.status).into());
        map.insert("attempt".into(), 1.into());
        map.insert("error".into(), run.error.clone().map(|e| crate::secrets::scrub(&e)).into());
        map.insert("duration_ms".into(), run.duration_ms.into());
        map.insert("run_results".into(), json!({ "path": run.run_results_path, "counts": run.counts }));
        map
    }
}
