//! The petgraph DAG of nodes and sources, its validation, and dbt selectors.
