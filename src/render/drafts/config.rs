//! Config as dbt merges it before a template runs: dbt_project.yml's `models:`/`seeds:`/… trees
//! (their Jinja rendered), package vars, docs blocks.

use super::*;

/// The node config of a draft's config, shared with the nodes before it whose drafts' configs
/// were written alike (each worker keeps the last few): most nodes of a folder share one.
pub(super) fn shared_config(config: &Map<String, Json>, enabled: bool) -> Arc<crate::node::NodeConfig> {
    type Seen = crate::Recent<(Map<String, Json>, bool), Arc<crate::node::NodeConfig>>;
    thread_local! {
        static SEEN: std::cell::RefCell<Seen> =
            const { std::cell::RefCell::new(crate::Recent::new()) };
    }
    SEEN.with_borrow_mut(|seen| {
        let Ok(made) = seen.get_or_make(
            |(seen, was_enabled)| *was_enabled == enabled && crate::node::json_map_writes_as(seen, config),
            || Ok::<_, std::convert::Infallible>(((config.clone(), enabled), Arc::new(crate::render::node_config(config, enabled)))),
        );
        made.clone()
    })
}

/// Each package's effective vars: its own, then the root's global and package-scoped ones, then --vars.
pub(crate) fn package_vars(project: &Project) -> HashMap<String, IndexMap<String, Json>> {
    let names: Vec<&str> = project.packages.iter().map(|p| p.name.as_str()).collect();
    let root = project.root_package();
    let mut out = HashMap::new();
    for pkg in &project.packages {
        let mut vars: IndexMap<String, Json> = IndexMap::new();
        let mut apply = |source: &IndexMap<String, Json>, scoped_only: bool| {
            for (k, v) in source {
                if names.contains(&k.as_str()) && v.is_object() {
                    continue;
                }
                if !scoped_only {
                    vars.insert(k.clone(), v.clone());
                }
            }
            if let Some(Json::Object(scoped)) = source.get(&pkg.name) {
                for (k, v) in scoped {
                    vars.insert(k.clone(), v.clone());
                }
            }
        };
        if !pkg.is_root {
            apply(&pkg.vars, false);
        }
        apply(&root.vars, false);
        for (k, v) in &project.cli_vars {
            vars.insert(k.clone(), v.clone());
        }
        out.insert(pkg.name.clone(), vars);
    }
    out
}

/// Every docs block by name: the packages defining it and its text, in package order.
pub(crate) fn docs_index(project: &Project) -> crate::render::descriptions::DocsIndex {
    let mut out: crate::render::descriptions::DocsIndex = HashMap::new();
    for pkg in &project.packages {
        for f in pkg.files.iter().filter(|f| f.kind == FileKind::Docs) {
            for c in crate::render::env::DOCS.captures_iter(&f.source.text) {
                out.entry(c[1].to_string()).or_default().push((pkg.name.clone(), c[2].trim().to_string()));
            }
        }
    }
    out
}

pub(super) fn resource_key(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Model => "models",
        ResourceType::Seed => "seeds",
        ResourceType::Snapshot => "snapshots",
        ResourceType::Analysis => "analyses",
        ResourceType::Test => "tests",
        ResourceType::Source => "sources",
    }
}

pub(super) fn apply_level(level: &Json, into: &mut Map<String, Json>) {
    let Json::Object(m) = level else { return };
    for (k, v) in m {
        if let Some(key) = k.strip_prefix('+') {
            crate::render::context::merge_config(into, key, v.clone());
        } else if CONFIG_KEYS.contains(&k.as_str())
            && (!v.is_object()
                || matches!(k.as_str(), "meta" | "grants" | "persist_docs" | "docs" | "contract" | "quoting" | "column_types"))
        {
            crate::render::context::merge_config(into, k, v.clone());
        }
    }
}

/// Applies a `models:`-style tree along an fqn: top level, package, then each folder.
pub(super) fn apply_tree(tree: Option<&Json>, fqn: &[String], into: &mut Map<String, Json>) {
    let Some(tree) = tree else { return };
    apply_level(tree, into);
    let mut cur = tree;
    for part in &fqn[..fqn.len().saturating_sub(1)] {
        match cur.get(part.as_str()) {
            Some(next) if next.is_object() => {
                apply_level(next, into);
                cur = next;
            }
            _ => return,
        }
    }
    if let Some(leaf) = fqn.last().and_then(|n| cur.get(n.as_str()))
        && leaf.is_object()
    {
        apply_level(leaf, into);
    }
}

