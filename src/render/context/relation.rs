//! Relations as templates see them (`ref()`, `source()`, `this`), the `ref`/`source` calls the
//! shortcuts resolve, and the `adapter` object.

use super::*;

/// A relation as Jinja sees it: renders quoted, exposes its parts. Its `type` is dbt's: none
/// for what `ref()`, `source()` and `this` return, `cte` for an inlined ephemeral model, and
/// whatever `incorporate(type=...)` sets.
pub(crate) struct RelationObj {
    pub rel: Relation,
    pub cte: bool,
    pub kind: Option<String>,
    pub shared: Arc<Shared>,
    pub quoting: crate::relation::QuotePolicy,
}

/// A test's `where` config as `get_where_subquery` reads it: none when unset, empty or false.
pub(crate) fn where_filter(config: &serde_json::Map<String, Json>) -> Option<String> {
    match config.get("where") {
        None | Some(Json::Null | Json::Bool(false)) => None,
        Some(Json::String(w)) => Some(w.clone()).filter(|w| !w.is_empty()),
        Some(other) => Some(other.to_string()),
    }
}

/// What `get_where_subquery` gives for a relation (as SQL) and a `where` filter.
pub(crate) fn where_subquery(relation: &str, filter: &str) -> String {
    format!("(select * from {relation} where {filter}) dbt_subquery")
}

/// A `ref` or `source` call read off a template (see `static_parse`), resolved.
pub(crate) enum Resolved {
    Ref { call: RefCall, unique_id: String, relation: Relation },
    Source { pair: [String; 2], unique_id: String, relation: Relation },
}

impl Resolved {
    /// The relation as the call prints it: a model by the project's `quoting:`, a source by
    /// its own (every part quoted), as `ref()` and `source()` print them.
    pub(crate) fn sql(&self, shared: &Shared) -> String {
        match self {
            Resolved::Ref { relation, .. } => shared.relation_sql(relation),
            Resolved::Source { relation, .. } => relation.render_dbt(crate::relation::QuotePolicy::default()),
        }
    }

    /// Records the call as `ref()` or `source()` records it.
    pub(crate) fn record(self, rec: &mut Recorded) {
        match self {
            Resolved::Ref { call, unique_id, .. } => rec.add_ref(call, &unique_id),
            Resolved::Source { pair, unique_id, .. } => rec.add_source(pair, &unique_id),
        }
    }
}

impl Shared {
    /// A node's relation as SQL, quoted as the project's `quoting:` says.
    pub(crate) fn relation_sql(&self, relation: &Relation) -> String {
        relation.render_dbt(self.quoting)
    }

    /// A `ref` or `source` call read off a template, resolved from `package` as the compile
    /// pass resolves it; `None` for any other call, one that would fail, and a ref to an
    /// ephemeral or disabled model (the render writes those differently).
    pub(crate) fn resolve(&self, package: &str, call: crate::render::shortcuts::static_parse::Call) -> Option<Resolved> {
        use crate::render::shortcuts::static_parse::Call;
        match call {
            Call::Ref(call) => {
                let target = self.ref_target(package, &call)?;
                if target.ephemeral || !target.enabled {
                    return None;
                }
                Some(Resolved::Ref { call, unique_id: target.unique_id.clone(), relation: target.relation.clone() })
            }
            Call::Source(source, table) => {
                let (unique_id, relation) = self.sources.get(&(source.clone(), table.clone()))?.clone();
                Some(Resolved::Source { pair: [source, table], unique_id, relation })
            }
            _ => None,
        }
    }
}

/// A node's relation, quoted as the project's `quoting:` says.
pub(crate) fn relation_value(shared: &Arc<Shared>, rel: Relation) -> Value {
    Value::from_object(RelationObj { rel, cte: false, kind: None, shared: shared.clone(), quoting: shared.quoting })
}

impl fmt::Debug for RelationObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.rel)
    }
}

