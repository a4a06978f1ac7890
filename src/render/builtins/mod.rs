//! dbt's built-in behaviour that a compile reproduces byte for byte: generic test names,
//! relation quoting, ephemeral CTE injection and the global macros of the internal `dbt`
//! package (our own Jinja, overridable by the project).
//!
//! For the render stage: name a generic test with [`test_node_name`] (its `model` kwarg from
//! [`TestTarget::model_kwarg`]) and its `raw_code` with [`generic_test_raw_code`]; load
//! [`macro_files`] as package `dbt`; print values through `render::python::python_display` in the
//! environment's formatter (dbt prints `None`, `True`, `1e+20`, `['a']`); inline ephemerals
//! with [`collect_ctes`] then [`inject_ctes`]; relations are written by `crate::relation`.

pub mod ctes;
pub mod macros;
pub mod naming;

pub use ctes::{Ephemeral, collect_ctes, inject_ctes};
pub use macros::macro_files;
pub use naming::{TEST_CONFIG_KEYS, TestName, TestTarget, generic_test_raw_code, test_node_name, unique_id_hash};

#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    /// `tests/fixtures/builtins/<rel>`, made by `regen.sh` from a real dbt compile.
    pub fn path(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builtins").join(rel)
    }

    pub fn read(rel: &str) -> String {
        std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
    }
}
