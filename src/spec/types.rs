//! The typed form of orrery.toml. Doc comments here become the descriptions in
//! `schemas/pipeline.schema.json`, which editors show as help.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spanned::Spanned;

/// An orrery pipeline: a dbt project, a target, execution settings and callbacks.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "orrery pipeline (orrery.toml)")]
pub struct Pipeline {
    /// The pipeline's identity; the only required table.
    pub pipeline: PipelineMeta,
    /// The dbt project this pipeline builds.
    #[serde(default)]
    pub project: ProjectSpec,
    /// Which dbt profile and target to connect with.
    #[serde(default)]
    pub profile: ProfileSpec,
    /// How the executor runs the plan.
    #[serde(default)]
    pub execution: Execution,
    /// Which nodes the pipeline builds, in dbt selector syntax.
    #[serde(default)]
    pub select: Select,
    /// Where run artifacts (target folder, manifest, run results) are copied to.
    #[serde(default)]
    pub artifacts: Artifacts,
    /// Where the applied state is kept.
    #[serde(default)]
    pub state: StateSpec,
    /// Actions fired when nodes (or the whole run) succeed, fail or are cancelled.
    #[serde(default)]
    pub callbacks: Vec<Callback>,
    /// Settings of `orrery export`.
    #[serde(default)]
    pub export: Export,
}

/// `[export]`: how the run plan is handed to other schedulers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// `orrery export airflow`.
    #[serde(default)]
    pub airflow: AirflowExport,
}

/// `[export.airflow]`: the exported Airflow DAG.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AirflowExport {
    /// The DAG's schedule: a cron expression or a preset such as `@daily`. Default: none
    /// (runs are triggered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Airflow `default_args`, e.g. `{ owner = "data", retries = 2 }`.
    #[serde(default)]
    pub default_args: IndexMap<String, serde_json::Value>,
    /// The Airflow pool every task runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Vars bound at run time from Airflow (e.g. `ds`), passed with `--vars`.
    #[serde(default)]
    pub runtime_vars: Vec<String>,
    /// The command tasks run orrery with. Default: `orrery` on the worker's PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orrery: Option<String>,
}

/// `[pipeline]`: the pipeline's identity.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineMeta {
    /// The pipeline's name: lowercase letters, digits and `_` only, e.g. `jaffle_shop`.
    /// Callbacks see it as `pipeline_uuid`.
    #[schemars(regex(pattern = r"^[a-z0-9_]+$"))]
    pub name: String,
    /// A human description of the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `[project]`: the dbt project.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// The dbt project directory, relative to this file's directory.
    #[serde(default = "default_project_path")]
    pub path: PathBuf,
    /// Variables overriding dbt_project.yml's `vars`, as dbt's `--vars`.
    #[serde(default)]
    pub vars: IndexMap<String, serde_json::Value>,
}

impl Default for ProjectSpec {
    fn default() -> Self {
        ProjectSpec { path: default_project_path(), vars: IndexMap::new() }
    }
}

fn default_project_path() -> PathBuf {
    PathBuf::from(".")
}

/// One dbt output (connection) given inline: dbt's profile keys, e.g. `type`, `path`, `schema`.
pub type InlineOutput = IndexMap<String, serde_json::Value>;

/// `[profile]`: the dbt profile and target.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// The folder holding profiles.yml, relative to this file's directory.
    /// Default: the dbt project directory, then `~/.dbt` (as dbt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles_dir: Option<PathBuf>,
    /// The profile name. Default: dbt_project.yml's `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The target (output) name. Default: the profile's `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Outputs given inline, by name: each replaces a profiles.yml output of the same name
    /// entirely. Paths in them are relative to the dbt project directory.
    #[serde(default)]
    pub outputs: IndexMap<String, InlineOutput>,
}

/// `[execution]`: how the executor runs the plan.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// Nodes run at once. Default: the target's `threads`, else the number of cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threads: Option<u32>,
    /// `blocking` runs each statement to completion on a worker; `deferred` submits
    /// statements and polls them, up to `max_in_flight` at once.
    #[serde(default)]
    pub mode: ExecMode,
    /// Deferred mode: statements in flight at once.
    #[serde(default = "default_max_in_flight")]
    #[schemars(range(min = 1))]
    pub max_in_flight: u32,
    /// When tests run: right after the node they test, after all nodes, or not at all.
    #[serde(default)]
    pub test_behavior: TestBehavior,
    /// Stop scheduling new nodes after the first failure.
    #[serde(default)]
    pub fail_fast: bool,
    /// Extra attempts for a failing node.
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry, doubled after each attempt, e.g. `5s`, `1m 30s`.
    #[serde(default = "default_retry_delay", with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub retry_delay: Duration,
    /// Cancel a node that runs longer than this, e.g. `30m`. Default: no limit.
    #[serde(default, with = "opt_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "duration"))]
    pub node_timeout: Option<Duration>,
    /// Rebuild incremental models and seeds from scratch, as dbt's `--full-refresh`.
    #[serde(default)]
    pub full_refresh: bool,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            threads: None,
            mode: ExecMode::default(),
            max_in_flight: default_max_in_flight(),
            test_behavior: TestBehavior::default(),
            fail_fast: false,
            retries: 0,
            retry_delay: default_retry_delay(),
            node_timeout: None,
            full_refresh: false,
        }
    }
}

