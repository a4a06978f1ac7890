//! Render's own tests over whole projects: builtin macros, shortcuts against plain rendering.
//! Cases of one template each live in tests/fixtures/render/ (tests/render_fixtures.rs).

use super::*;

mod builtin_tests {
    use super::*;

    /// Builtin macros are compiled only when a project calls them: each must compile.
    #[test]
    fn every_builtin_macro_file_compiles() {
        let options = RenderOptions::default();
        let env = env::new_environment(options.run_started_at, &options.invocation_id, false);
        for (file, text) in builtins::macro_files() {
            let (processed, _) = env::preprocess_macros(text);
            let prepared = rewrite::python_operators(&processed).map_or(processed, |(t, _)| t);
            if let Err(err) = env.template_from_str(&prepared) {
                panic!("{file}: {err:#}");
            }
        }
    }
}

mod parse_reading_tests {
    use super::*;

    fn load(dir: &std::path::Path) -> Option<Project> {
        let options =
            crate::project::LoadOptions { project_dir: dir.to_path_buf(), profiles_dir: Some(dir.to_path_buf()), ..Default::default() };
        crate::project::load(&options).ok()
    }

    /// Everything a node carries from the parse pass and the compile pass, as text.
    fn outcome(compiled: &Compiled) -> Vec<String> {
        let mut out: Vec<String> = compiled
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} config={} refs={:?} sources={:?} depends_on={:?} macros={:?} enabled={}\n{:?}\n{:?}",
                    n.unique_id,
                    serde_json::to_string(&*n.config).unwrap_or_default(),
                    n.refs,
                    n.sources,
                    n.depends_on,
                    n.depends_on_macros,
                    n.config.enabled,
                    n.compiled_code,
                    n.compiled_code_incremental
                )
            })
            .collect();
        out.extend(compiled.diagnostics.0.iter().map(|d| format!("{d:?}")));
        out
    }

    /// Compiles `dir` with every shortcut (parse calls read, pure macro calls remembered, simple
    /// templates written from their pieces, dbt's generic tests written natively) and without
    /// any (`RenderOptions::plain`), and checks both give the same nodes and diagnostics.
    /// False when the project does not load here.
    fn assert_shortcuts_agree(dir: &std::path::Path) -> bool {
        // A project whose profile needs a server's settings (pg) is left to its own tests.
        let Some(project) = load(dir) else { return false };
        let options = RenderOptions::default();
        let rendered = compile_all(&project, &RenderOptions { plain: true, ..options.clone() });
        let by_reading = compile_all(&project, &options);
        let (a, b) = (outcome(&rendered), outcome(&by_reading));
        assert_eq!(a.len(), b.len(), "{}", dir.display());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{}", dir.display());
        }
        true
    }

    /// The same on projects this repository does not hold, e.g. fetched dbt projects with their
    /// packages installed: `ORRERY_COMPARE_PROJECTS=dir1:dir2 cargo test -- --ignored shortcuts`.
    #[test]
    #[ignore = "needs projects named by ORRERY_COMPARE_PROJECTS"]
    fn shortcuts_agree_with_rendering_on_given_projects() {
        let dirs = std::env::var("ORRERY_COMPARE_PROJECTS").unwrap_or_default();
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            assert!(assert_shortcuts_agree(std::path::Path::new(dir)), "{dir} does not load");
        }
    }

    /// Every shortcut gives what rendering gives on every example and test project (errors
    /// included), and the parse reader is used on them.
    #[test]
    fn reading_parse_calls_gives_what_rendering_them_gives() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("examples/shop"), root.join("examples/clinic")];
        for entry in std::fs::read_dir(root.join("tests/fixtures/projects")).expect("test projects").flatten() {
            if entry.path().join("dbt_project.yml").is_file() {
                dirs.push(entry.path());
            }
        }
        let mut read = 0;
        let mut compared = 0;
        for dir in &dirs {
            if !assert_shortcuts_agree(dir) {
                continue;
            }
            compared += 1;
            let Some(project) = load(dir) else { continue };
            let never = |_: &str| false;
            read += project
                .packages
                .iter()
                .flat_map(|p| &p.files)
                .filter(|f| f.kind == crate::project::FileKind::Model)
                .filter(|f| static_parse::calls(&f.source.text, &never).is_some())
                .count();
        }
        assert!(compared >= 5, "only {compared} projects compared");
        assert!(read >= 10, "only {read} model files were simple enough to read");
    }
}
