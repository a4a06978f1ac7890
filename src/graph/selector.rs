//! dbt's selector syntax: parsing one criterion (`2+tag:nightly+`) and matching its method.

use std::ops::Range;

use serde_json::Value;

use super::Member;
use crate::diagnostics::{Diagnostic, SourceFile, did_you_mean};
use crate::node::{NodeConfig, Origin, ResourceType};

/// One selector as the user gave it (a `--select` value or a list item of orrery.toml),
/// with where it was written when known. Space-separated parts are a union, `a,b` an
/// intersection.
#[derive(Clone, Debug)]
pub struct SelectorArg {
    pub text: String,
    pub origin: Option<Origin>,
}

impl SelectorArg {
    pub fn new(text: impl Into<String>) -> Self {
        SelectorArg { text: text.into(), origin: None }
    }

    /// Where the selector was written, e.g. the span of a TOML string (quotes included or not).
    pub fn at(mut self, source: &SourceFile, span: Range<usize>) -> Self {
        self.origin = Some(Origin { source: source.clone(), span });
        self
    }

    /// The span of `part` (a slice of `self.text` at byte `offset`) inside the source, if known.
    pub(crate) fn locate(&self, diagnostic: Diagnostic, offset: usize, len: usize) -> Diagnostic {
        let Some(origin) = &self.origin else { return diagnostic };
        let written = origin.source.text.get(origin.span.clone()).unwrap_or("");
        let span = match written.find(self.text.as_str()) {
            Some(at) if !self.text.is_empty() => {
                let start = origin.span.start + at + offset;
                start..start + len
            }
            _ => origin.span.clone(),
        };
        diagnostic.at(&origin.source, span)
    }
}

impl From<&str> for SelectorArg {
    fn from(text: &str) -> Self {
        SelectorArg::new(text)
    }
}

impl From<String> for SelectorArg {
    fn from(text: String) -> Self {
        SelectorArg::new(text)
    }
}

impl From<&String> for SelectorArg {
    fn from(text: &String) -> Self {
        SelectorArg::new(text.clone())
    }
}

