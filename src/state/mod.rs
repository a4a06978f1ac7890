//! Applied state: what `run` and `apply` built, per pipeline and target, with a serial and a
//! lineage id (Terraform's), and a lock that guards `run` and `apply`.
//!
//! The local backend keeps `.orrery/state/<pipeline>/<target>.json` beside orrery.toml,
//! written atomically (a temporary file renamed over it); the lock is `<target>.lock` beside
//! it, created exclusively. An object store backend keeps the same two objects under
//! `<backend>/<pipeline>/`, written with conditional puts (If-Match / If-None-Match).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diagnostics::Diagnostic;
use crate::plan::PlanRelation;
use crate::store::{Location, Version};

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

/// Where a pipeline's state for one target lives: a local file, or an object under an object
/// store URL (`<backend>/<pipeline>/<target>.json`, written with conditional puts).
#[derive(Debug)]
pub struct StateStore {
    backend: Backend,
    target: String,
    /// The state's location, for messages.
    pub location: String,
    /// The object version last read or written, for the next conditional write.
    version: std::sync::Mutex<Option<Version>>,
}

#[derive(Debug)]
enum Backend {
    /// The state file; the lock is the same path with `.lock`.
    Local(PathBuf),
    /// `<backend>/<pipeline>/`, holding `<target>.json` and `<target>.lock`.
    Remote(Location),
}

const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

fn remote_error(err: crate::store::StoreError) -> Diagnostic {
    Diagnostic::error(crate::codes::state::STORE, format!("state store: {}", crate::secrets::scrub(&err.0)))
        .with_help("check [state] backend, its options and the store's credentials in the environment")
}

impl StateStore {
    /// The local backend: `<dir>/.orrery/state/<pipeline>/<target>.json`.
    pub fn local(pipeline_dir: &Path, pipeline: &str, target: &str) -> StateStore {
        StateStore::at_path(pipeline_dir.join(".orrery/state").join(pipeline).join(format!("{target}.json")))
    }

    /// A local state file.
    pub fn at_path(path: PathBuf) -> StateStore {
        let target = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        StateStore { location: path.display().to_string(), backend: Backend::Local(path), target, version: Default::default() }
    }

    /// An object store backend, e.g. `s3://bucket/state`.
    pub fn remote(url: &str, options: &crate::spec::StoreOptions, pipeline: &str, target: &str) -> Result<StateStore, Diagnostic> {
        let base = format!("{}/{pipeline}", url.trim_end_matches('/'));
        let location = crate::store::open(&base, options).map_err(remote_error)?;
        Ok(StateStore {
            location: format!("{base}/{target}.json"),
            backend: Backend::Remote(location),
            target: target.to_string(),
            version: Default::default(),
        })
    }

