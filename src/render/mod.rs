//! The minijinja environment with dbt's Jinja context; compiles a project into nodes.
pub mod builtins;