/// One parsed criterion: `[@][N+]method:value[+N]`.
#[derive(Clone, Debug)]
pub(crate) struct Criterion {
    pub method: Method,
    pub value: String,
    pub childrens_parents: bool,
    /// `Some(depth)` with `+` before the value; depth `None` means unbounded.
    pub parents: Option<Option<usize>>,
    pub children: Option<Option<usize>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Method {
    Fqn(FqnPattern),
    Tag,
    Source,
    Path,
    File,
    Package,
    Config(Vec<String>),
    ResourceType(Option<ResourceType>),
    TestName,
    TestType,
    Version,
    Group,
    Access,
    /// A dbt method for resources orrery does not have (exposures, metrics…): matches nothing.
    Nothing,
}

const METHODS: &[&str] = &[
    "fqn",
    "tag",
    "source",
    "path",
    "file",
    "package",
    "config",
    "resource_type",
    "test_name",
    "test_type",
    "version",
    "group",
    "access",
    "exposure",
    "metric",
    "semantic_model",
    "saved_query",
    "unit_test",
];

/// Resource types dbt knows that orrery never has: valid in `resource_type:`, match nothing.
const OTHER_RESOURCE_TYPES: &[&str] = &[
    "exposure",
    "metric",
    "operation",
    "sql_operation",
    "doc",
    "macro",
    "semantic_model",
    "unit_test",
    "saved_query",
    "function",
    "group",
    "rpc",
    "fixture",
];

fn invalid(raw: &str, why: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(crate::codes::graph::INVALID_SELECTOR, format!("invalid selector `{raw}`: {why}"))
}

/// Diagnostics are large; boxing keeps the parser's `Result`s small.
type Parsed<T> = Result<T, Box<Diagnostic>>;

/// Splits `digits+` off the front of `s`; `None` when `s` does not start that way.
fn leading_depth(s: &str) -> Option<(Option<&str>, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    s[digits..].strip_prefix('+').map(|rest| ((digits > 0).then(|| &s[..digits]), rest))
}

/// Splits `+digits` off the end of `s`.
fn trailing_depth(s: &str) -> Option<(&str, Option<&str>)> {
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    let head = &s[..s.len() - digits];
    head.strip_suffix('+').map(|value| (value, (digits > 0).then(|| &s[s.len() - digits..])))
}

fn depth(raw: &str, digits: Option<&str>) -> Parsed<Option<usize>> {
    digits.map(|d| d.parse::<usize>().map_err(|_| Box::new(invalid(raw, format!("depth `{d}` is too large"))))).transpose()
}

pub(crate) fn parse_criterion(raw: &str) -> Parsed<Criterion> {
    let mut rest = raw;
    let childrens_parents = rest.starts_with('@');
    if childrens_parents {
        rest = &rest[1..];
    }
    let mut parents = None;
    if let Some((digits, after)) = leading_depth(rest) {
        parents = Some(depth(raw, digits)?);
        rest = after;
    }
    let mut children = None;
    if let Some((value, digits)) = trailing_depth(rest) {
        children = Some(depth(raw, digits)?);
        rest = value;
    }
    if childrens_parents && children.is_some() {
        return Err(Box::new(
            invalid(raw, "the `@` prefix and a `+` suffix cannot be combined")
                .with_help("`@name` already selects every descendant of `name` and their parents"),
        ));
    }
    if childrens_parents && parents.is_some() {
        return Err(Box::new(
            invalid(raw, "the `@` prefix and a `+` prefix cannot be combined")
                .with_help("`@name` already selects the parents of every descendant of `name`"),
        ));
    }

    let (method, value) = match rest.split_once(':') {
        Some((method, value)) if !method.is_empty() && method.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') => {
            (parse_method(raw, method, value)?, value)
        }
        _ => (default_method(rest), rest),
    };
    if value.is_empty() {
        return Err(Box::new(invalid(raw, "no value to search for").with_help("write e.g. `orders`, `+orders`, `tag:nightly`")));
    }
    if method == Method::Source && value.split('.').count() > 3 {
        return Err(Box::new(invalid(raw, "a source is `source_name`, `source_name.table` or `package.source_name.table`")));
    }
    Ok(Criterion { method, value: value.to_string(), childrens_parents, parents, children })
}

/// A qualified-name selector split once: `shop.staging.*`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FqnPattern {
    text: String,
    parts: Vec<String>,
    /// The first part with a wildcard, from which the rest is matched as one glob.
    wildcard_at: Option<usize>,
}

impl FqnPattern {
    fn new(text: &str) -> Self {
        let parts: Vec<String> = text.split('.').map(str::to_string).collect();
        let wildcard_at = parts.iter().position(|p| has_wildcard(p));
        FqnPattern { text: text.to_string(), parts, wildcard_at }
    }
}

/// dbt's default: a path when it has a slash, a file name for .sql/.py/.csv, else an fqn.
fn default_method(value: &str) -> Method {
    let lower = value.to_ascii_lowercase();
    if value.contains('/') || value.contains('\\') {
        Method::Path
    } else if lower.ends_with(".sql") || lower.ends_with(".py") || lower.ends_with(".csv") {
        Method::File
    } else {
        Method::Fqn(FqnPattern::new(value))
    }
}

