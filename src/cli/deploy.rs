//! `plan`, `apply`, `show` and `state`: Terraform's workflow over the applied state.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::args::{Format, Global, Selection, StateCommand};
use super::output::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, fail, print_diagnostics, print_json};
use super::run::{Places, RunOptions, execute_plan, plan_and_write, state_store, target_dir, upload_compile_artifacts};
use super::session;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::plan::change::{self, ChangeOptions};
use crate::plan::{PlanKind, RunPlan};

/// A line on stdout; a reader that went away (`| head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `orrery plan`'s flags.
pub(super) struct PlanArgs<'a> {
    pub out: Option<&'a Path>,
    pub detailed_exitcode: bool,
    pub replace: &'a [String],
    pub destroy: bool,
    pub refresh: bool,
}

/// Compiles and compares with the state; the change plan and where the pipeline lives.
fn make_plan(global: &Global, selection: &Selection, args: &PlanArgs<'_>) -> Result<(RunPlan, Places), Diagnostics> {
    let cached = CachedCompile::find(global, selection);
    let (plan, places, project_ids, build) = match cached.as_ref().and_then(CachedCompile::reuse) {
        Some((plan, places, project_ids)) => (plan, places, project_ids, None),
        None => {
            let build = session::build(global, &global.pipeline, false)?;
            let (plan, warnings) = plan_and_write(&build, selection, false)?;
            if global.format == Format::Human {
                let mut all = build.warnings.clone();
                all.extend(warnings.clone());
                print_diagnostics(&all);
            }
            let places = Places { target_dir: target_dir(&build), workdir: build.pipeline.dir.clone() };
            let project_ids: HashSet<String> = build.compiled.nodes.iter().map(|n| n.unique_id.clone()).collect();
            if let Some(cached) = &cached {
                cached.remember(&build, &places, warnings.is_empty() && build.warnings.is_empty(), &project_ids);
            }
            (plan, places, project_ids, Some(build))
        }
    };
    let store =
        state_store(&plan)?.ok_or_else(|| Diagnostics::from(Diagnostic::error(crate::codes::state::BACKEND, "the plan names no state")))?;
    if let Some(lock) = store.lock_info() {
        eprintln!("warning: the state is locked by {} for `{}` (lock {}); this plan may be stale", lock.who, lock.operation, lock.id);
    }
    let state = store.read().map_err(Diagnostics::from)?;
    let missing = match (&state, args.refresh) {
        (Some(state), true) => missing_in_warehouse(&plan, state, &places.target_dir)?,
        _ => HashSet::new(),
    };
    let options = ChangeOptions { replace: args.replace.to_vec(), destroy: args.destroy, project_ids, missing };
    let change = change::change_plan(plan, state.as_ref(), &options);
    // The change plan sits with the compile's artifacts, and goes where they are copied.
    change.write(&places.target_dir.join("orrery/change_plan.json"))?;
    if let Some(build) = &build
        && let Some(message) = upload_compile_artifacts(build, &change)?
        && global.format == Format::Human
    {
        eprintln!("{message}");
    }
    if let Some(build) = build {
        build.discard();
    }
    Ok((change, places))
}

/// `plan` against unchanged inputs reuses the run plan of the compile before (see
/// [`crate::cache`]): the state comparison is all that is left to do.
struct CachedCompile {
    key: crate::cache::Key,
    /// The cache entry, the run plan and the target folder.
    entry: std::path::PathBuf,
    plan: std::path::PathBuf,
    target_dir: std::path::PathBuf,
    workdir: std::path::PathBuf,
}

