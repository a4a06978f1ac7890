//! `[artifacts] remote_path` (Cosmos' `remote_target_path`): the compiled SQL, manifest, plan
//! (and the last change plan) and run_results copied to an object store, under `compile/` after a compile and under
//! `runs/<run_id>/` after a run.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::callback::{action, template};
use crate::spec::Artifacts;
use crate::store;

/// The files a remote copy takes from the target folder.
const INCLUDE: &[&str] = &["compiled/**", "manifest.json", "plan.json", "run_results.json", "orrery/change_plan.json"];

/// Uploading the artifacts of one command gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Copies a compile's artifacts; `Ok(None)` when no remote path is set.
pub fn upload_compile(artifacts: &Value, context: &Value, target_dir: &Path) -> Result<Option<String>, String> {
    upload(artifacts, context, target_dir, "compile")
}

/// Copies a run's artifacts under `runs/<run_id>/`.
pub fn upload_run(artifacts: &Value, context: &Value, target_dir: &Path, run_id: &str) -> Result<Option<String>, String> {
    upload(artifacts, context, target_dir, &format!("runs/{run_id}"))
}

fn upload(artifacts: &Value, context: &Value, target_dir: &Path, under: &str) -> Result<Option<String>, String> {
    let spec: Artifacts = serde_json::from_value(artifacts.clone()).unwrap_or_default();
    let Some(remote_path) = spec.remote_path else { return Ok(None) };
    let base = template::render(&remote_path, context)?;
    let location = store::open(&format!("{}/{under}", base.trim_end_matches('/')), &spec.options).map_err(|e| e.to_string())?;
    let include: Vec<String> = INCLUDE.iter().map(|s| s.to_string()).collect();
    let files = action::target_files(target_dir, Some(&include))?;
    let mut payload = Vec::with_capacity(files.len());
    for relative in &files {
        let bytes = std::fs::read(target_dir.join(relative)).map_err(|e| format!("cannot read {relative}: {e}"))?;
        payload.push((relative.clone(), bytes));
    }
    let count = location.put_all(payload, TIMEOUT).map_err(|e| e.to_string())?;
    Ok(Some(format!("artifacts: {count} files copied to {}", location.url)))
}