impl Object for RelationObj {
    /// A mapping, as dbt's relation is (packages check `relation is mapping` and its
    /// `metadata.type`), which prints as its SQL.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    /// Always true, as dbt's (a mapping that is never empty).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    /// Equal when the parts and kind are (dbt's relations are dataclasses); templates key
    /// dicts by relations (dbt_utils' union_relations).
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<std::cmp::Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some((&self.rel, &self.kind, self.cte).cmp(&(&other.rel, &other.kind, other.cte)))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let r = &self.rel;
        let policy = |p: crate::relation::QuotePolicy| {
            minijinja::context! { database => p.database, schema => p.schema, identifier => p.identifier }
        };
        Some(match key.as_str()? {
            "database" => r.database.clone().map(Value::from).unwrap_or_default(),
            "schema" => Value::from(r.schema.clone()),
            "identifier" | "name" | "table" => Value::from(r.identifier.clone()),
            "type" => self.kind.clone().map_or_else(|| Value::from(()), Value::from),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            "is_cte" => Value::from(self.cte || self.kind.as_deref() == Some("cte")),
            "is_materialized_view" => Value::from(self.kind.as_deref() == Some("materialized_view")),
            "path" => {
                minijinja::context! { database => r.database.clone(), schema => r.schema.clone(), identifier => r.identifier.clone() }
            }
            "quote_policy" => policy(self.quoting),
            "include_policy" => {
                policy(crate::relation::QuotePolicy { database: r.database.is_some(), schema: !r.schema.is_empty(), identifier: true })
            }
            "quote_character" => Value::from("\""),
            "metadata" => minijinja::context! { type => relation_class(&self.shared.adapter) },
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let (pos, kw) = split_kwargs(args);
        let flag = |name: &str| kw.as_ref().and_then(|kw| kw.get::<Option<bool>>(name).ok().flatten());
        let mut next = RelationObj {
            rel: self.rel.clone(),
            cte: self.cte,
            kind: self.kind.clone(),
            shared: self.shared.clone(),
            quoting: self.quoting,
        };
        match method {
            "render" => return Ok(Value::from(self.to_sql())),
            // As a mapping: `relation.get('metadata', {})`.
            "get" => {
                let key = pos.first().cloned().unwrap_or_default();
                return Ok(self.get_value(&key).or_else(|| pos.get(1).cloned()).unwrap_or_default());
            }
            "include" => {
                if flag("database") == Some(false) {
                    next.rel.database = None;
                }
                if flag("schema") == Some(false) {
                    next.rel.schema = String::new();
                }
            }
            "quote" => {
                let q = &mut next.quoting;
                q.database = flag("database").unwrap_or(q.database);
                q.schema = flag("schema").unwrap_or(q.schema);
                q.identifier = flag("identifier").unwrap_or(q.identifier);
            }
            "incorporate" | "replace_path" => {
                if let Some(kw) = &kw {
                    if let Some(kind) = kw.get::<Option<String>>("type")? {
                        next.kind = Some(kind);
                    }
                    let path = if method == "incorporate" { kw.get::<Option<Value>>("path")? } else { Some(Value::from(kw.clone())) };
                    if let Some(path) = path {
                        set_path(&mut next.rel, &path)?;
                    }
                }
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from_object(next))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql())
    }
}

/// Parts given as `path={...}` (or `replace_path(...)`) set on `rel`; a part given none clears it.
fn set_path(rel: &mut Relation, path: &Value) -> Result<(), Error> {
    for key in path.try_iter()? {
        let value = path.get_item(&key)?;
        let text = text_of(Some(value));
        match key.as_str() {
            Some("database") => rel.database = text,
            Some("schema") => rel.schema = text.unwrap_or_default(),
            Some("identifier") => rel.identifier = text.unwrap_or_default(),
            _ => {}
        }
    }
    Ok(())
}

/// The class name dbt's relations have on an adapter (`DuckDBRelation`), which
/// `metadata.type` gives.
fn relation_class(adapter: &str) -> String {
    match adapter {
        "duckdb" => "DuckDBRelation".into(),
        "postgres" => "PostgresRelation".into(),
        other => {
            let mut chars = other.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default() + "Relation"
        }
    }
}

/// `api.Relation.create(database=, schema=, identifier=, type=)`: a relation the template names.
pub(crate) fn create_relation(shared: &Arc<Shared>, args: &[Value]) -> Result<Value, Error> {
    let (_, kw) = split_kwargs(args);
    let part = |name: &str| -> Result<Option<String>, Error> { Ok(text_of(arg(&[], kw.as_ref(), 0, name)?)) };
    let rel = Relation {
        database: part("database")?,
        schema: part("schema")?.unwrap_or_default(),
        identifier: part("identifier")?.unwrap_or_default(),
    };
    let kind = part("type")?;
    Ok(Value::from_object(RelationObj { rel, cte: false, kind, shared: shared.clone(), quoting: shared.quoting }))
}

impl RelationObj {
    fn to_sql(&self) -> String {
        if self.cte {
            return self.rel.identifier.clone();
        }
        self.rel.render_dbt(self.quoting)
    }
}

/// `adapter`: quoting, dispatch and the few introspection calls that are safe without a connection.
#[derive(Debug)]
pub(super) struct Adapter {
    pub(super) ctx: Ctx,
}

impl Object for Adapter {
    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let shared = &self.ctx.node.shared;
        match method {
            "quote" => Ok(Value::from(shared.quote(args.first().and_then(|v| v.as_str()).unwrap_or_default()))),
            "type" => Ok(Value::from(shared.adapter.clone())),
            "dispatch" => {
                let (pos, kw) = split_kwargs(args);
                let name = pos.first().and_then(|v| v.as_str()).unwrap_or_default().to_string();
                let namespace = pos
                    .get(1)
                    .cloned()
                    .or_else(|| kw.and_then(|k| k.get::<Value>("macro_namespace").ok()))
                    .and_then(|v| v.as_str().map(str::to_string));
                if let Some(m) = shared.dispatch(&self.ctx.package, &name, namespace.as_deref()) {
                    return Ok(macro_value(&self.ctx.node, m));
                }
                Err(Error::new(ErrorKind::UnknownFunction, format!("no implementation of macro `{name}` for adapter {}", shared.adapter)))
            }
            "load_relation" => {
                Value::from_object(WarehouseFn { ctx: self.ctx.clone(), func: WarehouseFunc::LoadRelation }).call(state, args)
            }
            _ => adapter_method(&self.ctx, method, args).unwrap_or_else(|| Err(Error::from(ErrorKind::UnknownMethod))),
        }
    }
}

