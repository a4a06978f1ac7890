//! The walker: workers pull the ready task with the longest remaining path, run it through the
//! `Runner`, and release its children or skip its descendants.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;

use super::cancel::CancelToken;
use super::dag::Dag;
use super::event::{Event, Outcome, RunReport, SkipCause, Status, TaskResult};
use crate::diagnostics::Diagnostic;

/// How a run goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Workers; 0 counts as 1.
    pub threads: usize,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Wait before the first retry, doubled after each attempt.
    pub retry_delay: Duration,
    /// Limit for one attempt; on expiry the task's token is cancelled and the task ends Cancelled.
    pub node_timeout: Option<Duration>,
    /// Stop at the first error or timeout: cancel the running tasks, skip the rest.
    pub fail_fast: bool,
    /// Deferred mode: tasks are submitted through [`Runner::submit`], and up to this many wait
    /// for their warehouse at once without holding a worker. `None`: blocking mode.
    pub max_in_flight: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            retries: 0,
            retry_delay: Duration::from_secs(5),
            node_timeout: None,
            fail_fast: false,
            max_in_flight: None,
        }
    }
}

/// Does the work of one task; the scheduler knows nothing else about it.
pub trait Runner: Sync {
    /// Runs `attempt` (1-based) of `task`. Long work should watch `cancel` or register an
    /// interrupt with `cancel.on_cancel`; a failure after cancellation is reported as cancelled.
    fn run(&self, task: usize, attempt: u32, cancel: &CancelToken) -> Outcome;

    /// Called once with a task's final result (after its last attempt), on its worker and
    /// before its children are released: a subscriber that must gate them (a required
    /// callback) may turn the result into a failure here.
    fn settle(&self, task: usize, result: &mut TaskResult) {
        let _ = (task, result);
    }

    /// Deferred mode: starts `attempt` of `task` and returns `None` when its work goes on in
    /// the background, `done` then being called exactly once with the outcome (from any
    /// thread; the scheduler picks it up on a worker). The default runs it here and now.
    fn submit(&self, task: usize, attempt: u32, cancel: &CancelToken, done: Completion) -> Option<Outcome> {
        drop(done);
        Some(self.run(task, attempt, cancel))
    }
}

/// Reports the outcome of a submitted attempt.
pub type Completion = Box<dyn FnOnce(Outcome) + Send>;

impl<F> Runner for F
where
    F: Fn(usize, u32, &CancelToken) -> Outcome + Sync,
{
    fn run(&self, task: usize, attempt: u32, cancel: &CancelToken) -> Outcome {
        self(task, attempt, cancel)
    }
}

