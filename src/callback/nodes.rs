//! Node-scope callbacks as a subscriber to the scheduler: settles each node's event and fires it.
//!
//! With `test_behavior = "after_each"` a model's event waits for its tests: `success` once
//! they all passed (warnings allowed), `failure` naming the first failing test. Tests then
//! fire nothing of their own. With `after_all` and `none`, every node fires for itself.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::{Dispatcher, NodeOutcome};
use crate::exec::plan_run::{Phase, PlanRunner, TestBehavior};
use crate::exec::{CancelToken, Completion, Outcome, Runner, Status, TaskResult};
use crate::node::Relation;
use crate::plan::{PlanNode, RunPlan};
use crate::spec::Event;

/// Wraps a phase's runner: runs tasks through it and fires callbacks as tasks settle.
pub struct NodeHooks<'a> {
    inner: &'a PlanRunner<'a>,
    plan: &'a RunPlan,
    phase: &'a Phase,
    dispatcher: &'a Dispatcher,
    /// A model's tests in this phase (task indexes), with `after_each`; empty otherwise.
    tests_of: Vec<Vec<usize>>,
    /// A test's parents in this phase, with `after_each`.
    parents_of: Vec<Vec<usize>>,
    ids: HashMap<&'a str, usize>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Models that succeeded and wait for their tests.
    waiting: HashMap<usize, Waiting>,
    /// Nodes a required callback failed after they were recorded (through their last test).
    failed: HashMap<usize, String>,
}

struct Waiting {
    remaining: usize,
    outcome: NodeOutcome,
    /// The first test that did not pass: its event and message.
    bad: Option<(Event, String)>,
}

impl<'a> NodeHooks<'a> {
    pub fn new(inner: &'a PlanRunner<'a>, plan: &'a RunPlan, phase: &'a Phase, dispatcher: &'a Dispatcher, behavior: TestBehavior) -> Self {
        let n = phase.nodes.len();
        let mut tests_of = vec![Vec::new(); n];
        let mut parents_of = vec![Vec::new(); n];
        if behavior == TestBehavior::AfterEach {
            let task_of: HashMap<&str, usize> = phase.nodes.iter().enumerate().map(|(t, &i)| (plan.nodes[i].id.as_str(), t)).collect();
            for (t, &i) in phase.nodes.iter().enumerate() {
                let node = &plan.nodes[i];
                if node.resource_type != "test" {
                    continue;
                }
                for parent in &node.depends_on {
                    if let Some(&p) = task_of.get(parent.as_str()) {
                        tests_of[p].push(t);
                        parents_of[t].push(p);
                    }
                }
            }
        }
        let ids = plan.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        NodeHooks { inner, plan, phase, dispatcher, tests_of, parents_of, ids, state: Mutex::new(State::default()) }
    }

    fn node(&self, task: usize) -> &'a PlanNode {
        &self.plan.nodes[self.phase.nodes[task]]
    }

    fn is_folded_test(&self, task: usize) -> bool {
        !self.parents_of[task].is_empty()
    }

    fn outcome(&self, task: usize, result: &TaskResult, event: Event, error: Option<String>) -> NodeOutcome {
        let node = self.node(task);
        NodeOutcome {
            name: node.name.clone(),
            status: event,
            attempt: result.attempts.max(1),
            error,
            started_at: result.started_at.unwrap_or_else(SystemTime::now).into(),
            duration_ms: u64::try_from(result.duration.as_millis()).ok(),
            rows_affected: result.rows_affected,
            relation: (node.resource_type != "test").then(|| node.relation.clone()),
        }
    }

    /// Fires a node's callbacks; the failure of a required one, if any.
    fn fire(&self, task: usize, outcome: &NodeOutcome) -> Option<String> {
        let node = self.node(task);
        if !self.dispatcher.wants(&node.callbacks, outcome.status) {
            return None;
        }
        self.dispatcher.fire_node(&node.id, &node.callbacks, outcome, &|limit| self.inputs(node, limit))
    }

    /// `__input`: the first `limit` rows of each relation the node reads.
    fn inputs(&self, node: &PlanNode, limit: u32) -> Value {
        let mut inputs = Map::new();
        for parent in &node.depends_on {
            let Some(&index) = self.ids.get(parent.as_str()) else { continue };
            let parent = &self.plan.nodes[index];
            if parent.resource_type == "test" || parent.materialized == "ephemeral" {
                continue;
            }
            let relation = Relation::from(&parent.relation).render_dbt(crate::relation::QuotePolicy::default());
            let sql = format!("select * from {relation} limit {limit}");
            let rows = self.inner.with_connection(|conn| conn.query(&sql));
            let value = match rows {
                Ok(Ok(rows)) => Value::Array(
                    rows.rows
                        .into_iter()
                        .map(|row| {
                            let object: Map<String, Value> = rows.columns.iter().map(|(name, _)| name.clone()).zip(row).collect();
                            Value::Object(object)
                        })
                        .collect(),
                ),
                Ok(Err(err)) | Err(err) => Value::String(format!("cannot read {relation}: {}", err.message)),
            };
            inputs.insert(parent.name.clone(), value);
        }
        Value::Object(inputs)
    }

    /// Fires what is still waiting once the phase is over: tests that never ran (skipped for
    /// another parent's failure) leave the model's outcome as it was; after a cancelled run,
    /// a model whose tests were cut off fires `cancelled`.
    pub fn finish(&self, run_cancelled: Option<&str>) {
        let waiting: Vec<(usize, Waiting)> = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mut all: Vec<_> = state.waiting.drain().collect();
            all.sort_by_key(|(task, _)| *task);
            all
        };
        for (task, mut waiting) in waiting {
            match (&waiting.bad, run_cancelled) {
                (Some((event, message)), _) => {
                    waiting.outcome.status = *event;
                    waiting.outcome.error = Some(message.clone());
                }
                (None, Some(reason)) => {
                    waiting.outcome.status = Event::Cancelled;
                    waiting.outcome.error = Some(format!("its tests did not run: {reason}"));
                }
                (None, None) => {}
            }
            if let Some(message) = self.fire(task, &waiting.outcome)
                && waiting.outcome.status == Event::Success
            {
                self.state.lock().unwrap_or_else(PoisonError::into_inner).failed.insert(task, message);
            }
        }
    }

    /// Tasks a required callback failed after the task itself was recorded: task → message.
    pub fn failed_late(&self) -> HashMap<usize, String> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).failed.clone()
    }
}

