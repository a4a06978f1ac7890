//! The compile cache: a command may reuse the run plan of an earlier compile whose inputs are
//! all unchanged, as dbt's partial parsing reuses an earlier parse. The inputs are every file
//! of the dbt project dbt would read (`.sql`, `.yml`, `.yaml`, `.csv`, `.md`, `.py`: path, size
//! and modification time), the pipeline file, the profiles files, the environment variables
//! the compile read, the command line and this orrery binary. What the reuse relies on (the
//! run plan file) is checked to be the one written then.
//!
//! Never cached: a compile with warnings (they would not be shown again) and a project whose
//! files mention the clock or the invocation (`run_started_at`, `invocation_id`, `now()`,
//! `utcnow`, `today()`), whose compiled SQL differs from one compile to the next.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped when an entry written by an older orrery must not be read.
const FORMAT: u32 = 1;

/// File kinds dbt reads from a project.
const INPUT_EXTENSIONS: &[&str] = &["sql", "yml", "yaml", "csv", "md", "py"];

/// Words that make compiled SQL depend on when or how it was compiled.
const UNSTABLE: &[&str] = &["run_started_at", "invocation_id", "now(", "utcnow", "today("];

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    format: u32,
    key: String,
    /// Environment variables the compile read: name → sha256 of the value (`None`: unset).
    env: BTreeMap<String, Option<String>>,
    /// Files the reuse relies on: path → (size, modification time in ns).
    outputs: BTreeMap<PathBuf, (u64, u128)>,
    /// The ids of every node the project compiled (beyond the selection).
    pub project_ids: Vec<String>,
}

/// What identifies one compile's inputs, but for the environment (kept apart: which variables
/// matter is known only after compiling).
pub struct Key {
    digest: String,
}