/// Runs every task of `dag` once its dependencies succeeded, on a rayon pool of
/// `options.threads` workers. Events go to `events` (use an unbounded channel: a full one
/// stalls the workers). Cancelling `cancel` interrupts the running tasks and skips the rest.
pub fn execute(
    dag: &Dag,
    options: &Options,
    runner: &dyn Runner,
    cancel: &CancelToken,
    events: Option<&Sender<Event>>,
) -> Result<RunReport, Box<Diagnostic>> {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let threads = options.threads.max(1);
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("orrery-worker-{i}")).build().map_err(|err| {
            Box::new(Diagnostic::error(crate::codes::exec::THREAD_POOL, format!("cannot start {threads} worker threads: {err}")))
        })?;

    let n = dag.len();
    let mut ready = BinaryHeap::new();
    let mut waiting = Vec::with_capacity(n);
    for (i, task) in dag.tasks().iter().enumerate() {
        waiting.push(task.deps.len());
        if task.deps.is_empty() {
            ready.push((dag.priority(i), Reverse(i)));
        }
    }
    let run = Run {
        dag,
        options,
        runner,
        events,
        stop: cancel.child(),
        shared: Arc::new(Shared {
            sched: Mutex::new(Sched {
                ready,
                waiting,
                results: vec![None; n],
                running: 0,
                fail_fast: None,
                flights: HashMap::new(),
                completed: VecDeque::new(),
                delayed: Vec::new(),
            }),
            wake: Condvar::new(),
        }),
        watchdog: options.node_timeout.map(Watchdog::new),
    };
    // Waiting workers must see a stop; the handler takes the lock so no wake-up is lost.
    let wake_on_stop = run.stop.on_cancel({
        let shared = run.shared.clone();
        move || {
            let _sched = shared.lock();
            shared.wake.notify_all();
        }
    });

    std::thread::scope(|scope| {
        if let Some(watchdog) = &run.watchdog {
            scope.spawn(|| watchdog.watch());
        }
        pool.scope(|s| {
            for worker in 0..threads {
                let run = &run;
                match options.max_in_flight {
                    Some(limit) => s.spawn(move |_| run.work_deferred(worker, limit.max(1))),
                    None => s.spawn(move |_| run.work(worker)),
                }
            }
        });
        if let Some(watchdog) = &run.watchdog {
            watchdog.shut_down();
        }
    });
    drop(wake_on_stop);

    let mut sched = run.lock();
    let fail_fast = sched.fail_fast;
    let because = match (cancel.reason(), fail_fast) {
        (Some(reason), _) => SkipCause::Cancelled { reason },
        (None, Some(task)) => SkipCause::FailFast { task },
        (None, None) => SkipCause::Cancelled { reason: run.stop.reason().unwrap_or_else(|| "cancelled".into()) },
    };
    let results = (0..n)
        .map(|task| {
            sched.results[task].take().unwrap_or_else(|| {
                run.emit(Event::Skipped { task, because: because.clone() });
                TaskResult::skipped(because.clone())
            })
        })
        .collect();
    Ok(RunReport { results, started_at, elapsed: start.elapsed(), cancelled: cancel.reason(), fail_fast })
}

struct Run<'a> {
    dag: &'a Dag,
    options: &'a Options,
    runner: &'a dyn Runner,
    events: Option<&'a Sender<Event>>,
    /// Cancelled with the run's token, or by `fail_fast`; every task token is its child.
    stop: CancelToken,
    shared: Arc<Shared>,
    watchdog: Option<Watchdog>,
}