fn parse_method(raw: &str, method: &str, value: &str) -> Parsed<Method> {
    let mut parts = method.split('.');
    let name = parts.next().unwrap_or_default();
    let arguments: Vec<String> = parts.map(str::to_string).collect();
    if name != "config" && !arguments.is_empty() {
        return Err(Box::new(invalid(raw, format!("`{name}` takes no `.{}` argument", arguments.join(".")))));
    }
    Ok(match name {
        "fqn" => Method::Fqn(FqnPattern::new(value)),
        "tag" => Method::Tag,
        "source" => Method::Source,
        "path" => Method::Path,
        "file" => Method::File,
        "package" => Method::Package,
        "config" if arguments.is_empty() || arguments.iter().any(String::is_empty) => {
            return Err(Box::new(invalid(raw, "`config` needs a key").with_help("write e.g. `config.materialized:table`")));
        }
        "config" => Method::Config(arguments),
        "resource_type" => match value {
            "model" => Method::ResourceType(Some(ResourceType::Model)),
            "seed" => Method::ResourceType(Some(ResourceType::Seed)),
            "snapshot" => Method::ResourceType(Some(ResourceType::Snapshot)),
            "test" => Method::ResourceType(Some(ResourceType::Test)),
            "analysis" => Method::ResourceType(Some(ResourceType::Analysis)),
            "source" => Method::ResourceType(Some(ResourceType::Source)),
            other if OTHER_RESOURCE_TYPES.contains(&other) => Method::ResourceType(None),
            other => {
                let known = ["model", "seed", "snapshot", "test", "analysis", "source"];
                let help = match did_you_mean(other, known) {
                    Some(s) => format!("did you mean `resource_type:{s}`?"),
                    None => format!("one of: {}", known.join(", ")),
                };
                return Err(Box::new(invalid(raw, format!("`{other}` is not a resource type")).with_help(help)));
            }
        },
        "test_name" => Method::TestName,
        "test_type" => match value {
            "generic" | "schema" | "singular" | "data" | "unit" => Method::TestType,
            other => {
                return Err(Box::new(
                    invalid(raw, format!("`{other}` is not a test type")).with_help("one of: generic, singular, unit, data"),
                ));
            }
        },
        "version" => match value {
            "latest" | "prerelease" | "old" | "none" => Method::Version,
            other => {
                return Err(Box::new(
                    invalid(raw, format!("`{other}` is not a version selector")).with_help("one of: latest, prerelease, old, none"),
                ));
            }
        },
        "group" => Method::Group,
        "access" => Method::Access,
        "exposure" | "metric" | "semantic_model" | "saved_query" | "unit_test" => Method::Nothing,
        "state" | "result" | "source_status" | "selector" => {
            return Err(Box::new(
                Diagnostic::error(
                    crate::codes::graph::UNSUPPORTED_SELECTOR,
                    format!("`{name}:` selectors are not supported by orrery (in `{raw}`)"),
                )
                .with_help("orrery keeps no previous manifest or run results to compare against; select by name, tag or path"),
            ));
        }
        other => {
            let help = match did_you_mean(other, METHODS.iter().copied()) {
                Some(s) => format!("did you mean `{s}:`?"),
                None => format!("selector methods: {}", METHODS[..13].join(", ")),
            };
            return Err(Box::new(invalid(raw, format!("unknown method `{other}`")).with_help(help)));
        }
    })
}

/// What a method needs besides the member.
pub(crate) struct MatchContext<'p> {
    pub project_name: &'p str,
}

impl Criterion {
    /// A bare node name, which a did-you-mean can correct.
    pub(super) fn bare_name(&self) -> Option<&str> {
        match &self.method {
            Method::Fqn(p) if p.parts.len() == 1 && p.wildcard_at.is_none() => Some(&p.text),
            _ => None,
        }
    }