fn event_of(status: Status) -> Option<Event> {
    match status {
        Status::Success | Status::Warn => Some(Event::Success),
        Status::Error => Some(Event::Failure),
        Status::Cancelled => Some(Event::Cancelled),
        Status::Skipped => None,
    }
}

impl Runner for NodeHooks<'_> {
    fn run(&self, task: usize, attempt: u32, cancel: &CancelToken) -> Outcome {
        self.inner.run(task, attempt, cancel)
    }

    fn submit(&self, task: usize, attempt: u32, cancel: &CancelToken, done: Completion) -> Option<Outcome> {
        self.inner.submit(task, attempt, cancel, done)
    }

    fn settle(&self, task: usize, result: &mut TaskResult) {
        let Some(event) = event_of(result.status) else { return };
        if self.is_folded_test(task) {
            self.settle_test(task, result, event);
            return;
        }
        if event == Event::Success && !self.tests_of[task].is_empty() {
            let outcome = self.outcome(task, result, event, None);
            let waiting = Waiting { remaining: self.tests_of[task].len(), outcome, bad: None };
            self.state.lock().unwrap_or_else(PoisonError::into_inner).waiting.insert(task, waiting);
            return;
        }
        let error = (event != Event::Success).then(|| result.message.clone().unwrap_or_else(|| event_name_error(event)));
        let outcome = self.outcome(task, result, event, error);
        if let Some(message) = self.fire(task, &outcome)
            && event == Event::Success
        {
            result.status = Status::Error;
            result.message = Some(message);
        }
    }
}

impl NodeHooks<'_> {
    /// A test's end counts toward each parent waiting for it; the last one fires the parent.
    fn settle_test(&self, task: usize, result: &mut TaskResult, event: Event) {
        let test = self.node(task);
        let mut ready = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for &parent in &self.parents_of[task] {
                let Some(waiting) = state.waiting.get_mut(&parent) else { continue };
                waiting.remaining -= 1;
                if event != Event::Success && waiting.bad.is_none() {
                    let detail = result.message.clone().unwrap_or_default();
                    let verb = if event == Event::Cancelled { "was cancelled" } else { "failed" };
                    waiting.bad = Some((event, format!("test `{}` {verb}: {detail}", test.name)));
                }
                if waiting.remaining == 0
                    && let Some(done) = state.waiting.remove(&parent)
                {
                    ready.push((parent, done));
                }
            }
        }
        for (parent, mut done) in ready {
            if let Some((event, message)) = done.bad.take() {
                done.outcome.status = event;
                done.outcome.error = Some(message);
            }
            if let Some(message) = self.fire(parent, &done.outcome)
                && done.outcome.status == Event::Success
            {
                // The parent is recorded already; its gated children wait on this test.
                self.state.lock().unwrap_or_else(PoisonError::into_inner).failed.insert(parent, message.clone());
                result.status = Status::Error;
                result.message = Some(format!("`{}`: {message}", self.node(parent).name));
            }
        }
    }
}

fn event_name_error(event: Event) -> String {
    match event {
        Event::Cancelled => "cancelled".into(),
        _ => "failed".into(),
    }
}
