//! The `graph` and (for tests) `model` variables templates read.

use super::*;

/// `_dbt_generic_test_kwargs`: each kwarg rendered natively, as dbt does.
/// The `model` variable of one draft, built on first use: most templates never read it.
pub(crate) struct LazyModel {
    drafts: Arc<Vec<Box<Draft>>>,
    idx: usize,
    with_relation: bool,
    cell: std::sync::OnceLock<Value>,
}

impl std::fmt::Debug for LazyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.value(), f)
    }
}

impl LazyModel {
    pub(crate) fn value_of(drafts: &Arc<Vec<Box<Draft>>>, idx: usize, with_relation: bool) -> Value {
        Value::from_object(LazyModel { drafts: drafts.clone(), idx, with_relation, cell: std::sync::OnceLock::new() })
    }

    fn value(&self) -> &Value {
        self.cell.get_or_init(|| {
            let d = &self.drafts[self.idx];
            crate::render::context::json_value(&d.model_json(self.with_relation.then_some(&d.relation)))
        })
    }
}

impl minijinja::value::Object for LazyModel {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.value().get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        match self.value().try_iter() {
            Ok(keys) => minijinja::value::Enumerator::Values(keys.collect()),
            Err(_) => minijinja::value::Enumerator::Empty,
        }
    }
}

/// The `graph` variable: what the parse pass knows about every node and source.
pub(crate) fn graph_json(drafts: &[Box<Draft>], sources: &[SourceTable]) -> Json {
    let nodes: Map<String, Json> =
        drafts.iter().filter(|d| d.enabled).map(|d| (d.unique_id.clone(), d.model_json(Some(&d.relation)))).collect();
    let srcs: Map<String, Json> = sources
        .iter()
        .map(|s| {
            (
                s.unique_id.clone(),
                json!({
                    "unique_id": s.unique_id, "name": s.name, "source_name": s.source_name, "resource_type": "source",
                    "package_name": s.package_name, "database": s.relation.database, "schema": s.relation.schema,
                    "identifier": s.relation.identifier, "fqn": s.fqn, "description": s.description, "tags": s.tags,
                }),
            )
        })
        .collect();
    json!({ "nodes": nodes, "sources": srcs, "exposures": {}, "metrics": {}, "groups": {} })
}