    /// Whether the method part (without graph operators) selects `member`.
    pub(super) fn matches(&self, member: Member<'_>, ctx: &MatchContext<'_>) -> bool {
        let value = self.value.as_str();
        match &self.method {
            Method::Fqn(pattern) => match member {
                Member::Node(n) => {
                    let versioned = n.version.is_some();
                    fqn_selected(&n.fqn, pattern, versioned) || fqn_selected(n.fqn.get(1..).unwrap_or(&[]), pattern, versioned)
                }
                Member::Source(_) => false,
            },
            Method::Tag => member.tags().iter().any(|t| fnmatch(t, value)),
            Method::Source => match member {
                Member::Source(s) => {
                    let parts: Vec<&str> = value.split('.').collect();
                    let (package, source, table) = match parts.as_slice() {
                        [source] => ("*", *source, "*"),
                        [source, table] => ("*", *source, *table),
                        [package, source, table] => (*package, *source, *table),
                        _ => return false,
                    };
                    fnmatch(&s.package_name, package) && fnmatch(&s.source_name, source) && fnmatch(&s.name, table)
                }
                Member::Node(_) => false,
            },
            Method::Path => path_selected(member.original_file_path(), value),
            Method::File => {
                let path = member.original_file_path();
                let file = path.rsplit('/').next().unwrap_or(path);
                let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
                fnmatch(file, value) || fnmatch(stem, value)
            }
            Method::Package => {
                let wanted = if value == "this" { ctx.project_name } else { value };
                fnmatch(member.package_name(), wanted)
            }
            Method::Config(path) => config_lookup(member, path).is_some_and(|found| config_equals(&found, value, path)),
            Method::ResourceType(kind) => *kind == Some(member.resource_type()),
            Method::TestName => member
                .node()
                .and_then(|n| n.test_metadata.as_ref().filter(|_| n.resource_type == ResourceType::Test))
                .is_some_and(|meta| fnmatch(&meta.name, value)),
            Method::TestType => match member.node().filter(|n| n.resource_type == ResourceType::Test) {
                Some(n) => match value {
                    "generic" | "schema" => n.test_metadata.is_some(),
                    "singular" => n.test_metadata.is_none(),
                    "data" => true,
                    _ => false,
                },
                None => false,
            },
            Method::Version => member.node().is_some_and(|n| version_selected(n.version.as_deref(), n.latest_version.as_deref(), value)),
            Method::Group => {
                member.node().and_then(|n| n.config.extra.get("group")).and_then(Value::as_str).is_some_and(|g| fnmatch(g, value))
            }
            Method::Access => member
                .node()
                .filter(|n| n.resource_type == ResourceType::Model)
                .is_some_and(|n| n.config.extra.get("access").and_then(Value::as_str).unwrap_or("protected") == value),
            Method::Nothing => false,
        }
    }
}

/// dbt's qualified-name match: the leaf name, an fqn prefix, or a wildcard pattern.
fn fqn_selected(fqn: &[String], pattern: &FqnPattern, versioned: bool) -> bool {
    let Some(last) = fqn.last() else { return false };
    let selector = pattern.text.as_str();
    let leaf = if versioned && fqn.len() >= 2 { &fqn[fqn.len() - 2] } else { last };
    if leaf == selector {
        return true;
    }
    if versioned && fqn.len() >= 2 {
        // `dim_customers_v2` or `dim_customers.v2`: the last two parts joined by `_`.
        let tail = &pattern.parts[pattern.parts.len().saturating_sub(2)..];
        if tail.join("_") == format!("{leaf}_{last}") {
            return true;
        }
    }
    if pattern.parts.len() == 1 && pattern.wildcard_at.is_none() {
        // The common case, a bare name: past the leaf, only a first fqn part can match.
        return fqn[0].split('.').next() == Some(selector);
    }
    if pattern.parts.len() > 1 && fqn.iter().map(|s| s.split('.').count()).sum::<usize>() < pattern.parts.len() {
        return false;
    }
    let mut flat = fqn.iter().flat_map(|s| s.split('.'));
    for (i, part) in pattern.parts.iter().enumerate() {
        if pattern.wildcard_at == Some(i) {
            let dotted = fqn.join(".");
            return fnmatch(after_dots(&dotted, i), after_dots(selector, i)) || (pattern.parts.len() == 1 && fnmatch(leaf, selector));
        }
        if flat.next() != Some(part.as_str()) {
            return false;
        }
    }
    true
}

