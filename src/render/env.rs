//! The one minijinja environment of a compile: dbt's global functions and source rewrites
//! for the block tags minijinja does not know (`test`, `materialization`, `snapshot`).

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use minijinja::value::{Object, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use regex::Regex;

use super::context::dbt_return;
use super::rewrite::{SourceMap, insert_all, replace_all};

static TEST_OPEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{%(-?)(?-u:\s)*test(?-u:\s)+((?-u:\w)+)(?-u:\s)*\(").expect("regex"));
static TEST_CLOSE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{%(-?)(?-u:\s)*endtest(?-u:\s)*(-?)%\}").expect("regex"));
static MATERIALIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{%-?(?-u:\s)*materialization(?-u:\s).*?\{%-?(?-u:\s)*endmaterialization(?-u:\s)*-?%\}").expect("regex")
});
static MACRO_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{%-?(?-u:\s)*macro(?-u:\s)+((?-u:\w)+)(?-u:\s)*\(").expect("regex"));
pub(super) static SNAPSHOT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{%(-?)(?-u:\s)*snapshot(?-u:\s)+((?-u:\w)+)(?-u:\s)*(-?)%\}(.*?)\{%(-?)(?-u:\s)*endsnapshot(?-u:\s)*(-?)%\}")
        .expect("regex")
});
pub(super) static DOCS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{%-?(?-u:\s)*docs(?-u:\s)+((?-u:\w)+)(?-u:\s)*-?%\}(.*?)\{%-?(?-u:\s)*enddocs(?-u:\s)*-?%\}").expect("regex")
});

/// Rewrites `{% test %}` blocks to macros and blanks out materializations (keeping lines),
/// with the map back to the original text.
pub(super) fn preprocess_macros(text: &str) -> (String, SourceMap) {
    let (t1, m1) = replace_all(&TEST_OPEN, text, |c| format!("{{%{} macro test_{}(", &c[1], &c[2]));
    let (t2, m2) = replace_all(&TEST_CLOSE, &t1, |c| format!("{{%{} endmacro {}%}}", &c[1], &c[2]));
    let (t3, m3) = replace_all(&MATERIALIZATION, &t2, |c| c[0].chars().filter(|ch| *ch == '\n').collect());
    let (t4, m4) = add_extra_params(&t3);
    // Same-file calls must go through the dbt wrapper too (for `return`), so hide the real names.
    let (t5, m5) = replace_all(&MACRO_DEF, &t4, |c| format!("{{%{} macro orrery_macro__{}(", &c[1], &c[2]));
    let map = m1.then(&m2).then(&m3).then(&m4).then(&m5);
    match call_blocks(&t5) {
        Some((t6, m6)) => (t6, map.then(&m6)),
        None => (t5, map),
    }
}

static CALL_BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{%(-?)(?-u:\s)*call(?-u:\b)((?-u:\s)*\([^)]*\))?(?-u:\s)*([A-Za-z_](?-u:\w)*(?:\.[A-Za-z_](?-u:\w)*)*)(?-u:\s)*\(")
        .expect("regex")
});

/// `{% call m(...) %}`: imports `m`'s macro into the calling template's own state first, since
/// minijinja only lets a macro call `caller()` when both live in one state.
pub(super) fn call_blocks(text: &str) -> Option<(String, SourceMap)> {
    if !text.contains("call") || !CALL_BLOCK.is_match(text) {
        return None;
    }
    Some(replace_all(&CALL_BLOCK, text, |c| {
        let name = &c[3];
        let last = name.rsplit('.').next().unwrap_or(name);
        let params = c.get(2).map_or("", |m| m.as_str());
        format!(
            "{{%{} from __dbt_call_template({name}) import {} as __dbt_called %}}{{% call{params} __dbt_call_target({name}, __dbt_called)(",
            &c[1],
            hidden_name(last)
        )
    }))
}

