//! target/compiled/<project>/<path>.sql, exactly where `dbt compile` writes them.

use std::io::Write;
use std::path::PathBuf;

use crate::diagnostics::Diagnostic;
use crate::node::{Compiled, Node, ResourceType};

/// The file a node's compiled SQL goes to, relative to the project root.
pub fn compiled_path(compiled: &Compiled, node: &Node) -> PathBuf {
    let mut p = PathBuf::from(&compiled.target_path).join("compiled").join(&node.package_name);
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

fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), Diagnostic> {
    let err = |e: std::io::Error| Diagnostic::error("artifacts::write", format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Writes every model's, analysis' and test's compiled SQL, each atomically (temp + rename).
pub fn write(compiled: &Compiled) -> Result<(), Diagnostic> {
    for node in &compiled.nodes {
        if !matches!(node.resource_type, ResourceType::Model | ResourceType::Analysis | ResourceType::Test) || !node.config.enabled {
            continue;
        }
        let Some(sql) = &node.compiled_code else { continue };
        write_atomic(&compiled.project_root.join(compiled_path(compiled, node)), sql)?;
    }
    for (path, sql) in hook_files(compiled) {
        write_atomic(&compiled.project_root.join(path), sql)?;
    }
    Ok(())
}