impl CachedCompile {
    /// The inputs of this invocation, when the pipeline can use the cache: no remote
    /// artifacts (they are uploaded by each compile).
    fn find(global: &Global, selection: &Selection) -> Option<CachedCompile> {
        let loaded = crate::spec::load(&global.pipeline).ok()?;
        if loaded.pipeline.artifacts.remote_path.is_some() {
            return None;
        }
        let project_dir = loaded.project_dir();
        let dbt_project: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(project_dir.join("dbt_project.yml")).ok()?).ok()?;
        let target_path = dbt_project.get("target-path").and_then(|v| v.as_str()).unwrap_or("target");
        let target_dir = project_dir.join(target_path);
        let mut profiles: Vec<std::path::PathBuf> = Vec::new();
        if let Some(dir) = loaded.profiles_dir() {
            profiles.push(dir.join("profiles.yml"));
        }
        if let Some(dir) = std::env::var_os("DBT_PROFILES_DIR") {
            profiles.push(std::path::PathBuf::from(dir).join("profiles.yml"));
        }
        if let Some(home) = std::env::var_os("HOME") {
            profiles.push(std::path::PathBuf::from(home).join(".dbt/profiles.yml"));
        }
        let command_line = format!(
            "plan\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            global.pipeline.display(),
            global.target,
            global.vars,
            selection.select,
            selection.exclude,
            std::env::var_os("DBT_PROFILES_DIR"),
        );
        let key = crate::cache::Key::new(&project_dir, &target_dir, &global.pipeline, &profiles, &command_line);
        Some(CachedCompile {
            key,
            entry: target_dir.join("orrery/compile_cache.json"),
            plan: target_dir.join("plan.json"),
            target_dir,
            workdir: loaded.dir,
        })
    }

    fn reuse(&self) -> Option<(RunPlan, Places, HashSet<String>)> {
        let entry = self.key.lookup(&self.entry)?;
        let plan = RunPlan::read(&self.plan).ok()?;
        let places = Places { target_dir: self.target_dir.clone(), workdir: self.workdir.clone() };
        Some((plan, places, entry.project_ids.into_iter().collect()))
    }

    /// Records this compile for the next `plan`; a compile with warnings is not reused.
    fn remember(&self, build: &session::Build, places: &Places, clean: bool, project_ids: &HashSet<String>) {
        if !clean || places.target_dir != self.target_dir {
            crate::cache::forget(&self.entry);
            return;
        }
        let mut ids: Vec<String> = project_ids.iter().cloned().collect();
        ids.sort();
        let project_dir = build.pipeline.project_dir();
        self.key.store(&self.entry, &project_dir, &self.target_dir, crate::render::env_reads(), std::slice::from_ref(&self.plan), ids);
    }
}

/// `--refresh`: the nodes in state whose relation the warehouse does not have.
fn missing_in_warehouse(plan: &RunPlan, state: &crate::state::State, target_dir: &Path) -> Result<HashSet<String>, Diagnostics> {
    let connect_error = |e: crate::adapter::AdapterError| Diagnostics::from(Diagnostic::from(e));
    let mut conn = crate::adapter::connect(&plan.target_info(), target_dir).map_err(connect_error)?;
    let key = |r: &crate::node::Relation| {
        (r.database.clone().unwrap_or_default().to_lowercase(), r.schema.to_lowercase(), r.identifier.to_lowercase())
    };
    let mut missing = HashSet::new();
    let listed = conn.list_relations().map_err(connect_error)?;
    let existing: Option<HashSet<_>> = listed.map(|all| all.iter().map(|(r, _)| key(r)).collect());
    for (id, node) in &state.nodes {
        if node.resource_type == "test" {
            continue;
        }
        let relation = crate::node::Relation::from(&node.relation);
        let exists = match &existing {
            Some(set) => set.contains(&key(&relation)),
            None => conn.relation_exists(&relation).map_err(connect_error)?,
        };
        if !exists {
            missing.insert(id.clone());
        }
    }
    Ok(missing)
}

