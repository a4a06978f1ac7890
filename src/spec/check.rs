//! Checks the spanned TOML document against the generated JSON schema, so every unknown key,
//! wrong type and invalid value is reported at once (serde stops at the first).

use std::fmt;
use std::ops::Range;

use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile, did_you_mean};

/// Where a value sits in the document, e.g. `callbacks[1].upload.to`.
#[derive(Clone, Default)]
pub(super) struct KeyPath(Vec<Segment>);

#[derive(Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_string()));
        path
    }

    fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    fn last_key(&self) -> &str {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .unwrap_or("")
    }

    /// The table as its TOML header reads, e.g. `[callbacks.upload]`, or "the top level".
    fn table(&self) -> String {
        let keys: Vec<&str> = self
            .0
            .iter()
            .filter_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        match self.0.last() {
            None => "the top level".to_string(),
            Some(Segment::Index(_)) => format!("[[{}]]", keys.join(".")),
            Some(Segment::Key(_)) => format!("[{}]", keys.join(".")),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

pub(super) struct Checker<'a> {
    root: &'a Value,
    source: &'a SourceFile,
    pub diagnostics: Diagnostics,
}

impl<'a> Checker<'a> {
    pub(super) fn new(root: &'a Value, source: &'a SourceFile) -> Self {
        Checker { root, source, diagnostics: Diagnostics::new() }
    }

    pub(super) fn check_document(&mut self, doc: &Spanned<DeTable<'_>>) {
        let root = self.root;
        self.check_table(root, doc.get_ref(), 0..0, &KeyPath::default());
    }

    fn error(&mut self, code: &str, span: Range<usize>, message: String, help: String) {
        let diagnostic = Diagnostic::error(code, message).with_help(help).at(self.source, span);
        self.diagnostics.push(diagnostic);
    }

    /// Follows `$ref`s into `$defs`.
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(target) = schema.get("$ref").and_then(Value::as_str) else { break };
            let Some(name) = target.strip_prefix("#/$defs/") else { break };
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(resolved) => schema = resolved,
                None => break,
            }
        }
        schema
    }

    /// The help for a value: the field's own description, else its type's.
    fn describe(&self, field: &'a Value, path: &KeyPath) -> String {
        let resolved = self.resolve(field);
        let description = field.get("description").or_else(|| resolved.get("description")).and_then(Value::as_str);
        match description {
            Some(text) => format!("`{}`: {}", path.last_key(), text.replace('\n', " ")),
            None => format!("see `{}` in schemas/pipeline.schema.json", path.last_key()),
        }
    }

    fn check(&mut self, field: &'a Value, value: &Spanned<DeValue<'_>>, path: &KeyPath) {
        self.check_described(field, field, value, path);
    }

    /// Checks `value` against `field`; `described` gives the help (for array items, the array).
    fn check_described(&mut self, field: &'a Value, described: &'a Value, value: &Spanned<DeValue<'_>>, path: &KeyPath) {
        let schema = self.resolve(field);
        let Some(obj) = schema.as_object() else { return };
        let span = value.span();

        if let Some(choices) = enum_choices(obj) {
            self.check_choice(described, &choices, value, path);
            return;
        }
        if let Some(branches) = obj.get("anyOf").and_then(Value::as_array) {
            // schemars writes `Option<T>` as anyOf [T, null]; TOML has no null, so T remains.
            let non_null: Vec<&Value> = branches.iter().filter(|b| b.get("type").and_then(Value::as_str) != Some("null")).collect();
            if let [only] = non_null.as_slice() {
                self.check_described(only, described, value, path);
                return;
            }
        }
        if let Some(types) = obj.get("type")
            && !type_matches(types, value.get_ref())
        {
            let message = format!("`{path}` must be {}, found {}", expected(types), article_type(value.get_ref()));
            let scalar = matches!(value.get_ref(), DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_));
            let help = match self.source.text.get(span.clone()) {
                Some(raw) if scalar && types.as_str() == Some("string") => match path.0.last() {
                    Some(Segment::Key(key)) => format!("quote it: `{key} = \"{raw}\"`"),
                    _ => format!("quote it: `\"{raw}\"`"),
                },
                _ => self.describe(described, path),
            };
            self.error(crate::codes::spec::INVALID_TYPE, span, message, help);
            return;
        }
        match value.get_ref() {
            DeValue::String(text) => self.check_string(described, obj, text, span, path),
            DeValue::Integer(int) => {
                let parsed = i128::from_str_radix(int.as_str(), int.radix()).ok();
                self.check_integer(described, obj, parsed, span, path);
            }
            DeValue::Array(items) => {
                if let Some(min) = obj.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    let message = format!("`{path}` is empty: it needs at least {min} entry");
                    let help = self.describe(described, path);
                    self.error(crate::codes::spec::EMPTY, span.clone(), message, help);
                }
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check_described(item_schema, described, item, &path.index(i));
                    }
                }
            }
            DeValue::Table(table) => self.check_table(schema, table, span, path),
            DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
        }
    }

    fn check_choice(&mut self, field: &'a Value, choices: &[&str], value: &Spanned<DeValue<'_>>, path: &KeyPath) {
        let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let Some(text) = value.get_ref().as_str() else {
            let message = format!("`{path}` must be a string, one of {list}, found {}", article_type(value.get_ref()));
            self.error(crate::codes::spec::INVALID_TYPE, value.span(), message, self.describe(field, path));
            return;
        };
        if choices.contains(&text) {
            return;
        }
        let suggestion =
            choices.iter().find(|c| c.eq_ignore_ascii_case(text)).copied().or_else(|| did_you_mean(text, choices.iter().copied()));
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`? `{}` is one of {list}", path.last_key()),
            None => format!("`{}` is one of {list}", path.last_key()),
        };
        self.error(crate::codes::spec::UNKNOWN_VALUE, value.span(), format!("unknown value `{text}` for `{path}`"), help);
    }

    fn check_string(&mut self, field: &'a Value, obj: &Map<String, Value>, text: &str, span: Range<usize>, path: &KeyPath) {
        if let Some(min) = obj.get("minLength").and_then(Value::as_u64)
            && (text.chars().count() as u64) < min
        {
            self.error(crate::codes::spec::EMPTY, span.clone(), format!("`{path}` is empty"), self.describe(field, path));
        }
        if let Some(pattern) = obj.get("pattern").and_then(Value::as_str) {
            let matches = regex::Regex::new(pattern).map(|re| re.is_match(text)).unwrap_or(true);
            if !matches {
                let message = format!("`{text}` is not a valid `{path}`: it must match `{pattern}`");
                self.error(crate::codes::spec::INVALID_VALUE, span.clone(), message, self.describe(field, path));
            }
        }
        if obj.get("format").and_then(Value::as_str) == Some("duration")
            && let Err(err) = crate::duration::parse(text)
        {
            let message = format!("invalid duration `{text}` for `{path}`: {err}");
            let help = "write a number and a unit of at most 365 days, e.g. `500ms`, `5s`, `30m`, `1h 30m`".to_string();
            self.error(crate::codes::spec::INVALID_DURATION, span, message, help);
        }
    }

    fn check_integer(&mut self, field: &'a Value, obj: &Map<String, Value>, value: Option<i128>, span: Range<usize>, path: &KeyPath) {
        let mut min = obj.get("minimum").and_then(Value::as_i64).map(i128::from);
        let mut max = obj.get("maximum").and_then(Value::as_i64).map(i128::from);
        if obj.get("format").and_then(Value::as_str) == Some("uint32") {
            min = min.or(Some(0));
            max = max.or(Some(i128::from(u32::MAX)));
        }
        let message = match (value, min, max) {
            (None, _, _) => format!("`{path}` is too large"),
            (Some(v), Some(lo), _) if v < lo => format!("`{path}` must be at least {lo}, found {v}"),
            (Some(v), _, Some(hi)) if v > hi => format!("`{path}` must be at most {hi}, found {v}"),
            _ => return,
        };
        self.error(crate::codes::spec::OUT_OF_RANGE, span, message, self.describe(field, path));
    }

    fn check_table(&mut self, schema: &'a Value, table: &DeTable<'_>, span: Range<usize>, path: &KeyPath) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Value::as_object);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false))
            || schema.get("unevaluatedProperties") == Some(&Value::Bool(false));
        let additional = schema.get("additionalProperties").filter(|v| v.is_object());
        // A flattened enum (the callback actions): each branch adds one key; exactly one must be set.
        let branches: Vec<&Map<String, Value>> = schema
            .get("oneOf")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(|b| self.resolve(b).as_object()).filter(|b| b.contains_key("properties")).collect())
            .unwrap_or_default();
        let lookup = |key: &str| -> Option<&'a Value> {
            properties.and_then(|p| p.get(key)).or_else(|| branches.iter().find_map(|b| b.get("properties").and_then(|p| p.get(key))))
        };

        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            if let Some(field) = lookup(name) {
                self.check(field, value, &path.key(name));
            } else if let Some(additional) = additional {
                self.check(additional, value, &path.key(name));
            } else if closed {
                let known: Vec<&str> = properties
                    .into_iter()
                    .flat_map(|p| p.keys())
                    .chain(branches.iter().filter_map(|b| b.get("properties").and_then(Value::as_object)).flat_map(|p| p.keys()))
                    .map(String::as_str)
                    .collect();
                let help = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the keys of {} are: {}", path.table(), known.join(", ")),
                };
                self.error(crate::codes::spec::UNKNOWN_KEY, key.span(), format!("unknown key `{name}` in {}", path.table()), help);
            }
        }

        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !table.contains_key(required) {
                let field = properties.and_then(|p| p.get(required)).unwrap_or(&Value::Null);
                let inner = path.key(required);
                let is_table = self.resolve(field).get("type").and_then(Value::as_str) == Some("object");
                let (message, add) = if is_table {
                    (format!("missing table {}", inner.table()), format!("add a {} table", inner.table()))
                } else {
                    (format!("missing key `{required}` in {}", path.table()), format!("add `{required} = …` to {}", path.table()))
                };
                let help = format!("{add}; {}", self.describe(field, &inner));
                self.error(crate::codes::spec::MISSING_KEY, span.clone(), message, help);
            }
        }

        if !branches.is_empty() {
            let names: Vec<&str> = branches
                .iter()
                .filter_map(|b| b.get("required").and_then(Value::as_array).and_then(|r| r.first()).and_then(Value::as_str))
                .collect();
            let present: Vec<&Spanned<std::borrow::Cow<'_, str>>> =
                table.keys().filter(|k| names.contains(&k.get_ref().as_ref())).collect();
            let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            match present.as_slice() {
                [] => {
                    let message = format!("`{path}` has no action: it needs exactly one of {list}");
                    let help = format!("add one action table, e.g. `[{}.log]`", path.table().trim_matches(['[', ']']));
                    self.error(crate::codes::spec::MISSING_ACTION, span, message, help);
                }
                [_] => {}
                [first, rest @ ..] => {
                    for extra in rest {
                        let message =
                            format!("`{path}` has two actions, `{}` and `{}`: it needs exactly one", first.get_ref(), extra.get_ref());
                        let help = "split it into two [[callbacks]] entries, one per action".to_string();
                        self.error(crate::codes::spec::CONFLICTING_ACTIONS, extra.span(), message, help);
                    }
                }
            }
        }
    }
}

/// The allowed strings of an enum: `enum: [...]` or `oneOf` / `anyOf` of `const`s.
fn enum_choices(obj: &Map<String, Value>) -> Option<Vec<&str>> {
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        return values.iter().map(Value::as_str).collect();
    }
    let branches = obj.get("oneOf").or_else(|| obj.get("anyOf")).and_then(Value::as_array)?;
    branches.iter().map(|b| b.get("const").and_then(Value::as_str)).collect()
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "number",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "object",
    }
}

fn type_matches(types: &Value, value: &DeValue<'_>) -> bool {
    let actual = type_name(value);
    let accepts = |t: &str| t == actual || (t == "number" && actual == "integer");
    match types {
        Value::String(t) => accepts(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(accepts),
        _ => true,
    }
}

fn with_article(type_name: &str) -> &'static str {
    match type_name {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "datetime" => "a date-time",
        "array" => "an array",
        "object" => "a table",
        _ => "a value",
    }
}

fn article_type(value: &DeValue<'_>) -> &'static str {
    with_article(type_name(value))
}

fn expected(types: &Value) -> String {
    let names: Vec<&str> = match types {
        Value::String(t) => vec![with_article(t)],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").map(with_article).collect(),
        _ => vec!["a value"],
    };
    names.join(" or ")
}
