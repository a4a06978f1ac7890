//! dbt's built-in behaviour that a compile reproduces byte for byte: generic test names,
//! ephemeral CTE injection and the global macros of the internal `dbt` package (our own Jinja,
//! overridable by the project).
//!
//! For the render stage: name a generic test with [`test_node_name`]; load [`macro_files`] as
//! package `dbt`; inline ephemerals with [`collect_ctes`] then [`inject_ctes`]. Relations are
//! written by `crate::relation`, Python's printing by `render::python`.

pub(crate) mod ctes;
pub(crate) mod macros;
pub(crate) mod naming;

pub(crate) use ctes::{Ephemeral, collect_ctes, inject_ctes};
pub(crate) use macros::macro_files;
pub(crate) use naming::{TestTarget, test_node_name, unique_id_hash};

#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    /// `tests/fixtures/builtins/<rel>`, made by `regen.sh` from a real dbt compile.
    pub(crate) fn path(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builtins").join(rel)
    }

    pub(crate) fn read(rel: &str) -> String {
        std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
    }
}
