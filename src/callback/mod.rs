//! Callbacks: which fire for an event, with what context, and their four actions.
//!
//! Node-scope callbacks fire from the worker that settles a node, before its children are
//! released, so a `required` one can fail its parent and gate its children; the others run on
//! a small pool of their own and never hold a worker. The dispatcher remembers what fired, so
//! no callback fires twice for one event, and `wait` lets every one finish or time out.

pub mod action;
pub mod context;
mod nodes;
pub mod template;

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

pub use context::{NodeOutcome, RunCounts, RunInfo, RunOutcome, event_name, new_run_id};
pub use nodes::NodeHooks;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::spec::{Action, Callback, Event, Scope};

/// What one callback firing did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub callback: String,
    /// The node's unique id; `None` for pipeline scope.
    pub node: Option<String>,
    #[serde(serialize_with = "serialize_event")]
    pub event: Event,
    pub required: bool,
    pub ok: bool,
    /// What it did, or why it failed (secrets scrubbed).
    pub message: String,
    pub elapsed_ms: u64,
}

fn serialize_event<S: serde::Serializer>(event: &Event, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(event_name(*event))
}

type ReportSink = Box<dyn Fn(&Report) + Send + Sync>;

/// Fires a run's callbacks.
pub struct Dispatcher {
    callbacks: Vec<Callback>,
    run: RunInfo,
    fired: Mutex<HashSet<(usize, String, Event)>>,
    background: rayon::ThreadPool,
    pending: Arc<(Mutex<usize>, Condvar)>,
    reports: Arc<Mutex<Vec<Report>>>,
    sink: Arc<ReportSink>,
}

impl Dispatcher {
    /// The callbacks a plan carries (its `callbacks`, as orrery.toml wrote them).
    pub fn from_plan(callbacks: &[Value], run: RunInfo, sink: ReportSink) -> Result<Dispatcher, Diagnostics> {
        let mut parsed = Vec::with_capacity(callbacks.len());
        let mut problems = Diagnostics::new();
        for (i, value) in callbacks.iter().enumerate() {
            match serde_json::from_value::<Callback>(value.clone()) {
                Ok(callback) => parsed.push(callback),
                Err(err) => problems.push(
                    Diagnostic::error(crate::codes::callback::INVALID, format!("the plan's callback #{} is invalid: {err}", i + 1))
                        .with_help("compile the plan again with this orrery"),
                ),
            }
        }
        problems.into_result()?;
        let background =
            rayon::ThreadPoolBuilder::new().num_threads(4).thread_name(|i| format!("orrery-callback-{i}")).build().map_err(|e| {
                Diagnostics::from(Diagnostic::error(crate::codes::callback::POOL, format!("cannot start callback threads: {e}")))
            })?;
        Ok(Dispatcher {
            callbacks: parsed,
            run,
            fired: Mutex::new(HashSet::new()),
            background,
            pending: Arc::new((Mutex::new(0), Condvar::new())),
            reports: Arc::new(Mutex::new(Vec::new())),
            sink: Arc::new(sink),
        })
    }

    pub fn run(&self) -> &RunInfo {
        &self.run
    }

    pub fn is_empty(&self) -> bool {
        self.callbacks.is_empty()
    }

    /// Whether any node-scope callback named in `names` fires for `event`.
    pub fn wants(&self, names: &[String], event: Event) -> bool {
        self.callbacks.iter().any(|c| c.scope == Scope::Node && c.on.contains(&event) && names.contains(&c.name))
    }

    /// Fires the node-scope callbacks in `names` that listen for the node's event. `inputs`
    /// gives a callback's `__input` (called only for `fetch_inputs`, with its `input_limit`).
    /// Returns the failure of a required callback, if one failed.
    pub fn fire_node(&self, node_id: &str, names: &[String], outcome: &NodeOutcome, inputs: &dyn Fn(u32) -> Value) -> Option<String> {
        let chosen: Vec<usize> = (0..self.callbacks.len())
            .filter(|&i| {
                let c = &self.callbacks[i];
                c.scope == Scope::Node && c.on.contains(&outcome.status) && names.contains(&c.name)
            })
            .collect();
        if chosen.is_empty() {
            return None;
        }
        let base = self.run.node_context(outcome);
        self.fire(&chosen, Some(node_id), outcome.status, base, inputs)
    }

