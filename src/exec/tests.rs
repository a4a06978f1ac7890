use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;

fn options(threads: usize) -> Options {
    Options { threads, retries: 0, retry_delay: Duration::from_millis(1), node_timeout: None, fail_fast: false, max_in_flight: None }
}

fn ok() -> Outcome {
    Outcome::Success { rows_affected: None, message: None }
}

fn fail(message: &str) -> Outcome {
    Outcome::Failure { message: message.into() }
}

/// Runs the DAG, collects its events and checks every task got exactly one terminal event,
/// its last.
fn run(tasks: Vec<Task>, options: &Options, runner: &dyn Runner, cancel: &CancelToken) -> (RunReport, Vec<Event>) {
    let dag = Dag::new(tasks).expect("a valid DAG");
    let (tx, rx) = crossbeam_channel::unbounded();
    let report = execute(&dag, options, runner, cancel, Some(&tx)).expect("a thread pool");
    drop(tx);
    let events: Vec<Event> = rx.iter().collect();
    for task in 0..dag.len() {
        let mine: Vec<&Event> = events.iter().filter(|e| e.task() == task).collect();
        let terminal = mine.iter().filter(|e| e.is_terminal()).count();
        assert_eq!(terminal, 1, "task {task} got {terminal} terminal events: {mine:?}");
        assert!(mine.last().is_some_and(|e| e.is_terminal()), "task {task}: events after the terminal one: {mine:?}");
    }
    (report, events)
}

fn statuses(report: &RunReport) -> Vec<Status> {
    report.results.iter().map(|r| r.status).collect()
}

fn started(events: &[Event]) -> Vec<usize> {
    events.iter().filter(|e| matches!(e, Event::Started { .. })).map(Event::task).collect()
}

/// A DAG of `n` tasks where task i depends on a few earlier ones, chosen by a fixed LCG.
fn random_dag(n: usize, seed: u64) -> Vec<Task> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|i| {
            let deps: Vec<usize> = if i == 0 { vec![] } else { (0..next() % 4).map(|_| next() % i).collect() };
            Task::new(format!("t{i}"), deps)
        })
        .collect()
}

#[test]
fn a_task_starts_only_after_all_its_dependencies_finished() {
    let tasks = random_dag(300, 7);
    let deps: Vec<Vec<usize>> = tasks.iter().map(|t| t.deps.clone()).collect();
    let (report, events) = run(tasks, &options(4), &|_, _, _: &CancelToken| ok(), &CancelToken::new());
    assert!(report.is_success());
    for (position, event) in events.iter().enumerate() {
        if let Event::Started { task, .. } = event {
            for &dep in &deps[*task] {
                let finished = events.iter().position(|e| matches!(e, Event::Finished { task, .. } if *task == dep));
                assert!(finished.is_some_and(|f| f < position), "task {task} started before its dependency {dep} finished");
            }
        }
    }
}

#[test]
fn with_one_thread_the_longest_remaining_path_goes_first() {
    let tasks = vec![
        Task::new("short", []),
        Task::new("long1", []),
        Task::new("long2", [1]),
        Task::new("long3", [2]),
        Task::new("mid1", []),
        Task::new("mid2", [4]),
    ];
    let names: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    let (_, events) = run(tasks, &options(1), &|_, _, _: &CancelToken| ok(), &CancelToken::new());
    let order: Vec<&str> = started(&events).into_iter().map(|i| names[i].as_str()).collect();
    // Equal priorities keep the DAG's order: long2 before mid1, short before long3.
    assert_eq!(order, ["long1", "long2", "mid1", "short", "long3", "mid2"]);
}

#[test]
fn weight_hints_order_ready_tasks() {
    let ms = Duration::from_millis;
    let tasks = vec![Task::new("light", []).with_weight(ms(1)), Task::new("heavy", []).with_weight(ms(50))];
    let (_, events) = run(tasks, &options(1), &|_, _, _: &CancelToken| ok(), &CancelToken::new());
    assert_eq!(started(&events), [1, 0]);
}

