//! Generic tests declared in properties files: a draft per test once its targets are known,
//! and its keyword arguments as the test macro receives them.

use super::*;

pub(super) const TEST_CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

pub(super) fn generic_test(
    project: &Project,
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    t: PendingTest,
) -> Result<Draft, Diagnostic> {
    let (test_name, mut args): (String, Map<String, Json>) = match &t.definition {
        Json::String(s) => (s.clone(), Map::new()),
        Json::Object(m) if m.contains_key("test_name") => {
            let mut m = m.clone();
            let name = m.remove("test_name").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            (name, m)
        }
        Json::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            (k, v.as_object().cloned().unwrap_or_default())
        }
        _ => {
            let (line, col) = yaml::find_line(&t.patch_file.text, "name", &t.target_name).unwrap_or((1, 1));
            return Err(Diagnostic::error(crate::codes::project::TEST, "a test must be a name or a mapping with one key").at_line_col(
                &t.patch_file,
                line,
                col,
            ));
        }
    };
    if let Some(c) = &t.column {
        args.insert("column_name".into(), Json::String(c.clone()));
    }
    if let Some(Json::Object(a)) = args.remove("arguments") {
        for (k, v) in a {
            args.insert(k, v);
        }
    }
    let (namespace, short) = match test_name.split_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, test_name.clone()),
    };
    let pkg = project.packages.iter().find(|p| p.name == t.package).unwrap_or(project.root_package());
    let mut yml_config = Map::new();
    for key in TEST_CONFIG_ARGS {
        if let Some(v) = args.remove(*key) {
            yml_config.insert((*key).to_string(), v);
        }
    }
    if let Some(Json::Object(c)) = args.remove("config") {
        for (k, v) in c {
            yml_config.insert(k, v);
        }
    }
    let description = args.remove("description").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let custom_name = args.remove("name").and_then(|v| v.as_str().map(str::to_string));
    let mut type_name = if t.is_source { format!("source_{short}") } else { short.clone() };
    if let Some(ns) = &namespace {
        type_name = format!("{ns}_{type_name}");
    }
    let mut name_kwargs: IndexMap<String, Json> = args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    name_kwargs.insert("model".into(), Json::String(format!("{{{{ get_where_subquery({}) }}}}", t.target_ref)));
    let test_target = match &t.source_pair {
        Some((s, tb)) => crate::render::builtins::TestTarget::Source { source: s, table: tb },
        None => crate::render::builtins::TestTarget::Node { name: &t.node_name, version: t.version.as_deref() },
    };
    let _ = &type_name;
    let named = crate::render::builtins::test_node_name(&short, namespace.as_deref(), test_target, &name_kwargs);
    let (short_name, full_name, hash) = match custom_name {
        Some(n) => {
            let h = crate::render::builtins::unique_id_hash(&n, &short, namespace.as_deref(), &name_kwargs);
            (n.clone(), n, h)
        }
        None => (named.file_name().to_string(), named.name.clone(), named.unique_id_suffix.clone()),
    };
    // Jinja in test config values is rendered at parse time, as dbt does.
    let mut rendered_cfg = Map::new();
    for (k, v) in yml_config {
        let v = match &v {
            Json::String(s) => Json::String(render_yml_str(env, shared, &t.package, s).unwrap_or_else(|_| s.clone())),
            other => other.clone(),
        };
        if !v.is_null() {
            rendered_cfg.insert(k, v);
        }
    }
    if short_name != full_name && !rendered_cfg.contains_key("alias") {
        rendered_cfg.insert("alias".into(), Json::String(short_name.clone()));
    }
    let dirs: Vec<String> =
        t.yml_path.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
    let mut fqn = vec![t.package.clone()];
    fqn.extend(dirs);
    fqn.push(full_name.clone());
    let mut config = tree_config(project, pkg, ResourceType::Test, &fqn);
    render_tree_strings(env, shared, &t.package, &mut config);
    for (k, v) in rendered_cfg {
        crate::render::context::merge_config(&mut config, &k, v);
    }
    let mut kwargs: IndexMap<String, Json> = args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    kwargs.insert("model".into(), Json::String(format!("{{{{ get_where_subquery({}) }}}}", t.target_ref)));
    let macro_name = match &namespace {
        Some(ns) => format!("{ns}.test_{short}"),
        None => format!("test_{short}"),
    };
    let raw_code: Arc<str> = Arc::from(format!("{{{{ {macro_name}(**_dbt_generic_test_kwargs) }}}}"));
    let enabled = config.get("enabled").and_then(Json::as_bool) != Some(false);
    let _ = t.version;
    Ok(Draft {
        unique_id: format!("test.{}.{full_name}.{hash}", t.package),
        name: full_name,
        resource_type: ResourceType::Test,
        package: t.package.clone(),
        path: format!("{short_name}.sql"),
        original_file_path: t.original_file_path.clone(),
        fqn,
        // One template per yml file and test macro: its text is the same for every such test.
        template: Some(format!("{}://{}#{macro_name}", t.package, t.original_file_path)),
        template_text: raw_code.clone(),
        raw_code,
        source: t.patch_file.clone(),
        offset: 0,
        config,
        enabled,
        relation: Relation { database: None, schema: String::new(), identifier: short_name },
        description,
        patch_path: None,
        columns: IndexMap::new(),
        version: None,
        latest_version: None,
        test: Some(TestDraft {
            metadata: TestMetadata { name: short, namespace, kwargs },
            attached_node: Some(t.attached),
            column_name: t.column,
        }),
        parse_refs: vec![],
        parse_sources: vec![],
        seed_file: None,
    })
}

