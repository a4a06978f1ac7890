//! Applied state: what `run` and `apply` built, per pipeline and target, with a serial and a
//! lineage id (Terraform's), and a lock that guards `run` and `apply`.
//!
//! The local backend keeps `.orrery/state/<pipeline>/<target>.json` beside orrery.toml,
//! written atomically (a temporary file renamed over it); the lock is `<target>.lock` beside
//! it, created exclusively.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diagnostics::Diagnostic;
use crate::plan::PlanRelation;

pub const FORMAT_VERSION: u32 = 1;

/// Everything orrery knows it built for one pipeline and target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format_version: u32,
    /// Made once, when the state is first written; a plan made against another lineage is stale.
    pub lineage: String,
    /// Bumped by every `run` and `apply`; a plan made against another serial is stale.
    pub serial: u64,
    pub pipeline: String,
    pub target: String,
    /// By node id.
    pub nodes: BTreeMap<String, NodeState>,
}

/// One node as it was last built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    pub resource_type: String,
    pub materialized: String,
    pub relation: PlanRelation,
    /// The plan node's fingerprint when it was built.
    pub fingerprint: String,
    /// A hash of its statements alone, to tell an SQL change from a config change.
    pub statements_hash: String,
    /// `success` or `warn`.
    pub status: String,
    pub built_at: DateTime<Utc>,
    /// The serial of the run or apply that built it.
    pub serial: u64,
}

impl State {
    pub fn new(pipeline: &str, target: &str) -> State {
        State {
            format_version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            pipeline: pipeline.to_string(),
            target: target.to_string(),
            nodes: BTreeMap::new(),
        }
    }
}

/// Where a pipeline's state for one target lives.
#[derive(Clone, Debug)]
pub struct StateStore {
    pub path: PathBuf,
}