struct Shared {
    sched: Mutex<Sched>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Sched {
    /// Ready tasks by priority, then by position in the DAG (earlier first).
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    waiting: Vec<usize>,
    results: Vec<Option<TaskResult>>,
    running: usize,
    fail_fast: Option<usize>,
    /// Deferred mode: attempts submitted and not yet settled, by task.
    flights: HashMap<usize, Flight>,
    /// Deferred mode: outcomes reported by completions, waiting for a worker.
    completed: VecDeque<(usize, Outcome)>,
    /// Deferred mode: retries waiting out their delay (due, task, attempt).
    delayed: Vec<(Instant, usize, u32)>,
}

/// A task in deferred mode between its first submission and its final result.
struct Flight {
    token: CancelToken,
    started_at: SystemTime,
    start: Instant,
    attempt: u32,
    /// The watchdog's id for the attempt in flight.
    armed: Option<u64>,
}

impl Run<'_> {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        self.shared.lock()
    }

    fn emit(&self, event: Event) {
        if let Some(events) = self.events {
            // A subscriber that went away must not stop the run.
            let _ = events.send(event);
        }
    }

    fn work(&self, worker: usize) {
        let mut sched = self.lock();
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            if let Some((_, Reverse(task))) = sched.ready.pop() {
                sched.running += 1;
                drop(sched);
                let result = self.run_task(task, worker);
                sched = self.lock();
                sched.running -= 1;
                if self.finish(&mut sched, task, result) {
                    drop(sched);
                    let reason = format!("cancelled: fail_fast after `{}` failed", self.dag.task(task).id);
                    self.stop.cancel(reason);
                    sched = self.lock();
                }
                continue;
            }
            if sched.running == 0 {
                // Nothing ready and nothing running: the DAG is done.
                self.shared.wake.notify_all();
                return;
            }
            sched = self.shared.wake.wait(sched).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records a finished task, releases or skips what depends on it; true to stop the run.
    fn finish(&self, sched: &mut Sched, task: usize, result: TaskResult) -> bool {
        self.emit(Event::Finished {
            task,
            status: result.status,
            attempt: result.attempts,
            duration: result.duration,
            message: result.message.clone(),
            rows_affected: result.rows_affected,
        });
        let status = result.status;
        sched.results[task] = Some(result);
        let stopping = self.stop.is_cancelled();
        if status.is_ok() {
            let mut released = 0;
            for &child in self.dag.children(task) {
                sched.waiting[child] -= 1;
                if sched.waiting[child] == 0 && sched.results[child].is_none() {
                    sched.ready.push((self.dag.priority(child), Reverse(child)));
                    released += 1;
                }
            }
            match released {
                0 => {}
                1 => self.shared.wake.notify_one(),
                _ => self.shared.wake.notify_all(),
            }
        } else if !stopping {
            self.skip_descendants(sched, task);
        }
        if sched.running == 0 && sched.ready.is_empty() {
            self.shared.wake.notify_all();
        }
        let failed = !status.is_ok() && status != Status::Skipped;
        if self.options.fail_fast && failed && !stopping && sched.fail_fast.is_none() {
            sched.fail_fast = Some(task);
            return true;
        }
        false
    }

    /// Skips every descendant of `root`; none can have started, since `root` never succeeded.
    fn skip_descendants(&self, sched: &mut Sched, root: usize) {
        let mut stack: Vec<usize> = self.dag.children(root).to_vec();
        while let Some(task) = stack.pop() {
            if sched.results[task].is_some() {
                continue;
            }
            let because = SkipCause::Upstream { task: root };
            self.emit(Event::Skipped { task, because: because.clone() });
            sched.results[task] = Some(TaskResult::skipped(because));
            stack.extend_from_slice(self.dag.children(task));
        }
    }

    /// All attempts of one task, outside the scheduler's lock.
    fn run_task(&self, task: usize, worker: usize) -> TaskResult {
        let token = self.stop.child();
        let started_at = SystemTime::now();
        let start = Instant::now();
        let mut attempt = 1;
        let (status, message, rows_affected) = loop {
            self.emit(Event::Started { task, attempt, at: if attempt == 1 { started_at } else { SystemTime::now() } });
            if token.is_cancelled() {
                break (Status::Cancelled, token.reason(), None);
            }
            let armed = self.watchdog.as_ref().map(|w| w.arm(&token));
            let outcome = catch_unwind(AssertUnwindSafe(|| self.runner.run(task, attempt, &token)))
                .unwrap_or_else(|panic| Outcome::Failure { message: panic_message(panic.as_ref()) });
            drop(armed);
            match outcome {
                Outcome::Success { rows_affected, message } => break (Status::Success, message, rows_affected),
                Outcome::Warn { rows_affected, message } => break (Status::Warn, Some(message), rows_affected),
                // A query that fails because it was interrupted was cancelled, not wrong.
                _ if token.is_cancelled() => break (Status::Cancelled, token.reason(), None),
                Outcome::Cancelled { message } => {
                    break (Status::Cancelled, Some(message.unwrap_or_else(|| "cancelled".into())), None);
                }
                Outcome::Failure { message } if attempt <= self.options.retries => {
                    let delay = backoff(self.options.retry_delay, attempt);
                    self.emit(Event::Retrying { task, attempt, delay, message });
                    if token.wait_timeout(delay) {
                        break (Status::Cancelled, token.reason(), None);
                    }
                    attempt += 1;
                }
                Outcome::Failure { message } => break (Status::Error, Some(message), None),
            }
        };
        self.settled(
            task,
            TaskResult {
                status,
                attempts: attempt,
                started_at: Some(started_at),
                completed_at: Some(SystemTime::now()),
                duration: start.elapsed(),
                message,
                rows_affected,
                worker: Some(worker),
                skipped_because: None,
            },
        )
    }

    /// A task's final result after the runner settled it.
    fn settled(&self, task: usize, mut result: TaskResult) -> TaskResult {
        if catch_unwind(AssertUnwindSafe(|| self.runner.settle(task, &mut result))).is_err() {
            result.status = Status::Error;
            result.message = Some("internal error: settling the task panicked".into());
        }
        result
    }
}