#[test]
fn a_failure_skips_its_descendants_and_nothing_else() {
    let tasks = vec![
        Task::new("bad", []),
        Task::new("child", [0]),
        Task::new("grandchild", [1]),
        Task::new("other", []),
        Task::new("both", [3, 0]),
        Task::new("other_child", [3]),
    ];
    let runner = |task, _, _: &CancelToken| if task == 0 { fail("Catalog Error: no such table") } else { ok() };
    let (report, _) = run(tasks, &options(2), &runner, &CancelToken::new());
    use Status::*;
    assert_eq!(statuses(&report), [Error, Skipped, Skipped, Success, Skipped, Success]);
    assert_eq!(report.results[0].message.as_deref(), Some("Catalog Error: no such table"));
    for skipped in [1, 2, 4] {
        assert_eq!(report.results[skipped].skipped_because, Some(SkipCause::Upstream { task: 0 }));
        assert_eq!(report.results[skipped].attempts, 0);
    }
    assert_eq!(report.counts(), Counts { success: 2, warn: 0, error: 1, skipped: 3, cancelled: 0 });
    assert!(!report.is_success());
}

#[test]
fn a_warning_lets_children_run() {
    let tasks = vec![Task::new("test", []), Task::new("child", [0])];
    let runner = |task, _, _: &CancelToken| {
        if task == 0 { Outcome::Warn { rows_affected: Some(1), message: "Got 1 result".into() } } else { ok() }
    };
    let (report, _) = run(tasks, &options(1), &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Status::Warn, Status::Success]);
    assert!(report.is_success());
}

#[test]
fn retries_count_attempts_and_back_off_doubling() {
    let tasks = vec![Task::new("flaky", []), Task::new("broken", [])];
    let runner = |task, attempt, _: &CancelToken| if task == 0 && attempt == 3 { ok() } else { fail(&format!("attempt {attempt}")) };
    let options = Options { retries: 2, ..options(1) };
    let (report, events) = run(tasks, &options, &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Status::Success, Status::Error]);
    assert_eq!(report.results[0].attempts, 3);
    assert_eq!(report.results[1].attempts, 3);
    assert_eq!(report.results[1].message.as_deref(), Some("attempt 3"));
    let retries: Vec<(usize, u32, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Retrying { task, attempt, delay, .. } => Some((*task, *attempt, *delay)),
            _ => None,
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(retries, [(0, 1, ms(1)), (0, 2, ms(2)), (1, 1, ms(1)), (1, 2, ms(2))]);
    assert_eq!(started(&events), [0, 0, 0, 1, 1, 1]);
}

#[test]
fn fail_fast_cancels_running_tasks_and_skips_the_rest() {
    let tasks = vec![Task::new("slow", []), Task::new("bad", []), Task::new("later", []), Task::new("after_slow", [0])];
    let runner = |task, _, cancel: &CancelToken| match task {
        // Stands for a long query: only cancellation ends it.
        0 if cancel.wait_timeout(Duration::from_secs(120)) => fail("INTERRUPT Error"),
        1 => fail("boom"),
        _ => ok(),
    };
    let options = Options { fail_fast: true, ..options(2) };
    let (report, _) = run(tasks, &options, &runner, &CancelToken::new());
    use Status::*;
    assert_eq!(statuses(&report), [Cancelled, Error, Skipped, Skipped]);
    assert_eq!(report.results[0].message.as_deref(), Some("cancelled: fail_fast after `bad` failed"));
    assert_eq!(report.results[2].skipped_because, Some(SkipCause::FailFast { task: 1 }));
    assert_eq!(report.results[3].skipped_because, Some(SkipCause::FailFast { task: 1 }));
    assert_eq!((report.fail_fast, report.cancelled), (Some(1), None));
}