pub(super) fn tree_config(project: &Project, pkg: &Package, rt: ResourceType, fqn: &[String]) -> Map<String, Json> {
    let mut cfg = Map::new();
    match rt {
        ResourceType::Model | ResourceType::Analysis => {
            cfg.insert("materialized".into(), json!("view"));
        }
        ResourceType::Seed => {
            cfg.insert("materialized".into(), json!("seed"));
        }
        ResourceType::Snapshot => {
            cfg.insert("materialized".into(), json!("snapshot"));
        }
        ResourceType::Test => {
            for (k, v) in
                [("materialized", "test"), ("severity", "ERROR"), ("warn_if", "!= 0"), ("error_if", "!= 0"), ("fail_calc", "count(*)")]
            {
                cfg.insert(k.into(), json!(v));
            }
        }
        ResourceType::Source => {}
    }
    cfg.insert("enabled".into(), json!(true));
    let key = resource_key(rt);
    if !pkg.is_root {
        apply_tree(pkg.config_trees.get(key), fqn, &mut cfg);
    }
    apply_tree(project.root_package().config_trees.get(key), fqn, &mut cfg);
    cfg
}

/// Renders the Jinja in dbt_project.yml's config values (`+enabled: "{{ var('x', false) }}"`),
/// as dbt renders the project file, into the values Python's Jinja would give: `True`/`False`
/// a boolean, `None` null, a whole number a number, anything else a string. Hooks are left for
/// their node to render; a value that fails to render stays as written (`check_tree_strings`
/// reports it).
pub(super) fn render_tree_strings(env: &Environment<'static>, shared: &Arc<Shared>, package: &str, config: &mut Map<String, Json>) {
    for (key, value) in config.iter_mut() {
        let Json::String(text) = value else { continue };
        if matches!(key.as_str(), "pre-hook" | "post-hook" | "pre_hook" | "post_hook") || !(text.contains("{{") || text.contains("{%")) {
            continue;
        }
        let Ok(rendered) = render_yml_str(env, shared, package, text) else { continue };
        let trimmed = rendered.trim();
        *value = match trimmed {
            "True" | "true" => Json::Bool(true),
            "False" | "false" => Json::Bool(false),
            "None" => Json::Null,
            _ => trimmed.parse::<i64>().map_or_else(|_| Json::String(rendered), Json::from),
        };
    }
}

/// Reports each config value of a package's dbt_project.yml whose Jinja does not render, once,
/// at its place in the file (rendering it for each node, `render_tree_strings` keeps the text).
pub(super) fn check_tree_strings(env: &Environment<'static>, shared: &Arc<Shared>, pkg: &Package, errors: &mut Vec<Diagnostic>) {
    fn walk(value: &Json, key: &str, found: &mut Vec<String>) {
        match value {
            Json::Object(m) => m.iter().for_each(|(k, v)| walk(v, k, found)),
            Json::String(text)
                if !matches!(key.trim_start_matches('+'), "pre-hook" | "post-hook" | "pre_hook" | "post_hook")
                    && (text.contains("{{") || text.contains("{%")) =>
            {
                found.push(text.clone())
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    pkg.config_trees.values().for_each(|tree| walk(tree, "", &mut found));
    for text in found {
        let Err(e) = render_yml_str(env, shared, &pkg.name, &text) else { continue };
        let msg = format!("in a config value of dbt_project.yml: {}", e.detail().unwrap_or("template error"));
        let error = Diagnostic::error(crate::codes::render::YAML, msg).with_help("fix the Jinja of this value, or set the var it reads");
        errors.push(match &pkg.project_source {
            Some(source) => {
                let base = source.text.find(&text).unwrap_or(0);
                let r = e.range().unwrap_or(0..text.len());
                error.at(source, base + r.start.min(text.len())..base + r.end.min(text.len()))
            }
            None => error,
        });
    }
}

/// Renders Jinja in a yml string value with the package's context.
pub(super) fn render_yml_str(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    package: &str,
    text: &str,
) -> Result<String, minijinja::Error> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    let node = Arc::new(NodeRender {
        shared: shared.clone(),
        package: package.to_string(),
        pass: crate::render::context::Pass::Parse,
        this: None,
        model: Value::from(()),
        config: Map::new(),
        test_kwargs: None,
        rec: Mutex::new(Recorded::default()),
        results: Default::default(),
    });
    env.render_str(text, Value::from_object(Ctx { node, package: Arc::from(package) }))
}
