//! `compile` artifacts and `run`: plan → executor → run_results, with progress output.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{Format, Global, Selection};
use super::output::{EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, fail, print_diagnostics, print_json};
use super::session::{self, Build};
use crate::callback::{self, Dispatcher, NodeHooks, Report, RunCounts, RunInfo, RunOutcome};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::exec::plan_run::{PlanRunner, TestBehavior, phases};
use crate::exec::{CancelToken, Event as ExecEvent, Options, RunReport, Status};
use crate::plan::{PlanOptions, RunPlan};
use crate::spec::Event;
use crate::{adapter, artifacts, plan};

pub(super) fn target_dir(build: &Build) -> PathBuf {
    build.compiled.project_root.join(&build.compiled.target_path)
}

/// Builds the run plan of a compiled project's selection.
pub(super) fn run_plan(build: &Build, selection: &Selection, full_refresh: bool) -> Result<(RunPlan, Diagnostics), Diagnostics> {
    let t = crate::timing::phase("plan.select");
    let (graph, selected) = session::select(build, selection)?;
    let node_callbacks = session::callback_nodes(build, &graph)?;
    let nodes = graph.topo_order(&selected);
    drop(t);
    let pipeline = &build.pipeline.pipeline;
    let options = PlanOptions {
        full_refresh: full_refresh || pipeline.execution.full_refresh,
        pipeline: pipeline.pipeline.name.clone(),
        execution: to_value(&pipeline.execution),
        callbacks: pipeline.callbacks.iter().map(to_value).collect(),
        node_callbacks,
        artifacts: to_value(&pipeline.artifacts),
        state: state_value(build),
        runtime_vars: pipeline.export.airflow.runtime_vars.clone(),
    };
    let (plan, diagnostics) = plan::build_run_plan(&build.compiled, &nodes, &options);
    if diagnostics.has_errors() { Err(diagnostics) } else { Ok((plan, diagnostics)) }
}

/// `[state]` as the plan carries it: with the local backend, the state file's absolute path,
/// so a run or apply from the plan alone records where `plan` reads.
fn state_value(build: &Build) -> serde_json::Value {
    let pipeline = &build.pipeline.pipeline;
    let mut value = to_value(&pipeline.state);
    if pipeline.state.backend == "local" {
        let store = crate::state::StateStore::local(&build.pipeline.dir, &pipeline.pipeline.name, &build.compiled.target.name);
        if let Some(path) = store.path() {
            value["path"] = path.display().to_string().into();
        }
    }
    value
}

/// The state a plan records into and is compared with: `[state] backend` as the plan carries it.
pub(super) fn state_store(plan: &RunPlan) -> Result<Option<crate::state::StateStore>, Diagnostic> {
    let backend = plan.state.get("backend").and_then(serde_json::Value::as_str).unwrap_or("local");
    if backend == "local" {
        let path = plan.state.get("path").and_then(serde_json::Value::as_str);
        return Ok(path.map(|p| crate::state::StateStore::at_path(PathBuf::from(p))));
    }
    let options: crate::spec::StoreOptions =
        plan.state.get("options").and_then(|o| serde_json::from_value(o.clone()).ok()).unwrap_or_default();
    crate::state::StateStore::remote(backend, &options, &plan.pipeline, &plan.target.name).map(Some)
}