impl StateStore {
    /// The local backend: `<dir>/.orrery/state/<pipeline>/<target>.json`.
    pub fn local(pipeline_dir: &Path, pipeline: &str, target: &str) -> StateStore {
        StateStore { path: pipeline_dir.join(".orrery/state").join(pipeline).join(format!("{target}.json")) }
    }

    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// The state, or `None` when nothing was recorded yet.
    pub fn read(&self) -> Result<Option<State>, Diagnostic> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Diagnostic::error("state::read", format!("cannot read state {}: {err}", self.path.display()))
                    .with_file(&self.path));
            }
        };
        serde_json::from_str(&text).map(Some).map_err(|err| {
            Diagnostic::error("state::invalid", format!("state {} is not valid: {err}", self.path.display()))
                .with_file(&self.path)
                .with_help("restore it from a backup, or remove it to plan everything as new")
        })
    }

    /// Writes the state atomically: a crash leaves the old file or the new one, never half.
    pub fn write(&self, state: &State) -> Result<(), Diagnostic> {
        let fail = |err: std::io::Error| {
            Diagnostic::error("state::write", format!("cannot write state {}: {err}", self.path.display())).with_file(&self.path)
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        let text = serde_json::to_vec_pretty(state).map_err(|e| fail(e.into()))?;
        file.write_all(&text).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)?;
        file.as_file().sync_all().map_err(fail)?;
        file.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// Takes the lock for `operation`, or says who holds it.
    pub fn lock(&self, operation: &str) -> Result<Lock, Diagnostic> {
        let path = self.lock_path();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let info = LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            when: Utc::now(),
        };
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let text = serde_json::to_vec_pretty(&info).unwrap_or_default();
                file.write_all(&text).and_then(|_| file.sync_all()).map_err(|err| {
                    Diagnostic::error("state::lock", format!("cannot write lock {}: {err}", path.display()))
                })?;
                Ok(Lock { path, info })
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(self.held(&path)),
            Err(err) => Err(Diagnostic::error("state::lock", format!("cannot create lock {}: {err}", path.display()))),
        }
    }

    /// The lock's holder, if there is one.
    pub fn lock_info(&self) -> Option<LockInfo> {
        let text = std::fs::read_to_string(self.lock_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn held(&self, path: &Path) -> Diagnostic {
        match self.lock_info() {
            Some(info) => {
                let stale = info.is_stale();
                let message = format!(
                    "the state is locked{}: lock {} held by {} (pid {} on {}) for `{}` since {}",
                    if stale { " by a process that is gone" } else { "" },
                    info.id,
                    info.who,
                    info.pid,
                    info.host,
                    info.operation,
                    info.when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                let help = if stale {
                    format!("the holder is no longer running: release the lock with `orrery state unlock {}`", info.id)
                } else {
                    format!("wait for it to finish, or if it is gone run `orrery state unlock {}`", info.id)
                };
                Diagnostic::error("state::locked", message).with_help(help).with_file(path)
            }
            None => Diagnostic::error("state::locked", format!("the state is locked ({} exists)", path.display()))
                .with_help("remove the lock file if no orrery is running"),
        }
    }

    /// Releases a lock by id (`orrery state unlock`).
    pub fn unlock(&self, id: &str) -> Result<LockInfo, Diagnostic> {
        let path = self.lock_path();
        match self.lock_info() {
            Some(info) if info.id == id => {
                std::fs::remove_file(&path).map_err(|err| {
                    Diagnostic::error("state::unlock", format!("cannot remove {}: {err}", path.display()))
                })?;
                Ok(info)
            }
            Some(info) => Err(Diagnostic::error("state::unlock", format!("the lock's id is {}, not {id}", info.id))
                .with_help(format!("run `orrery state unlock {}` if that is the one to release", info.id))),
            None => Err(Diagnostic::error("state::unlock", "the state is not locked")),
        }
    }
}

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub who: String,
    pub pid: u32,
    pub host: String,
    pub operation: String,
    pub when: DateTime<Utc>,
}

impl LockInfo {
    /// Held by a process of this host that no longer runs.
    pub fn is_stale(&self) -> bool {
        self.host == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A held lock, released when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    pub info: LockInfo,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// A hash of a node's statements (sha256, hex).
pub fn statements_hash(statements: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for statement in statements {
        hasher.update(statement.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_second_lock_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::local(dir.path(), "shop", "dev");
        assert_eq!(store.read().unwrap(), None);
        let mut state = State::new("shop", "dev");
        state.serial = 3;
        store.write(&state).unwrap();
        assert_eq!(store.read().unwrap(), Some(state));
        let lock = store.lock("apply").unwrap();
        let err = store.lock("run").unwrap_err();
        assert!(err.message.contains(&lock.info.id), "{}", err.message);
        assert!(err.message.contains("for `apply`"), "{}", err.message);
        drop(lock);
        let again = store.lock("run").unwrap();
        let id = again.info.id.clone();
        std::mem::forget(again);
        assert!(store.unlock("nope").is_err());
        assert_eq!(store.unlock(&id).unwrap().operation, "run");
        assert!(store.lock_info().is_none());
    }
}

/// Records node outcomes into the state as a run or apply goes, one atomic write per node, so
/// an interrupted run leaves a state true to what was built.
pub struct Recorder {
    store: StateStore,
    state: std::sync::Mutex<State>,
}

impl Recorder {
    /// Starts recording: the serial is bumped and written at once, so plans made before are stale.
    pub fn begin(store: StateStore, pipeline: &str, target: &str) -> Result<Recorder, Diagnostic> {
        let mut state = store.read()?.unwrap_or_else(|| State::new(pipeline, target));
        state.serial += 1;
        store.write(&state)?;
        Ok(Recorder { store, state: std::sync::Mutex::new(state) })
    }

    pub fn serial(&self) -> u64 {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).serial
    }

    /// A node built (`success` or `warn`); a dropped node is forgotten.
    pub fn record(&self, node: &crate::plan::PlanNode, status: &str) -> Result<(), Diagnostic> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if node.action == "drop" {
            state.nodes.remove(&node.id);
        } else {
            let serial = state.serial;
            state.nodes.insert(
                node.id.clone(),
                NodeState {
                    resource_type: node.resource_type.clone(),
                    materialized: node.materialized.clone(),
                    relation: node.relation.clone(),
                    fingerprint: node.fingerprint.clone(),
                    statements_hash: statements_hash(&node.statements),
                    status: status.to_string(),
                    built_at: Utc::now(),
                    serial,
                },
            );
        }
        self.store.write(&state)
    }
}
