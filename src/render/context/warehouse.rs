//! Templates that ask the warehouse while they render: `run_query`, `statement` with
//! `load_result`, `load_relation` and the `adapter` methods packages build on
//! (`get_columns_in_relation`, `get_relation`, `list_relations_without_caching`, …).
//!
//! As dbt: while parsing they answer what dbt answers then (none, nothing, an empty list);
//! compiling without a connection, a call makes the node *late* (rendered at run time, see
//! `render::late`): the render stops with an error naming the call, which the compile pass
//! turns into the node's `late` mark; rendering with a connection ([`Warehouse`]), they ask it.
//! The answers are dbt's objects: an agate-like table (`columns`, `rows`, `column_names`,
//! `columns[0].values()`), relations and columns (`name`, `data_type`, `quoted`, `is_string()`…).

use super::*;

/// What a render asks the warehouse at run time (the executor's connection).
pub trait Warehouse: Send {
    /// Runs `sql`: `(name, type)` per column, and each row's values.
    fn query(&mut self, sql: &str) -> Result<QueryResult, String>;
}

/// A query's answer.
#[derive(Clone, Debug, Default)]
pub struct QueryResult {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Json>>,
}

/// The connection a run-time render holds.
pub(crate) type Live = Arc<Mutex<Box<dyn Warehouse>>>;

/// The words every "asks the warehouse" error carries: the compile pass tells a late node by them.
pub(crate) const ASKS_THE_WAREHOUSE: &str = "asks the warehouse while rendering";

/// What a warehouse call answers in this render: `Ok(None)` while parsing (the caller gives
/// dbt's parse-time answer), the late error while compiling without a connection, else the live
/// connection to ask.
fn live(node: &NodeRender, what: &str) -> Result<Option<Live>, Error> {
    if node.pass == Pass::Parse {
        return Ok(None);
    }
    match &node.shared.live {
        Some(live) => Ok(Some(live.clone())),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`{what}` {ASKS_THE_WAREHOUSE}: this node is rendered at run time, with the connection it runs on"),
        )),
    }
}

fn ask(live: &Live, sql: &str) -> Result<QueryResult, Error> {
    let mut warehouse = live.lock().unwrap_or_else(|e| e.into_inner());
    warehouse.query(sql).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("the warehouse answered: {e}")))
}

/// The warehouse functions of the context.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WarehouseFunc {
    RunQuery,
    Statement,
    LoadResult,
    LoadRelation,
}

#[derive(Debug)]
pub(crate) struct WarehouseFn {
    pub ctx: Ctx,
    pub func: WarehouseFunc,
}

impl Object for WarehouseFn {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let node = &self.ctx.node;
        let (pos, kw) = split_kwargs(args);
        let arg = |i: usize, name: &str| arg(pos, kw.as_ref(), i, name);
        match self.func {
            WarehouseFunc::RunQuery => {
                let Some(live) = live(node, "run_query")? else { return Ok(Value::from(())) };
                let sql = arg(0, "sql")?.map(|v| v.to_string()).unwrap_or_default();
                Ok(table_value(ask(&live, &sql)?))
            }
            WarehouseFunc::Statement => {
                let Some(live) = live(node, "statement")? else { return Ok(Value::from("")) };
                let name = arg(0, "name")?.filter(|v| !v.is_none()).map(|v| v.to_string());
                let fetch = arg(1, "fetch_result")?.is_some_and(|v| v.is_true());
                let caller = kw.as_ref().map(|kw| kw.get::<Option<Value>>("caller")).transpose()?.flatten();
                let sql = match caller {
                    Some(caller) => caller.call(state, &[])?.to_string(),
                    None => String::new(),
                };
                let answer = ask(&live, &sql)?;
                if let Some(name) = name {
                    let data: Vec<Value> = if fetch {
                        answer.rows.iter().map(|r| Value::from(r.iter().map(json_value).collect::<Vec<_>>())).collect()
                    } else {
                        Vec::new()
                    };
                    let result = minijinja::context! {
                        response => minijinja::context! { code => "OK", rows_affected => answer.rows.len() },
                        data => data,
                        table => if fetch { table_value(answer) } else { Value::from(()) },
                    };
                    node.results.lock().unwrap_or_else(|e| e.into_inner()).insert(name, result);
                }
                Ok(Value::from(""))
            }
            WarehouseFunc::LoadResult => {
                if live(node, "load_result")?.is_none() {
                    return Ok(Value::from(()));
                }
                let name = arg(0, "name")?.map(|v| v.to_string()).unwrap_or_default();
                Ok(node.results.lock().unwrap_or_else(|e| e.into_inner()).get(&name).cloned().unwrap_or_default())
            }
            WarehouseFunc::LoadRelation => {
                let Some(relation) = arg(0, "relation")? else { return Ok(Value::from(())) };
                // `load_relation(this)` is the plan's business (both variants are planned).
                if node.pass != Pass::Parse && node.shared.live.is_none() && is_this(node, &relation) {
                    return Ok(if node.pass == Pass::Incremental { relation } else { Value::from(()) });
                }
                let Some(live) = live(node, "load_relation")? else { return Ok(Value::from(())) };
                find_relation(&node.shared, &live, &parts_of(&relation))
            }
        }
    }
}

