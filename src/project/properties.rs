//! The shape of a properties yml (`models:`, `sources:`, … lists of named entries), checked as
//! dbt checks it, so a wrong shape is an error at its line instead of being silently skipped.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::diagnostics::{Diagnostic, SourceFile};

/// One step from the document root to a value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// A shape error at a path of the document.
struct Problem {
    path: Vec<Step>,
    message: String,
}

/// Top-level keys whose value is a list of entries with a `name`.
const NAMED_LISTS: &[&str] = &[
    "models",
    "seeds",
    "snapshots",
    "analyses",
    "sources",
    "macros",
    "exposures",
    "groups",
    "semantic_models",
    "metrics",
    "saved_queries",
    "unit_tests",
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

struct Checker {
    path: Vec<Step>,
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, extra: Option<Step>, message: String) {
        let mut path = self.path.clone();
        path.extend(extra);
        self.problems.push(Problem { path, message });
    }

    fn within(&mut self, step: Step, f: impl FnOnce(&mut Self)) {
        self.path.push(step);
        f(self);
        self.path.pop();
    }

    /// `key` of `entry`, when present and not null, must be a list; returns its items.
    fn list<'a>(&mut self, entry: &'a Value, key: &str, what: &str) -> &'a [Value] {
        match entry.get(key) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.problem(Some(Step::Key(key.into())), format!("`{key}` must be a list of {what}, not {}", kind(other)));
                &[]
            }
        }
    }

    fn mapping(&mut self, entry: &Value, key: &str) {
        if let Some(v) = entry.get(key).filter(|v| !v.is_null() && !v.is_object()) {
            self.problem(Some(Step::Key(key.into())), format!("`{key}` must be a mapping, not {}", kind(v)));
        }
    }

    /// A list item that must be a mapping with a string `name`; false when it is not a mapping.
    fn named(&mut self, item: &Value, what: &str) -> bool {
        match item {
            Value::Object(m) => {
                match m.get("name") {
                    Some(Value::String(_)) => {}
                    Some(other) => {
                        self.problem(Some(Step::Key("name".into())), format!("the {what}'s `name` must be a string, not {}", kind(other)))
                    }
                    None => self.problem(None, format!("this {what} has no `name`")),
                }
                true
            }
            other => {
                self.problem(None, format!("each {what} must be a mapping with a `name`, not {}", kind(other)));
                false
            }
        }
    }

    fn tests(&mut self, entry: &Value) {
        for key in ["data_tests", "tests"] {
            self.list(entry, key, "tests");
        }
    }

    fn node_entry(&mut self, entry: &Value, what: &str) {
        if !self.named(entry, what) {
            return;
        }
        self.mapping(entry, "config");
        self.tests(entry);
        self.columns_at(entry, false);
        let versions = self.list(entry, "versions", "versions");
        for (i, v) in versions.iter().enumerate() {
            self.within(Step::Key("versions".into()), |ck| {
                ck.within(Step::Index(i), |ck| match v {
                    Value::Object(m) if m.contains_key("v") => {
                        ck.mapping(v, "config");
                        ck.tests(v);
                        ck.columns_at(v, true);
                    }
                    Value::Object(_) => ck.problem(None, "this version has no `v`".into()),
                    other => ck.problem(None, format!("each version must be a mapping with a `v`, not {}", kind(other))),
                })
            });
        }
    }

    /// Checks `columns` of `entry` (`include:` rules are a version's, not columns).
    fn columns_at(&mut self, entry: &Value, in_version: bool) {
        let cols = self.list(entry, "columns", "columns");
        self.within(Step::Key("columns".into()), |ck| {
            for (i, c) in cols.iter().enumerate() {
                ck.within(Step::Index(i), |ck| {
                    if in_version && c.get("include").is_some() {
                        return;
                    }
                    if ck.named(c, "column") {
                        ck.tests(c);
                    }
                });
            }
        });
    }

    fn source(&mut self, src: &Value) {
        if !self.named(src, "source") {
            return;
        }
        self.mapping(src, "config");
        let tables = self.list(src, "tables", "tables");
        self.within(Step::Key("tables".into()), |ck| {
            for (i, t) in tables.iter().enumerate() {
                ck.within(Step::Index(i), |ck| {
                    if ck.named(t, "table") {
                        ck.mapping(t, "config");
                        ck.tests(t);
                        ck.columns_at(t, false);
                    }
                });
            }
        });
    }

    fn document(&mut self, doc: &Value) {
        let Value::Object(top) = doc else {
            if !doc.is_null() {
                self.problem(None, format!("a properties file must be a mapping, not {}", kind(doc)));
            }
            return;
        };
        for key in NAMED_LISTS {
            let Some(v) = top.get(*key) else { continue };
            let items = match v {
                Value::Null => continue,
                Value::Array(items) => items,
                other => {
                    self.problem(Some(Step::Key((*key).into())), format!("`{key}` must be a list, not {}", kind(other)));
                    continue;
                }
            };
            let what = match *key {
                "sources" => "source",
                "analyses" => "analysis",
                k => k.trim_end_matches('s'),
            };
            self.within(Step::Key((*key).into()), |ck| {
                for (i, item) in items.iter().enumerate() {
                    ck.within(Step::Index(i), |ck| match *key {
                        "sources" => ck.source(item),
                        "models" | "seeds" | "snapshots" | "analyses" => ck.node_entry(item, what),
                        _ => {
                            ck.named(item, what);
                        }
                    });
                }
            });
        }
    }
}