#[test]
fn a_timeout_cancels_that_task_alone_and_the_run_goes_on() {
    let tasks = vec![Task::new("stuck", []), Task::new("after_stuck", [0]), Task::new("fine", []), Task::new("after_fine", [2])];
    let interrupted = Arc::new(AtomicBool::new(false));
    let runner = |task, _, cancel: &CancelToken| {
        if task == 0 {
            // Stands for DuckDB's interrupt handle.
            let flag = interrupted.clone();
            let _interrupt = cancel.on_cancel(move || flag.store(true, Ordering::SeqCst));
            cancel.wait_timeout(Duration::from_secs(120));
            return fail("INTERRUPT Error: Interrupted!");
        }
        ok()
    };
    let options = Options { node_timeout: Some(Duration::from_secs(1)), retries: 2, ..options(2) };
    let (report, events) = run(tasks, &options, &runner, &CancelToken::new());
    use Status::*;
    assert_eq!(statuses(&report), [Cancelled, Skipped, Success, Success]);
    assert_eq!(report.results[0].message.as_deref(), Some("timed out after 1s"));
    assert_eq!(report.results[0].attempts, 1, "a timeout is not retried");
    assert!(interrupted.load(Ordering::SeqCst), "the interrupt handler ran");
    assert_eq!(report.results[1].skipped_because, Some(SkipCause::Upstream { task: 0 }));
    assert_eq!(report.cancelled, None);
    assert!(!events.iter().any(|e| matches!(e, Event::Retrying { .. })));
}

#[test]
fn cancelling_the_run_cancels_running_tasks_and_skips_the_rest() {
    let tasks = vec![Task::new("a", []), Task::new("b", []), Task::new("after_a", [0]), Task::new("c", [])];
    let cancel = CancelToken::new();
    let both_running = Barrier::new(3);
    let runner = |task, _, token: &CancelToken| {
        if task < 2 {
            both_running.wait();
            token.wait_timeout(Duration::from_secs(120));
            return Outcome::Cancelled { message: None };
        }
        ok()
    };
    let options = Options { retries: 3, ..options(2) };
    let (report, _) = std::thread::scope(|scope| {
        scope.spawn(|| {
            both_running.wait();
            cancel.cancel("interrupted (SIGINT)");
        });
        run(tasks, &options, &runner, &cancel)
    });
    use Status::*;
    assert_eq!(statuses(&report), [Cancelled, Cancelled, Skipped, Skipped]);
    assert_eq!(report.results[1].message.as_deref(), Some("interrupted (SIGINT)"));
    let because = SkipCause::Cancelled { reason: "interrupted (SIGINT)".into() };
    assert_eq!(report.results[2].skipped_because.as_ref(), Some(&because));
    assert_eq!(report.results[3].skipped_because.as_ref(), Some(&because));
    assert_eq!(report.cancelled.as_deref(), Some("interrupted (SIGINT)"));
}

#[test]
fn a_cancel_during_backoff_ends_the_task_at_once() {
    let dag = Dag::new(vec![Task::new("flaky", []), Task::new("after", [0])]).expect("a valid DAG");
    let cancel = CancelToken::new();
    let (tx, rx) = crossbeam_channel::unbounded();
    let options = Options { retries: 5, retry_delay: Duration::from_secs(3600), ..options(1) };
    let runner = |_, _, _: &CancelToken| fail("boom");
    let report = std::thread::scope(|scope| {
        scope.spawn(|| {
            // The subscriber that turns the first retry into a SIGINT.
            for event in rx.iter() {
                if matches!(event, Event::Retrying { .. }) {
                    cancel.cancel("interrupted");
                }
            }
        });
        let report = execute(&dag, &options, &runner, &cancel, Some(&tx));
        drop(tx);
        report
    })
    .expect("a thread pool");
    assert_eq!(statuses(&report), [Status::Cancelled, Status::Skipped]);
    assert_eq!(report.results[0].attempts, 1);
    assert_eq!(report.results[0].message.as_deref(), Some("interrupted"));
}

#[test]
fn a_panicking_runner_fails_its_task_only() {
    let tasks = vec![Task::new("panics", []), Task::new("fine", [])];
    let runner = |task, _, _: &CancelToken| if task == 0 { panic!("bug in the adapter") } else { ok() };
    let (report, _) = run(tasks, &options(2), &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Status::Error, Status::Success]);
    assert_eq!(report.results[0].message.as_deref(), Some("internal error: the task panicked: bug in the adapter"));
}