fn is_this(node: &NodeRender, relation: &Value) -> bool {
    node.this.as_ref().is_some_and(|this| relation.downcast_object_ref::<RelationObj>().is_some_and(|r| &r.rel == this))
}

/// A relation's parts, from a relation or from the text of each part.
fn parts_of(relation: &Value) -> Relation {
    match relation.downcast_object_ref::<RelationObj>() {
        Some(r) => r.rel.clone(),
        None => {
            let get = |k: &str| text_of(relation.get_attr(k).ok());
            Relation {
                database: get("database"),
                schema: get("schema").unwrap_or_default(),
                identifier: get("identifier").unwrap_or_default(),
            }
        }
    }
}

/// A SQL string literal of `text` (names the templates gave, in catalog queries).
fn lit(text: &str) -> String {
    crate::sql::string_literal(text)
}

/// The catalog filter for a relation's parts, case-insensitive as dbt-duckdb's and dbt-postgres' lookups.
fn where_parts(rel: &Relation, table_column: &str) -> String {
    let mut out = String::new();
    if !rel.identifier.is_empty() {
        out.push_str(&format!(" and lower({table_column}) = lower({})", lit(&rel.identifier)));
    }
    if !rel.schema.is_empty() {
        out.push_str(&format!(" and lower(table_schema) = lower({})", lit(&rel.schema)));
    }
    if let Some(db) = &rel.database {
        out.push_str(&format!(" and lower(table_catalog) = lower({})", lit(db)));
    }
    out
}

/// The relation as the warehouse has it (its parts as stored, its kind), or none.
fn find_relation(shared: &Arc<Shared>, live: &Live, rel: &Relation) -> Result<Value, Error> {
    let sql = format!(
        "select table_catalog, table_schema, table_name, table_type from information_schema.tables where 1 = 1{}",
        where_parts(rel, "table_name")
    );
    let answer = ask(live, &sql)?;
    Ok(answer.rows.first().map(|row| relation_row(shared, row)).unwrap_or_default())
}

fn relation_row(shared: &Arc<Shared>, row: &[Json]) -> Value {
    let text = |i: usize| row.get(i).and_then(Json::as_str).unwrap_or_default().to_string();
    let kind = if text(3).to_ascii_uppercase().contains("VIEW") { "view" } else { "table" };
    Value::from_object(RelationObj {
        rel: Relation { database: Some(text(0)), schema: text(1), identifier: text(2) },
        cte: false,
        kind: Some(kind.into()),
        shared: shared.clone(),
        quoting: shared.quoting,
    })
}

