//! A value from outside (a runtime variable from `--vars` or Airflow) put where its placeholder
//! stands, as the lexical context there requires, so that it is only ever data:
//! - in code: a typed literal (a string quoted, a number or boolean as written, null as `null`,
//!   a list or mapping as its JSON text quoted; a negative number in parentheses, so `1 -` and
//!   `-5` never make a comment);
//! - inside a string literal: its text escaped for that literal (quotes doubled, and backslashes
//!   in an `E'…'` string);
//! - inside a comment: its text with line breaks and comment markers neutralised;
//! - inside a dollar-quoted body: its text, unless it holds the closing tag (an error);
//! - inside a quoted identifier: an error (a value is never a name).

use serde_json::Value;

use super::lexical::{Context, Dialect, context_at, runs};

/// Why a value could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The placeholder stands inside a `"quoted identifier"`.
    InIdentifier,
    /// The value holds the delimiter of the dollar-quoted body it stands in.
    ClosesDollarQuote(String),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InIdentifier => f.write_str("it stands inside a quoted identifier, where a value would become a name"),
            BindError::ClosesDollarQuote(tag) => write!(f, "its value holds `{tag}`, which would end the dollar-quoted body it stands in"),
        }
    }
}

/// `sql` with every `placeholder` replaced by `value` as its context requires.
pub fn bind(sql: &str, dialect: Dialect, placeholder: &str, value: &Value) -> Result<String, BindError> {
    if !sql.contains(placeholder) {
        return Ok(sql.to_string());
    }
    let runs = runs(sql, dialect);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut last = 0;
    for (at, _) in sql.match_indices(placeholder) {
        out.push_str(&sql[last..at]);
        out.push_str(&spliced(context_at(&runs, at), value)?);
        last = at + placeholder.len();
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// Where `placeholder` stands inside a quoted identifier in `sql`: its byte offsets.
pub fn in_identifiers(sql: &str, dialect: Dialect, placeholder: &str) -> Vec<usize> {
    if !sql.contains(placeholder) {
        return Vec::new();
    }
    let runs = runs(sql, dialect);
    sql.match_indices(placeholder).map(|(at, _)| at).filter(|at| *context_at(&runs, *at) == Context::QuotedIdentifier).collect()
}

/// The text of a value: a string as it is, null as nothing, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value as a literal of its own type.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.is_sign_negative()) => format!("({n})"),
        Value::Number(n) => n.to_string(),
        other => super::string_literal(&text(other)),
    }
}

fn spliced(context: &Context, value: &Value) -> Result<String, BindError> {
    Ok(match context {
        Context::Code => literal(value),
        Context::String { escapes: false } => text(value).replace('\'', "''"),
        Context::String { escapes: true } => text(value).replace('\\', "\\\\").replace('\'', "''"),
        Context::Dollar { tag } => {
            let text = text(value);
            if text.contains(tag.as_str()) {
                return Err(BindError::ClosesDollarQuote(tag.clone()));
            }
            text
        }
        Context::LineComment | Context::BlockComment => text(value).replace(['\n', '\r'], " ").replace("*/", "* /").replace("/*", "/ *"),
        Context::QuotedIdentifier => return Err(BindError::InIdentifier),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "__p__";

    fn b(sql: &str, value: Value) -> String {
        bind(sql, Dialect::Postgres, P, &value).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn each_context_gets_its_own_form() {
        let nasty = Value::from("a'b -- c */ d\ne");
        assert_eq!(b("-- don't\nselect __p__ as d", Value::from("2026-03-04")), "-- don't\nselect '2026-03-04' as d");
        assert_eq!(b("select __p__", nasty.clone()), "select 'a''b -- c */ d\ne'");
        assert_eq!(b("select 'x __p__'", nasty.clone()), "select 'x a''b -- c */ d\ne'");
        assert_eq!(b("select E'__p__'", Value::from("a\\'")), "select E'a\\\\'''");
        assert_eq!(b("select 1 /* __p__ */", nasty.clone()), "select 1 /* a'b -- c * / d e */");
        assert_eq!(b("select 1 -- __p__\n, 2", nasty.clone()), "select 1 -- a'b -- c * / d e\n, 2");
        assert_eq!(b("select $$ __p__ $$", nasty.clone()), "select $$ a'b -- c */ d\ne $$");
        assert_eq!(
            b("select $$ __p__ $$", Value::from("x$$y")),
            "error: its value holds `$$`, which would end the dollar-quoted body it stands in"
        );
        assert_eq!(b("select 1 as \"__p__\"", nasty), "error: it stands inside a quoted identifier, where a value would become a name");
    }

    #[test]
    fn literals_keep_their_type() {
        assert_eq!(b("select __p__, '__p__'", Value::from(5)), "select 5, '5'");
        assert_eq!(b("select 1 -__p__", Value::from(-5)), "select 1 -(-5)");
        assert_eq!(b("select __p__", Value::from(-0.5)), "select (-0.5)");
        assert_eq!(b("select __p__, '__p__'", Value::Null), "select null, ''");
        assert_eq!(b("select __p__", Value::Bool(true)), "select true");
        assert_eq!(b("select __p__", serde_json::json!(["it's"])), "select '[\"it''s\"]'");
        assert_eq!(b("select 1", Value::from(1)), "select 1");
    }

    #[test]
    fn identifiers_are_found() {
        assert_eq!(in_identifiers("select \"x__p__\", __p__, '\"__p__\"'", Dialect::DuckDb, P), vec![9]);
    }
}
