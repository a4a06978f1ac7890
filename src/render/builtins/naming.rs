//! dbt's names for generic test nodes: the synthesized name, the hashed alias past 64
//! characters, and the 10-character suffix of the unique_id.

use indexmap::IndexMap;
use serde_json::Value;

use crate::render::python::repr::{py_repr_str, py_str};

/// What a generic test is attached to, as the properties yml names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestTarget<'a> {
    /// A model, seed or snapshot (`version` only for versioned models).
    Node { name: &'a str, version: Option<&'a str> },
    /// A source table: `sources: [{name: source, tables: [{name: table}]}]`.
    Source { source: &'a str, table: &'a str },
}

impl TestTarget<'_> {
    /// The name dbt puts after the test name: `orders`, `orders_v2`, `raw_orders`.
    fn name_part(&self) -> String {
        match self {
            TestTarget::Node { name, version: Some(v) } => format!("{name}_v{v}"),
            TestTarget::Node { name, version: None } => (*name).to_string(),
            TestTarget::Source { source, table } => format!("{source}_{table}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestName {
    /// The node's `name` and last fqn part: the full synthesized name.
    pub name: String,
    /// Set when `name` is 64 characters or longer: the hashed short name dbt puts in
    /// `config.alias` (unless the test configures an alias), the relation identifier and the
    /// compiled file name.
    pub alias: Option<String>,
    /// The 10 hex characters ending the unique_id: `test.<pkg>.<name>.<suffix>`.
    pub unique_id_suffix: String,
}

impl TestName {
    /// The name of the compiled file (without `.sql`) and the relation's identifier.
    pub(crate) fn file_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// Names a generic test as dbt does (a test with a `name:` in yml takes that name instead, with
/// no alias, and [`unique_id_hash`] of it). `test_name` is the test without namespace (`unique`),
/// `namespace` the package before the dot (`dbt_utils.expression_is_true`), `kwargs` the test's
/// arguments as `test_metadata.kwargs` holds them: `column_name` when on a column, `model`
/// and the test's own, without config keys.
pub(crate) fn test_node_name(
    test_name: &str,
    namespace: Option<&str>,
    target: TestTarget<'_>,
    kwargs: &IndexMap<String, Value>,
) -> TestName {
    let mut prefix = match target {
        TestTarget::Source { .. } => format!("source_{test_name}"),
        TestTarget::Node { .. } => test_name.to_string(),
    };
    if let Some(ns) = namespace {
        prefix = format!("{ns}_{prefix}");
    }
    let identifier = format!("{prefix}_{}", target.name_part());
    let full = format!("{identifier}_{}", flat_args(kwargs));
    let alias = (full.len() >= 64).then(|| {
        let head: String = identifier.chars().take(30).collect();
        format!("{head}_{}", crate::md5_hex(&full))
    });
    let unique_id_suffix = unique_id_hash(&full, test_name, namespace, kwargs);
    TestName { name: full, alias, unique_id_suffix }
}

/// The unique_id suffix of a test named `name` (synthesized, or given with `name:`).
pub(crate) fn unique_id_hash(name: &str, test_name: &str, namespace: Option<&str>, kwargs: &IndexMap<String, Value>) -> String {
    // dbt hashes the name followed by Python's repr of the metadata, keys sorted, leaves str()-ed.
    let mut sorted: Vec<(&String, &Value)> = kwargs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let kwargs_repr = sorted.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), hashable_repr(v))).collect::<Vec<_>>().join(", ");
    let namespace_repr = py_repr_str(namespace.unwrap_or("None"));
    let metadata = format!("{{'kwargs': {{{kwargs_repr}}}, 'name': {}, 'namespace': {namespace_repr}}}", py_repr_str(test_name));
    let hex = crate::md5_hex(&format!("{name}{metadata}"));
    hex[hex.len() - 10..].to_string()
}

/// Arguments in name order, `model` left out, each flattened and cleaned, joined by `__`.
fn flat_args(kwargs: &IndexMap<String, Value>) -> String {
    let mut names: Vec<&String> = kwargs.keys().filter(|k| *k != "model").collect();
    names.sort();
    let mut parts: Vec<String> = Vec::new();
    for name in names {
        match &kwargs[name] {
            Value::Object(map) => parts.extend(map.values().map(py_str)),
            Value::Array(items) => parts.extend(items.iter().map(py_str)),
            other => parts.push(py_str(other)),
        }
    }
    parts.iter().map(|p| clean(p)).collect::<Vec<_>>().join("__")
}

/// Every run of characters outside `[0-9a-zA-Z_]` becomes one `_`.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// Python's repr of dbt's hashable form: dicts (keys sorted) and lists kept, the rest `str()`.
fn hashable_repr(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), hashable_repr(v))).collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(hashable_repr).collect::<Vec<_>>().join(", ")),
        other => py_repr_str(&py_str(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target a test's `model` kwarg names: `ref('x')`, `ref('x', version='2')`, `source('a', 'b')`.
    fn target_of(model: &str) -> TestTarget<'_> {
        let args = model.split_once('(').map(|(_, rest)| rest).expect("a call");
        let args = args.split_once('(').map_or(args, |(_, rest)| rest);
        let quoted: Vec<&str> = args.split('\'').skip(1).step_by(2).collect();
        if model.contains("source(") {
            TestTarget::Source { source: quoted[0], table: quoted[1] }
        } else {
            TestTarget::Node { name: quoted[0], version: quoted.get(1).copied() }
        }
    }

    #[test]
    fn names_match_a_real_dbt_manifest() {
        let tests: Vec<Value> = serde_json::from_str(&crate::render::builtins::fixtures::read("expected/test_names.json")).expect("json");
        assert!(tests.len() > 20);
        for t in &tests {
            let meta = &t["test_metadata"];
            let kwargs: IndexMap<String, Value> = serde_json::from_value(meta["kwargs"].clone()).expect("kwargs");
            let target = target_of(kwargs["model"].as_str().expect("model"));
            let test_name = meta["name"].as_str().expect("name");
            let namespace = meta["namespace"].as_str();
            let expected_name = t["name"].as_str().expect("name");
            let expected_uid = t["unique_id"].as_str().expect("uid");
            let got = test_node_name(test_name, namespace, target, &kwargs);
            if expected_name == "status_is_known" {
                // A `name:` given in yml replaces the synthesized one; the hash still follows it.
                let hash = unique_id_hash(expected_name, test_name, namespace, &kwargs);
                assert!(expected_uid.ends_with(&format!(".{hash}")), "{expected_uid}");
                continue;
            }
            assert_eq!(got.name, expected_name);
            assert_eq!(got.file_name(), t["alias"].as_str().expect("alias"), "{expected_name}");
            assert_eq!(format!("{}.sql", got.file_name()), t["path"].as_str().expect("path"));
            let package = expected_uid.split('.').nth(1).expect("package");
            assert_eq!(format!("test.{package}.{}.{}", got.name, got.unique_id_suffix), expected_uid);
        }
    }
}