/// The adapter's warehouse methods; `None` for a method that is not one of them.
pub(crate) fn adapter_method(ctx: &Ctx, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    let node = &ctx.node;
    let (pos, kw) = split_kwargs(args);
    let arg = |i: usize, name: &str| arg(pos, kw.as_ref(), i, name).ok().flatten();
    let run = || -> Result<Value, Error> {
        match method {
            "get_columns_in_relation" => {
                let Some(live) = live(node, method)? else { return Ok(Value::from(Vec::<Value>::new())) };
                let rel = parts_of(&arg(0, "relation").unwrap_or_default());
                Ok(Value::from(columns_of(&node.shared, &live, &rel)?))
            }
            "get_missing_columns" => {
                let Some(live) = live(node, method)? else { return Ok(Value::from(Vec::<Value>::new())) };
                let from = columns_of(&node.shared, &live, &parts_of(&arg(0, "from_relation").unwrap_or_default()))?;
                let to = columns_of(&node.shared, &live, &parts_of(&arg(1, "to_relation").unwrap_or_default()))?;
                let names: Vec<String> = to.iter().filter_map(|c| c.get_attr("name").ok()).map(|n| n.to_string().to_lowercase()).collect();
                Ok(Value::from(
                    from.into_iter()
                        .filter(|c| c.get_attr("name").is_ok_and(|n| !names.contains(&n.to_string().to_lowercase())))
                        .collect::<Vec<_>>(),
                ))
            }
            "get_relation" | "already_exists" => {
                let Some(live) = live(node, method)? else {
                    return Ok(if method == "already_exists" { Value::from(false) } else { Value::from(()) });
                };
                let (db, schema, identifier) = if method == "get_relation" {
                    (arg(0, "database"), arg(1, "schema"), arg(2, "identifier"))
                } else {
                    (None, arg(0, "schema"), arg(1, "table"))
                };
                let rel = Relation {
                    database: text_of(db),
                    schema: text_of(schema).unwrap_or_default(),
                    identifier: text_of(identifier).unwrap_or_default(),
                };
                let found = find_relation(&node.shared, &live, &rel)?;
                Ok(if method == "already_exists" { Value::from(!found.is_none()) } else { found })
            }
            "list_relations_without_caching" => {
                let Some(live) = live(node, method)? else { return Ok(Value::from(Vec::<Value>::new())) };
                let rel = parts_of(&arg(0, "schema_relation").unwrap_or_default());
                let scope = Relation { identifier: String::new(), ..rel };
                let sql = format!(
                    "select table_catalog, table_schema, table_name, table_type from information_schema.tables where 1 = 1{} order by table_name",
                    where_parts(&scope, "table_name")
                );
                let answer = ask(&live, &sql)?;
                Ok(Value::from(answer.rows.iter().map(|r| relation_row(&node.shared, r)).collect::<Vec<_>>()))
            }
            "check_schema_exists" => {
                let Some(live) = live(node, method)? else { return Ok(Value::from(false)) };
                let db = arg(0, "database").filter(|v| !v.is_none()).map(|v| v.to_string());
                let schema = arg(1, "schema").map(|v| v.to_string()).unwrap_or_default();
                let mut sql =
                    format!("select count(*) from information_schema.schemata where lower(schema_name) = lower({})", lit(&schema));
                if let Some(db) = db {
                    sql.push_str(&format!(" and lower(catalog_name) = lower({})", lit(&db)));
                }
                let answer = ask(&live, &sql)?;
                Ok(Value::from(answer.rows.first().and_then(|r| r.first()).and_then(Json::as_i64).unwrap_or(0) > 0))
            }
            "drop_relation" | "create_schema" => {
                let Some(live) = live(node, method)? else { return Ok(Value::from(())) };
                let rel = parts_of(&arg(0, "relation").unwrap_or_default());
                let sql = if method == "drop_relation" {
                    let kind = arg(0, "relation").and_then(|r| r.get_attr("type").ok()).filter(|t| !t.is_none()).map(|t| t.to_string());
                    format!(
                        "drop {} if exists {} cascade",
                        if kind.as_deref() == Some("view") { "view" } else { "table" },
                        rel.render_sql()
                    )
                } else {
                    let schema = Relation { identifier: String::new(), ..rel };
                    let name = match &schema.database {
                        Some(db) => format!("{}.{}", crate::relation::quote_sql(db), crate::relation::quote_sql(&schema.schema)),
                        None => crate::relation::quote_sql(&schema.schema),
                    };
                    format!("create schema if not exists {name}")
                };
                ask(&live, &sql)?;
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    };
    match method {
        "get_columns_in_relation"
        | "get_missing_columns"
        | "get_relation"
        | "already_exists"
        | "list_relations_without_caching"
        | "check_schema_exists"
        | "drop_relation"
        | "create_schema" => Some(run()),
        _ => None,
    }
}

/// A relation's columns as dbt's Column objects, in the table's order.
fn columns_of(shared: &Shared, live: &Live, rel: &Relation) -> Result<Vec<Value>, Error> {
    let sql = format!(
        "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale from information_schema.columns where 1 = 1{} order by ordinal_position",
        where_parts(rel, "table_name")
    );
    let answer = ask(live, &sql)?;
    Ok(answer
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).and_then(Json::as_str).unwrap_or_default().to_string();
            let number = |i: usize| r.get(i).and_then(Json::as_i64);
            Value::from_object(Column {
                name: text(0),
                dtype: text(1),
                char_size: number(2),
                precision: number(3),
                scale: number(4),
                postgres: shared.adapter == "postgres",
            })
        })
        .collect())
}

