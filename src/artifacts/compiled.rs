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

/// Writes every model's, analysis' and test's compiled SQL, each atomically (temp + rename).
pub fn write(compiled: &Compiled) -> Result<(), Diagnostic> {
    for node in &compiled.nodes {
        if !matches!(node.resource_type, ResourceType::Model | ResourceType::Analysis | ResourceType::Test) || !node.config.enabled {
            continue;
        }
        let Some(sql) = &node.compiled_code else { continue };
        let path = compiled.project_root.join(compiled_path(compiled, node));
        let err = |e: std::io::Error| Diagnostic::error("artifacts::write", format!("cannot write {}: {e}", path.display()));
        let dir = path.parent().unwrap_or(&compiled.project_root);
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        tmp.write_all(sql.as_bytes()).map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
    }
    Ok(())
}