impl Run<'_> {
    /// Deferred mode's worker: settles completions first, then starts due retries and ready
    /// tasks while fewer than `limit` are in flight; a submitted task holds no worker.
    fn work_deferred(&self, worker: usize, limit: usize) {
        let mut sched = self.lock();
        loop {
            if let Some((task, outcome)) = sched.completed.pop_front() {
                sched.running += 1;
                drop(sched);
                self.completed(task, outcome, worker);
                sched = self.lock();
                sched.running -= 1;
                continue;
            }
            let now = Instant::now();
            let stopping = self.stop.is_cancelled();
            if let Some(i) = sched.delayed.iter().position(|(due, _, _)| stopping || *due <= now) {
                let (_, task, attempt) = sched.delayed.swap_remove(i);
                // The run's token is marked cancelled before its children are, so fall back to
                // its reason when this task's token has not heard yet.
                let reason = sched.flights.get(&task).and_then(|f| f.token.reason()).or_else(|| self.stop.reason());
                sched.running += 1;
                drop(sched);
                if stopping {
                    // As in blocking mode: a cancel during the backoff ends the task at once.
                    self.settle_flight(task, Status::Cancelled, reason, None, worker);
                } else {
                    self.start_attempt(task, attempt, worker);
                }
                sched = self.lock();
                sched.running -= 1;
                continue;
            }
            if !stopping
                && sched.flights.len() < limit
                && let Some((_, Reverse(task))) = sched.ready.pop()
            {
                sched.running += 1;
                drop(sched);
                self.start_task(task, worker);
                sched = self.lock();
                sched.running -= 1;
                continue;
            }
            if sched.running == 0 && sched.flights.is_empty() && (sched.ready.is_empty() || stopping) {
                // Nothing ready, in flight or being settled: the DAG is done (or stopped).
                self.shared.wake.notify_all();
                return;
            }
            let next_due = sched.delayed.iter().map(|(due, _, _)| *due).min();
            sched = match next_due {
                Some(due) => {
                    let wait = due.saturating_duration_since(now);
                    self.shared.wake.wait_timeout(sched, wait).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.shared.wake.wait(sched).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    fn start_task(&self, task: usize, worker: usize) {
        let flight = Flight { token: self.stop.child(), started_at: SystemTime::now(), start: Instant::now(), attempt: 1, armed: None };
        self.lock().flights.insert(task, flight);
        self.start_attempt(task, 1, worker);
    }

    /// Submits one attempt; an outcome known at once is settled here.
    fn start_attempt(&self, task: usize, attempt: u32, worker: usize) {
        let token = {
            let mut sched = self.lock();
            let Some(flight) = sched.flights.get_mut(&task) else { return };
            flight.attempt = attempt;
            flight.token.clone()
        };
        self.emit(Event::Started { task, attempt, at: SystemTime::now() });
        if token.is_cancelled() {
            self.settle_flight(task, Status::Cancelled, token.reason(), None, worker);
            return;
        }
        let armed = self.watchdog.as_ref().map(|w| w.arm_id(&token));
        if let Some(flight) = self.lock().flights.get_mut(&task) {
            flight.armed = armed;
        }
        let shared = self.shared.clone();
        let done: Completion = Box::new(move |outcome| {
            let mut sched = shared.lock();
            sched.completed.push_back((task, outcome));
            drop(sched);
            shared.wake.notify_one();
        });
        let submitted = catch_unwind(AssertUnwindSafe(|| self.runner.submit(task, attempt, &token, done)))
            .unwrap_or_else(|panic| Some(Outcome::Failure { message: panic_message(panic.as_ref()) }));
        if let Some(outcome) = submitted {
            self.completed(task, outcome, worker);
        }
    }

    /// An attempt's outcome: retried after its delay, or the task's final result.
    fn completed(&self, task: usize, outcome: Outcome, worker: usize) {
        let (token, attempt, armed) = {
            let mut sched = self.lock();
            let Some(flight) = sched.flights.get_mut(&task) else { return };
            (flight.token.clone(), flight.attempt, flight.armed.take())
        };
        if let (Some(watchdog), Some(id)) = (&self.watchdog, armed) {
            watchdog.disarm(id);
        }
        let (status, message, rows) = match outcome {
            Outcome::Success { rows_affected, message } => (Status::Success, message, rows_affected),
            Outcome::Warn { rows_affected, message } => (Status::Warn, Some(message), rows_affected),
            _ if token.is_cancelled() => (Status::Cancelled, token.reason(), None),
            Outcome::Cancelled { message } => (Status::Cancelled, Some(message.unwrap_or_else(|| "cancelled".into())), None),
            Outcome::Failure { message } if attempt <= self.options.retries => {
                let delay = backoff(self.options.retry_delay, attempt);
                self.emit(Event::Retrying { task, attempt, delay, message });
                let due = crate::duration::deadline(delay);
                self.lock().delayed.push((due, task, attempt + 1));
                self.shared.wake.notify_all();
                return;
            }
            Outcome::Failure { message } => (Status::Error, Some(message), None),
        };
        self.settle_flight(task, status, message, rows, worker);
    }

    /// Ends a deferred task: its result settled by the runner, then recorded as in blocking mode.
    fn settle_flight(&self, task: usize, status: Status, message: Option<String>, rows_affected: Option<u64>, worker: usize) {
        let Some(flight) = self.lock().flights.remove(&task) else { return };
        let result = self.settled(
            task,
            TaskResult {
                status,
                attempts: flight.attempt,
                started_at: Some(flight.started_at),
                completed_at: Some(SystemTime::now()),
                duration: flight.start.elapsed(),
                message,
                rows_affected,
                worker: Some(worker),
                skipped_because: None,
            },
        );
        let mut sched = self.lock();
        if self.finish(&mut sched, task, result) {
            drop(sched);
            let reason = format!("cancelled: fail_fast after `{}` failed", self.dag.task(task).id);
            self.stop.cancel(reason);
            sched = self.lock();
        }
        drop(sched);
        self.shared.wake.notify_all();
    }
}

/// The delay after failed `attempt`: `first`, then doubled each time.
fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    first.checked_mul(factor).unwrap_or(Duration::MAX)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    format!("internal error: the task panicked: {detail}")
}

/// Cancels the token of an attempt that outlives `node_timeout`.
struct Watchdog {
    timeout: Duration,
    state: Mutex<WatchState>,
    wake: Condvar,
}

#[derive(Default)]
struct WatchState {
    /// Armed attempts: id, deadline, token. Deadlines grow with ids, as the timeout is fixed.
    armed: Vec<(u64, Instant, CancelToken)>,
    next_id: u64,
    done: bool,
}

struct Armed<'a> {
    watchdog: &'a Watchdog,
    id: u64,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.watchdog.disarm(self.id);
    }
}