/// `api`: dbt's classes a template builds objects with (`api.Relation.create(...)`).
pub(super) struct Api {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("api")
    }
}

impl fmt::Debug for RelationClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("api.Relation")
    }
}

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationClass { shared: self.shared.clone() })),
            "Column" => Some(Value::from_object(ColumnClass { postgres: self.shared.adapter == "postgres" })),
            _ => None,
        }
    }
}

/// `api.Relation`.
struct RelationClass {
    shared: Arc<Shared>,
}

impl Object for RelationClass {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "create" => create_relation(&self.shared, args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `api.Column`: `api.Column(name, dtype)` and `api.Column.create(name, dtype)`, with
/// `char_size`, `numeric_precision`, `numeric_scale` as keywords.
#[derive(Debug)]
struct ColumnClass {
    postgres: bool,
}

impl ColumnClass {
    fn make(&self, args: &[Value]) -> Result<Value, Error> {
        let (pos, kw) = split_kwargs(args);
        let get = |i: usize, name: &str| arg(pos, kw.as_ref(), i, name);
        let number = |v: Option<Value>| v.and_then(|v| i64::try_from(v).ok());
        let name = text_of(get(0, "column")?.or(get(0, "name")?))
            .ok_or_else(|| Error::new(ErrorKind::MissingArgument, "api.Column needs a column name"))?;
        let dtype = text_of(get(1, "dtype")?).unwrap_or_default();
        Ok(Value::from_object(Column {
            name,
            dtype,
            char_size: number(get(2, "char_size")?),
            precision: number(get(3, "numeric_precision")?),
            scale: number(get(4, "numeric_scale")?),
            postgres: self.postgres,
        }))
    }
}

impl Object for ColumnClass {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.make(args)
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "create" => self.make(args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