#[test]
fn every_task_gets_one_terminal_event_under_failures_and_retries() {
    for (seed, fail_fast) in [(1, false), (2, false), (3, true), (4, true)] {
        let runner = |task: usize, attempt: u32, _: &CancelToken| match (task % 7, attempt) {
            (0, _) => fail("always"),
            (3, 1) => fail("once"),
            (5, _) => Outcome::Warn { rows_affected: None, message: "warn".into() },
            _ => ok(),
        };
        let options = Options { retries: 1, fail_fast, ..options(3) };
        let (report, _) = run(random_dag(500, seed), &options, &runner, &CancelToken::new());
        let counts = report.counts();
        assert_eq!(counts.success + counts.warn + counts.error + counts.skipped + counts.cancelled, 500);
        assert!(counts.error > 0);
    }
}

#[test]
fn an_empty_dag_finishes_at_once() {
    let (report, events) = run(vec![], &options(4), &|_, _, _: &CancelToken| ok(), &CancelToken::new());
    assert!(report.results.is_empty() && events.is_empty());
}

/// Deferred mode for tests: each attempt runs `inner` on a thread of its own, reported through
/// the completion, as a server adapter's background session does.
struct Deferred<F> {
    inner: Arc<F>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl<F> Deferred<F> {
    fn new(inner: F) -> Self {
        Deferred { inner: Arc::new(inner), in_flight: Arc::default(), peak: Arc::default() }
    }
}

impl<F> Runner for Deferred<F>
where
    F: Fn(usize, u32, &CancelToken) -> Outcome + Send + Sync + 'static,
{
    fn run(&self, _: usize, _: u32, _: &CancelToken) -> Outcome {
        unreachable!("deferred mode submits")
    }

    fn submit(&self, task: usize, attempt: u32, cancel: &CancelToken, done: Completion) -> Option<Outcome> {
        let (inner, cancel) = (self.inner.clone(), cancel.clone());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let in_flight = self.in_flight.clone();
        std::thread::spawn(move || {
            let outcome = inner(task, attempt, &cancel);
            in_flight.fetch_sub(1, Ordering::SeqCst);
            done(outcome);
        });
        None
    }
}

fn deferred(threads: usize, max_in_flight: usize) -> Options {
    Options { max_in_flight: Some(max_in_flight), ..options(threads) }
}

#[test]
fn deferred_tasks_hold_no_worker_and_respect_max_in_flight() {
    // Eight tasks that each wait until four are in flight at once: with one worker, only
    // deferred submission gets there; the ninth depends on all of them.
    let mut tasks: Vec<Task> = (0..8).map(|i| Task::new(format!("t{i}"), [])).collect();
    tasks.push(Task::new("after", (0..8).collect::<Vec<_>>()));
    let gathered = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    let runner = Deferred::new({
        let gathered = gathered.clone();
        move |task, _, _: &CancelToken| {
            if task == 8 {
                return ok();
            }
            let (count, changed) = &*gathered;
            let mut n = count.lock().expect("lock");
            *n += 1;
            changed.notify_all();
            let (n, timeout) = changed.wait_timeout_while(n, Duration::from_secs(20), |n| *n < 4).expect("wait");
            drop(n);
            if timeout.timed_out() { fail("never four in flight") } else { ok() }
        }
    });
    let (report, events) = run(tasks, &deferred(1, 4), &runner, &CancelToken::new());
    assert!(report.is_success(), "{:?}", report.results);
    assert_eq!(runner.peak.load(Ordering::SeqCst), 4, "at most max_in_flight at once");
    assert_eq!(started(&events).last(), Some(&8), "the child starts after its parents");
}

#[test]
fn deferred_retries_timeouts_fail_fast_and_cancel_behave_as_blocking() {
    use Status::*;
    // Retries with the same attempts, delays and messages.
    let runner =
        Deferred::new(|task, attempt, _: &CancelToken| if task == 0 && attempt == 3 { ok() } else { fail(&format!("attempt {attempt}")) });
    let options = Options { retries: 2, ..deferred(1, 8) };
    let (report, events) = run(vec![Task::new("flaky", []), Task::new("broken", [])], &options, &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Success, Error]);
    assert_eq!((report.results[0].attempts, report.results[1].attempts), (3, 3));
    assert_eq!(report.results[1].message.as_deref(), Some("attempt 3"));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Retrying { .. })).count(), 4);

    // A timeout cancels that task alone, through its token, and is not retried.
    let interrupted = Arc::new(AtomicBool::new(false));
    let runner = Deferred::new({
        let interrupted = interrupted.clone();
        move |task, _, cancel: &CancelToken| {
            if task == 0 {
                let flag = interrupted.clone();
                let _interrupt = cancel.on_cancel(move || flag.store(true, Ordering::SeqCst));
                cancel.wait_timeout(Duration::from_secs(120));
                return fail("canceling statement due to user request");
            }
            ok()
        }
    });
    let options = Options { node_timeout: Some(Duration::from_secs(1)), retries: 2, ..deferred(1, 8) };
    let tasks = vec![Task::new("stuck", []), Task::new("after_stuck", [0]), Task::new("fine", []), Task::new("after_fine", [2])];
    let (report, _) = run(tasks, &options, &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Cancelled, Skipped, Success, Success]);
    assert_eq!(report.results[0].message.as_deref(), Some("timed out after 1s"));
    assert_eq!(report.results[0].attempts, 1);
    assert!(interrupted.load(Ordering::SeqCst));

    // fail_fast cancels what is in flight and skips the rest.
    let runner = Deferred::new(|task, _, cancel: &CancelToken| match task {
        0 if cancel.wait_timeout(Duration::from_secs(120)) => fail("canceled"),
        1 => fail("boom"),
        _ => ok(),
    });
    let options = Options { fail_fast: true, ..deferred(1, 1) };
    let tasks = vec![Task::new("slow", []), Task::new("bad", []), Task::new("later", []), Task::new("after_slow", [0])];
    let options = Options { max_in_flight: Some(2), ..options };
    let (report, _) = run(tasks, &options, &runner, &CancelToken::new());
    assert_eq!(statuses(&report), [Cancelled, Error, Skipped, Skipped]);
    assert_eq!(report.fail_fast, Some(1));

    // Cancelling the run cancels what is in flight, also a task waiting out a retry delay.
    let cancel = CancelToken::new();
    let runner = Deferred::new(|task, _, token: &CancelToken| match task {
        0 => {
            token.wait_timeout(Duration::from_secs(120));
            Outcome::Cancelled { message: None }
        }
        1 => fail("boom"),
        _ => ok(),
    });
    let options = Options { retries: 5, retry_delay: Duration::from_secs(3600), ..deferred(2, 8) };
    let tasks = vec![Task::new("long", []), Task::new("flaky", []), Task::new("after_long", [0])];
    let (report, _) = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel("interrupted (SIGINT)");
        });
        run(tasks, &options, &runner, &cancel)
    });
    assert_eq!(statuses(&report), [Cancelled, Cancelled, Skipped]);
    assert_eq!(report.results[1].attempts, 1, "the retry waiting out its delay ends at once");
    assert_eq!(report.results[1].message.as_deref(), Some("interrupted (SIGINT)"));
    assert_eq!(report.cancelled.as_deref(), Some("interrupted (SIGINT)"));
}

#[test]
fn deferred_runs_give_every_task_one_terminal_event() {
    for (seed, fail_fast) in [(5, false), (6, true)] {
        let runner = Deferred::new(|task: usize, attempt: u32, _: &CancelToken| match (task % 7, attempt) {
            (0, _) => fail("always"),
            (3, 1) => fail("once"),
            _ => ok(),
        });
        let options = Options { retries: 1, fail_fast, ..deferred(2, 16) };
        let (report, _) = run(random_dag(300, seed), &options, &runner, &CancelToken::new());
        let counts = report.counts();
        assert_eq!(counts.success + counts.warn + counts.error + counts.skipped + counts.cancelled, 300);
    }
}
