//! dbt's four generic tests (`unique`, `not_null`, `accepted_values`, `relationships`) compiled
//! without evaluating their macros, when nothing can change what those macros write.
//!
//! The compile pass renders a generic test as `{{ test_<name>(**kwargs) }}`: the kwargs'
//! `ref`/`source` calls, orrery's `get_where_subquery`, the `test_<name>` macro, its dispatch to
//! `default__test_<name>` and, for `not_null`, `should_store_failures`. When every one of those
//! is orrery's own macro (no project or package overrides one, no `dispatch` config moves it)
//! and the arguments are plain values, this writes the same text and records the same calls
//! directly. Anything else returns `None` and the test is rendered as before; the tests compare
//! both ways on every example and test project.

use std::sync::Arc;

use serde_json::Value as Json;

use super::context::{NodeRender, Resolved, Shared, where_filter, where_subquery};
use super::drafts::Draft;
use super::static_parse;

/// `ref('m')`, `ref('pkg', 'm')` or `source('s', 't')` with literal arguments, resolved as the
/// render would; `None` for anything else, an ephemeral or disabled model included.
fn resolve(shared: &Shared, package: &str, expr: &str) -> Option<Resolved> {
    shared.resolve(package, static_parse::single_call(expr)?)
}

/// A kwarg value the macros would print as it is: a string without Jinja, or an integer.
fn plain_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) if !s.contains("{{") && !s.contains("{%") && !s.contains("{#") && !super::drafts::looks_like_call(s) => {
            Some(s.clone())
        }
        Json::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The compiled SQL of a generic test `d` when it is one of dbt's four with orrery's own
/// macros and plain arguments, its calls recorded into `node` as the render records them.
pub(in crate::render) fn render(shared: &Arc<Shared>, d: &Draft, node: &NodeRender) -> Option<String> {
    let test = d.test.as_ref()?;
    if test.metadata.namespace.is_some() {
        return None;
    }
    let name = test.metadata.name.as_str();
    if !matches!(name, "unique" | "not_null" | "accepted_values" | "relationships") {
        return None;
    }
    let macro_name = format!("test_{name}");
    let outer = shared.find_macro(&d.package, &macro_name)?;
    let inner = shared.dispatch(&d.package, &macro_name, Some("dbt"))?;
    if outer.unique_id != format!("macro.dbt.{macro_name}") || inner.unique_id != format!("macro.dbt.default__{macro_name}") {
        return None;
    }
    let where_ids = shared.builtin_where_subquery(&d.package)?;
    if name == "not_null" && node.config.get("store_failures").is_some_and(|v| !v.is_null()) {
        return None;
    }

    // The arguments, in the order the render evaluates them (it records in that order).
    let mut column = None;
    let mut model = None;
    let mut to = None;
    let mut field = None;
    let mut values = None;
    let mut quote = true;
    let mut resolved = Vec::new();
    for (key, value) in &test.metadata.kwargs {
        match (key.as_str(), value) {
            ("column_name", Json::String(s)) => column = Some(s.clone()),
            ("model", Json::String(s)) => {
                let expr = s.strip_prefix("{{ get_where_subquery(")?.strip_suffix(") }}")?;
                let target = resolve(shared, &d.package, expr)?;
                model = Some(target.sql(shared));
                resolved.push((target, true));
            }
            ("to", Json::String(s)) if name == "relationships" => {
                let target = resolve(shared, &d.package, s)?;
                to = Some(target.sql(shared));
                resolved.push((target, false));
            }
            ("field", value) if name == "relationships" => field = Some(plain_text(value)?),
            ("values", Json::Array(items)) if name == "accepted_values" => {
                values = Some(items.iter().map(plain_text).collect::<Option<Vec<String>>>()?);
            }
            ("quote", Json::Bool(b)) if name == "accepted_values" => quote = *b,
            _ => return None,
        }
    }
    let column = column?;
    let model = model?;
    let model_sql = match where_filter(&node.config) {
        Some(filter) => where_subquery(&model, &filter),
        None => model,
    };
    let body = match name {
        "unique" => format!(
            "\n\nselect\n    {column} as unique_field,\n    count(*) as n_records\n\nfrom {model_sql}\nwhere {column} is not null\ngroup by {column}\nhaving count(*) > 1\n\n"
        ),
        "not_null" => format!("\n\n\n\nselect {column}\nfrom {model_sql}\nwhere {column} is null\n\n"),
        "accepted_values" => {
            let list: Vec<String> = values?.into_iter().map(|v| if quote { format!("'{v}'") } else { v }).collect();
            format!(
                "\n\nwith all_values as (\n\n    select\n        {column} as value_field,\n        count(*) as n_records\n\n    from {model_sql}\n    group by {column}\n\n)\n\nselect *\nfrom all_values\nwhere value_field not in (\n    {}\n)\n\n",
                list.join(",")
            )
        }
        _ => {
            let (to, field) = (to?, field?);
            format!(
                "\n\nwith child as (\n    select {column} as from_field\n    from {model_sql}\n    where {column} is not null\n),\n\nparent as (\n    select {field} as to_field\n    from {to}\n)\n\nselect\n    from_field\n\nfrom child\nleft join parent\n    on child.from_field = parent.to_field\n\nwhere parent.to_field is null\n\n"
            )
        }
    };

    // Recorded as the render records: each argument's call (with get_where_subquery's macros
    // after the tested model's), then the test macro, its implementation and should_store_failures.
    let mut rec = node.rec.lock().unwrap_or_else(|e| e.into_inner());
    for (target, is_model) in resolved {
        target.record(&mut rec);
        if is_model {
            where_ids.iter().for_each(|id| rec.add_macro(id));
        }
    }
    rec.add_macro(&outer.unique_id);
    rec.add_macro(&inner.unique_id);
    if name == "not_null" {
        rec.add_macro("macro.dbt.should_store_failures");
    }
    Some(format!("\n    \n    {body}\n"))
}
