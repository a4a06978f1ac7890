//! The parts of Python that dbt's Jinja exposes and minijinja lacks: `str()`/`repr()` of values
//! (`repr`), printf-style `%` formatting (`format`) and `modules.datetime` (`datetime`), each
//! checked against CPython by `differential`.

pub(super) mod collections;
pub(super) mod datetime;
pub(super) mod format;
pub(super) mod repr;

#[cfg(test)]
mod differential;
