//! The project's macros (and dbt's own, first, so that a project's macro of the same name
//! wins) registered as templates, one per macro; which of them are inert or pure (see
//! `static_parse`).

use super::*;

/// What registering the macros found.
pub(super) struct MacroSet {
    /// By package, by name.
    pub(super) macros: crate::FastMap<String, crate::FastMap<String, MacroRef>>,
    /// The project's macros, for the manifest.
    pub(super) infos: Vec<crate::node::MacroInfo>,
    /// Macros a template may call without being rendered in the parse pass.
    pub(super) inert: crate::FastSet<String>,
    /// Of those, the macros whose calls can be rendered once per distinct arguments.
    pub(super) pure: crate::FastSet<String>,
}

/// The macros of a project: dbt's own, then each package's macro files.
pub(super) fn register_macros(
    project: &Project,
    env: &mut Environment<'static>,
    lazy: &Arc<std::sync::Mutex<HashMap<String, LazySource>>>,
    templates: &mut Templates,
    diags: &mut Diagnostics,
) -> MacroSet {
    register_macro_files(&project_macro_files(project), env, lazy, templates, diags)
}

/// Every package's macro files, root first.
pub(super) fn project_macro_files(project: &Project) -> Vec<MacroFile> {
    project
        .packages
        .iter()
        .flat_map(|pkg| {
            pkg.files.iter().filter(|f| f.kind == crate::project::FileKind::Macro).map(|f| MacroFile {
                package: pkg.name.clone(),
                path: f.original_file_path.clone(),
                source: f.source.clone(),
            })
        })
        .collect()
}

/// A macro file of a package: its path in the package and its text.
#[derive(Clone)]
pub(super) struct MacroFile {
    pub package: String,
    pub path: String,
    pub source: SourceFile,
}

/// dbt's own macros, then these files' (so that a project's macro of the same name wins).
pub(super) fn register_macro_files(
    files: &[MacroFile],
    env: &mut Environment<'static>,
    lazy: &Arc<std::sync::Mutex<HashMap<String, LazySource>>>,
    templates: &mut Templates,
    diags: &mut Diagnostics,
) -> MacroSet {
    // Macros: dbt's own first, so that a project's macro of the same name wins.
    let mut macros: crate::FastMap<String, crate::FastMap<String, MacroRef>> = Default::default();
    // Each project macro's own text (one `{% macro %}` block), to tell which are inert.
    let mut macro_texts: Vec<(String, String)> = Vec::new();
    let mut add_macro_file = |env: &mut Environment<'static>,
                              package: &str,
                              file_name: &str,
                              text: &str,
                              source: SourceFile,
                              diags: &mut Diagnostics| {
        // orrery's own macros are known to compile (tests check): they are compiled when called.
        let builtin = source.path.starts_with("<dbt>/");
        let add = |env: &mut Environment<'static>, name: String, text: String| {
            if builtin {
                lazy.lock().unwrap_or_else(|e| e.into_inner()).insert(name, LazySource::Shared(text));
                Ok(())
            } else {
                env.add_template_owned(name, text)
            }
        };
        let template = format!("{package}://{file_name}");
        let (processed, pre_map) = env::preprocess_macros(text);
        let (compiled_text, ops_map) = match rewrite::python_operators(&processed) {
            Some((t, m)) => (t, pre_map.then(&m)),
            None => (processed.clone(), pre_map),
        };
        // One template per macro: a call then evaluates its own macro, not the whole file.
        if let Some(blocks) = env::macro_blocks(&compiled_text) {
            for (name, range) in blocks {
                let template = format!("{package}://{file_name}#{name}");
                let lines = compiled_text[..range.start].matches('\n').count();
                let text = format!("{}{}", "\n".repeat(lines), &compiled_text[range.clone()]);
                let map = ops_map.then(&rewrite::SourceMap::slice(lines, range.start, range.len()));
                let origin = TemplateOrigin { source: source.clone(), offset: 0, map: Some(Arc::new(map)) };
                if let Err(err) = add(env, template.clone(), text) {
                    let mut t = Templates::default();
                    t.origins.insert(template.clone(), origin.clone());
                    diags.push(t.diagnostic(&err, Some(&origin), crate::codes::render::SYNTAX));
                    continue;
                }
                templates.origins.insert(template.clone(), origin);
                let unique_id = format!("macro.{package}.{name}");
                if !builtin {
                    macro_texts.push((unique_id.clone(), compiled_text[range.clone()].to_string()));
                }
                macros
                    .entry(package.to_string())
                    .or_default()
                    .insert(name.clone(), MacroRef { unique_id, name, package: package.to_string(), template });
            }
            return;
        }
        let origin = TemplateOrigin { source: source.clone(), offset: 0, map: Some(Arc::new(ops_map)) };
        if let Err(err) = add(env, template.clone(), compiled_text) {
            let mut t = Templates::default();
            t.origins.insert(template.clone(), origin.clone());
            diags.push(t.diagnostic(&err, Some(&origin), crate::codes::render::SYNTAX));
            return;
        }
        templates.origins.insert(template.clone(), origin);
        for name in env::macro_names(&processed) {
            macros.entry(package.to_string()).or_default().insert(
                name.clone(),
                MacroRef { unique_id: format!("macro.{package}.{name}"), name, package: package.to_string(), template: template.clone() },
            );
        }
    };
    for (file, text) in builtins::macro_files() {
        add_macro_file(env, "dbt", file, text, SourceFile::new(format!("<dbt>/{file}"), *text), diags);
    }
    let mut macro_infos = Vec::new();
    for f in files {
        add_macro_file(env, &f.package, &f.path, &f.source.text, f.source.clone(), diags);
        for name in env::macro_names(&env::preprocess_macros(&f.source.text).0) {
            macro_infos.push(crate::node::MacroInfo {
                unique_id: format!("macro.{}.{name}", f.package),
                name,
                package_name: f.package.clone(),
                original_file_path: f.path.clone(),
                macro_sql: f.source.text.to_string(),
            });
        }
    }
    // Macros a template may call without being rendered in the parse pass (see static_parse).
    // Of those, the macros whose calls can be rendered once per distinct arguments.
    let (inert_macros, pure_macros) = {
        let is_macro =
            |id: &str| id.starts_with("orrery_macro__") || macros.contains_key(id) || macros.values().any(|m| m.contains_key(id));
        let mut inert = crate::FastSet::default();
        let mut pure = crate::FastSet::default();
        for (id, text) in macro_texts {
            if static_parse::macro_is_pure(&text, &is_macro) {
                pure.insert(id.clone());
            }
            if static_parse::macro_is_inert(&text, &is_macro) {
                inert.insert(id);
            }
        }
        (inert, pure)
    };
    MacroSet { macros, infos: macro_infos, inert: inert_macros, pure: pure_macros }
}