/// dbt's `Column`.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub dtype: String,
    pub char_size: Option<i64>,
    pub precision: Option<i64>,
    pub scale: Option<i64>,
    /// dbt-postgres' column (see `data_type`).
    pub postgres: bool,
}

impl Column {
    fn lower(&self) -> String {
        self.dtype.to_lowercase()
    }
    fn is_string(&self) -> bool {
        matches!(self.lower().as_str(), "text" | "character varying" | "character" | "varchar")
    }
    fn is_float(&self) -> bool {
        matches!(self.lower().as_str(), "real" | "float4" | "float" | "double precision" | "float8" | "double")
    }
    fn is_integer(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "smallint" | "integer" | "bigint" | "smallserial" | "serial" | "bigserial" | "int2" | "int4" | "int8"
        )
    }
    fn is_numeric(&self) -> bool {
        matches!(self.lower().as_str(), "numeric" | "decimal")
    }
    fn string_size(&self) -> i64 {
        self.char_size.unwrap_or(256)
    }
    /// dbt's `data_type`: strings with their size, numerics with precision and scale; on
    /// PostgreSQL `text`, and `character varying` without a size, as they are (dbt-postgres').
    fn data_type(&self) -> String {
        if self.postgres && (self.lower() == "text" || (self.lower() == "character varying" && self.char_size.is_none())) {
            return self.dtype.clone();
        }
        if self.is_string() {
            format!("character varying({})", self.string_size())
        } else if self.is_numeric() {
            match (self.precision, self.scale) {
                (Some(p), Some(s)) => format!("{}({p},{s})", self.dtype),
                _ => self.dtype.clone(),
            }
        } else {
            self.dtype.clone()
        }
    }
}

impl Object for Column {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "dtype" => Value::from(self.dtype.clone()),
            "data_type" => Value::from(self.data_type()),
            "quoted" => Value::from(crate::relation::quote_dbt(&self.name)),
            "char_size" => self.char_size.map(Value::from).unwrap_or_default(),
            "numeric_precision" => self.precision.map(Value::from).unwrap_or_default(),
            "numeric_scale" => self.scale.map(Value::from).unwrap_or_default(),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        Ok(match method {
            "is_string" => Value::from(self.is_string()),
            "is_number" => Value::from(self.is_integer() || self.is_numeric() || self.is_float()),
            "is_numeric" => Value::from(self.is_numeric()),
            "is_integer" => Value::from(self.is_integer()),
            "is_float" => Value::from(self.is_float()),
            "string_size" => Value::from(self.string_size()),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type())
    }
}

