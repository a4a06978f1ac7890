//! YAML files as JSON values, with parse errors pointing at their line and column.

use serde_json::Value;

use crate::diagnostics::{Diagnostic, SourceFile};

/// Parses a YAML document; an empty file is `null`.
pub fn parse(source: &SourceFile, code: &str) -> Result<Value, Diagnostic> {
    if source.text.trim().is_empty() {
        return Ok(Value::Null);
    }
    match serde_saphyr::from_str::<Value>(&source.text) {
        Ok(value) => Ok(value),
        Err(err) => {
            let message = err.to_string();
            let first = message.lines().next().unwrap_or("invalid YAML").to_string();
            let diag =
                Diagnostic::error(code, format!("invalid YAML: {first}")).with_help("check the indentation and quoting around this line");
            Err(match err.location() {
                Some(loc) => diag.at_line_col(source, loc.line() as usize, loc.column() as usize),
                None => diag.with_file(source.path.as_ref().clone()),
            })
        }
    }
}

/// The string at `key` of a mapping, when it is one.
pub fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A list of strings at `key` (a single string counts as a list of one).
pub fn strings_at(value: &Value, key: &str) -> Option<Vec<String>> {
    match value.get(key)? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        _ => None,
    }
}

/// The 1-based line of the first `name: <value>` entry in a YAML text, for diagnostics.
pub fn find_line(text: &str, key: &str, value: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        if let Some(rest) = trimmed.strip_prefix(key).and_then(|r| r.trim_start().strip_prefix(':')) {
            let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            if v == value {
                let col = line.find(key).map_or(1, |c| c + 1);
                return Some((i + 1, col));
            }
        }
    }
    None
}
