//! What the scheduler tells the world: task outcomes, events for subscribers, the run report.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a runner replies for one attempt of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success {
        rows_affected: Option<u64>,
        message: Option<String>,
    },
    /// Done, with something the user should see (a test with `severity: warn`); children go on.
    Warn {
        rows_affected: Option<u64>,
        message: String,
    },
    /// Retried while attempts are left; then the task's descendants are skipped.
    Failure {
        message: String,
    },
    /// The runner stopped because its token was cancelled (or for its own reasons).
    Cancelled {
        message: Option<String>,
    },
}

/// A task's final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Warn,
    Error,
    Skipped,
    Cancelled,
}

impl Status {
    /// Whether the task's children may run.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Success | Status::Warn)
    }
}

/// Why a task never ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SkipCause {
    /// An ancestor (`task`, the one that failed or was cancelled) did not succeed.
    Upstream { task: usize },
    /// `fail_fast` stopped the run after `task` failed.
    FailFast { task: usize },
    /// The run was cancelled.
    Cancelled { reason: String },
}

/// A scheduler event. Every task gets exactly one terminal event: `Finished` or `Skipped`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// An attempt begins (every attempt, the first included).
    Started {
        task: usize,
        attempt: u32,
        at: SystemTime,
    },
    /// `attempt` failed with `message`; the next one starts after `delay` unless cancelled.
    Retrying {
        task: usize,
        attempt: u32,
        delay: Duration,
        message: String,
    },
    Finished {
        task: usize,
        status: Status,
        /// The last attempt made (1-based).
        attempt: u32,
        /// From the first attempt's start to the end, backoff included.
        duration: Duration,
        message: Option<String>,
        rows_affected: Option<u64>,
    },
    Skipped {
        task: usize,
        because: SkipCause,
    },
}

impl Event {
    pub fn task(&self) -> usize {
        match self {
            Event::Started { task, .. } | Event::Retrying { task, .. } | Event::Finished { task, .. } | Event::Skipped { task, .. } => {
                *task
            }
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Finished { .. } | Event::Skipped { .. })
    }
}

/// One task's result in the run report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    pub status: Status,
    /// Attempts made; 0 for a skipped task.
    pub attempts: u32,
    pub started_at: Option<SystemTime>,
    pub completed_at: Option<SystemTime>,
    pub duration: Duration,
    pub message: Option<String>,
    pub rows_affected: Option<u64>,
    /// The 0-based worker that ran it (dbt's `Thread-<n+1>`).
    pub worker: Option<usize>,
    pub skipped_because: Option<SkipCause>,
}

impl TaskResult {
    pub(crate) fn skipped(because: SkipCause) -> Self {
        TaskResult {
            status: Status::Skipped,
            attempts: 0,
            started_at: None,
            completed_at: None,
            duration: Duration::ZERO,
            message: None,
            rows_affected: None,
            worker: None,
            skipped_because: Some(because),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub success: usize,
    pub warn: usize,
    pub error: usize,
    pub skipped: usize,
    pub cancelled: usize,
}

/// What `execute` returns: one result per task, in the DAG's order.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub results: Vec<TaskResult>,
    pub started_at: SystemTime,
    pub elapsed: Duration,
    /// The reason, when the run itself was cancelled.
    pub cancelled: Option<String>,
    /// The task whose failure stopped the run under `fail_fast`.
    pub fail_fast: Option<usize>,
}

impl RunReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for result in &self.results {
            *match result.status {
                Status::Success => &mut counts.success,
                Status::Warn => &mut counts.warn,
                Status::Error => &mut counts.error,
                Status::Skipped => &mut counts.skipped,
                Status::Cancelled => &mut counts.cancelled,
            } += 1;
        }
        counts
    }

    /// Every task succeeded (warnings allowed).
    pub fn is_success(&self) -> bool {
        self.results.iter().all(|r| r.status.is_ok())
    }
}