fn print_plan(global: &Global, plan: &RunPlan) {
    match global.format {
        Format::Human => say!("{}", change::render_human(plan).trim_end()),
        Format::Json => print_json(&serde_json::json!({
            "kind": "change",
            "summary": plan.summary.actions,
            "nodes": plan.nodes.iter().filter(|n| n.action != "unchanged").map(|n| {
                let mut node = serde_json::json!({ "id": n.id, "action": n.action, "reason": n.reason });
                if n.is_late() {
                    node["render"] = serde_json::json!(n.render);
                    node["late_call"] = serde_json::json!(n.late_call);
                    node["statements"] = serde_json::json!("(known after apply)");
                }
                node
            }).collect::<Vec<_>>(),
        })),
    }
}

fn is_url(path: &Path) -> bool {
    path.to_string_lossy().contains("://")
}

/// Splits `scheme://…/dir/file.json` into the store of its directory and the file name.
fn plan_location(path: &Path) -> Result<(crate::store::Location, String), Diagnostic> {
    let text = path.to_string_lossy();
    let (dir, name) = text.rsplit_once('/').unwrap_or(("", &text));
    let location = crate::store::open(dir, &crate::spec::StoreOptions::new()).map_err(|e| {
        Diagnostic::error(crate::codes::plan::REMOTE, format!("plan {text}: {}", e.0))
            .with_help("credentials and endpoints come from the environment (AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, …)")
    })?;
    Ok((location, name.to_string()))
}

/// Writes a plan to a file, or to an object store URL (a CI job plans, another machine applies).
fn save_plan(plan: &RunPlan, path: &Path) -> Result<(), Diagnostic> {
    if !is_url(path) {
        return plan.write(path);
    }
    let (location, name) = plan_location(path)?;
    location
        .put(&name, plan.to_json().into_bytes(), std::time::Duration::from_secs(120))
        .map_err(|e| Diagnostic::error(crate::codes::plan::REMOTE, format!("cannot save the plan: {}", e.0)))
}

/// Reads a plan from a file or an object store URL.
fn load_plan(path: &Path) -> Result<RunPlan, Diagnostic> {
    if !is_url(path) {
        return RunPlan::read(path);
    }
    let (location, name) = plan_location(path)?;
    let bytes = location
        .get(&name, std::time::Duration::from_secs(120))
        .map_err(|e| Diagnostic::error(crate::codes::plan::REMOTE, format!("cannot read the plan: {}", e.0)))?;
    let local = tempfile::NamedTempFile::new().map_err(|e| Diagnostic::error(crate::codes::plan::REMOTE, e.to_string()))?;
    std::fs::write(local.path(), bytes).map_err(|e| Diagnostic::error(crate::codes::plan::REMOTE, e.to_string()))?;
    RunPlan::read(local.path()).map_err(|mut d| {
        d.message = d.message.replace(&local.path().display().to_string(), &path.display().to_string());
        d
    })
}

/// `orrery plan`.
pub(super) fn plan(global: &Global, selection: &Selection, args: &PlanArgs<'_>) -> i32 {
    let (plan, _) = match make_plan(global, selection, args) {
        Ok(planned) => planned,
        Err(diagnostics) => return fail(global.format, &diagnostics),
    };
    print_plan(global, &plan);
    if let Some(out) = args.out {
        if let Err(diagnostic) = save_plan(&plan, out) {
            return fail(global.format, &diagnostic.into());
        }
        if global.format == Format::Human {
            say!("\nSaved the plan to {}; apply it with `orrery apply {}`.", out.display(), out.display());
        }
    }
    let changes = plan.summary.actions.map_or(0, |c| c.changes());
    match (args.detailed_exitcode, changes) {
        (true, 0) | (false, _) => EXIT_OK,
        (true, _) => 2,
    }
}