    /// The local state file, when the backend is local.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(path) => Some(path),
            Backend::Remote(_) => None,
        }
    }

    fn lock_path(path: &Path) -> PathBuf {
        path.with_extension("lock")
    }

    /// The state, or `None` when nothing was recorded yet.
    pub fn read(&self) -> Result<Option<State>, Diagnostic> {
        let text = match &self.backend {
            Backend::Local(path) => match std::fs::read(path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(err) => {
                    return Err(Diagnostic::error(crate::codes::state::READ, format!("cannot read state {}: {err}", path.display()))
                        .with_file(path));
                }
            },
            Backend::Remote(location) => {
                let found = location.get_versioned(&format!("{}.json", self.target), REMOTE_TIMEOUT).map_err(remote_error)?;
                let Some((bytes, version)) = found else { return Ok(None) };
                *self.version.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(version);
                bytes
            }
        };
        let mut state: State = serde_json::from_slice(&text).map_err(|err| {
            Diagnostic::error(crate::codes::state::INVALID, format!("state {} is not valid: {err}", self.location))
                .with_help("restore it from a backup, or remove it to plan everything as new")
        })?;
        self.replay(&mut state);
        Ok(Some(state))
    }

    /// Writes the state atomically: a crash leaves the old state or the new one, never half.
    /// On an object store the write is conditional on the version last seen.
    pub fn write(&self, state: &State) -> Result<(), Diagnostic> {
        let mut text = serde_json::to_vec_pretty(state).unwrap_or_default();
        text.push(b'\n');
        match &self.backend {
            Backend::Local(path) => write_file(path, &text),
            Backend::Remote(location) => {
                let mut version = self.version.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let written =
                    location.put_if(&format!("{}.json", self.target), text, version.as_ref(), REMOTE_TIMEOUT).map_err(remote_error)?;
                match written {
                    Some(new) => {
                        *version = Some(new);
                        Ok(())
                    }
                    None => Err(Diagnostic::error(
                        crate::codes::state::CONFLICT,
                        format!("state {} changed while orrery held the lock", self.location),
                    )
                    .with_help("another writer ignored the lock; check `orrery state show`, then plan again")),
                }
            }
        }
    }

    /// Takes the lock, waiting up to `timeout` for its holder to let go (`--lock-timeout`).
    pub fn lock_waiting(&self, operation: &str, timeout: Duration) -> Result<Lock, Diagnostic> {
        let deadline = crate::duration::deadline(timeout);
        loop {
            match self.lock(operation) {
                Err(held) if held.code == crate::codes::state::LOCKED && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Takes the lock for `operation`, or says who holds it.
    pub fn lock(&self, operation: &str) -> Result<Lock, Diagnostic> {
        let info = LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            when: Utc::now(),
        };
        let text = serde_json::to_vec_pretty(&info).unwrap_or_default();
        let taken = match &self.backend {
            Backend::Local(path) => {
                let lock = StateStore::lock_path(path);
                if let Some(dir) = lock.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                    Ok(mut file) => {
                        file.write_all(&text).and_then(|_| file.sync_all()).map_err(|err| {
                            Diagnostic::error(crate::codes::state::LOCK, format!("cannot write lock {}: {err}", lock.display()))
                        })?;
                        true
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(err) => {
                        return Err(Diagnostic::error(crate::codes::state::LOCK, format!("cannot create lock {}: {err}", lock.display())));
                    }
                }
            }
            Backend::Remote(location) => {
                location.put_if(&format!("{}.lock", self.target), text, None, REMOTE_TIMEOUT).map_err(remote_error)?.is_some()
            }
        };
        if taken { Ok(Lock { store: self.handle(), info }) } else { Err(self.held()) }
    }

    fn handle(&self) -> LockHandle {
        match &self.backend {
            Backend::Local(path) => LockHandle::File(StateStore::lock_path(path)),
            Backend::Remote(location) => LockHandle::Object(location.clone(), format!("{}.lock", self.target)),
        }
    }

    /// The lock's holder, if there is one.
    pub fn lock_info(&self) -> Option<LockInfo> {
        let bytes = match &self.backend {
            Backend::Local(path) => std::fs::read(StateStore::lock_path(path)).ok()?,
            Backend::Remote(location) => location.get_versioned(&format!("{}.lock", self.target), REMOTE_TIMEOUT).ok()??.0,
        };
        serde_json::from_slice(&bytes).ok()
    }

    fn held(&self) -> Diagnostic {
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
                Diagnostic::error(crate::codes::state::LOCKED, message).with_help(help)
            }
            None => Diagnostic::error(crate::codes::state::LOCKED, format!("the state {} is locked", self.location))
                .with_help("remove the lock if no orrery is running"),
        }
    }

    /// Releases a lock by id (`orrery state unlock`).
    pub fn unlock(&self, id: &str) -> Result<LockInfo, Diagnostic> {
        match self.lock_info() {
            Some(info) if info.id == id => {
                self.handle().release().map_err(|message| Diagnostic::error(crate::codes::state::UNLOCK, message))?;
                Ok(info)
            }
            Some(info) => Err(Diagnostic::error(crate::codes::state::UNLOCK, format!("the lock's id is {}, not {id}", info.id))
                .with_help(format!("run `orrery state unlock {}` if that is the one to release", info.id))),
            None => Err(Diagnostic::error(crate::codes::state::UNLOCK, "the state is not locked")),
        }
    }
}