fn stat(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), modified))
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The project's input files, sorted, skipping `skip` (the target folder) and hidden folders.
fn input_files(project_dir: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![project_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            match entry.file_type() {
                Ok(t) if t.is_dir() && !hidden && !skip.contains(&path) => stack.push(path),
                Ok(t) if t.is_file() || t.is_symlink() => {
                    let wanted = path.extension().and_then(|e| e.to_str()).is_some_and(|e| INPUT_EXTENSIONS.contains(&e));
                    if wanted {
                        out.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

impl Key {
    /// `command_line`: everything of the invocation that changes the compile (target, vars,
    /// selection, flags). `extra_files`: inputs outside the project (profiles), read whole.
    pub fn new(project_dir: &Path, target_dir: &Path, pipeline_file: &Path, extra_files: &[PathBuf], command_line: &str) -> Key {
        let mut hasher = Sha256::new();
        let mut add = |part: &[u8]| {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        };
        add(&FORMAT.to_le_bytes());
        add(env!("CARGO_PKG_VERSION").as_bytes());
        // A rebuilt orrery may compile differently under the same version.
        if let Some((size, modified)) = std::env::current_exe().ok().as_deref().and_then(stat) {
            add(&size.to_le_bytes());
            add(&modified.to_le_bytes());
        }
        add(command_line.as_bytes());
        for file in std::iter::once(&pipeline_file.to_path_buf()).chain(extra_files) {
            add(file.to_string_lossy().as_bytes());
            add(&std::fs::read(file).unwrap_or_default());
        }
        for file in input_files(project_dir, &[target_dir.to_path_buf()]) {
            add(file.to_string_lossy().as_bytes());
            let (size, modified) = stat(&file).unwrap_or_default();
            add(&size.to_le_bytes());
            add(&modified.to_le_bytes());
        }
        Key { digest: hex(hasher.finalize()) }
    }

    /// The entry at `path` when it was made from these inputs and what it relies on is as it
    /// left it.
    pub fn lookup(&self, path: &Path) -> Option<Entry> {
        let entry: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        if entry.format != FORMAT || entry.key != self.digest {
            return None;
        }
        let env_same = entry.env.iter().all(|(name, value)| std::env::var(name).ok().map(hex) == *value);
        let outputs_same = entry.outputs.iter().all(|(file, seen)| stat(file).as_ref() == Some(seen));
        (env_same && outputs_same).then_some(entry)
    }

    /// Records a compile of these inputs; `env_reads` are the variables it read, `outputs` the
    /// files a reuse will read. Skipped (and any older entry removed) for a project whose
    /// compiled SQL is not stable from one compile to the next.
    pub fn store(
        &self,
        path: &Path,
        project_dir: &Path,
        target_dir: &Path,
        env_reads: BTreeMap<String, Option<String>>,
        outputs: &[PathBuf],
        project_ids: Vec<String>,
    ) {
        let unstable = input_files(project_dir, &[target_dir.to_path_buf()])
            .iter()
            .any(|file| std::fs::read_to_string(file).is_ok_and(|text| UNSTABLE.iter().any(|word| text.contains(word))));
        if unstable {
            let _ = std::fs::remove_file(path);
            return;
        }
        let entry = Entry {
            format: FORMAT,
            key: self.digest.clone(),
            env: env_reads.into_iter().map(|(name, value)| (name, value.map(hex))).collect(),
            outputs: outputs.iter().filter_map(|f| stat(f).map(|s| (f.clone(), s))).collect(),
            project_ids,
        };
        // A cache: losing it costs one compile, so a failed write is not an error.
        let _ = write_atomic(path, &entry);
    }
}

fn write_atomic(path: &Path, entry: &Entry) -> std::io::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::replace::write(path, None, |file| file.write_all(&text))
}

/// Forgets the entry at `path` (a compile that must not be reused).
pub fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path) -> Key {
        Key::new(dir, &dir.join("target"), &dir.join("orrery.toml"), &[], "plan")
    }

    #[test]
    fn an_entry_is_reused_only_while_every_input_and_output_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("models")).expect("mkdir");
        std::fs::create_dir_all(root.join("target")).expect("mkdir");
        std::fs::write(root.join("orrery.toml"), "[pipeline]\nname = \"p\"\n").expect("write");
        std::fs::write(root.join("models/a.sql"), "select 1").expect("write");
        std::fs::write(root.join("target/plan.json"), "{}").expect("write");
        let cache = root.join("target/cache.json");
        let plan = root.join("target/plan.json");
        let env = BTreeMap::from([("ORRERY_TEST_CACHE_VAR".to_string(), None)]);
        key(root).store(&cache, root, &root.join("target"), env.clone(), std::slice::from_ref(&plan), vec!["model.p.a".into()]);
        let hit = key(root).lookup(&cache).expect("a hit with nothing changed");
        assert_eq!(hit.project_ids, ["model.p.a"]);
        // Target files and non-inputs do not count.
        std::fs::write(root.join("target/other.txt"), "x").expect("write");
        std::fs::write(root.join("shop.duckdb"), "x").expect("write");
        assert!(key(root).lookup(&cache).is_some());
        // A different command line misses.
        assert!(Key::new(root, &root.join("target"), &root.join("orrery.toml"), &[], "plan --vars x").lookup(&cache).is_none());
        // A changed model misses.
        std::fs::write(root.join("models/a.sql"), "select 22").expect("write");
        assert!(key(root).lookup(&cache).is_none());
        key(root).store(&cache, root, &root.join("target"), env, std::slice::from_ref(&plan), vec![]);
        assert!(key(root).lookup(&cache).is_some());
        // A rewritten output misses.
        std::fs::write(&plan, "{\"nodes\": []}").expect("write");
        assert!(key(root).lookup(&cache).is_none());
    }

    #[test]
    fn a_project_reading_the_clock_is_never_cached() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("models")).expect("mkdir");
        std::fs::write(root.join("orrery.toml"), "").expect("write");
        std::fs::write(root.join("models/a.sql"), "select '{{ run_started_at }}' as built").expect("write");
        let cache = root.join("cache.json");
        key(root).store(&cache, root, &root.join("target"), BTreeMap::new(), &[], vec![]);
        assert!(key(root).lookup(&cache).is_none());
    }
}