/// The part of `s` after its `n`th dot (all of `s` for 0).
fn after_dots(s: &str, n: usize) -> &str {
    match n {
        0 => s,
        _ => s.match_indices('.').nth(n - 1).map_or("", |(i, _)| &s[i + 1..]),
    }
}

/// `path:` matches a file itself or anything below a directory, relative to the project root.
fn path_selected(file: &str, selector: &str) -> bool {
    let mut selector = selector.trim_end_matches('/');
    while let Some(rest) = selector.strip_prefix("./") {
        selector = rest;
    }
    if selector.is_empty() || selector == "." {
        return true;
    }
    if !has_wildcard(selector) {
        return file == selector || (file.starts_with(selector) && file.as_bytes().get(selector.len()) == Some(&b'/'));
    }
    let pattern: Vec<&str> = selector.split('/').collect();
    let parts: Vec<&str> = file.split('/').collect();
    (1..=parts.len()).any(|k| glob_parts(&pattern, &parts[..k]))
}

/// Component-wise glob as pathlib does it: `*` stays in one component, `**` spans any number.
fn glob_parts(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| glob_parts(rest, &path[skip..])),
        Some((first, rest)) => path.split_first().is_some_and(|(p, tail)| fnmatch(p, first) && glob_parts(rest, tail)),
    }
}

fn version_selected(version: Option<&str>, latest: Option<&str>, wanted: &str) -> bool {
    let compare = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    };
    match (wanted, version, latest) {
        ("none", v, _) => v.is_none(),
        ("latest", Some(v), Some(l)) => v == l,
        ("prerelease", Some(v), Some(l)) => compare(v, l).is_gt(),
        ("old", Some(v), Some(l)) => compare(v, l).is_lt(),
        _ => false,
    }
}

/// A config value by dotted path; nested keys descend into maps such as `meta`.
fn config_lookup(member: Member<'_>, path: &[String]) -> Option<Value> {
    let (key, rest) = path.split_first()?;
    let top = match member {
        Member::Node(n) => node_config_value(&n.config, key)?,
        Member::Source(s) => match key.as_str() {
            "enabled" => Value::Bool(true),
            "tags" => Value::from(s.tags.clone()),
            "meta" => return descend_map(&s.meta, rest),
            _ => return None,
        },
    };
    rest.iter().try_fold(top, |value, key| value.get(key.as_str()).cloned())
}

fn descend_map(map: &indexmap::IndexMap<String, Value>, path: &[String]) -> Option<Value> {
    match path.split_first() {
        None => Some(Value::Object(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())),
        Some((key, rest)) => {
            let mut value = map.get(key.as_str())?;
            for key in rest {
                value = value.get(key.as_str())?;
            }
            Some(value.clone())
        }
    }
}

fn node_config_value(c: &NodeConfig, key: &str) -> Option<Value> {
    let opt = |v: &Option<String>| v.clone().map(Value::String);
    let map = |m: &indexmap::IndexMap<String, Value>| descend_map(m, &[]);
    Some(match key {
        "enabled" => Value::Bool(c.enabled),
        "materialized" => Value::String(c.materialized.clone()),
        "tags" => Value::from(c.tags.clone()),
        "database" => opt(&c.database)?,
        "schema" => opt(&c.schema)?,
        "alias" => opt(&c.alias)?,
        "pre_hook" | "pre-hook" => Value::from(c.pre_hook.clone()),
        "post_hook" | "post-hook" => Value::from(c.post_hook.clone()),
        "unique_key" => c.unique_key.clone()?,
        "incremental_strategy" => opt(&c.incremental_strategy)?,
        "on_schema_change" => opt(&c.on_schema_change)?,
        "full_refresh" => Value::Bool(c.full_refresh?),
        "grants" => serde_json::to_value(&c.grants).ok()?,
        "meta" => map(&c.meta)?,
        "persist_docs" => map(&c.persist_docs)?,
        "quoting" => map(&c.quoting)?,
        "column_types" => serde_json::to_value(&c.column_types).ok()?,
        "quote_columns" => Value::Bool(c.quote_columns?),
        "delimiter" => opt(&c.delimiter)?,
        "strategy" => opt(&c.strategy)?,
        "updated_at" => opt(&c.updated_at)?,
        "check_cols" => c.check_cols.clone()?,
        "target_schema" => opt(&c.target_schema)?,
        "target_database" => opt(&c.target_database)?,
        "invalidate_hard_deletes" => Value::Bool(c.invalidate_hard_deletes?),
        "severity" => opt(&c.severity)?,
        "where" => opt(&c.where_)?,
        "limit" => Value::from(c.limit?),
        "warn_if" => opt(&c.warn_if)?,
        "error_if" => opt(&c.error_if)?,
        "fail_calc" => opt(&c.fail_calc)?,
        "store_failures" => Value::Bool(c.store_failures?),
        other => c.extra.get(other).or_else(|| c.extra.get(&other.replace('_', "-")))?.clone(),
    })
}

