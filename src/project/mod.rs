//! dbt project discovery: dbt_project.yml, profiles.yml, properties yml, models, seeds, snapshots, analyses, macros, tests, local packages.
//! Reads files only; rendering and resolution happen in `render`.

pub mod profiles;
pub mod properties;
pub mod yaml;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::Value;

use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::node::TargetInfo;

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub project_dir: PathBuf,
    pub profiles_dir: Option<PathBuf>,
    pub profile: Option<String>,
    pub target: Option<String>,
    pub inline_outputs: IndexMap<String, Value>,
    /// Overrides, as dbt's `--vars`.
    pub vars: IndexMap<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Model,
    Seed,
    Snapshot,
    Analysis,
    SingularTest,
    Macro,
    Properties,
    Docs,
}

/// One file of a package, with its paths as dbt names them.
#[derive(Clone, Debug)]
pub struct ProjectFile {
    pub kind: FileKind,
    pub source: SourceFile,
    /// Below the package root: `models/staging/stg_orders.sql`.
    pub original_file_path: String,
    /// Below the resource path: `staging/stg_orders.sql`.
    pub path: String,
    pub abs_path: PathBuf,
}

/// The root project or an installed package.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub root: PathBuf,
    pub is_root: bool,
    /// `vars:` of this package's dbt_project.yml.
    pub vars: IndexMap<String, Value>,
    /// `models:`, `seeds:`, `snapshots:`, `tests:` (data_tests merged in), `analyses:`, `sources:`.
    pub config_trees: IndexMap<String, Value>,
    pub files: Vec<ProjectFile>,
    /// The raw dbt_project.yml document.
    pub project_yml: Value,
    pub project_source: Option<SourceFile>,
    /// Macro dispatch search order (`dispatch:` config).
    pub dispatch: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Debug)]
pub struct Project {
    pub name: String,
    pub root: PathBuf,
    pub target_path: String,
    pub profile_name: String,
    pub target: TargetInfo,
    /// The `target` Jinja variable.
    pub target_jinja: IndexMap<String, Value>,
    /// Root first, then packages by name.
    pub packages: Vec<Package>,
    pub cli_vars: IndexMap<String, Value>,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub warnings: Diagnostics,
}

impl Project {
    pub fn root_package(&self) -> &Package {
        &self.packages[0]
    }
}

fn string_list(doc: &Value, key: &str, default: &[&str]) -> Vec<String> {
    yaml::strings_at(doc, key).unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
}

fn load_package(dir: &Path, is_root: bool, diags: &mut Diagnostics) -> Option<(Package, Value)> {
    let yml_path = dir.join("dbt_project.yml");
    let source = match SourceFile::read(&yml_path) {
        Ok(s) => s,
        Err(d) => {
            diags.push(d.with_help("a dbt project needs a dbt_project.yml at its root"));
            return None;
        }
    };
    let doc = match yaml::parse(&source, crate::codes::project::YAML) {
        Ok(d) => d,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let Some(name) = yaml::str_at(&doc, "name").map(str::to_string) else {
        diags.push(
            Diagnostic::error(crate::codes::project::NO_NAME, "dbt_project.yml has no `name`").with_file(source.path.as_ref().clone()),
        );
        return None;
    };
    let mut config_trees = IndexMap::new();
    for key in ["models", "seeds", "snapshots", "analyses", "sources"] {
        if let Some(v) = doc.get(key) {
            config_trees.insert(key.to_string(), v.clone());
        }
    }
    // `data_tests:` is the newer name of `tests:`; both apply.
    let mut tests = doc.get("tests").cloned().unwrap_or(Value::Null);
    if let Some(dt) = doc.get("data_tests") {
        merge_tree(&mut tests, dt);
    }
    if !tests.is_null() {
        config_trees.insert("tests".into(), tests);
    }
    let vars = match doc.get("vars") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => IndexMap::new(),
    };
    let mut dispatch = Vec::new();
    if let Some(Value::Array(items)) = doc.get("dispatch") {
        for item in items {
            if let (Some(ns), Some(order)) = (yaml::str_at(item, "macro_namespace"), yaml::strings_at(item, "search_order")) {
                dispatch.push((ns.to_string(), order));
            }
        }
    }

    let mut files = Vec::new();
    let kinds: [(&str, &[&str]); 6] = [
        ("model-paths", &["models"]),
        ("seed-paths", &["seeds"]),
        ("snapshot-paths", &["snapshots"]),
        ("analysis-paths", &["analyses"]),
        ("test-paths", &["tests"]),
        ("macro-paths", &["macros"]),
    ];
    // Every file under each path (by the index of its path in `bases`: the `*-paths` key, the
    // path as given, the folder), in walk order, with the directories that hold them.
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut bases: Vec<(&str, String, PathBuf)> = Vec::new();
    for (key, default) in kinds {
        for rel in string_list(&doc, key, default) {
            let base = dir.join(&rel);
            if !base.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            walk(&base, &mut files, &mut dirs);
            found.extend(files.into_iter().map(|abs| (bases.len(), abs)));
            bases.push((key, rel, base));
        }
    }
    // Reading thousands of small files: in parallel, kept in walk order, each opened by name
    // in its directory; each named and sorted into its kind on the way.
    let handles = crate::dirs::DirHandles::open(dirs.iter().map(PathBuf::as_path));
    let read: Vec<Option<Result<ProjectFile, Diagnostic>>> = found
        .into_par_iter()
        .map(|(at, abs)| {
            let (key, rel, base) = &bases[at];
            let below = abs.strip_prefix(base).ok()?;
            let path = slash(below);
            let original_file_path = format!("{}/{}", rel.trim_end_matches('/'), path);
            let ext = abs.extension().and_then(|e| e.to_str()).unwrap_or("");
            let kind = match (*key, ext) {
                (_, "yml" | "yaml") => FileKind::Properties,
                (_, "md") => FileKind::Docs,
                ("model-paths", "sql") => FileKind::Model,
                ("seed-paths", "csv") => FileKind::Seed,
                ("snapshot-paths", "sql") => FileKind::Snapshot,
                ("analysis-paths", "sql") => FileKind::Analysis,
                ("test-paths", "sql") if path.starts_with("generic/") => FileKind::Macro,
                ("test-paths", "sql") => FileKind::SingularTest,
                ("macro-paths", "sql") => FileKind::Macro,
                _ => return None,
            };
            let source = if kind == FileKind::Seed {
                Ok(SourceFile::new(crate::diagnostics::display_path(&abs), ""))
            } else {
                SourceFile::read_opened(&abs, handles.open_read(&abs))
            };
            Some(source.map(|source| ProjectFile { kind, source, original_file_path, path, abs_path: abs }))
        })
        .collect();
    drop(handles);
    for file in read.into_iter().flatten() {
        match file {
            Ok(file) => files.push(file),
            Err(d) => diags.push(d),
        }
    }
    let package = Package {
        name,
        root: dir.to_path_buf(),
        is_root,
        vars,
        config_trees,
        files,
        project_yml: doc.clone(),
        project_source: Some(source),
        dispatch,
    };
    Some((package, doc))
}

