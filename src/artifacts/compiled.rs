//! target/compiled/<project>/<path>.sql, exactly where `dbt compile` writes them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::diagnostics::Diagnostic;
use crate::dirs::DirHandles;
use crate::node::{Compiled, Node, ResourceType};

/// The file a node's compiled SQL goes to, relative to the project root.
pub fn compiled_path(compiled: &Compiled, node: &Node) -> PathBuf {
    PathBuf::from(&compiled.target_path).join(in_target(node))
}

/// A node's compiled file below the target folder: `compiled/<package>/<file>`.
pub fn in_target(node: &Node) -> PathBuf {
    let mut p = PathBuf::from("compiled").join(&node.package_name);
    p.push(&node.original_file_path);
    // Generic tests live below their properties file: models/schema.yml/<test>.sql.
    if node.resource_type == ResourceType::Test && !node.original_file_path.ends_with(".sql") {
        p.push(&node.path);
    }
    p
}

/// The compiled on-run-start / on-run-end hooks and their files, as dbt writes them:
/// `compiled/<project>/dbt_project.yml/hooks/<project>-on-run-start-<i>.sql`.
pub fn hook_files(compiled: &Compiled) -> Vec<(PathBuf, &str)> {
    let dir = PathBuf::from(&compiled.target_path).join("compiled").join(&compiled.project_name).join("dbt_project.yml").join("hooks");
    let mut out = Vec::new();
    for (kind, hooks) in [("on-run-start", &compiled.on_run_start), ("on-run-end", &compiled.on_run_end)] {
        for (i, sql) in hooks.iter().enumerate() {
            out.push((dir.join(format!("{}-{kind}-{i}.sql", compiled.project_name)), sql.as_str()));
        }
    }
    out
}

/// Writes `text` unless the file already holds it. A file that held other SQL is replaced
/// atomically (a temporary file renamed over it), so an interrupted compile never leaves it
/// torn; a new file is written in place, as nothing was there to keep.
fn write_if_changed(dirs: &DirHandles, path: &Path, text: &str) -> Result<(), Diagnostic> {
    match dirs.open_read(path).and_then(|mut file| holds(&mut file, text.as_bytes())) {
        Ok(true) => Ok(()),
        Ok(false) => replace_file(path, text),
        Err(_) => write_file(dirs, path, text),
    }
}

/// Whether the open `file` holds exactly `text`: read into a buffer one byte longer than
/// `text` (a longer file shows by filling it), without asking the file's size first as
/// `fs::read` does (a compile checks thousands of files; that is a system call each).
fn holds(file: &mut std::fs::File, text: &[u8]) -> std::io::Result<bool> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        buf.resize(text.len() + 1, 0);
        let filled = crate::diagnostics::read_up_to(file, buf)?;
        Ok(filled == text.len() && &buf[..filled] == text)
    })
}

fn replace_file(path: &std::path::Path, text: &str) -> Result<(), Diagnostic> {
    let fail =
        |e: &dyn std::fmt::Display| Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    // The replacement keeps the old file's permissions (a temporary file is private).
    let mut builder = tempfile::Builder::new();
    if let Ok(meta) = std::fs::metadata(path) {
        builder.permissions(meta.permissions());
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| fail(&e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

fn write_file(dirs: &DirHandles, path: &Path, text: &str) -> Result<(), Diagnostic> {
    dirs.create(path, text).map_err(|e| Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot write {}: {e}", path.display())))
}

/// Writes every model's, analysis' and test's compiled SQL (in parallel, directories made once).
pub fn write(compiled: &Compiled) -> Result<(), Diagnostic> {
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    for node in &compiled.nodes {
        if !matches!(node.resource_type, ResourceType::Model | ResourceType::Analysis | ResourceType::Test) || !node.config.enabled {
            continue;
        }
        let Some(sql) = &node.compiled_code else { continue };
        files.push((compiled.project_root.join(compiled_path(compiled, node)), sql));
    }
    for (path, sql) in hook_files(compiled) {
        files.push((compiled.project_root.join(path), sql));
    }
    let dirs: BTreeSet<&Path> = files.iter().filter_map(|(p, _)| p.parent()).collect();
    // In a directory made just now nothing can be unchanged: its files are written unread
    // (a first compile then costs one open per file instead of two).
    let mut fresh = std::collections::HashSet::new();
    for dir in &dirs {
        if !dir.is_dir() {
            fresh.insert(*dir);
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot create {}: {e}", dir.display())))?;
    }
    // Each file opened by name in its directory (see crate::dirs).
    let handles = DirHandles::open(dirs.iter().copied());
    files.par_iter().try_for_each(|(path, sql)| match path.parent() {
        Some(dir) if fresh.contains(dir) => write_file(&handles, path, sql),
        _ => write_if_changed(&handles, path, sql),
    })
}

/// The compiled SQL of nodes rendered at run time, below `target_dir`, each written atomically.
pub fn write_realized(target_dir: &Path, realized: &[(PathBuf, String)]) -> Result<(), Diagnostic> {
    for (rel, sql) in realized {
        let path = target_dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Diagnostic::error(crate::codes::artifacts::WRITE, format!("cannot create {}: {e}", dir.display())))?;
        }
        replace_file(&path, sql)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(path: &Path, text: &[u8]) -> std::io::Result<bool> {
        super::holds(&mut std::fs::File::open(path)?, text)
    }

    #[test]
    fn a_file_holds_only_its_exact_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.sql");
        std::fs::write(&path, "select 1").expect("write");
        assert!(holds(&path, b"select 1").expect("read"));
        assert!(!holds(&path, b"select").expect("read"), "the file is longer");
        assert!(!holds(&path, b"select 12").expect("read"), "the file is shorter");
        assert!(!holds(&path, b"select 2").expect("read"), "same length, other text");
        assert!(holds(&dir.path().join("missing.sql"), b"").is_err());
        std::fs::write(&path, "").expect("write");
        assert!(holds(&path, b"").expect("read"));
    }

    #[cfg(unix)]
    #[test]
    fn changed_sql_replaces_the_file_whole_with_its_permissions_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.sql");
        let handles = DirHandles::open([dir.path()]);
        let write_if_changed = |path: &Path, text: &str| write_if_changed(&handles, path, text);
        write_if_changed(&path, "select 1").expect("new file");
        let before = std::fs::metadata(&path).expect("written").permissions();
        let inode = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("exists"));
        let first = inode(&path);
        write_if_changed(&path, "select 1").expect("unchanged");
        assert_eq!(inode(&path), first, "an unchanged file is left alone");
        write_if_changed(&path, "select 2 as changed").expect("replaced");
        // A new file renamed over the old one (never the old one rewritten in place).
        assert_ne!(inode(&path), first);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "select 2 as changed");
        assert_eq!(std::fs::metadata(&path).expect("still there").permissions(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["model.sql"]);
    }
}
