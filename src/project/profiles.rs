//! profiles.yml and inline outputs: the target, with secrets left as written.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::yaml;
use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile, did_you_mean};
use crate::node::TargetInfo;

/// Keys whose values are credentials: never rendered at compile time.
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "token",
    "key",
    "private_key",
    "secret",
    "private_key_passphrase",
    "keyfile_json",
    "client_secret",
    "refresh_token",
];

pub fn is_secret(key: &str, value: &Value) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str())
        || k.ends_with("password")
        || k.ends_with("_token")
        || k.ends_with("_secret")
        || value.as_str().is_some_and(|s| s.contains("DBT_ENV_SECRET"))
}

/// Renders a profile string (env_var only) with a throwaway environment.
fn render_profile_str(text: &str, source: Option<&SourceFile>) -> Result<String, Diagnostic> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    let mut env = minijinja::Environment::new();
    env.add_function("env_var", crate::render::env_var_function);
    crate::render::add_type_filters(&mut env);
    env.render_str(text, ()).map_err(|err| {
        let d = Diagnostic::error(
            crate::codes::project::PROFILE,
            format!("cannot render profile value `{text}`: {}", err.detail().unwrap_or("error")),
        );
        match source {
            Some(src) => match src.text.find(text) {
                Some(pos) => d.at(src, pos..pos + text.len()),
                None => d.with_file(src.path.as_ref().clone()),
            },
            None => d,
        }
    })
}

pub struct Target {
    pub info: TargetInfo,
    /// The `target` Jinja variable: every non-secret key, rendered.
    pub jinja: IndexMap<String, Value>,
    pub profile_name: String,
}

/// Finds profiles.yml: the given dir, then the project dir, then ~/.dbt.
fn profiles_path(profiles_dir: Option<&Path>, project_dir: &Path) -> Option<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = profiles_dir {
        dirs.push(d.to_path_buf());
    } else {
        if let Ok(d) = std::env::var("DBT_PROFILES_DIR") {
            dirs.push(PathBuf::from(d));
        }
        dirs.push(project_dir.to_path_buf());
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(PathBuf::from(home).join(".dbt"));
        }
    }
    dirs.into_iter().map(|d| d.join("profiles.yml")).find(|p| p.is_file())
}

pub fn load_target(
    project_dir: &Path,
    profiles_dir: Option<&Path>,
    profile: &str,
    target: Option<&str>,
    inline_outputs: &IndexMap<String, Value>,
    diags: &mut Diagnostics,
) -> Option<Target> {
    let mut outputs: IndexMap<String, Value> = IndexMap::new();
    let mut default_target: Option<String> = None;
    let mut source: Option<SourceFile> = None;
    if let Some(path) = profiles_path(profiles_dir, project_dir) {
        match SourceFile::read(&path) {
            Ok(src) => {
                match yaml::parse(&src, crate::codes::project::PROFILES_YAML) {
                    Ok(doc) => match doc.get(profile) {
                        Some(p) => {
                            if let Some(t) = p.get("target").and_then(Value::as_str) {
                                default_target = Some(t.to_string());
                            }
                            if let Some(Value::Object(outs)) = p.get("outputs") {
                                outputs.extend(outs.iter().map(|(k, v)| (k.clone(), v.clone())));
                            }
                        }
                        None if inline_outputs.is_empty() => {
                            let names: Vec<&str> = doc.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
                            let mut d = Diagnostic::error(
                                crate::codes::project::UNKNOWN_PROFILE,
                                format!("profile `{profile}` not found in {}", path.display()),
                            )
                            .with_file(src.path.as_ref().clone());
                            if let Some(s) = did_you_mean(profile, names) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            diags.push(d);
                            return None;
                        }
                        None => {}
                    },
                    Err(d) => {
                        diags.push(d);
                        return None;
                    }
                }
                source = Some(src);
            }
            Err(d) => diags.push(d),
        }
    }
    for (name, out) in inline_outputs {
        outputs.insert(name.clone(), out.clone());
    }
    if outputs.is_empty() {
        diags.push(
            Diagnostic::error(crate::codes::project::NO_PROFILE, format!("no outputs for profile `{profile}`"))
                .with_help("add a profiles.yml next to dbt_project.yml or [profile.outputs] in orrery.toml"),
        );
        return None;
    }
    let target_name = match target.map(str::to_string).or(default_target) {
        Some(t) => match render_profile_str(&t, source.as_ref()) {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                return None;
            }
        },
        None => outputs.keys().next().cloned().unwrap_or_default(),
    };
    let Some(Value::Object(output)) = outputs.get(&target_name) else {
        let mut d =
            Diagnostic::error(crate::codes::project::UNKNOWN_TARGET, format!("target `{target_name}` not found in profile `{profile}`"));
        if let Some(s) = did_you_mean(&target_name, outputs.keys().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        diags.push(d);
        return None;
    };

    let mut connection = IndexMap::new();
    let mut jinja = IndexMap::new();
    for (key, value) in output {
        if is_secret(key, value) {
            connection.insert(key.clone(), value.clone());
            continue;
        }
        let rendered = match value {
            Value::String(s) => match render_profile_str(s, source.as_ref()) {
                Ok(r) => Value::String(r),
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
            other => other.clone(),
        };
        connection.insert(key.clone(), rendered.clone());
        jinja.insert(key.clone(), rendered);
    }
    let adapter_type = jinja.get("type").and_then(Value::as_str).unwrap_or("duckdb").to_string();
    let schema = jinja.get("schema").and_then(Value::as_str).unwrap_or("main").to_string();
    let database = match adapter_type.as_str() {
        "duckdb" => {
            let path = jinja.get("path").and_then(Value::as_str).unwrap_or(":memory:");
            duckdb_database_name(path)
        }
        _ => jinja.get("database").or_else(|| jinja.get("dbname")).and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    let threads = jinja.get("threads").and_then(Value::as_u64).map(|t| t as usize);
    jinja.insert("name".into(), Value::String(target_name.clone()));
    jinja.insert("target_name".into(), Value::String(target_name.clone()));
    jinja.insert("profile_name".into(), Value::String(profile.to_string()));
    jinja.insert("type".into(), Value::String(adapter_type.clone()));
    jinja.insert("schema".into(), Value::String(schema.clone()));
    jinja.insert("database".into(), Value::String(database.clone()));
    jinja.insert("threads".into(), Value::from(threads.unwrap_or(1)));
    Some(Target {
        info: TargetInfo { name: target_name, adapter_type, database, schema, threads, connection },
        jinja,
        profile_name: profile.to_string(),
    })
}

/// dbt-duckdb names the database after the file stem of `path`.
pub fn duckdb_database_name(path: &str) -> String {
    if path == ":memory:" || path.is_empty() {
        return "memory".into();
    }
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let base = base.split('?').next().unwrap_or(base);
    match base.rfind('.') {
        Some(i) if i > 0 => base[..i].to_string(),
        _ => base.to_string(),
    }
}