/// The files below `dir` (hidden ones left out) into `out`, each directory's entries by name,
/// and each directory that holds files into `dirs`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    // The entry's own type (no extra stat), following a symlink as `is_dir` would.
    let mut entries: Vec<(std::ffi::OsString, bool)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                return None;
            }
            let is_dir = match e.file_type() {
                Ok(t) if !t.is_symlink() => t.is_dir(),
                _ => e.path().is_dir(),
            };
            Some((name, is_dir))
        })
        .collect();
    // Names in one directory: sorted as their paths would sort.
    entries.sort_unstable_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    let mut holds_files = false;
    for (name, is_dir) in entries {
        let p = dir.join(name);
        if is_dir {
            walk(&p, out, dirs);
        } else {
            out.push(p);
            holds_files = true;
        }
    }
    if holds_files {
        dirs.push(dir.to_path_buf());
    }
}

fn slash(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Deep-merges `over` into `base` (mappings merge, anything else replaces).
pub fn merge_tree(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_tree(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Reads a dbt project and its profile; never connects.
pub fn load(options: &LoadOptions) -> Result<Project, Diagnostics> {
    let mut diags = Diagnostics::new();
    let root = std::fs::canonicalize(&options.project_dir).unwrap_or_else(|_| options.project_dir.clone());
    let Some((root_pkg, doc)) = load_package(&root, true, &mut diags) else {
        return Err(diags);
    };
    let target_path = yaml::str_at(&doc, "target-path").unwrap_or("target").to_string();
    let packages_dir = yaml::str_at(&doc, "packages-install-path").unwrap_or("dbt_packages").to_string();
    let profile =
        options.profile.clone().or_else(|| yaml::str_at(&doc, "profile").map(str::to_string)).unwrap_or_else(|| root_pkg.name.clone());
    let hooks = |key: &str| -> Vec<String> {
        match doc.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let on_run_start = hooks("on-run-start");
    let on_run_end = hooks("on-run-end");

    let mut packages = vec![root_pkg];
    let pkg_root = root.join(&packages_dir);
    if pkg_root.is_dir() {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&pkg_root)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("dbt_project.yml").is_file()).collect())
            .unwrap_or_default();
        dirs.sort();
        for dir in dirs {
            if let Some((pkg, _)) = load_package(&dir, false, &mut diags)
                && pkg.name != packages[0].name
                && !packages.iter().any(|p| p.name == pkg.name)
            {
                packages.push(pkg);
            }
        }
    }

    let target = profiles::load_target(
        &root,
        options.profiles_dir.as_deref(),
        &profile,
        options.target.as_deref(),
        &options.inline_outputs,
        &mut diags,
    );
    if diags.has_errors() {
        return Err(diags);
    }
    let Some(target) = target else { return Err(diags) };
    let mut target_info = target.info;
    // A relative duckdb path is relative to the project dir; plans store it absolute.
    if let Some(Value::String(p)) = target_info.connection.get("path")
        && p != ":memory:"
        && !p.contains("://")
        && !p.starts_with("md:")
        && Path::new(p).is_relative()
    {
        let abs = root.join(p).display().to_string();
        target_info.connection.insert("path".into(), Value::String(abs));
    }
    Ok(Project {
        name: packages[0].name.clone(),
        root,
        target_path,
        profile_name: target.profile_name,
        target: target_info,
        target_jinja: target.jinja,
        packages,
        cli_vars: options.vars.clone(),
        on_run_start,
        on_run_end,
        warnings: diags,
    })
}