/// run_query's answer as agate's table: `columns`, `rows`, `column_names`, `column_types`.
fn table_value(answer: QueryResult) -> Value {
    let names: Vec<String> = answer.columns.iter().map(|(n, _)| n.clone()).collect();
    let names = Arc::new(names);
    let rows: Vec<Value> =
        answer.rows.iter().map(|r| Value::from_object(Row { names: names.clone(), values: r.iter().map(json_value).collect() })).collect();
    let columns: Vec<Value> = answer
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let values: Vec<Value> = answer.rows.iter().map(|r| r.get(i).map(json_value).unwrap_or_default()).collect();
            Value::from_object(TableColumn { name: name.clone(), kind: kind.clone(), values })
        })
        .collect();
    Value::from_object(Table { names, types: answer.columns.into_iter().map(|(_, t)| t).collect(), rows, columns })
}

#[derive(Debug)]
struct Table {
    names: Arc<Vec<String>>,
    types: Vec<String>,
    rows: Vec<Value>,
    columns: Vec<Value>,
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_usize() {
            return self.rows.get(i).cloned();
        }
        Some(match key.as_str()? {
            "rows" => Value::from(self.rows.clone()),
            "columns" => Value::from_object(Named { names: self.names.clone(), items: self.columns.clone() }),
            "column_names" => Value::from(self.names.iter().cloned().map(Value::from).collect::<Vec<_>>()),
            "column_types" => Value::from(self.types.iter().cloned().map(Value::from).collect::<Vec<_>>()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.rows.clone())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            // agate prints to the console; dbt's log, never the SQL.
            "print_table" => Ok(Value::from("")),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A sequence also indexed by name (agate's `MappedSequence`: `table.columns['id']`).
#[derive(Debug)]
struct Named {
    names: Arc<Vec<String>>,
    items: Vec<Value>,
}

impl Object for Named {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        by_name_or_index(&self.names, &self.items, key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items.clone())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        named_method(&self.names, &self.items, method)
    }
}

/// A mapped sequence's `keys()`, `values()` and `items()`.
fn named_method(names: &[String], items: &[Value], method: &str) -> Result<Value, Error> {
    match method {
        "keys" => Ok(Value::from(names.iter().cloned().map(Value::from).collect::<Vec<_>>())),
        "values" => Ok(Value::from(items.to_vec())),
        "items" => {
            Ok(Value::from(names.iter().zip(items).map(|(n, v)| Value::from(vec![Value::from(n.clone()), v.clone()])).collect::<Vec<_>>()))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// `items[key]`: by a column's name, or by position (negative from the end).
fn by_name_or_index(names: &[String], items: &[Value], key: &Value) -> Option<Value> {
    if let Some(name) = key.as_str() {
        return names.iter().position(|n| n == name).and_then(|i| items.get(i).cloned());
    }
    let i = i64::try_from(key.clone()).ok()?;
    let i = if i < 0 { items.len() as i64 + i } else { i };
    items.get(usize::try_from(i).ok()?).cloned()
}

/// One row: its values by position or by column name.
#[derive(Debug)]
struct Row {
    names: Arc<Vec<String>>,
    values: Vec<Value>,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        by_name_or_index(&self.names, &self.values, key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values.clone())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        named_method(&self.names, &self.values, method)
    }
}

/// One column of a table: `name`, `data_type`, `values()`.
#[derive(Debug)]
struct TableColumn {
    name: String,
    kind: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_usize() {
            return self.values.get(i).cloned();
        }
        Some(match key.as_str()? {
            "name" => Value::from(self.name.clone()),
            "data_type" => Value::from(self.kind.clone()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values.clone())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            "values_distinct" => {
                let mut out: Vec<Value> = Vec::new();
                for v in &self.values {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Ok(Value::from(out))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