/// A spec table as the plan carries it (plans keep `[execution]` and the rest as given).
fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Writes target/compiled/**, target/manifest.json and target/plan.json; returns a summary line.
pub(super) fn write_compile_artifacts(build: &Build, selection: &Selection, full_refresh: bool) -> Result<String, Diagnostics> {
    let (plan, _warnings) = plan_and_write(build, selection, full_refresh)?;
    let remote = upload_compile_artifacts(build, &plan)?;
    let s = &plan.summary;
    let mut summary = format!(
        "Compiled {} models, {} seeds, {} snapshots, {} tests ({} statements) into {}",
        s.models,
        s.seeds,
        s.snapshots,
        s.tests,
        s.statements,
        super::super::diagnostics::display_path(&target_dir(build)).display()
    );
    if let Some(remote) = remote {
        summary.push('\n');
        summary.push_str(&remote);
    }
    // `compile` exits next: skip freeing the plan's statements (see Build::discard).
    std::mem::forget(plan);
    Ok(summary)
}

/// `[artifacts] remote_path`: a compile's files go under `compile/`.
pub(super) fn upload_compile_artifacts(build: &Build, plan: &RunPlan) -> Result<Option<String>, Diagnostics> {
    if plan.artifacts.get("remote_path").is_none_or(serde_json::Value::is_null) {
        return Ok(None);
    }
    crate::secrets::register_environment();
    let now = chrono::Utc::now();
    let places = Places { target_dir: target_dir(build), workdir: build.pipeline.dir.clone() };
    let run = run_info(plan, &places, callback::new_run_id(now), now, serde_json::json!({}));
    artifacts::remote::upload_compile(&plan.artifacts, &run.run_context(), &target_dir(build)).map_err(|message| {
        Diagnostics::from(
            Diagnostic::error(crate::codes::artifacts::REMOTE, format!("cannot copy the artifacts: {}", crate::secrets::scrub(&message)))
                .with_help("check [artifacts] remote_path and its options, and the store's credentials in the environment"),
        )
    })
}

/// The run plan of a build and its selection, with the compile's artifacts written: the
/// manifest (which describes the whole project, whatever is selected, as dbt's does) is written
/// while the plan is made, then the compiled SQL and the plan itself.
pub(super) fn plan_and_write(build: &Build, selection: &Selection, full_refresh: bool) -> Result<(RunPlan, Diagnostics), Diagnostics> {
    let _t = crate::timing::phase("plan+write");
    let (manifest, planned) = rayon::join(
        || {
            let _t = crate::timing::phase("write.manifest");
            artifacts::manifest::write(&build.compiled)
        },
        || {
            let t = crate::timing::phase("plan");
            let (plan, warnings) = run_plan(build, selection, full_refresh)?;
            drop(t);
            let (compiled, written) = write_compiled_and_plan(build, &plan);
            let mut problems = Diagnostics::new();
            for diagnostic in [compiled.err(), written.err()].into_iter().flatten() {
                problems.push(diagnostic);
            }
            if problems.is_empty() { Ok((plan, warnings)) } else { Err(problems) }
        },
    );
    match (manifest, planned) {
        (Ok(()), planned) => planned,
        (Err(diagnostic), Ok(_)) => Err(Diagnostics::from(diagnostic)),
        (Err(diagnostic), Err(mut problems)) => {
            problems.push(diagnostic);
            Err(problems)
        }
    }
}

/// The compiled SQL files and `plan.json`, written at the same time.
fn write_compiled_and_plan(build: &Build, plan: &RunPlan) -> (Result<(), Diagnostic>, Result<(), Diagnostic>) {
    rayon::join(
        || {
            let _t = crate::timing::phase("write.compiled");
            artifacts::compiled::write(&build.compiled)
        },
        || {
            let _t = crate::timing::phase("write.plan");
            let dir = target_dir(build);
            plan.write_over(&dir.join("plan.json"), Some(&crate::replace::spare_for(&dir, "plan.json")))
        },
    )
}

/// `orrery export airflow`: the DAG file and the run plan it reads, side by side.
pub(super) fn export_airflow(global: &Global, selection: &Selection, out: &Path, plan_path: Option<&Path>) -> i32 {
    let spec = crate::spec::load(&global.pipeline).ok();
    let plan = match plan_path {
        Some(path) => match RunPlan::read(path) {
            Ok(plan) => plan,
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        },
        None => {
            let build = match session::build(global, &global.pipeline, false) {
                Ok(build) => build,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            match plan_and_write(&build, selection, false) {
                Ok((plan, _)) => plan,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            }
        }
    };
    let settings = spec.map(|s| s.pipeline.export.airflow).unwrap_or_default();
    let plan_file = format!("{}.plan.json", plan.pipeline);
    let dag = crate::export::airflow::dag_file(&plan, &settings, &plan_file);
    let dag_path = out.join(format!("{}.py", plan.pipeline));
    let written = std::fs::create_dir_all(out)
        .map_err(|e| Diagnostic::error(crate::codes::export::WRITE, format!("cannot create {}: {e}", out.display())))
        .and_then(|_| plan.write(&out.join(&plan_file)))
        .and_then(|_| {
            std::fs::write(&dag_path, dag)
                .map_err(|e| Diagnostic::error(crate::codes::export::WRITE, format!("cannot write {}: {e}", dag_path.display())))
        });
    match written {
        Ok(()) => {
            eprintln!("Wrote the Airflow DAG `{}` to {} (with {plan_file}).", plan.pipeline, dag_path.display());
            EXIT_OK
        }
        Err(diagnostic) => fail(global.format, &diagnostic.into()),
    }
}

/// `orrery run`'s own flags.
pub(super) struct RunOptions<'a> {
    pub plan: Option<&'a Path>,
    pub full_refresh: bool,
    pub threads: Option<usize>,
    pub run_id: Option<String>,
    pub event: Option<String>,
    /// `--node`: one node of the plan (and with `after_each` its tests).
    pub node: Option<String>,
    /// `--finish`: the end of a scheduled run whose tasks ran with `--node`.
    pub finish: bool,
}

/// Where a run's files go: the dbt target folder, and the directory callbacks run in.
pub(super) struct Places {
    pub target_dir: PathBuf,
    pub workdir: PathBuf,
}

/// `orrery run`: compile (unless `--plan`), then execute.
pub(super) fn run(global: &Global, selection: &Selection, options: &RunOptions<'_>) -> i32 {
    let event = match parse_event(options.event.as_deref()) {
        Ok(event) => event,
        Err(diagnostic) => return fail(global.format, &diagnostic.into()),
    };
    let (plan, places, warnings) = match options.plan {
        Some(path) => match RunPlan::read(path) {
            Ok(plan) => {
                let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                (plan, Places { target_dir: dir, workdir }, Diagnostics::new())
            }
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        },
        None => {
            let build = match session::build(global, &global.pipeline, options.full_refresh) {
                Ok(build) => build,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            let (plan, mut warnings) = match plan_and_write(&build, selection, options.full_refresh) {
                Ok(planned) => planned,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            warnings.extend(build.warnings.clone());
            (plan, Places { target_dir: target_dir(&build), workdir: build.pipeline.dir.clone() }, warnings)
        }
    };
    if global.format == Format::Human {
        print_diagnostics(&warnings);
    }
    if options.finish {
        return match finish_run(global, &plan, &places, options, event) {
            Ok(code) => code,
            Err(diagnostics) => fail(global.format, &diagnostics),
        };
    }
    let (plan, one_node) = match &options.node {
        Some(id) => match one_node(plan, id) {
            Ok(plan) => (plan, true),
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        },
        None => (plan, false),
    };
    let held = if one_node {
        // Tasks of one scheduled run go in parallel: each takes the lock only to record.
        state_store(&plan)
            .map(|store| (None, store.map(|s| crate::state::Recorder::per_node(s, global.lock_timeout, &plan.pipeline, &plan.target.name))))
    } else {
        record_into_state(&plan, "run", global.lock_timeout)
    };
    let (_lock, recorder) = match held {
        Ok(held) => held,
        Err(diagnostic) => return fail(global.format, &diagnostic.into()),
    };
    match execute_plan(global, &plan, &places, options, event, recorder.as_ref()) {
        Ok(code) => code,
        Err(diagnostics) => fail(global.format, &diagnostics),
    }
}

/// Takes the state's lock for `operation` and starts recording into it (when the plan names
/// a state orrery can write).
pub(super) fn record_into_state(
    plan: &RunPlan,
    operation: &str,
    lock_timeout: Duration,
) -> Result<(Option<crate::state::Lock>, Option<crate::state::Recorder>), Diagnostic> {
    let Some(store) = state_store(plan)? else { return Ok((None, None)) };
    let lock = store.lock_waiting(operation, lock_timeout)?;
    let recorder = crate::state::Recorder::begin(store, &plan.pipeline, &plan.target.name)?;
    Ok((Some(lock), Some(recorder)))
}

/// `run --finish --run-id ID`: the last task of a scheduled run fires the pipeline-scope
/// callbacks with the run's outcome, read from the run_results its tasks merged, and copies the
/// artifacts.
fn finish_run(
    global: &Global,
    plan: &RunPlan,
    places: &Places,
    options: &RunOptions<'_>,
    event: serde_json::Value,
) -> Result<i32, Diagnostics> {
    let Some(run_id) = options.run_id.clone() else {
        return Err(Diagnostic::error(crate::codes::run::FINISH, "--finish needs the --run-id of the run it ends")
            .with_help("pass the scheduler's run id, as the node tasks did")
            .into());
    };
    let path = places.target_dir.join("run_results.json");
    let results: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|r: &serde_json::Value| r["args"]["run_id"] == run_id.as_str())
        .unwrap_or_else(|| serde_json::json!({ "results": [] }));
    let mut counts = RunCounts::default();
    let mut first_error = None;
    for result in results["results"].as_array().into_iter().flatten() {
        match result["status"].as_str().unwrap_or_default() {
            "success" | "pass" | "warn" => counts.success += 1,
            "skipped" => counts.skipped += 1,
            _ => {
                counts.failure += 1;
                first_error.get_or_insert_with(|| {
                    format!("{}: {}", result["unique_id"].as_str().unwrap_or("?"), result["message"].as_str().unwrap_or("failed"))
                });
            }
        }
    }
    register_secrets(plan);
    let now = chrono::Utc::now();
    let started_at = results["metadata"]["invocation_started_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&chrono::Utc));
    let dispatcher = dispatcher(global, plan, run_info(plan, places, run_id.clone(), started_at, event))?;
    let status = if counts.failure > 0 { Event::Failure } else { Event::Success };
    let outcome = RunOutcome {
        status,
        error: first_error,
        duration_ms: u64::try_from((now - started_at).num_milliseconds()).unwrap_or(0),
        run_results_path: path.display().to_string(),
        counts,
    };
    let required = dispatcher.fire_pipeline(&outcome);
    dispatcher.wait();
    let printer = Printer::new(global.format, plan);
    match artifacts::remote::upload_run(&plan.artifacts, &dispatcher.run().run_context(), &places.target_dir, &run_id) {
        Ok(Some(message)) => printer.note(&message),
        Ok(None) => {}
        Err(message) => printer.note(&format!("artifacts: {message}")),
    }
    if let Some(message) = &required {
        printer.note(message);
    }
    Ok(if status == Event::Success && required.is_none() { EXIT_OK } else { EXIT_FAILED })
}

/// The plan cut down to one node, with its tests when they run after each model.
fn one_node(mut plan: RunPlan, id: &str) -> Result<RunPlan, Diagnostic> {
    let Some(node) = plan.nodes.iter().find(|n| n.id == id || n.name == id) else {
        let names = plan.nodes.iter().map(|n| n.id.as_str());
        let help = match crate::diagnostics::did_you_mean(id, names) {
            Some(similar) => format!("did you mean `{similar}`?"),
            None => "`orrery graph --format json` lists the plan's nodes".to_string(),
        };
        return Err(Diagnostic::error(crate::codes::run::UNKNOWN_NODE, format!("the plan has no node `{id}`")).with_help(help));
    };
    let id = node.id.clone();
    let with_tests = execution_setting::<String>(&plan, "test_behavior").is_none_or(|b| b == "after_each");
    // Its tests, when it is all they read; a test of several models is a task of its own.
    let is_own_test = |n: &crate::plan::PlanNode| n.resource_type == "test" && n.depends_on == [id.clone()];
    let keep_tests = with_tests && node.resource_type != "test";
    plan.nodes.retain(|n| n.id == id || (keep_tests && is_own_test(n)));
    // on-run-start / on-run-end run with every task, as dbt runs them with every invocation
    // (and Cosmos with every task): they are written to be repeatable.
    Ok(plan)
}

/// `--event`: inline JSON or `@file`; `{}` when not given.
fn parse_event(given: Option<&str>) -> Result<serde_json::Value, Diagnostic> {
    let Some(given) = given else { return Ok(serde_json::json!({})) };
    let (text, origin) = match given.strip_prefix('@') {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (text, path.to_string()),
            Err(err) => {
                return Err(Diagnostic::error(crate::codes::cli::EVENT, format!("cannot read --event file {path}: {err}"))
                    .with_help("pass inline JSON, or @FILE naming a readable JSON file"));
            }
        },
        None => (given.to_string(), "--event".to_string()),
    };
    serde_json::from_str(&text).map_err(|err| {
        let source = crate::diagnostics::SourceFile::new(origin.clone(), text.clone());
        Diagnostic::error(crate::codes::cli::EVENT, format!("{origin} is not valid JSON: {err}"))
            .at_line_col(&source, err.line(), err.column())
            .with_help("pass a JSON object, e.g. --event '{\"trigger\": \"manual\"}'")
    })
}

fn execution_setting<T: serde::de::DeserializeOwned>(plan: &RunPlan, key: &str) -> Option<T> {
    plan.execution.get(key).and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// A duration of the plan's `execution` settings: an error when the plan holds one that is
/// not a duration or is too long (a plan file may have been written by hand).
fn duration_setting(plan: &RunPlan, key: &str) -> Result<Option<Duration>, Diagnostic> {
    let Some(value) = plan.execution.get(key).filter(|v| !v.is_null()) else { return Ok(None) };
    let text = value.as_str().unwrap_or_default();
    crate::duration::parse(text).map(Some).map_err(|e| {
        Diagnostic::error(crate::codes::run::INVALID_DURATION, format!("the plan's execution.{key}: invalid duration `{text}`: {e}"))
            .with_help("write a number and a unit of at most 365 days, e.g. `5s`, `30m`, `1h 30m`, and compile the plan again")
    })
}

/// Remembers the plan's credentials (resolved from the environment) so no output shows them.
fn register_secrets(plan: &RunPlan) {
    crate::secrets::register_environment();
    for (key, value) in &plan.connection {
        if crate::project::profiles::is_secret(key, value)
            && let Ok(Some(resolved)) = adapter::resolve_setting(key, value)
        {
            crate::secrets::register(&resolved);
        }
    }
}

pub(super) fn execute_plan(
    global: &Global,
    plan: &RunPlan,
    places: &Places,
    run_options: &RunOptions<'_>,
    event: serde_json::Value,
    recorder: Option<&crate::state::Recorder>,
) -> Result<i32, Diagnostics> {
    let bound;
    let plan = if plan.runtime_vars.is_empty() {
        plan
    } else {
        let mut with_values = plan.clone();
        with_values.bind_runtime_vars(&session::cli_vars(global.vars.as_deref())?)?;
        bound = with_values;
        &bound
    };
    register_secrets(plan);
    let full_refresh = run_options.full_refresh || execution_setting::<bool>(plan, "full_refresh").unwrap_or(false);
    let options = Options {
        threads: run_options
            .threads
            .or_else(|| execution_setting(plan, "threads"))
            .or(plan.target.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        retries: execution_setting(plan, "retries").unwrap_or(0),
        retry_delay: duration_setting(plan, "retry_delay")?.unwrap_or(Duration::from_secs(5)),
        node_timeout: duration_setting(plan, "node_timeout")?,
        fail_fast: execution_setting(plan, "fail_fast").unwrap_or(false),
        max_in_flight: None,
    };
    let deferred = execution_setting::<String>(plan, "mode").as_deref() == Some("deferred");
    let behavior = TestBehavior::parse(&execution_setting::<String>(plan, "test_behavior").unwrap_or_default());
    let phases = phases(plan, behavior)?;

    let run_started = chrono::Utc::now();
    let run_id = run_options.run_id.clone().unwrap_or_else(|| callback::new_run_id(run_started));
    let dispatcher = dispatcher(global, plan, run_info(plan, places, run_id, run_started, event))?;

    let target = plan.target_info();
    let mut conn = adapter::connect(&target, &places.target_dir).map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
    for sql in plan.hooks.create_schemas.iter().chain(&plan.hooks.on_run_start) {
        conn.execute(sql).map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
    }
    let max_in_flight = execution_setting::<usize>(plan, "max_in_flight").unwrap_or(64).max(1);
    let submitter = if deferred { conn.submitter(max_in_flight) } else { None };
    if deferred && submitter.is_none() {
        eprintln!(
            "warning: mode = \"deferred\" runs blocking on {}: the adapter cannot submit statements without waiting for them",
            plan.target.adapter_type
        );
    }
    let options = Options { max_in_flight: submitter.as_ref().map(|_| max_in_flight), ..options };

    let cancel = CancelToken::new();
    let _signals = watch_signals(&cancel);
    let started = std::time::Instant::now();
    let mut reports: Vec<PhaseReport> = Vec::new();
    let mut printer = Printer::new(global.format, plan);
    for (index, phase) in phases.iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let base = conn.try_clone().map_err(|e| Diagnostics::from(Diagnostic::from(e)))?;
        let runner = PlanRunner::new(plan, phase, base, full_refresh).with_submitter(submitter.clone());
        let hooks = NodeHooks::new(&runner, plan, phase, &dispatcher, behavior);
        let report = std::thread::scope(|scope| {
            let printer = &mut printer;
            let nodes = &phase.nodes;
            scope.spawn(move || {
                for event in rx {
                    printer.event(&event, nodes);
                    if let (Some(recorder), ExecEvent::Finished { task, status, .. }) = (recorder, &event)
                        && status.is_ok()
                    {
                        let word = if *status == Status::Warn { "warn" } else { "success" };
                        if let Err(diagnostic) = recorder.record(&plan.nodes[nodes[*task]], word) {
                            eprintln!("warning: {}", diagnostic.message);
                        }
                    }
                }
            });
            let report = crate::exec::execute(&phase.dag, &options, &hooks, &cancel, Some(&tx));
            drop(tx);
            report
        });
        let report = report.map_err(|d| Diagnostics::from(*d))?;
        hooks.finish(cancel.reason().as_deref());
        let failures = (0..phase.nodes.len()).map(|t| runner.failures(t)).collect();
        // Where dbt writes a node's compiled SQL, for the nodes rendered here.
        if let Err(diagnostic) = crate::artifacts::compiled::write_realized(&places.target_dir, &runner.take_realized_sql()) {
            eprintln!("warning: {}", diagnostic.message);
        }
        reports.push(PhaseReport { phase: index, report, failures, failed_late: hooks.failed_late() });
        if cancel.is_cancelled() {
            break;
        }
    }
    if !cancel.is_cancelled() {
        for sql in &plan.hooks.on_run_end {
            if let Err(err) = conn.execute(sql) {
                eprintln!("on-run-end hook failed: {}", crate::secrets::scrub(&err.message));
            }
        }
    }
    drop(conn);
    if let Some(recorder) = recorder
        && let Err(diagnostic) = recorder.finish()
    {
        eprintln!("warning: {}", diagnostic.message);
    }
    let elapsed = started.elapsed();
    let results = collect_results(&phases, &reports);
    let run_results_path = places.target_dir.join("run_results.json");
    let merge_into = run_options.node.as_ref().and(run_options.run_id.as_deref());
    write_run_results(global, plan, &places.target_dir, &results, run_started, elapsed, merge_into)?;

    let run_status = if cancel.is_cancelled() {
        Event::Cancelled
    } else if results.iter().any(|r| matches!(r.result.status, Status::Error | Status::Cancelled)) {
        Event::Failure
    } else {
        Event::Success
    };
    let outcome = RunOutcome {
        status: run_status,
        error: cancel.reason().or_else(|| first_error(plan, &results)),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        run_results_path: run_results_path.display().to_string(),
        counts: run_counts(&results),
    };
    // With --node the scheduler's last task (`run --finish`) fires the run's callbacks, once.
    let pipeline_failure = if run_options.node.is_some() { None } else { dispatcher.fire_pipeline(&outcome) };
    dispatcher.wait();
    let remote =
        artifacts::remote::upload_run(&plan.artifacts, &dispatcher.run().run_context(), &places.target_dir, &dispatcher.run().run_id);
    match remote {
        Ok(Some(message)) => printer.note(&message),
        Ok(None) => {}
        Err(message) => printer.note(&format!("artifacts: {}", crate::secrets::scrub(&message))),
    }
    printer.summary(&results, elapsed);
    if let Some(message) = &pipeline_failure {
        printer.note(message);
    }
    Ok(match run_status {
        Event::Cancelled => EXIT_CANCELLED,
        Event::Failure => EXIT_FAILED,
        Event::Success if pipeline_failure.is_some() => EXIT_FAILED,
        Event::Success => EXIT_OK,
    })
}

/// What every callback of one run shares.
fn run_info(
    plan: &RunPlan,
    places: &Places,
    run_id: String,
    started_at: chrono::DateTime<chrono::Utc>,
    event: serde_json::Value,
) -> RunInfo {
    RunInfo {
        run_id,
        pipeline: plan.pipeline.clone(),
        started_at,
        event,
        target_name: plan.target.name.clone(),
        target_type: plan.target.adapter_type.clone(),
        workdir: places.workdir.clone(),
        target_dir: places.target_dir.clone(),
    }
}

/// The plan's callbacks for one run, reporting as they finish.
fn dispatcher(global: &Global, plan: &RunPlan, run: RunInfo) -> Result<Dispatcher, Diagnostics> {
    let format = global.format;
    Dispatcher::from_plan(&plan.callbacks, run, Box::new(move |report| print_callback(format, report)))
}

fn first_error(plan: &RunPlan, results: &[NodeOutcome]) -> Option<String> {
    results
        .iter()
        .find(|r| matches!(r.result.status, Status::Error | Status::Cancelled))
        .map(|r| format!("{}: {}", plan.nodes[r.node].id, r.result.message.as_deref().unwrap_or("failed")))
}

fn run_counts(results: &[NodeOutcome]) -> RunCounts {
    let mut counts = RunCounts::default();
    for r in results {
        match r.result.status {
            Status::Success | Status::Warn => counts.success += 1,
            Status::Error => counts.failure += 1,
            Status::Skipped => counts.skipped += 1,
            Status::Cancelled => counts.cancelled += 1,
        }
    }
    counts
}

fn print_callback(format: Format, report: &Report) {
    if format == Format::Json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        value["on"] = value["event"].clone();
        value["event"] = "callback".into();
        print_json(&value);
        return;
    }
    let on = report.node.as_deref().map_or_else(|| "the pipeline".to_string(), |n| n.to_string());
    let word = if report.ok { "CALLBACK" } else { "CALLBACK FAILED" };
    eprintln!("{word} {} ({}) for {on}: {}", report.callback, callback::event_name(report.event), report.message);
}

/// One executed (or skipped) plan node.
struct NodeOutcome {
    node: usize,
    result: crate::exec::TaskResult,
    failures: Option<u64>,
}

struct PhaseReport {
    phase: usize,
    report: RunReport,
    failures: Vec<Option<u64>>,
    /// Tasks a required success callback failed after they were recorded.
    failed_late: std::collections::HashMap<usize, String>,
}

/// Every node that was part of a phase, with its result.
fn collect_results(phases: &[crate::exec::plan_run::Phase], reports: &[PhaseReport]) -> Vec<NodeOutcome> {
    let mut out = Vec::new();
    for phase_report in reports {
        for (task, result) in phase_report.report.results.iter().enumerate() {
            let mut result = result.clone();
            if let Some(message) = phase_report.failed_late.get(&task) {
                result.status = Status::Error;
                result.message = Some(message.clone());
            }
            out.push(NodeOutcome { node: phases[phase_report.phase].nodes[task], result, failures: phase_report.failures[task] });
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
    merge_into: Option<&str>,
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
                message: o
                    .result
                    .message
                    .as_deref()
                    .map(crate::secrets::scrub)
                    .or_else(|| o.result.status.is_ok().then(|| "OK".to_string())),
                adapter_message: o.result.status.is_ok().then(|| "OK".to_string()),
                adapter_code: None,
                rows_affected: o.result.rows_affected,
                failures: o.failures,
                compiled_code: None,
                relation_name: (!is_test).then(|| relation.render_dbt(crate::relation::QuotePolicy::default())),
            }
        })
        .collect();
    let invocation = Invocation {
        invocation_id: uuid::Uuid::new_v4().to_string(),
        started_at,
        generated_at: chrono::Utc::now(),
        elapsed,
        args: serde_json::json!({ "which": "run", "target": global.target, "vars": global.vars, "run_id": merge_into }),
        env: crate::artifacts::run_results::custom_env(),
    };
    let path = target_dir.join("run_results.json");
    match merge_into {
        // The tasks of one scheduled run add up to one run_results.
        Some(run_id) => crate::artifacts::run_results::merge(&path, run_id, &invocation, &results),
        None => crate::artifacts::run_results::write(&path, &invocation, &results),
    }
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

    fn event(&mut self, event: &ExecEvent, nodes: &[usize]) {
        let node = &self.plan.nodes[nodes[event.task()]];
        if event.is_terminal() {
            self.done += 1;
        }
        if self.format == Format::Json {
            let mut value = serde_json::to_value(event).unwrap_or_default();
            value["node"] = node.id.clone().into();
            crate::secrets::scrub_json(&mut value);
            print_json(&value);
            return;
        }
        let line = match event {
            ExecEvent::Started { attempt, .. } if *attempt > 1 => format!("START {} (attempt {attempt})", node.id),
            ExecEvent::Started { .. } => return,
            ExecEvent::Retrying { attempt, delay, message, .. } => {
                format!("RETRY {} after attempt {attempt} in {:?}: {message}", node.id, delay)
            }
            ExecEvent::Finished { status, duration, message, .. } => {
                let word = match status {
                    Status::Success => "OK",
                    Status::Warn => "WARN",
                    Status::Error => "ERROR",
                    Status::Cancelled => "CANCELLED",
                    Status::Skipped => "SKIP",
                };
                let detail = message.as_deref().map(|m| format!(": {}", crate::secrets::scrub(m))).unwrap_or_default();
                format!("{word} {} [{:.2}s]{detail}", node.id, duration.as_secs_f64())
            }
            ExecEvent::Skipped { .. } => format!("SKIP {}", node.id),
        };
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = writeln!(stderr, "{:>4}/{} {line}", self.done, self.total);
        } else {
            let _ = writeln!(stderr, "{line}");
        }
    }

    /// A line outside the node events (artifacts, a required pipeline callback).
    fn note(&self, message: &str) {
        let message = crate::secrets::scrub(message);
        if self.format == Format::Json {
            print_json(&serde_json::json!({ "event": "note", "message": message }));
        } else {
            eprintln!("{message}");
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
            eprintln!("  {word} {}: {}", node.id, crate::secrets::scrub(outcome.result.message.as_deref().unwrap_or("")));
        }
    }
}
