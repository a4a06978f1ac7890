//! Each node's relation through the `generate_database_name` / `generate_schema_name` /
//! `generate_alias_name` macros visible from its package, with dbt's defaults written out when
//! no project overrides them; the targets `ref()` resolves to.

use super::*;

pub(super) fn target_map(drafts: &[Box<Draft>], _target: &crate::node::TargetInfo) -> crate::FastMap<String, Vec<Target>> {
    // The targets (a dozen strings each) made in parallel, then filed by name in draft order.
    let targets: Vec<Target> = drafts
        .par_iter()
        .filter(|d| matches!(d.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot))
        .map(|d| Target {
            unique_id: d.unique_id.clone(),
            package: d.package.clone(),
            name: d.name.clone(),
            version: d.version.clone(),
            latest_version: d.latest_version.clone(),
            relation: d.relation.clone(),
            ephemeral: d.config.get("materialized").and_then(Json::as_str) == Some("ephemeral"),
            enabled: d.enabled,
        })
        .collect();
    let mut map: crate::FastMap<String, Vec<Target>> = crate::FastMap::with_capacity_and_hasher(targets.len(), Default::default());
    for t in targets {
        match map.get_mut(t.name.as_str()) {
            Some(same_name) => same_name.push(t),
            None => {
                map.insert(t.name.clone(), vec![t]);
            }
        }
    }
    map
}

/// Calls a `generate_*_name` macro visible from the node's package and trims its output.
fn call_generate(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    d: &Draft,
    macro_name: &str,
    custom: Option<&Json>,
    target: &crate::node::TargetInfo,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let origin = TemplateOrigin::new(d.source.clone(), d.offset);
    let Some(m) = shared.find_macro(&d.package, macro_name) else {
        return Err(Diagnostic::error(crate::codes::render::MISSING_MACRO, format!("macro `{macro_name}` not found")));
    };
    // dbt's own macros, not overridden anywhere: their result without rendering them.
    if m.package == "dbt"
        && shared.dispatch(&d.package, macro_name, Some("dbt")).is_some_and(|i| i.package == "dbt" && i.name.starts_with("default__"))
        && let Some(name) = default_generated_name(d, macro_name, custom, target)
    {
        return Ok(name);
    }
    let node = new_render(shared, d, Pass::Compile, None, context::json_value(&d.model_json(None)), None);
    let f = context::macro_value(&node, m);
    let state = env.empty_state();
    let custom = custom.filter(|v| !v.is_null()).map(context::json_value).unwrap_or(Value::from(()));
    let mut st = state;
    let v = f
        .call(&mut st, &[custom, node.model.clone()])
        .map_err(|e| templates.diagnostic(&e, Some(&origin), crate::codes::render::TEMPLATE))?;
    Ok(v.to_string().trim().to_string())
}

/// dbt's default `generate_*_name` results; `None` for a value only Jinja can print.
fn default_generated_name(d: &Draft, macro_name: &str, custom: Option<&Json>, target: &crate::node::TargetInfo) -> Option<String> {
    let custom = custom.filter(|v| !v.is_null());
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let name = match (macro_name, custom) {
        ("generate_schema_name", None) => target.schema.clone(),
        ("generate_schema_name", Some(c)) => format!("{}_{}", target.schema, text(c)?.trim()),
        ("generate_database_name", None) => target.database.clone(),
        ("generate_database_name", Some(c)) => text(c)?,
        ("generate_alias_name", Some(Json::String(c))) if !c.is_empty() => c.trim().to_string(),
        ("generate_alias_name", Some(c)) if !matches!(c, Json::String(_) | Json::Bool(false)) => return None,
        ("generate_alias_name", _) => match &d.version {
            Some(v) if !v.is_empty() => format!("{}_v{}", d.name, v.replace('.', "_")),
            _ => d.name.clone(),
        },
        _ => return None,
    };
    Some(name.trim().to_string())
}

pub(super) fn resolve_relation(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    d: &Draft,
    target: &crate::node::TargetInfo,
    templates: &Templates,
) -> Result<Relation, Diagnostic> {
    if !d.enabled {
        return Ok(Relation { database: Some(target.database.clone()), schema: target.schema.clone(), identifier: d.name.clone() });
    }
    let cfg = &d.config;
    let (db_cfg, schema_cfg) =
        if d.resource_type == ResourceType::Snapshot && (cfg.contains_key("target_schema") || cfg.contains_key("target_database")) {
            (cfg.get("target_database").or(cfg.get("database")), cfg.get("target_schema"))
        } else {
            (cfg.get("database"), cfg.get("schema"))
        };
    // dbt configures every test with the custom schema `dbt_test__audit` (where stored
    // failures go) unless it is given another.
    let audit;
    let schema_cfg = match schema_cfg {
        None if d.resource_type == ResourceType::Test => {
            audit = Json::String("dbt_test__audit".into());
            Some(&audit)
        }
        given => given,
    };
    let legacy_snapshot = d.resource_type == ResourceType::Snapshot && cfg.contains_key("target_schema");
    let database = call_generate(env, shared, d, "generate_database_name", db_cfg, target, templates)?;
    let schema = if legacy_snapshot {
        schema_cfg.and_then(Json::as_str).unwrap_or(&target.schema).to_string()
    } else {
        call_generate(env, shared, d, "generate_schema_name", schema_cfg, target, templates)?
    };
    let identifier = if d.resource_type == ResourceType::Test {
        cfg.get("alias").and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| d.name.clone())
    } else {
        call_generate(env, shared, d, "generate_alias_name", cfg.get("alias"), target, templates)?
    };
    Ok(Relation { database: Some(database), schema, identifier })
}
