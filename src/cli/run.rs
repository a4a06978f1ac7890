//! `compile` artifacts and `run`: plan → executor → run_results, with progress output.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{Format, Global, Selection};
use super::output::{EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, fail, print_diagnostics, print_json};
use super::session::{self, Build};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::exec::plan_run::{PlanRunner, TestBehavior, phases};
use crate::exec::{CancelToken, Event, Options, RunReport, Status};
use crate::plan::{PlanOptions, RunPlan};
use crate::{adapter, artifacts, plan};

fn target_dir(build: &Build) -> PathBuf {
    build.compiled.project_root.join(&build.compiled.target_path)
}

/// Builds the run plan of a compiled project's selection.
fn run_plan(build: &Build, selection: &Selection, full_refresh: bool) -> Result<(RunPlan, Diagnostics), Diagnostics> {
    let (graph, selected) = session::select(build, selection)?;
    let nodes = graph.topo_order(&selected);
    let pipeline = &build.pipeline.pipeline;
    let options = PlanOptions {
        full_refresh: full_refresh || pipeline.execution.full_refresh,
        pipeline: pipeline.pipeline.name.clone(),
        execution: to_value(&pipeline.execution),
        callbacks: pipeline.callbacks.iter().map(to_value).collect(),
        artifacts: to_value(&pipeline.artifacts),
        state: to_value(&pipeline.state),
    };
    let (plan, diagnostics) = plan::build_run_plan(&build.compiled, &nodes, &options);
    if diagnostics.has_errors() { Err(diagnostics) } else { Ok((plan, diagnostics)) }
}