/// Test kwargs' expressions compiled once per shape: `ref('a')` and `ref('b')` are both
/// `ref(__kwarg_0)`, so 4000 tests compile a handful of expressions, not 4000.
#[derive(Default)]
pub(crate) struct KwargExprs<'env> {
    cache: Mutex<HashMap<String, Arc<minijinja::Expression<'env, 'static>>>>,
}

/// `s` with its string literals replaced by `__kwarg_<i>`, and their values.
pub(super) fn kwarg_shape(s: &str) -> Option<(String, Vec<(String, Value)>)> {
    let mut shape = String::with_capacity(s.len());
    let mut args = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['\'', '"']) {
        let q = rest.as_bytes()[i] as char;
        let end = rest[i + 1..].find(q)? + i + 1;
        let literal = &rest[i + 1..end];
        if literal.contains('\\') {
            return None;
        }
        shape.push_str(&rest[..i]);
        let name = format!("__kwarg_{}", args.len());
        shape.push_str(&name);
        args.push((name, Value::from(literal)));
        rest = &rest[end + 1..];
    }
    shape.push_str(rest);
    Some((shape, args))
}

impl<'env> KwargExprs<'env> {
    fn eval(&self, env: &'env Environment<'static>, root: &Value, expr: &str) -> Result<Value, minijinja::Error> {
        let Some((shape, args)) = kwarg_shape(expr) else {
            return env.compile_expression_owned(expr.to_string())?.eval(root.clone());
        };
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&shape).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(env.compile_expression_owned(shape.clone())?);
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(shape, c.clone());
                c
            }
        };
        compiled.eval(minijinja::value::merge_maps([root.clone(), Value::from_pairs(args)]))
    }
}

/// For a generic test whose arguments hold no Jinja but its `model` (`{{ get_where_subquery(
/// ref(...)) }}` or `source(...)`), that `ref(...)` or `source(...)` call's text.
pub(crate) fn plain_test_target(d: &Draft) -> Option<&str> {
    fn plain(v: &Json) -> bool {
        match v {
            Json::String(s) => !s.contains("{{") && !s.contains("{%") && !LOOKS_LIKE_FUNC.is_match(s),
            Json::Array(a) => a.iter().all(plain),
            Json::Object(m) => m.values().all(plain),
            _ => true,
        }
    }
    let t = d.test.as_ref()?;
    let mut target = None;
    for (k, v) in &t.metadata.kwargs {
        match (k.as_str(), v) {
            ("column_name", Json::String(_)) => {}
            ("model", Json::String(s)) => target = Some(s.strip_prefix("{{ get_where_subquery(")?.strip_suffix(") }}")?),
            _ if plain(v) => {}
            _ => return None,
        }
    }
    target
}

/// Whether a test argument is a call the render evaluates (`ref(...)`, `var(...)`, ...).
pub(crate) fn looks_like_call(value: &str) -> bool {
    LOOKS_LIKE_FUNC.is_match(value)
}

pub(super) static LOOKS_LIKE_FUNC: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$").expect("regex"));

pub(crate) fn test_kwargs<'env>(
    env: &'env Environment<'static>,
    exprs: &KwargExprs<'env>,
    node: &Arc<NodeRender>,
    d: &Draft,
    templates: &Templates,
) -> Result<Value, Diagnostic> {
    // A value that is one `{{ expression }}` and nothing else.
    static ONE_EXPR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^\{\{\s*([^{}%]+?)\s*\}\}$").expect("regex"));
    let Some(t) = &d.test else { return Ok(Value::from(())) };
    let origin = TemplateOrigin::new(d.source.clone(), 0);
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    let mut out: IndexMap<String, Value> = IndexMap::new();
    let render_value = |key: &str, v: &Json| -> Result<Value, minijinja::Error> {
        fn go<'env>(
            env: &'env Environment<'static>,
            exprs: &KwargExprs<'env>,
            root: &Value,
            key: &str,
            v: &Json,
        ) -> Result<Value, minijinja::Error> {
            Ok(match v {
                Json::String(s) if key == "column_name" => Value::from(s.clone()),
                Json::String(s) if LOOKS_LIKE_FUNC.is_match(s) => exprs.eval(env, root, s)?,
                Json::String(s) if s.contains("{{") || s.contains("{%") => {
                    match ONE_EXPR.captures(s).filter(|_| !s.contains("{{-") && !s.contains("-}}")) {
                        // A relation stays one (dbt renders kwargs natively; packages check
                        // `model` is a relation); other values as their text.
                        Some(c) => {
                            let value = exprs.eval(env, root, &c[1])?;
                            if value.downcast_object_ref::<crate::render::context::RelationObj>().is_some() {
                                value
                            } else {
                                Value::from(value.to_string())
                            }
                        }
                        None => Value::from(env.render_str(s, root.clone())?),
                    }
                }
                Json::Array(a) => Value::from(a.iter().map(|x| go(env, exprs, root, "", x)).collect::<Result<Vec<_>, _>>()?),
                Json::Object(m) => {
                    let mut map = IndexMap::new();
                    for (k, x) in m {
                        map.insert(k.clone(), go(env, exprs, root, "", x)?);
                    }
                    Value::from_pairs(map)
                }
                other => crate::render::context::json_value(other),
            })
        }
        go(env, exprs, &root, key, v)
    };
    for (k, v) in &t.metadata.kwargs {
        let value = render_value(k, v).map_err(|e| {
            let mut diag = templates.diagnostic(&e, Some(&origin), crate::codes::render::TEST);
            if diag.span.is_none()
                && let Some(target) = t.attached_node.as_deref().and_then(|a| a.rsplit('.').next())
                && let Some((line, col)) = yaml::find_line(&d.source.text, "name", target)
            {
                diag = diag.at_line_col(&d.source, line, col);
            }
            diag
        })?;
        out.insert(k.clone(), value);
    }
    Ok(Value::from_pairs(out))
}
