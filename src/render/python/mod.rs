//! The parts of Python that dbt's Jinja exposes and minijinja lacks: `str()`/`repr()` of values
//! (`repr`), printf-style `%` formatting (`format`) and `modules.datetime` (`datetime`), each
//! checked against CPython by `differential`.

pub mod datetime;
pub mod format;
pub mod repr;

#[cfg(test)]
mod differential;
