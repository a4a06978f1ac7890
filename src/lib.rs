//! orrery: a declarative config compiler and static executor for dbt projects.
//!
//! The modules are the stages of the flow in DESIGN.md:
//! `spec` → `project` → `render` → `graph` → `plan` → `exec`, with `adapter` (warehouses),
//! `artifacts` (dbt's manifest and run results), `cli` and `diagnostics` beside them.

pub mod adapter;
pub mod artifacts;
pub mod cli;
pub mod diagnostics;
pub mod exec;
pub mod graph;
pub mod node;
pub mod plan;
pub mod project;
pub mod render;
pub mod spec;