    /// Fires the pipeline-scope callbacks for the run's outcome; returns a required failure.
    pub fn fire_pipeline(&self, run: &RunOutcome) -> Option<String> {
        let chosen: Vec<usize> = (0..self.callbacks.len())
            .filter(|&i| self.callbacks[i].scope == Scope::Pipeline && self.callbacks[i].on.contains(&run.status))
            .collect();
        if chosen.is_empty() {
            return None;
        }
        let base = self.run.pipeline_context(run);
        self.fire(&chosen, None, run.status, base, &|_| Value::Object(Map::new()))
    }

    fn fire(
        &self,
        chosen: &[usize],
        node_id: Option<&str>,
        event: Event,
        base: Map<String, Value>,
        inputs: &dyn Fn(u32) -> Value,
    ) -> Option<String> {
        let mut required_failure = None;
        let mut input_cache: Vec<(u32, Value)> = Vec::new();
        for &index in chosen {
            let key = (index, node_id.unwrap_or("").to_string(), event);
            if !self.fired.lock().unwrap_or_else(PoisonError::into_inner).insert(key) {
                continue;
            }
            let callback = &self.callbacks[index];
            let mut context = base.clone();
            context.insert("block_uuid".into(), callback.name.clone().into());
            if callback.fetch_inputs {
                let limit = callback.input_limit;
                let rows = match input_cache.iter().find(|(l, _)| *l == limit) {
                    Some((_, rows)) => rows.clone(),
                    None => {
                        let rows = inputs(limit);
                        input_cache.push((limit, rows.clone()));
                        rows
                    }
                };
                context.insert("__input".into(), rows);
            }
            let mut context = Value::Object(context);
            crate::secrets::scrub_json(&mut context);
            let job = Job {
                callback: callback.clone(),
                node: node_id.map(str::to_string),
                event,
                context,
                run: self.run.clone(),
                reports: self.reports.clone(),
                sink: self.sink.clone(),
            };
            if callback.required {
                let report = job.run();
                if !report.ok {
                    required_failure.get_or_insert(format!("required callback `{}` failed: {}", report.callback, report.message));
                }
            } else {
                let pending = self.pending.clone();
                *pending.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                self.background.spawn(move || {
                    job.run();
                    let mut count = pending.0.lock().unwrap_or_else(PoisonError::into_inner);
                    *count -= 1;
                    pending.1.notify_all();
                });
            }
        }
        required_failure
    }

    /// Waits for every background callback (each bounded by its own timeout).
    pub fn wait(&self) {
        let (lock, done) = &*self.pending;
        let mut count = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            count = done.wait(count).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Every report so far, in the order the callbacks finished.
    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// One callback firing, movable to a background thread.
struct Job {
    callback: Callback,
    node: Option<String>,
    event: Event,
    context: Value,
    run: RunInfo,
    reports: Arc<Mutex<Vec<Report>>>,
    sink: Arc<ReportSink>,
}

impl Job {
    fn run(self) -> Report {
        let start = Instant::now();
        let timeout = self.callback.timeout.max(Duration::from_millis(1));
        let result = match &self.callback.action {
            Action::Upload(upload) => action::upload(upload, &self.context, &self.run, timeout),
            Action::Command(command) => action::command(command, &self.callback.name, &self.context, &self.run, timeout),
            Action::Webhook(webhook) => action::webhook(webhook, &self.context, timeout),
            Action::Log(log) => action::log(log, &self.context, &self.run),
        };
        let (ok, message) = match result {
            Ok(message) => (true, message),
            Err(message) => (false, message),
        };
        let report = Report {
            callback: self.callback.name.clone(),
            node: self.node,
            event: self.event,
            required: self.callback.required,
            ok,
            message: crate::secrets::scrub(&message),
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        (self.sink)(&report);
        self.reports.lock().unwrap_or_else(PoisonError::into_inner).push(report.clone());
        report
    }
}