impl Watchdog {
    fn new(timeout: Duration) -> Self {
        Watchdog { timeout, state: Mutex::default(), wake: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arm(&self, token: &CancelToken) -> Armed<'_> {
        Armed { watchdog: self, id: self.arm_id(token) }
    }

    /// Arms a deadline for `token`; [`Watchdog::disarm`] with the id ends it.
    fn arm_id(&self, token: &CancelToken) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        let deadline = crate::duration::deadline(self.timeout);
        state.armed.push((id, deadline, token.clone()));
        // Later arms have later deadlines, so only an idle watchdog needs waking.
        if state.armed.len() == 1 {
            self.wake.notify_one();
        }
        id
    }

    fn disarm(&self, id: u64) {
        self.lock().armed.retain(|(armed, _, _)| *armed != id);
    }

    fn watch(&self) {
        let mut state = self.lock();
        while !state.done {
            let now = Instant::now();
            let expired = state.armed.iter().position(|(_, deadline, _)| *deadline <= now);
            if let Some(index) = expired {
                let (_, _, token) = state.armed.swap_remove(index);
                drop(state);
                token.cancel(format!("timed out after {}", humantime::format_duration(self.timeout)));
                state = self.lock();
                continue;
            }
            let next = state.armed.iter().map(|(_, deadline, _)| *deadline).min();
            state = match next {
                Some(deadline) => self.wake.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0,
                None => self.wake.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    fn shut_down(&self) {
        self.lock().done = true;
        self.wake.notify_all();
    }
}