/// Every shape error of a parsed properties file, each at its line and column.
pub fn check(source: &SourceFile, doc: &Value) -> Vec<Diagnostic> {
    let mut ck = Checker { path: Vec::new(), problems: Vec::new() };
    ck.document(doc);
    if ck.problems.is_empty() {
        return Vec::new();
    }
    // Only a broken file pays for the second, span-keeping parse.
    let tree = serde_saphyr::from_str::<Node>(&source.text).ok();
    ck.problems
        .into_iter()
        .map(|p| {
            let diag = Diagnostic::error(crate::codes::project::PROPERTIES, p.message)
                .with_help("see dbt's properties file reference for this key's shape");
            match tree.as_ref().and_then(|t| t.locate(&p.path)) {
                Some((line, col)) => diag.at_line_col(source, line, col),
                None => diag.with_file(source.path.as_ref().clone()),
            }
        })
        .collect()
}

/// A YAML node with where it starts: just enough structure to turn a path into a place.
struct Node {
    line: usize,
    column: usize,
    kind: NodeKind,
}

enum NodeKind {
    /// (key, key's line, key's column, value)
    Map(Vec<(String, usize, usize, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl Node {
    /// The place of the value at `path`; a key's own place when the path ends at a mapping key.
    fn locate(&self, path: &[Step]) -> Option<(usize, usize)> {
        let Some((first, rest)) = path.split_first() else { return Some((self.line, self.column)) };
        match (first, &self.kind) {
            (Step::Key(k), NodeKind::Map(entries)) => {
                let (_, kl, kc, child) = entries.iter().find(|e| e.0 == *k)?;
                if rest.is_empty() { Some((*kl, *kc)) } else { child.locate(rest).or(Some((*kl, *kc))) }
            }
            (Step::Index(i), NodeKind::Seq(items)) => items.get(*i)?.locate(rest).or(Some((self.line, self.column))),
            _ => Some((self.line, self.column)),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<NodeKind>::deserialize(d)?;
        Ok(Node { line: spanned.referenced.line() as usize, column: spanned.referenced.column() as usize, kind: spanned.value })
    }
}

/// A mapping key with its place.
struct Key(String, usize, usize);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<Value>::deserialize(d)?;
        let text = match spanned.value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Ok(Key(text, spanned.referenced.line() as usize, spanned.referenced.column() as usize))
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeKind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
                let mut entries = Vec::new();
                while let Some(Key(k, l, c)) = map.next_key::<Key>()? {
                    let v = map.next_value::<Node>()?;
                    entries.push((k, l, c, v));
                }
                Ok(NodeKind::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element::<Node>()? {
                    items.push(n);
                }
                Ok(NodeKind::Seq(items))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let source = SourceFile::new("models/schema.yml", text);
        let doc: Value = serde_saphyr::from_str(text).unwrap_or(Value::Null);
        check(&source, &doc).iter().map(|d| format!("{d:?}")).collect()
    }

    #[test]
    fn wrong_shapes_are_errors_at_their_line() {
        insta::assert_debug_snapshot!((
            errors("version: 2\nmodels: 7\n"),
            errors("version: 2\nsources:\n  - name: s\n    tables: {}\n"),
            errors("version: 2\nmodels:\n  - name: a\n  - description: no name\n"),
            errors("version: 2\nmodels:\n  - name: a\n    columns:\n      id: {}\n"),
            errors("version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n      - 3\n"),
        ));
    }

    #[test]
    fn a_good_file_has_no_errors() {
        let text = "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique]\n    versions:\n      - v: 1\n        columns:\n          - include: all\nsources:\n  - name: s\n    tables:\n      - name: t\n";
        assert!(errors(text).is_empty());
    }
}