static MACRO_DEF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{%(-?)(?-u:\s)*macro(?-u:\s)+((?-u:\w)+)(?-u:\s)*\(").expect("regex"));

/// The name a macro has inside its template after `preprocess_macros`.
pub(super) fn hidden_name(name: &str) -> String {
    format!("orrery_macro__{name}")
}

/// Appends `varargs=none, kwargs=none` to each macro's parameters (dbt's implicit ones).
fn add_extra_params(text: &str) -> (String, SourceMap) {
    let mut inserts = Vec::new();
    for m in MACRO_NAME.find_iter(text) {
        let open = m.end() - 1;
        let bytes = text.as_bytes();
        let (mut depth, mut i, mut quote) = (0usize, open, None::<u8>);
        let mut close = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'\'' | b'"' => quote = Some(b),
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        let Some(close) = close else { continue };
        let inner = text[open + 1..close].trim();
        if inner.split(',').any(|p| matches!(p.split('=').next().map(str::trim), Some("kwargs" | "varargs"))) {
            continue;
        }
        inserts.push((close, if inner.is_empty() { "varargs=none, kwargs=none" } else { ", varargs=none, kwargs=none" }.to_string()));
    }
    insert_all(text, inserts)
}

static HIDDEN_MACRO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{%-?(?-u:\s)*macro(?-u:\s)+orrery_macro__((?-u:\w)+)(?-u:\s)*\(").expect("regex"));
static END_MACRO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{%-?(?-u:\s)*endmacro(?-u:\b)[^%]*%\}").expect("regex"));
static COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)\{#.*?#\}").expect("regex"));

/// Each macro's `{% macro %}…{% endmacro %}` in a prepared macro file, when the file holds only
/// macros, text and comments (else `None`: the file stays one template).
pub(super) fn macro_blocks(text: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let starts: Vec<(String, usize)> =
        HIDDEN_MACRO.captures_iter(text).map(|c| (c[1].to_string(), c.get(0).map_or(0, |m| m.start()))).collect();
    let ends: Vec<usize> = END_MACRO.find_iter(text).map(|m| m.end()).collect();
    if starts.len() != ends.len() {
        return None;
    }
    let only_text = |gap: &str| {
        let gap = COMMENT.replace_all(gap, "");
        !gap.contains("{%") && !gap.contains("{{") && !gap.contains("{#")
    };
    let mut blocks = Vec::with_capacity(starts.len());
    let mut prev = 0;
    for ((name, start), end) in starts.into_iter().zip(ends) {
        if start < prev || end <= start || !only_text(&text[prev..start]) {
            return None;
        }
        blocks.push((name, start..end));
        prev = end;
    }
    only_text(&text[prev..]).then_some(blocks)
}

pub(super) fn macro_names(text: &str) -> Vec<String> {
    MACRO_NAME.captures_iter(text).map(|c| c[1].trim_start_matches("orrery_macro__").to_string()).collect()
}

/// Every environment variable `env_var` read in this process, with what it found: the
/// compile cache keys on them.
static ENV_READS: std::sync::Mutex<std::collections::BTreeMap<String, Option<String>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The environment variables read so far by `env_var`, and their values (`None`: unset).
pub fn env_reads() -> std::collections::BTreeMap<String, Option<String>> {
    ENV_READS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// `env_var(name, default)`: unset without a default is an error naming the variable.
pub fn env_var_function(name: String, default: Option<Value>) -> Result<Value, Error> {
    let found = std::env::var(&name);
    ENV_READS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.clone(), found.clone().ok());
    match found {
        Ok(v) => Ok(Value::from(v)),
        Err(_) => match default {
            Some(d) => Ok(d),
            None => Err(Error::new(ErrorKind::InvalidOperation, format!("env var `{name}` is not set and has no default"))),
        },
    }
}

/// `env_var` in models, macros and yml: dbt refuses `DBT_ENV_SECRET*` variables there, as
/// their values would be written into compiled SQL, the manifest and the plan.
fn project_env_var(name: String, default: Option<Value>) -> Result<Value, Error> {
    if name.starts_with("DBT_ENV_SECRET") {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "secret env var `{name}` is allowed only in profiles.yml or packages.yml (its value would be written into compiled SQL)"
            ),
        ));
    }
    env_var_function(name, default)
}

#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let msg = args.first().map(|v| v.to_string()).unwrap_or_default();
        match method {
            "raise_compiler_error" | "raise_not_implemented" | "raise_fail_fast_error" => Err(Error::new(ErrorKind::InvalidOperation, msg)),
            "warn" => Ok(Value::from("")),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `modules.re`: Python's `re` on Rust's regex (the common subset).
#[derive(Debug)]
struct Re;

impl Object for Re {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let s = |i: usize| args.get(i).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if method == "escape" {
            return Ok(Value::from(regex::escape(&s(0))));
        }
        let pattern = match method {
            "match" => format!("^(?:{})", s(0)),
            "fullmatch" => format!("^(?:{})$", s(0)),
            _ => s(0),
        };
        let re = Regex::new(&pattern).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("bad regex: {e}")))?;
        match method {
            "search" | "match" | "fullmatch" => Ok(re.find(&s(1)).map(|m| Value::from(m.as_str().to_string())).unwrap_or(Value::from(()))),
            "findall" => Ok(Value::from(re.find_iter(&s(1)).map(|m| Value::from(m.as_str().to_string())).collect::<Vec<_>>())),
            "sub" => {
                let repl = s(1).replace("\\g<", "${").replace('>', "}");
                Ok(Value::from(re.replace_all(&s(2), repl.as_str()).into_owned()))
            }
            "split" => Ok(Value::from(re.split(&s(1)).map(|p| Value::from(p.to_string())).collect::<Vec<_>>())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

fn to_json_string(value: Value, sort_keys: Option<bool>) -> Result<String, Error> {
    let mut json = serde_json::to_value(&value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    if sort_keys == Some(true) {
        json.sort_all_objects();
    }
    // Python's json.dumps separators: ", " and ": ".
    Ok(python_json(&json))
}

fn python_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => format!("[{}]", items.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        serde_json::Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", serde_json::Value::String(k.clone()), python_json(v))).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// dbt's type filters for rendered yml values (`"{{ env_var('PORT') | as_number }}"`): dbt
/// renders them natively, to the value's type; orrery's yml renders are text, so each gives its
/// value as it is, after checking it is what the filter names.
pub fn add_type_filters(env: &mut Environment<'_>) {
    env.add_filter("as_text", |v: Value| v);
    env.add_filter("as_native", |v: Value| v);
    env.add_filter("as_bool", |v: Value| -> Result<Value, Error> {
        match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Ok(Value::from(true)),
            Some("false") => Ok(Value::from(false)),
            Some(other) => Err(Error::new(ErrorKind::InvalidOperation, format!("as_bool: `{other}` is not true or false"))),
            None => Ok(v),
        }
    });
    env.add_filter("as_number", |v: Value| -> Result<Value, Error> {
        let Some(text) = v.as_str() else { return Ok(v) };
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::from(i));
        }
        text.parse::<f64>()
            .map(Value::from)
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("as_number: `{text}` is not a number")))
    });
}