fn default_max_in_flight() -> u32 {
    64
}

fn default_retry_delay() -> Duration {
    Duration::from_secs(5)
}

/// How statements are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecMode {
    /// Each statement runs to completion on a worker thread.
    #[default]
    Blocking,
    /// Statements are submitted and polled, as Cosmos' deferrable operators.
    Deferred,
}

/// When tests run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestBehavior {
    /// Right after the node they test; a node's children wait for its tests.
    #[default]
    AfterEach,
    /// Once every selected node has been built.
    AfterAll,
    /// Tests are not run.
    None,
}

/// `[select]`: which nodes the pipeline builds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// dbt selectors to build, e.g. `+fct_orders`, `tag:nightly`. Default: everything.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// dbt selectors to leave out, e.g. `path:models/legacy`.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
}

/// Object store options, e.g. `endpoint`, `region`, `allow_http` (all strings).
pub type StoreOptions = IndexMap<String, String>;

/// `[artifacts]`: where run artifacts are copied to.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// An object store URL (a template over the callback context), e.g.
    /// `s3://bucket/orrery/{{ pipeline_uuid }}/{{ target_name }}`. Default: not copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_path: Option<String>,
    /// Object store options, e.g. `endpoint`, `region`, `allow_http` (all strings).
    #[serde(default)]
    pub options: StoreOptions,
}

/// `[state]`: where the applied state is kept.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// `local` (next to the target folder) or an object store URL, e.g. `s3://bucket/state/`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Object store options, as `[artifacts].options`.
    #[serde(default)]
    pub options: StoreOptions,
}

impl Default for StateSpec {
    fn default() -> Self {
        StateSpec { backend: default_backend(), options: IndexMap::new() }
    }
}

fn default_backend() -> String {
    "local".to_string()
}

/// `[[callbacks]]`: an action fired when a node (or the run) ends with one of the `on` events.
/// Exactly one action table: `upload`, `command`, `webhook` or `log`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("unevaluatedProperties" = false))]
pub struct Callback {
    /// The callback's name, unique in the file. Callbacks see it as `block_uuid`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The events that fire it.
    #[schemars(length(min = 1))]
    pub on: Vec<Event>,
    /// `node`: once for each matching node; `pipeline`: once per run.
    #[serde(default)]
    pub scope: Scope,
    /// dbt selectors of the nodes it fires for. Default: every node.
    #[serde(default)]
    pub nodes: Vec<Spanned<String>>,
    /// Add the first `input_limit` rows of each parent's inputs as `__input` (costs a query).
    #[serde(default)]
    pub fetch_inputs: bool,
    /// Rows per input with `fetch_inputs`.
    #[serde(default = "default_input_limit")]
    pub input_limit: u32,
    /// Give up on the action after this long, e.g. `60s`.
    #[serde(default = "default_callback_timeout", with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub timeout: Duration,
    /// A failing required callback fails its parent; a required `success` callback gates
    /// the parent's children.
    #[serde(default)]
    pub required: bool,
    /// What the callback does.
    #[serde(flatten)]
    pub action: Action,
}

fn default_input_limit() -> u32 {
    100
}

fn default_callback_timeout() -> Duration {
    Duration::from_secs(60)
}

/// A node (or run) outcome that fires callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Success,
    Failure,
    Cancelled,
}

/// The spelling the brief uses for a callback's events.
pub type CallbackOn = Event;

/// What a callback fires for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Once for each matching node.
    #[default]
    Node,
    /// Once per run.
    Pipeline,
}

/// A callback's action. Every string in it is a minijinja template over the callback context.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Upload files of the target folder to an object store.
    Upload(Upload),
    /// Run a program (as argv, never through a shell) with the context as JSON on stdin.
    Command(Command),
    /// Send the context to a URL.
    Webhook(Webhook),
    /// Append a line to a file or stderr.
    Log(Log),
}

/// `[callbacks.upload]`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The object prefix, e.g. `s3://bucket/runs/{{ pipeline_uuid }}/{{ execution_partition }}`;
    /// files keep their path under the target folder below it.
    pub to: String,
    /// Globs under the target folder, e.g. `compiled/**`. Default: the whole target folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Upload one `target.tar.gz` instead of the files.
    #[serde(default)]
    pub tarball: bool,
    /// Object store options, as `[artifacts].options`.
    #[serde(default)]
    pub options: StoreOptions,
}

/// `[callbacks.command]`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The program and its arguments, e.g. `["./scripts/alert.sh", "{{ status }}"]`.
    #[schemars(length(min = 1))]
    pub argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: IndexMap<String, String>,
}

/// `[callbacks.webhook]`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL to send the context to.
    pub url: String,
    /// The HTTP method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Extra attempts when the request fails.
    #[serde(default)]
    pub retries: u32,
}

/// An HTTP method for webhooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

/// `[callbacks.log]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// The file to append to, relative to this file's directory. Default: stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The line to write. Default: the context as one JSON line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

/// Durations as humantime strings (`5s`, `1m 30s`).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse(&text).map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::duration::serialize(value, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| crate::duration::parse(&t).map_err(|e| serde::de::Error::custom(format!("invalid duration `{t}`: {e}")))).transpose()
    }
}