/// `orrery show PLAN`: a saved plan as `plan` printed it.
pub(super) fn show(global: &Global, path: &Path) -> i32 {
    match load_plan(path) {
        Ok(plan) if plan.kind == PlanKind::Change => {
            print_plan(global, &plan);
            EXIT_OK
        }
        Ok(plan) => {
            match global.format {
                Format::Human => say!(
                    "A run plan of `{}` on target `{}`: {} nodes, {} statements.",
                    plan.pipeline,
                    plan.target.name,
                    plan.summary.nodes,
                    plan.summary.statements
                ),
                Format::Json => print_json(&serde_json::to_value(&plan.summary).unwrap_or_default()),
            }
            EXIT_OK
        }
        Err(diagnostic) => fail(global.format, &diagnostic.into()),
    }
}

/// `orrery apply [PLAN]`.
pub(super) fn apply(global: &Global, selection: &Selection, path: Option<&Path>, auto_approve: bool) -> i32 {
    let (plan, places) = match path {
        Some(path) => match load_plan(path) {
            Ok(plan) if plan.kind == PlanKind::Change => {
                let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
                let target_dir = match path.parent() {
                    _ if is_url(path) => here.clone(),
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                    _ => here.clone(),
                };
                let places = Places { target_dir, workdir: here };
                (plan, places)
            }
            Ok(_) => {
                let diagnostic =
                    Diagnostic::error("apply::not_a_change_plan", format!("{} is a run plan, not a change plan", path.display()))
                        .with_help("make a change plan with `orrery plan -o PLAN`, or run this one with `orrery run --plan`");
                return fail(global.format, &diagnostic.into());
            }
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        },
        None => {
            let args = PlanArgs { out: None, detailed_exitcode: false, replace: &[], destroy: false, refresh: false };
            let (plan, places) = match make_plan(global, selection, &args) {
                Ok(planned) => planned,
                Err(diagnostics) => return fail(global.format, &diagnostics),
            };
            print_plan(global, &plan);
            if plan.summary.actions.map_or(0, |c| c.changes()) == 0 {
                return EXIT_OK;
            }
            if !auto_approve && !confirm() {
                return EXIT_INVALID;
            }
            (plan, places)
        }
    };
    let (lock, recorder) = match record_into_stale_checked(&plan, global.lock_timeout) {
        Ok(held) => held,
        Err(diagnostic) => return fail(global.format, &diagnostic.into()),
    };
    let runnable = change::runnable(&plan);
    let options = RunOptions { plan: None, full_refresh: false, threads: None, run_id: None, event: None, node: None, finish: false };
    let code = match execute_plan(global, &runnable, &places, &options, serde_json::json!({}), recorder.as_ref()) {
        Ok(code) => code,
        Err(diagnostics) => fail(global.format, &diagnostics),
    };
    // The state is written whole before the lock goes.
    drop(recorder);
    drop(lock);
    code
}

/// Refuses a plan made against another state, then takes the lock and starts recording.
fn record_into_stale_checked(
    plan: &RunPlan,
    lock_timeout: std::time::Duration,
) -> Result<(Option<crate::state::Lock>, Option<crate::state::Recorder>), Diagnostic> {
    let Some(store) = state_store(plan)? else {
        return Err(Diagnostic::error(crate::codes::state::BACKEND, "the plan names no state to apply against")
            .with_help("make the plan again with `orrery plan -o PLAN`"));
    };
    // Checked under the lock, so two applies of one plan cannot both pass.
    let lock = store.lock_waiting("apply", lock_timeout)?;
    let state = store.read()?;
    let (serial, lineage) = (state.as_ref().map_or(0, |s| s.serial), state.as_ref().map(|s| s.lineage.clone()));
    if plan.serial != Some(serial) || plan.lineage != lineage {
        return Err(Diagnostic::error(
            "apply::stale_plan",
            format!(
                "the plan is stale: it was made against state serial {}, the state is now at serial {serial}{}",
                plan.serial.unwrap_or(0),
                if plan.lineage != lineage { " of another lineage" } else { "" }
            ),
        )
        .with_help("something ran or applied since; make a new plan with `orrery plan -o PLAN`"));
    }
    let recorder = crate::state::Recorder::begin(store, &plan.pipeline, &plan.target.name)?;
    Ok((Some(lock), Some(recorder)))
}