fn write_file(path: &Path, text: &[u8]) -> Result<(), Diagnostic> {
    let fail = |err: std::io::Error| {
        Diagnostic::error(crate::codes::state::WRITE, format!("cannot write state {}: {err}", path.display())).with_file(path)
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(text).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Where a held lock lives, to release it.
#[derive(Debug)]
enum LockHandle {
    File(PathBuf),
    Object(Location, String),
}

impl LockHandle {
    fn release(&self) -> Result<(), String> {
        match self {
            LockHandle::File(path) => std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display())),
            LockHandle::Object(location, name) => location.delete(name, REMOTE_TIMEOUT).map_err(|e| e.0),
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
    store: LockHandle,
    pub info: LockInfo,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.store.release();
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
    hex::encode(hasher.finalize())
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

/// Records node outcomes into the state as a run or apply goes, so an interrupted run leaves
/// a state true to what was built. Locally each outcome is one appended journal line (the
/// whole state is rewritten once, at the end: rewriting it per node would be quadratic); on an
/// object store, where nothing appends, the state is rewritten at most every second.
pub struct Recorder {
    store: StateStore,
    state: std::sync::Mutex<RecorderState>,
}

struct RecorderState {
    state: State,
    last_write: std::time::Instant,
    dirty: bool,
    /// `run --node`: lock, read, record and write for each outcome.
    per_node: Option<Duration>,
}

/// One journal line: a node recorded (or, with `node: None`, forgotten) by run `serial`.
#[derive(Serialize, Deserialize)]
struct JournalEntry {
    serial: u64,
    id: String,
    node: Option<NodeState>,
}

const REMOTE_WRITE_EVERY: Duration = Duration::from_secs(1);

impl StateStore {
    fn journal_path(&self) -> Option<PathBuf> {
        self.path().map(|p| p.with_extension("journal"))
    }

    /// Replays the journal of an interrupted run over the state it started from.
    fn replay(&self, state: &mut State) {
        let Some(text) = self.journal_path().and_then(|p| std::fs::read_to_string(p).ok()) else { return };
        // A torn last line (the process died mid-write) does not parse and is skipped.
        for entry in text.lines().filter_map(|l| serde_json::from_str::<JournalEntry>(l).ok()) {
            if entry.serial != state.serial {
                continue;
            }
            match entry.node {
                Some(node) => state.nodes.insert(entry.id, node),
                None => state.nodes.remove(&entry.id),
            };
        }
    }

    fn append(&self, entry: &JournalEntry) -> Result<(), Diagnostic> {
        let Some(path) = self.journal_path() else { return Ok(()) };
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|err| Diagnostic::error(crate::codes::state::WRITE, format!("cannot append to {}: {err}", path.display())))?;
        // One write per line: a crash leaves whole lines and at most one torn one.
        file.write_all(&line)
            .map_err(|err| Diagnostic::error(crate::codes::state::WRITE, format!("cannot append to {}: {err}", path.display())))
    }

    /// Writes the state and drops the journal it now contains.
    fn checkpoint(&self, state: &State) -> Result<(), Diagnostic> {
        self.write(state)?;
        if let Some(journal) = self.journal_path() {
            let _ = std::fs::remove_file(journal);
        }
        Ok(())
    }
}

impl Recorder {
    /// Records for one task of a scheduled run (`run --node`): nothing is held meanwhile; each
    /// outcome takes the lock (waiting up to `lock_timeout`), bumps the serial and writes.
    pub fn per_node(store: StateStore, lock_timeout: Duration, pipeline: &str, target: &str) -> Recorder {
        let state = RecorderState {
            state: State::new(pipeline, target),
            last_write: std::time::Instant::now(),
            dirty: false,
            per_node: Some(lock_timeout),
        };
        Recorder { store, state: std::sync::Mutex::new(state) }
    }

    /// Starts recording: the serial is bumped and written at once, so plans made before are stale.
    pub fn begin(store: StateStore, pipeline: &str, target: &str) -> Result<Recorder, Diagnostic> {
        let mut state = store.read()?.unwrap_or_else(|| State::new(pipeline, target));
        state.serial += 1;
        store.checkpoint(&state)?;
        let state = RecorderState { state, last_write: std::time::Instant::now(), dirty: false, per_node: None };
        Ok(Recorder { store, state: std::sync::Mutex::new(state) })
    }

    pub fn serial(&self) -> u64 {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).state.serial
    }

    /// A node built (`success` or `warn`); a dropped node is forgotten.
    pub fn record(&self, node: &crate::plan::PlanNode, status: &str) -> Result<(), Diagnostic> {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(timeout) = guard.per_node {
            let _lock = self.store.lock_waiting("run --node", timeout)?;
            let (pipeline, target) = (guard.state.pipeline.clone(), guard.state.target.clone());
            let mut state = self.store.read()?.unwrap_or_else(|| State::new(&pipeline, &target));
            state.serial += 1;
            state.nodes.insert(node.id.clone(), node_state(node, status, state.serial));
            return self.store.checkpoint(&state);
        }
        let serial = guard.state.serial;
        let recorded = (node.action != "drop").then(|| node_state(node, status, serial));
        match &recorded {
            Some(state) => guard.state.nodes.insert(node.id.clone(), state.clone()),
            None => guard.state.nodes.remove(&node.id),
        };
        if self.store.path().is_some() {
            return self.store.append(&JournalEntry { serial, id: node.id.clone(), node: recorded });
        }
        guard.dirty = true;
        if guard.last_write.elapsed() >= REMOTE_WRITE_EVERY {
            guard.last_write = std::time::Instant::now();
            guard.dirty = false;
            self.store.write(&guard.state)?;
        }
        Ok(())
    }

    /// Writes the whole state (at the end of the run).
    pub fn finish(&self) -> Result<(), Diagnostic> {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.per_node.is_some() {
            return Ok(());
        }
        guard.dirty = false;
        self.store.checkpoint(&guard.state)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // An early return (an error before the end) still leaves the state whole.
        let dirty = self.state.lock().map(|g| g.dirty || self.store.path().is_some()).unwrap_or(true);
        if dirty {
            let _ = self.finish();
        }
    }
}

fn node_state(node: &crate::plan::PlanNode, status: &str, serial: u64) -> NodeState {
    NodeState {
        resource_type: node.resource_type.clone(),
        materialized: node.materialized.clone(),
        relation: node.relation.clone(),
        fingerprint: node.fingerprint.clone(),
        statements_hash: statements_hash(&node.statements),
        status: status.to_string(),
        built_at: Utc::now(),
        serial,
    }
}
