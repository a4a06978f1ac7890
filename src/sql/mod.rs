//! SQL text as orrery reads it without a warehouse: the lexical context of each byte
//! (`lexical`), and values from outside bound into that text as data, never as SQL (`bind`).

pub mod bind;
pub mod lexical;

pub use lexical::Dialect;

/// `text` as a SQL string literal: single quotes, an inner `'` doubled (standard strings, as
/// DuckDB and PostgreSQL read them).
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
