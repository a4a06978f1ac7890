//! Hooks: a node's `pre_hook` / `post_hook` rendered in its own context, and the project's
//! `on-run-start` / `on-run-end`.

use super::*;

/// A `pre_hook` / `post_hook` value as a list of SQL templates.
pub(super) fn hooks_of(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| match v {
                Json::String(s) => s.clone(),
                Json::Object(m) => m.get("sql").and_then(Json::as_str).unwrap_or_default().to_string(),
                other => other.to_string(),
            })
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// Renders a node's `pre_hook` / `post_hook` with the node's own context (`this`, `target`…),
/// as dbt renders them when the node runs.
pub(super) fn render_node_hooks(
    env: &Environment<'static>,
    node: &Arc<NodeRender>,
    d: &Draft,
    rec: &mut Recorded,
) -> Result<(), Diagnostic> {
    // d.config already holds the parse pass's config() calls, hooks included.
    let (pre_hook, post_hook) = (hooks_of(d.config.get("pre_hook")), hooks_of(d.config.get("post_hook")));
    if pre_hook.is_empty() && post_hook.is_empty() {
        return Ok(());
    }
    let root = Value::from_object(Ctx { node: node.clone(), package: Arc::from(d.package.as_str()) });
    let render = |hooks: &[String]| -> Result<Vec<String>, Diagnostic> {
        hooks
            .iter()
            .map(|hook| {
                env.render_str(hook, root.clone()).map_err(|e| {
                    Diagnostic::error(crate::codes::render::HOOK, format!("hook of {}: {}", d.unique_id, e.detail().unwrap_or("error")))
                        .at(&d.source, 0..0)
                        .with_help("hooks are Jinja templates rendered with the node's context (this, target, var…)")
                })
            })
            .collect()
    };
    rec.hooks = Some((render(&pre_hook)?, render(&post_hook)?));
    Ok(())
}

pub(super) fn render_hooks(env: &Environment<'static>, shared: &Arc<Shared>, hooks: &[String], diags: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for hook in hooks {
        let node = Arc::new(NodeRender {
            shared: shared.clone(),
            package: shared.root_package.clone(),
            pass: Pass::Compile,
            this: None,
            model: Value::from(()),
            config: Default::default(),
            test_kwargs: None,
            rec: Mutex::new(Recorded::default()),
            results: Default::default(),
        });
        let root = Value::from_object(Ctx { node, package: Arc::from(shared.root_package.as_str()) });
        match env.render_str(hook, root) {
            Ok(s) => out.push(s),
            Err(e) => diags.push(Diagnostic::error(crate::codes::render::HOOK, format!("on-run hook: {}", e.detail().unwrap_or("error")))),
        }
    }
    out
}