/// A spec table as the plan carries it (plans keep `[execution]` and the rest as given).
fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Writes target/compiled/**, target/manifest.json and target/plan.json; returns a summary line.
pub fn write_compile_artifacts(build: &Build, selection: &Selection, full_refresh: bool) -> Result<String, Diagnostics> {
    let (plan, _warnings) = run_plan(build, selection, full_refresh)?;
    write_artifacts(build, &plan)?;
    let s = &plan.summary;
    let summary = format!(
        "Compiled {} models, {} seeds, {} snapshots, {} tests ({} statements) into {}",
        s.models,
        s.seeds,
        s.snapshots,
        s.tests,
        s.statements,
        super::super::diagnostics::display_path(&target_dir(build)).display()
    );
    // `compile` exits next: skip freeing the plan's statements (see Build::discard).
    std::mem::forget(plan);
    Ok(summary)
}

fn write_artifacts(build: &Build, plan: &RunPlan) -> Result<(), Diagnostics> {
    // Three independent files: written at the same time.
    let (manifest, (compiled, plan)) = rayon::join(
        || artifacts::manifest::write(&build.compiled),
        || rayon::join(|| artifacts::compiled::write(&build.compiled), || plan.write(&target_dir(build).join("plan.json"))),
    );
    let mut problems = Diagnostics::new();
    for result in [compiled, manifest, plan] {
        if let Err(diagnostic) = result {
            problems.push(diagnostic);
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// `orrery run`: compile (unless `--plan`), then execute.
pub fn run(global: &Global, selection: &Selection, plan_path: Option<&Path>, full_refresh: bool, threads: Option<usize>) -> i32 {
    let (plan, target_dir, warnings) = match plan_path {
        Some(path) => match RunPlan::read(path) {
            Ok(plan) => {
                let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                (plan, dir, Diagnostics::new())
            }
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        },
        None => {
            let build = match session::build(global, &global.pipeline, full_refresh) {
                Ok(build) => build,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            let (plan, mut warnings) = match run_plan(&build, selection, full_refresh) {
                Ok(planned) => planned,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            if let Err(diagnostics) = write_artifacts(&build, &plan) {
                return fail(global.format, &diagnostics);
            }
            warnings.extend(build.warnings.clone());
            (plan, target_dir(&build), warnings)
        }
    };
    if global.format == Format::Human {
        print_diagnostics(&warnings);
    }
    match execute_plan(global, &plan, &target_dir, full_refresh, threads) {
        Ok(code) => code,
        Err(diagnostics) => fail(global.format, &diagnostics),
    }
}

fn execution_setting<T: serde::de::DeserializeOwned>(plan: &RunPlan, key: &str) -> Option<T> {
    plan.execution.get(key).and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn duration_setting(plan: &RunPlan, key: &str) -> Option<Duration> {
    let text: String = execution_setting(plan, key)?;
    humantime::parse_duration(&text).ok()
}

fn execute_plan(global: &Global, plan: &RunPlan, target_dir: &Path, full_refresh: bool, threads: Option<usize>) -> Result<i32, Diagnostics> {
    let full_refresh = full_refresh || execution_setting::<bool>(plan, "full_refresh").unwrap_or(false);
    let options = Options {
        threads: threads
            .or_else(|| execution_setting(plan, "threads"))
            .or(plan.target.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        retries: execution_setting(plan, "retries").unwrap_or(0),
        retry_delay: duration_setting(plan, "retry_delay").unwrap_or(Duration::from_secs(5)),
        node_timeout: duration_setting(plan, "node_timeout"),
        fail_fast: execution_setting(plan, "fail_fast").unwrap_or(false),
    };
    if execution_setting::<String>(plan, "mode").as_deref() == Some("deferred") && plan.target.adapter_type == "duckdb" {
        eprintln!("warning: mode = \"deferred\" runs blocking on DuckDB, an embedded warehouse");
    }
    let behavior = TestBehavior::parse(&execution_setting::<String>(plan, "test_behavior").unwrap_or_default());
    let phases = phases(plan, behavior)?;

    let target = plan.target_info();
    let mut conn = adapter::connect(&target, target_dir).map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
    for sql in plan.hooks.create_schemas.iter().chain(&plan.hooks.on_run_start) {
        conn.execute(sql).map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
    }

    let cancel = CancelToken::new();
    let _signals = watch_signals(&cancel);
    let started = std::time::Instant::now();
    let run_started = chrono::Utc::now();
    let mut reports: Vec<(usize, RunReport, Vec<Option<u64>>)> = Vec::new();
    let mut printer = Printer::new(global.format, plan);
    for (index, phase) in phases.iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let base = conn.try_clone().map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
        let runner = PlanRunner::new(plan, phase, base, full_refresh);
        let report = std::thread::scope(|scope| {
            let printer = &mut printer;
            let nodes = &phase.nodes;
            scope.spawn(move || {
                for event in rx {
                    printer.event(&event, nodes);
                }
            });
            let report = crate::exec::execute(&phase.dag, &options, &runner, &cancel, Some(&tx));
            drop(tx);
            report
        });
        let report = report.map_err(|d| Diagnostics::from(*d))?;
        let failures = (0..phase.nodes.len()).map(|t| runner.failures(t)).collect();
        reports.push((index, report, failures));
        if cancel.is_cancelled() {
            break;
        }
    }
    if !cancel.is_cancelled() {
        for sql in &plan.hooks.on_run_end {
            if let Err(err) = conn.execute(sql) {
                eprintln!("on-run-end hook failed: {}", err.message);
            }
        }
    }
    let elapsed = started.elapsed();
    let results = collect_results(&phases, &reports);
    write_run_results(global, plan, target_dir, &results, run_started, elapsed)?;
    printer.summary(&results, elapsed);
    Ok(if cancel.is_cancelled() {
        EXIT_CANCELLED
    } else if results.iter().any(|r| matches!(r.result.status, Status::Error | Status::Cancelled)) {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// One executed (or skipped) plan node.
struct NodeOutcome {
    node: usize,
    result: crate::exec::TaskResult,
    failures: Option<u64>,
}

type PhaseReport = (usize, RunReport, Vec<Option<u64>>);

/// Every node that was part of a phase, with its result.
fn collect_results(phases: &[crate::exec::plan_run::Phase], reports: &[PhaseReport]) -> Vec<NodeOutcome> {
    let mut out = Vec::new();
    for (index, report, failures) in reports {
        for (task, result) in report.results.iter().enumerate() {
            out.push(NodeOutcome { node: phases[*index].nodes[task], result: result.clone(), failures: failures[task] });
        }
    }
    out
}

fn write_run_results(
    global: &Global,
    plan: &RunPlan,
    target_dir: &Path,
    outcomes: &[NodeOutcome],
    started_at: chrono::DateTime<chrono::Utc>,
    elapsed: Duration,
) -> Result<(), Diagnostics> {
    use crate::artifacts::run_results::{Invocation, NodeResult, NodeStatus, Timing};
    let results: Vec<NodeResult> = outcomes
        .iter()
        .map(|o| {
            let node = &plan.nodes[o.node];
            let is_test = node.resource_type == "test";
            let status = match o.result.status {
                Status::Success => NodeStatus::Success,
                Status::Warn => NodeStatus::Warn,
                Status::Error if is_test && o.failures.is_some() => NodeStatus::Fail,
                Status::Error => NodeStatus::Error,
                Status::Skipped => NodeStatus::Skipped,
                Status::Cancelled => NodeStatus::Cancelled,
            };
            let execute = match (o.result.started_at, o.result.completed_at) {
                (Some(s), Some(c)) => Some(Timing { started_at: s.into(), completed_at: c.into() }),
                _ => None,
            };
            let relation = crate::node::Relation::from(&node.relation);
            NodeResult {
                unique_id: node.id.clone(),
                resource_type: node.resource_type.clone(),
                status,
                thread: o.result.worker,
                compile: execute,
                execute,
                execution_time: o.result.duration,
                message: o.result.message.clone().or_else(|| o.result.status.is_ok().then(|| "OK".to_string())),
                adapter_message: o.result.status.is_ok().then(|| "OK".to_string()),
                adapter_code: None,
                rows_affected: o.result.rows_affected,
                failures: o.failures,
                compiled_code: None,
                relation_name: (!is_test).then(|| crate::render::builtins::render_relation(&plan.target.adapter_type, &relation)),
            }
        })
        .collect();
    let invocation = Invocation {
        invocation_id: uuid::Uuid::new_v4().to_string(),
        started_at,
        generated_at: chrono::Utc::now(),
        elapsed,
        args: serde_json::json!({ "which": "run", "target": global.target, "vars": global.vars }),
        env: crate::artifacts::run_results::custom_env(),
    };
    crate::artifacts::run_results::write(&target_dir.join("run_results.json"), &invocation, &results)
        .map_err(|d| Diagnostics::from(*d))
}

/// The first SIGINT/SIGTERM cancels the run; a second exits at once.
fn watch_signals(cancel: &CancelToken) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
    let handle = signals.handle();
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            if seen > 1 {
                std::process::exit(EXIT_CANCELLED);
            }
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            cancel.cancel(format!("received {name}"));
        }
    });
    Some(handle)
}

/// Progress: one plain line per node event, or one JSON event per line.
struct Printer<'p> {
    format: Format,
    plan: &'p RunPlan,
    done: usize,
    total: usize,
    terminal: bool,
}

impl<'p> Printer<'p> {
    fn new(format: Format, plan: &'p RunPlan) -> Self {
        Printer { format, plan, done: 0, total: plan.nodes.len(), terminal: std::io::stderr().is_terminal() }
    }

    fn event(&mut self, event: &Event, nodes: &[usize]) {
        let node = &self.plan.nodes[nodes[event.task()]];
        if event.is_terminal() {
            self.done += 1;
        }
        if self.format == Format::Json {
            let mut value = serde_json::to_value(event).unwrap_or_default();
            value["node"] = node.id.clone().into();
            print_json(&value);
            return;
        }
        let line = match event {
            Event::Started { attempt, .. } if *attempt > 1 => format!("START {} (attempt {attempt})", node.id),
            Event::Started { .. } => return,
            Event::Retrying { attempt, delay, message, .. } => {
                format!("RETRY {} after attempt {attempt} in {:?}: {message}", node.id, delay)
            }
            Event::Finished { status, duration, message, .. } => {
                let word = match status {
                    Status::Success => "OK",
                    Status::Warn => "WARN",
                    Status::Error => "ERROR",
                    Status::Cancelled => "CANCELLED",
                    Status::Skipped => "SKIP",
                };
                let detail = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                format!("{word} {} [{:.2}s]{detail}", node.id, duration.as_secs_f64())
            }
            Event::Skipped { .. } => format!("SKIP {}", node.id),
        };
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = writeln!(stderr, "{:>4}/{} {line}", self.done, self.total);
        } else {
            let _ = writeln!(stderr, "{line}");
        }
    }

    fn summary(&self, results: &[NodeOutcome], elapsed: Duration) {
        let count = |s: Status| results.iter().filter(|r| r.result.status == s).count();
        let (pass, warn, error, skip, cancelled) =
            (count(Status::Success), count(Status::Warn), count(Status::Error), count(Status::Skipped), count(Status::Cancelled));
        if self.format == Format::Json {
            print_json(&serde_json::json!({
                "event": "summary", "pass": pass, "warn": warn, "error": error, "skip": skip,
                "cancelled": cancelled, "total": results.len(), "elapsed_s": elapsed.as_secs_f64(),
            }));
            return;
        }
        eprintln!(
            "\nFinished running {} nodes in {:.2}s.\nPASS={pass} WARN={warn} ERROR={error} SKIP={skip} CANCELLED={cancelled} TOTAL={}",
            results.len(),
            elapsed.as_secs_f64(),
            results.len()
        );
        for outcome in results {
            let word = match outcome.result.status {
                Status::Error => "ERROR",
                Status::Cancelled => "CANCELLED",
                _ => continue,
            };
            let node = &self.plan.nodes[outcome.node];
            eprintln!("  {word} {}: {}", node.id, outcome.result.message.as_deref().unwrap_or(""));
        }
    }
}