/// dbt's `flags`: `WHICH` names the command (`compile` while orrery compiles; `build` when a
/// node rendered at run time renders, as orrery's run is dbt's build).
pub(super) fn flags(full_refresh: bool, which: &str) -> Value {
    minijinja::context! { FULL_REFRESH => full_refresh, WHICH => which, STORE_FAILURES => false, WARN_ERROR => false }
}

/// Builds the environment with every global that does not depend on the node.
pub(super) fn new_environment(run_started_at: DateTime<Utc>, invocation_id: &str, full_refresh: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_recursion_limit(1000);
    env.add_function("return", dbt_return);
    add_type_filters(&mut env);
    env.add_function("env_var", project_env_var);
    // dbt's `log(msg, info=true)` and `print(msg)` write to its log, never into the SQL.
    env.add_function("log", |_msg: Value, kw: minijinja::value::Kwargs| {
        let _ = kw.get::<Option<Value>>("info");
        Value::from("")
    });
    env.add_function("print", |_args: minijinja::value::Rest<Value>| Value::from(""));
    env.add_function("fromjson", |s: String, default: Option<Value>| -> Result<Value, Error> {
        match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(v) => Ok(super::context::json_value(&v)),
            Err(e) => default.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))),
        }
    });
    env.add_function("tojson", |v: Value, sort_keys: Option<bool>| to_json_string(v, sort_keys));
    env.add_function("fromyaml", |s: String, default: Option<Value>| -> Result<Value, Error> {
        match serde_saphyr::from_str::<serde_json::Value>(&s) {
            Ok(v) => Ok(super::context::json_value(&v)),
            Err(e) => default.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("fromyaml: {e}"))),
        }
    });
    env.add_function("toyaml", |v: Value| -> Result<String, Error> {
        let json = serde_json::to_value(&v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        serde_saphyr::to_string(&json).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_function("zip", |args: minijinja::value::Rest<Value>| -> Result<Value, Error> {
        let lists: Vec<Vec<Value>> = args.iter().map(|a| a.try_iter().map(|i| i.collect()).unwrap_or_default()).collect();
        let n = lists.iter().map(Vec::len).min().unwrap_or(0);
        Ok(Value::from((0..n).map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>())).collect::<Vec<_>>()))
    });
    env.add_function("set", |v: Value| -> Result<Value, Error> { Ok(super::python::collections::set(v.try_iter()?)) });
    env.add_function("local_md5", |s: String| crate::md5_hex(&s));
    env.add_global("exceptions", Value::from_object(Exceptions));
    let modules = minijinja::context! {
        re => Value::from_object(Re),
        datetime => Value::from_object(super::python::datetime::DateTimeModule),
    };
    env.add_global("modules", modules);
    env.add_global("run_started_at", super::python::datetime::utc_datetime(run_started_at));
    super::rewrite::register(&mut env);
    env.add_function("__dbt_call_template", super::context::call_template);
    env.add_function("__dbt_call_target", super::context::call_target);
    env.add_template(super::context::EMPTY_TEMPLATE, "").expect("empty template");
    env.add_global("invocation_id", Value::from(invocation_id.to_string()));
    env.add_global("dbt_version", Value::from("1.11.0"));
    env.add_global("flags", flags(full_refresh, "compile"));
    env
}