/// dbt compares strings exactly (severity ignoring case), lists by membership, booleans as
/// `true`/`false`; numbers compare by their text.
fn config_equals(found: &Value, wanted: &str, path: &[String]) -> bool {
    match found {
        Value::String(s) if path.len() == 1 && path[0] == "severity" => s.eq_ignore_ascii_case(wanted),
        Value::String(s) => s == wanted,
        Value::Bool(b) => wanted.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == wanted,
        Value::Array(items) => items.iter().any(|item| !item.is_array() && config_equals(item, wanted, path)),
        Value::Null | Value::Object(_) => false,
    }
}

pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Unix shell-style matching as Python's `fnmatch` (case-sensitive): `*`, `?`, `[seq]`, `[!seq]`.
pub(crate) fn fnmatch(name: &str, pattern: &str) -> bool {
    if !has_wildcard(pattern) {
        return name == pattern;
    }
    if name.is_ascii() && pattern.is_ascii() {
        glob(name.as_bytes(), pattern.as_bytes())
    } else {
        glob(&name.chars().collect::<Vec<_>>(), &pattern.chars().collect::<Vec<_>>())
    }
}

/// Backtracking glob over bytes (ASCII, no allocation) or chars.
fn glob<T: Copy + PartialOrd + From<u8>>(name: &[T], pattern: &[T]) -> bool {
    let star = T::from(b'*');
    let (mut p, mut n) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == star {
            resume = Some((p, n));
            p += 1;
            continue;
        }
        if let Some(next) = (p < pattern.len()).then(|| match_one(pattern, p, name[n])).flatten() {
            p = next;
            n += 1;
            continue;
        }
        match resume {
            Some((sp, sn)) => {
                resume = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == star)
}

/// Matches one pattern element at `p` against `c`; the index after it on success.
fn match_one<T: Copy + PartialOrd + From<u8>>(pattern: &[T], p: usize, c: T) -> Option<usize> {
    let element = pattern[p];
    if element == T::from(b'?') {
        Some(p + 1)
    } else if element == T::from(b'[') {
        match char_class(pattern, p, c) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            None => (c == element).then_some(p + 1),
        }
    } else {
        (element == c).then_some(p + 1)
    }
}

/// `[...]` at `start`: whether `c` is in it and the index after it; `None` when unclosed.
fn char_class<T: Copy + PartialOrd + From<u8>>(pattern: &[T], start: usize, c: T) -> Option<(bool, usize)> {
    let (close, dash) = (T::from(b']'), T::from(b'-'));
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&T::from(b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *pattern.get(i)?;
        if ch == close && !first {
            break;
        }
        first = false;
        match (pattern.get(i + 1), pattern.get(i + 2)) {
            (Some(d), Some(&end)) if *d == dash && end != close => {
                matched |= ch <= c && c <= end;
                i += 3;
            }
            _ => {
                matched |= ch == c;
                i += 1;
            }
        }
    }
    Some((matched != negate, i + 1))
}
