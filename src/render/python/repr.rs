//! Python's text forms of values, which dbt's names, hashes and rendered SQL are made of.

use minijinja::value::{Value as JinjaValue, ValueKind};
use serde_json::Value;

/// Python's `str()` of a value loaded from YAML.
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value loaded from YAML (dicts keep their order).
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => py_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let inner: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v))).collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
pub(crate) fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') { plain } else { format!("{plain}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`.
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for the characters YAML text realistically holds.
fn py_printable(c: char) -> bool {
    let n = c as u32;
    !(n < 0x20
        || (0x7f..=0xa0).contains(&n)
        || n == 0xad
        || n == 0x1680
        || (0x2000..=0x200f).contains(&n)
        || (0x2028..=0x202f).contains(&n)
        || (0x205f..=0x2064).contains(&n)
        || n == 0x3000
        || n == 0xfeff
        || (0xd800..=0xdfff).contains(&n)
        || (0xe000..=0xf8ff).contains(&n))
}

/// How dbt's Jinja (Python) prints a value where minijinja prints it differently: `None`,
/// `True`/`False`, floats as Python writes them (`1e+20`), lists and dicts in Python's repr.
/// `None` when minijinja's own output is already the same (strings, integers, objects).
/// Meant for the render stage's `Environment::set_formatter`.
pub(crate) fn python_display(value: &JinjaValue) -> Option<String> {
    match value.kind() {
        ValueKind::None => Some("None".into()),
        ValueKind::Bool => Some(if value.is_true() { "True" } else { "False" }.into()),
        ValueKind::Number => jinja_float(value).map(py_float),
        // Objects that render themselves (relations) keep their text; plain containers don't.
        ValueKind::Seq | ValueKind::Map if value.to_string().starts_with(['[', '{']) => Some(jinja_repr(value)),
        _ => None,
    }
}

/// The float a number holds, or `None` for an integer.
fn jinja_float(value: &JinjaValue) -> Option<f64> {
    let text = value.to_string();
    let is_float = text.contains(['.', 'e', 'E']) || text.contains("inf") || text.contains("NaN");
    if is_float { f64::try_from(value.clone()).ok() } else { None }
}

/// Python's repr of a Jinja value, for containers printed whole.
fn jinja_repr(value: &JinjaValue) -> String {
    match value.kind() {
        ValueKind::String => py_repr_str(value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            let items: Vec<String> = value.try_iter().map(|it| it.map(|v| jinja_repr(&v)).collect()).unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|keys| {
                    keys.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", jinja_repr(&k), jinja_repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        ValueKind::Undefined => String::new(),
        _ => python_display(value).unwrap_or_else(|| value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_repr_matches_python() {
        assert_eq!(py_repr_str("a'b"), "\"a'b\"");
        assert_eq!(py_repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr_str("tab\there\u{a0}é"), "'tab\\there\\xa0é'");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(123456.25), "123456.25");
        assert_eq!(py_repr(&json!({"b": [1, true, null], "a": "x"})), "{'b': [1, True, None], 'a': 'x'}");
    }

    #[test]
    fn jinja_values_print_as_python_prints_them() {
        let shown = |v: JinjaValue| python_display(&v).unwrap_or_else(|| v.to_string());
        assert_eq!(shown(JinjaValue::from(1e20)), "1e+20");
        assert_eq!(shown(JinjaValue::from(2.5)), "2.5");
        assert_eq!(shown(JinjaValue::from(3)), "3");
        assert_eq!(shown(JinjaValue::from(true)), "True");
        assert_eq!(shown(JinjaValue::from(())), "None");
        assert_eq!(shown(JinjaValue::from("x")), "x");
        let list = JinjaValue::from(vec![JinjaValue::from("it's"), JinjaValue::from(1), JinjaValue::from(false)]);
        assert_eq!(shown(list), "[\"it's\", 1, False]");
    }
}