/// Asks on the terminal; without one, refuses (Terraform's rule for `apply` without a plan).
fn confirm() -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: apply without a plan file needs a terminal to confirm, or --auto-approve");
        return false;
    }
    eprint!("\nApply these changes? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        true
    } else {
        eprintln!("Apply cancelled.");
        false
    }
}

/// `orrery state show | list | rm NODE | unlock LOCK_ID`.
pub(super) fn state(global: &Global, command: &StateCommand) -> i32 {
    let loaded = match crate::spec::load(&global.pipeline) {
        Ok(loaded) => loaded,
        Err(diagnostics) => return fail(global.format, &diagnostics),
    };
    let pipeline = &loaded.pipeline;
    let target = global.target.clone().or_else(|| pipeline.profile.target.clone()).unwrap_or_else(|| "dev".into());
    let store = if pipeline.state.backend == "local" {
        crate::state::StateStore::local(&loaded.dir, &pipeline.pipeline.name, &target)
    } else {
        match crate::state::StateStore::remote(&pipeline.state.backend, &pipeline.state.options, &pipeline.pipeline.name, &target) {
            Ok(store) => store,
            Err(diagnostic) => return fail(global.format, &diagnostic.into()),
        }
    };
    let state = match store.read() {
        Ok(state) => state,
        Err(diagnostic) => return fail(global.format, &diagnostic.into()),
    };
    match command {
        StateCommand::Show => {
            match (&state, global.format) {
                (Some(state), Format::Json) => print_json(&serde_json::to_value(state).unwrap_or_default()),
                (Some(state), Format::Human) => {
                    say!("state {} (lineage {}, serial {})", store.location, state.lineage, state.serial);
                    for (id, node) in &state.nodes {
                        say!("{id}\t{}\t{}\t{}", node.materialized, node.status, node.built_at.to_rfc3339());
                    }
                }
                (None, _) => say!("No state yet at {}.", store.location),
            }
            if let Some(lock) = store.lock_info() {
                say!(
                    "locked: {} by {} (pid {} on {}) for `{}` since {}",
                    lock.id,
                    lock.who,
                    lock.pid,
                    lock.host,
                    lock.operation,
                    lock.when
                );
            }
            EXIT_OK
        }
        StateCommand::List => {
            for id in state.iter().flat_map(|s| s.nodes.keys()) {
                say!("{id}");
            }
            EXIT_OK
        }
        StateCommand::Rm { node } => {
            let Some(mut state) = state else {
                return fail(global.format, &Diagnostic::error(crate::codes::state::RM, "there is no state yet").into());
            };
            let _lock = match store.lock_waiting("state rm", global.lock_timeout) {
                Ok(lock) => lock,
                Err(diagnostic) => return fail(global.format, &diagnostic.into()),
            };
            if state.nodes.remove(node).is_none() {
                let diagnostic = Diagnostic::error(crate::codes::state::RM, format!("`{node}` is not in the state"))
                    .with_help("`orrery state list` shows the ids in it");
                return fail(global.format, &diagnostic.into());
            }
            state.serial += 1;
            match store.write(&state) {
                Ok(()) => {
                    eprintln!("Removed {node} from the state (its relation is left as it is).");
                    EXIT_OK
                }
                Err(diagnostic) => fail(global.format, &diagnostic.into()),
            }
        }
        StateCommand::Unlock { lock_id } => match store.unlock(lock_id) {
            Ok(info) => {
                eprintln!("Released lock {} ({} by {} since {}).", info.id, info.operation, info.who, info.when);
                EXIT_OK
            }
            Err(diagnostic) => {
                fail(global.format, &diagnostic.into());
                EXIT_FAILED
            }
        },
    }
}
