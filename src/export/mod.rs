//! Handing a run plan to another scheduler: `orrery export airflow`.

pub mod airflow;
