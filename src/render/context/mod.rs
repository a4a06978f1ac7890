//! dbt's Jinja context for one node: a root object resolving `ref`, `source`, `config`, `this`,
//! macros by name and package namespaces lazily, so no per-node map is built.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;

use crate::node::{RefCall, Relation};

mod macros;
mod relation;
mod warehouse;

pub(crate) use macros::*;
pub(crate) use relation::*;
pub(crate) use warehouse::*;
pub use warehouse::{QueryResult, Warehouse};

/// A macro as the environment knows it: its template and its package.
#[derive(Clone, Debug)]
pub(crate) struct MacroRef {
    pub name: String,
    pub package: String,
    pub template: String,
    pub unique_id: String,
}

/// What a node needs to know about another node to `ref` it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Target {
    pub unique_id: String,
    pub package: String,
    pub name: String,
    pub version: Option<String>,
    pub latest_version: Option<String>,
    pub relation: Relation,
    pub ephemeral: bool,
    pub enabled: bool,
}

/// Read-only state shared by every node render of one compile.
#[derive(Clone)]
pub(crate) struct Shared {
    pub root_package: String,
    pub adapter: String,
    pub target: Value,
    /// package → macro name → macro.
    pub macros: crate::FastMap<String, crate::FastMap<String, MacroRef>>,
    /// Packages in macro lookup order after the caller's own: root, others, `dbt`.
    pub package_order: Vec<String>,
    pub dispatch: HashMap<String, Vec<String>>,
    /// name → every node of that name (all packages, versions).
    pub targets: crate::FastMap<String, Vec<Target>>,
    /// (source, table) → (unique_id, relation).
    pub sources: crate::FastMap<(String, String), (String, Relation)>,
    /// package → its effective vars.
    pub vars: HashMap<String, IndexMap<String, Json>>,
    pub graph: Value,
    pub docs: HashMap<String, String>,
    /// The root project's `quoting:`.
    pub quoting: crate::relation::QuotePolicy,
    pub memo: MacroMemo,
    /// The connection a run-time render asks (none while compiling: see `warehouse`).
    pub live: Option<Live>,
}

impl Shared {
    /// Finds a macro visible from `package`: its own, then the root project's, then others, then dbt's.
    pub(crate) fn find_macro(&self, package: &str, name: &str) -> Option<&MacroRef> {
        if let Some(m) = self.macros.get(package).and_then(|m| m.get(name)) {
            return Some(m);
        }
        self.package_order.iter().find_map(|p| self.macros.get(p).and_then(|m| m.get(name)))
    }

    /// The model, seed or snapshot (enabled or not) `ref` finds when called from `package`.
    pub(crate) fn ref_target(&self, package: &str, call: &RefCall) -> Option<&Target> {
        let named = self.targets.get(&call.name)?;
        // Of the nodes of that name in the package asked for (any, when none is), the version
        // asked for (else an unversioned or the latest one): the caller's own package's first,
        // else the first. Every ref() resolves here, so nothing is collected on the way.
        let version = call.version.as_deref();
        let matching = |t: &&Target| {
            call.package.as_deref().is_none_or(|p| p == t.package)
                && match version {
                    Some(v) => t.version.as_deref() == Some(v),
                    None => t.version.is_none() || t.version == t.latest_version,
                }
        };
        named.iter().filter(matching).find(|t| t.package == package).or_else(|| named.iter().find(matching))
    }

    /// When `get_where_subquery` resolves, from `package`, to orrery's own macro and dispatches
    /// to orrery's own implementation (no project or package overrides either), the ids of those
    /// two macros: the call is then answered natively, recording the same macros.
    pub(crate) fn builtin_where_subquery(&self, package: &str) -> Option<[&str; 2]> {
        let outer = self.find_macro(package, "get_where_subquery")?;
        let inner = self.dispatch(package, "get_where_subquery", Some("dbt"))?;
        (outer.package == "dbt" && inner.package == "dbt").then_some([outer.unique_id.as_str(), inner.unique_id.as_str()])
    }

    /// What `adapter.dispatch(name, namespace)` picks, seen from `package`.
    pub(crate) fn dispatch(&self, package: &str, name: &str, namespace: Option<&str>) -> Option<&MacroRef> {
        // With a namespace: the project's `dispatch` search order for it, else the namespace
        // alone; an empty search order searches as no namespace does.
        let order = match namespace {
            None => None,
            Some(ns) => match self.dispatch.get(ns) {
                None => Some(Order::One(ns)),
                Some(o) if o.is_empty() => None,
                Some(o) => Some(Order::Many(o)),
            },
        };
        let mut candidate = String::with_capacity(self.adapter.len().max(7) + 2 + name.len());
        [self.adapter.as_str(), "default"].into_iter().find_map(|prefix| {
            candidate.clear();
            candidate.push_str(prefix);
            candidate.push_str("__");
            candidate.push_str(name);
            match &order {
                None => self.find_macro(package, &candidate),
                Some(Order::One(ns)) => self.macros.get(*ns).and_then(|m| m.get(&candidate)),
                Some(Order::Many(packages)) => packages.iter().find_map(|p| self.macros.get(p).and_then(|m| m.get(&candidate))),
            }
        })
    }

    pub(crate) fn quote(&self, ident: &str) -> String {
        crate::relation::quote_dbt(ident)
    }
}

/// The packages a dispatch searches, in order.
enum Order<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// What a render recorded: calls to `ref`, `source`, `config` and the ephemerals used.
#[derive(Default, Debug)]
pub(crate) struct Recorded {
    pub refs: Vec<RefCall>,
    pub sources: Vec<[String; 2]>,
    pub config: serde_json::Map<String, Json>,
    pub depends_on: Vec<String>,
    pub ephemerals: Vec<String>,
    pub macros: Vec<String>,
    /// The node's rendered `(pre_hook, post_hook)`, once rendered.
    pub hooks: Option<(Vec<String>, Vec<String>)>,
}

impl Recorded {
    /// Notes a macro call, in first-use order without repeats.
    pub(crate) fn add_macro(&mut self, unique_id: &str) {
        if !self.macros.iter().any(|m| m == unique_id) {
            self.macros.push(unique_id.to_string());
        }
    }

    /// Notes a `ref` call and the node it found, in first-use order without repeats.
    pub(crate) fn add_ref(&mut self, call: RefCall, target_id: &str) {
        if !self.refs.contains(&call) {
            self.refs.push(call);
        }
        self.add_dependency(target_id);
    }

    /// Notes a `source` call and the source table it found, in first-use order without repeats.
    pub(crate) fn add_source(&mut self, pair: [String; 2], source_id: &str) {
        if !self.sources.contains(&pair) {
            self.sources.push(pair);
        }
        self.add_dependency(source_id);
    }

    fn add_dependency(&mut self, unique_id: &str) {
        if !self.depends_on.iter().any(|d| d == unique_id) {
            self.depends_on.push(unique_id.to_string());
        }
    }

    /// Adds another render's calls to these, keeping first-use order without repeats.
    pub(crate) fn absorb(&mut self, other: Recorded) {
        fn extend<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
            for item in from {
                if !into.contains(&item) {
                    into.push(item);
                }
            }
        }
        extend(&mut self.refs, other.refs);
        extend(&mut self.sources, other.sources);
        extend(&mut self.depends_on, other.depends_on);
        extend(&mut self.ephemerals, other.ephemerals);
        extend(&mut self.macros, other.macros);
        for (k, v) in other.config {
            self.config.insert(k, v);
        }
        if other.hooks.is_some() {
            self.hooks = other.hooks;
        }
    }
}

/// Which render of a node this is: dbt's parse (`execute` false), its compile, and the
/// compile of an incremental model's incremental variant (`is_incremental()` true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    Parse,
    Compile,
    Incremental,
}

impl Pass {
    /// dbt's `execute`: false only while parsing.
    pub(crate) fn executes(self) -> bool {
        self != Pass::Parse
    }
}

/// One render of one node.
pub(crate) struct NodeRender {
    pub shared: Arc<Shared>,
    pub package: String,
    pub pass: Pass,
    pub this: Option<Relation>,
    pub model: Value,
    /// The node's config as known so far (final in the compile pass).
    pub config: serde_json::Map<String, Json>,
    pub test_kwargs: Option<Value>,
    pub rec: Mutex<Recorded>,
    /// `statement` results by name, for `load_result`.
    pub results: Mutex<HashMap<String, Value>>,
}

impl NodeRender {
    fn record<R>(&self, f: impl FnOnce(&mut Recorded) -> R) -> R {
        let mut guard = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// The root context object of a template (a node or a macro file called from it).
#[derive(Clone)]
pub(crate) struct Ctx {
    pub node: Arc<NodeRender>,
    /// The package whose macros resolve first.
    pub package: Arc<str>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<context>")
    }
}

#[derive(Clone, Debug)]
enum Func {
    Ref,
    Source,
    Config,
    Var,
    IsIncremental,
    /// Answered natively; the ids of the builtin macros the call stands for.
    GetWhereSubquery([String; 2]),
    Doc,
}

#[derive(Debug)]
struct NodeFn {
    ctx: Ctx,
    func: Func,
}

impl Ctx {
    /// A macro visible from this package, or a package's macro namespace.
    fn macro_or_namespace(&self, key: &str) -> Option<Value> {
        let node = &self.node;
        if let Some(m) = node.shared.find_macro(&self.package, key) {
            return Some(macro_value(node, m));
        }
        if node.shared.macros.contains_key(key) {
            return Some(Value::from_object(Namespace { ctx: self.clone(), package: key.to_string() }));
        }
        None
    }
}

impl Object for Ctx {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let node = &self.node;
        let f = |func| Some(Value::from_object(NodeFn { ctx: (**self).clone(), func }));
        match key {
            "ref" => f(Func::Ref),
            "source" => f(Func::Source),
            "config" => f(Func::Config),
            "var" => f(Func::Var),
            "is_incremental" => f(Func::IsIncremental),
            "get_where_subquery" => match node.shared.builtin_where_subquery(&self.package) {
                Some(ids) => f(Func::GetWhereSubquery(ids.map(str::to_string))),
                None => self.macro_or_namespace(key),
            },
            "doc" => f(Func::Doc),
            "execute" => Some(Value::from(node.pass.executes())),
            "this" => node.this.as_ref().map(|r| relation_value(&node.shared, r.clone())),
            "model" => Some(node.model.clone()),
            "target" => Some(node.shared.target.clone()),
            "graph" => Some(node.shared.graph.clone()),
            "project_name" => Some(Value::from(node.shared.root_package.clone())),
            "adapter" => Some(Value::from_object(Adapter { ctx: (**self).clone() })),
            "api" => Some(Value::from_object(Api { shared: node.shared.clone() })),
            "run_query" | "statement" | "load_result" | "load_relation" | "load_cached_relation" => {
                let func = match key {
                    "run_query" => WarehouseFunc::RunQuery,
                    "statement" => WarehouseFunc::Statement,
                    "load_result" => WarehouseFunc::LoadResult,
                    _ => WarehouseFunc::LoadRelation,
                };
                Some(Value::from_object(WarehouseFn { ctx: (**self).clone(), func }))
            }
            "_dbt_generic_test_kwargs" => node.test_kwargs.clone(),
            "context" => Some(Value::from_dyn_object(self.clone())),
            _ => self.macro_or_namespace(key),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["ref", "source", "config", "var", "this", "target", "model", "execute", "graph"])
    }
}

pub(crate) fn macro_value(node: &Arc<NodeRender>, m: &MacroRef) -> Value {
    Value::from_object(MacroFn { node: node.clone(), m: m.clone() })
}

/// `dbt_utils.star(...)`: the macros of one package.
#[derive(Debug)]
struct Namespace {
    ctx: Ctx,
    package: String,
}

impl Object for Namespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let m = self.ctx.node.shared.macros.get(&self.package)?.get(name)?;
        Some(macro_value(&self.ctx.node, m))
    }
}

pub(crate) fn json_of(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Merges one `config()` call into the recorded config, as dbt merges configs.
pub(crate) fn merge_config(into: &mut serde_json::Map<String, Json>, key: &str, value: Json) {
    let key = key.replace('-', "_");
    match key.as_str() {
        "tags" => {
            let existing = into.entry("tags").or_insert_with(|| Json::Array(vec![]));
            let items = match value {
                Json::Array(a) => a,
                Json::Null => vec![],
                other => vec![other],
            };
            if let Json::Array(arr) = existing {
                for it in items {
                    if !arr.contains(&it) {
                        arr.push(it);
                    }
                }
            }
        }
        "pre_hook" | "post_hook" => {
            let existing = into.entry(key.clone()).or_insert_with(|| Json::Array(vec![]));
            let items = match value {
                Json::Array(a) => a,
                Json::Null => vec![],
                other => vec![other],
            };
            if let Json::Array(arr) = existing {
                arr.extend(items);
            }
        }
        "meta" | "grants" | "persist_docs" => match (into.get_mut(&key), value) {
            (Some(Json::Object(b)), Json::Object(o)) => {
                for (k, v) in o {
                    b.insert(k, v);
                }
            }
            (_, v) => {
                into.insert(key, v);
            }
        },
        _ => {
            into.insert(key, value);
        }
    }
}

impl NodeFn {
    fn call_ref(&self, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs): (&[Value], Option<Kwargs>) = split_kwargs(args);
        let mut version = None;
        if let Some(kw) = &kwargs {
            for k in ["v", "version"] {
                if let Ok(v) = kw.get::<Value>(k)
                    && !v.is_undefined()
                    && !v.is_none()
                {
                    version = Some(v.to_string());
                }
            }
        }
        let strs: Vec<String> = pos.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
        let (package, name) = match strs.as_slice() {
            [name] => (None, name.clone()),
            [pkg, name] => (Some(pkg.clone()), name.clone()),
            _ => return Err(Error::new(ErrorKind::InvalidOperation, "ref() takes one or two arguments")),
        };
        let node = &self.ctx.node;
        let call = RefCall { package: package.clone(), name: name.clone(), version: version.clone() };
        let shared = &node.shared;
        let Some(target) = shared.ref_target(&node.package, &call) else {
            if shared.live.is_some() {
                // Rendering at run time, the node knows only the refs its parse found (dbt's rule).
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "ref('{name}') was not found while parsing this node, so it is not among its dependencies: add the comment `-- depends_on: {{{{ ref('{name}') }}}}` to it"
                    ),
                ));
            }
            let all: Vec<&str> = shared.targets.keys().map(String::as_str).collect();
            let mut msg = match &version {
                Some(v) => format!("ref to `{name}` version {v}: no such model"),
                None => format!("ref to `{name}`: no model, seed or snapshot of that name"),
            };
            if let Some(s) = crate::diagnostics::did_you_mean(&name, all) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            return Err(Error::new(ErrorKind::InvalidOperation, msg));
        };
        if node.pass.executes() && !target.enabled {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("ref to `{name}`, which is disabled")));
        }
        node.record(|r| {
            r.add_ref(call, &target.unique_id);
            if target.ephemeral && !r.ephemerals.contains(&target.unique_id) {
                r.ephemerals.push(target.unique_id.clone());
            }
        });
        if target.ephemeral && node.pass.executes() {
            return Ok(Value::from_object(RelationObj {
                rel: Relation { database: None, schema: String::new(), identifier: format!("__dbt__cte__{}", target.relation.identifier) },
                cte: true,
                kind: Some("cte".into()),
                shared: node.shared.clone(),
                quoting: node.shared.quoting,
            }));
        }
        Ok(relation_value(shared, target.relation.clone()))
    }

    fn call_source(&self, args: &[Value]) -> Result<Value, Error> {
        let strs: Vec<String> = args.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
        let [source, table] = strs.as_slice() else {
            return Err(Error::new(ErrorKind::InvalidOperation, "source() takes two arguments: source name and table name"));
        };
        let node = &self.ctx.node;
        let Some((uid, rel)) = node.shared.sources.get(&(source.clone(), table.clone())) else {
            let all: Vec<String> = node.shared.sources.keys().map(|(s, t)| format!("{s}.{t}")).collect();
            let wanted = format!("{source}.{table}");
            let mut msg = format!("source `{wanted}` is not defined");
            if let Some(s) = crate::diagnostics::did_you_mean(&wanted, all.iter().map(String::as_str)) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            return Err(Error::new(ErrorKind::InvalidOperation, msg));
        };
        node.record(|r| r.add_source([source.clone(), table.clone()], uid));
        // dbt quotes sources by their own `quoting:` (all parts by default), not the project's.
        Ok(Value::from_object(RelationObj {
            rel: rel.clone(),
            cte: false,
            kind: None,
            shared: node.shared.clone(),
            quoting: Default::default(),
        }))
    }

    fn call_config(&self, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs) = split_kwargs(args);
        let node = &self.ctx.node;
        node.record(|r| {
            if let Some(first) = pos.first()
                && let Json::Object(m) = json_of(first)
            {
                for (k, v) in m {
                    merge_config(&mut r.config, &k, v);
                }
            }
            if let Some(kw) = &kwargs {
                for key in kw.args() {
                    if let Ok(v) = kw.peek::<Value>(key) {
                        merge_config(&mut r.config, key, json_of(&v));
                    }
                }
            }
        });
        Ok(Value::from(""))
    }

    fn lookup_config(&self, key: &str) -> Option<Json> {
        let node = &self.ctx.node;
        let rec = node.rec.lock().ok()?;
        rec.config.get(key).cloned().or_else(|| node.config.get(key).cloned())
    }

    fn call_var(&self, args: &[Value]) -> Result<Value, Error> {
        let name = args.first().and_then(|v| v.as_str()).ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "var() needs a name"))?;
        let node = &self.ctx.node;
        let found = node.shared.vars.get(&node.package).and_then(|vars| vars.get(name));
        match (found, args.get(1)) {
            (Some(v), _) => Ok(json_value(v)),
            (None, Some(default)) => Ok(default.clone()),
            (None, None) => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("required var `{name}` not found in config; set it in dbt_project.yml vars or with --vars"),
            )),
        }
    }
}

/// Argument `i` of a call split by [`split_kwargs`], else its keyword `name`.
fn arg(pos: &[Value], kw: Option<&Kwargs>, i: usize, name: &str) -> Result<Option<Value>, Error> {
    match (pos.get(i), kw) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(kw)) => kw.get::<Option<Value>>(name),
        (None, None) => Ok(None),
    }
}

/// A value's text; none for none, undefined or no value.
fn text_of(v: Option<Value>) -> Option<String> {
    v.filter(|v| !v.is_none() && !v.is_undefined()).map(|v| v.to_string())
}

fn split_kwargs(args: &[Value]) -> (&[Value], Option<Kwargs>) {
    match args.last().filter(|v| v.is_kwargs()).and_then(|v| <Kwargs as minijinja::value::ArgType>::from_value(Some(v)).ok()) {
        Some(kw) => (&args[..args.len() - 1], Some(kw)),
        None => (args, None),
    }
}

impl Object for NodeFn {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match &self.func {
            Func::Ref => self.call_ref(args),
            Func::Source => self.call_source(args),
            Func::Config => self.call_config(args),
            Func::Var => self.call_var(args),
            Func::IsIncremental => Ok(Value::from(self.ctx.node.pass == Pass::Incremental)),
            Func::GetWhereSubquery(ids) => {
                // As the builtin macro: `config.get('where', '')`, a subquery when it is truthy.
                let node = &self.ctx.node;
                node.record(|r| ids.iter().for_each(|id| r.add_macro(id)));
                let rel = args.first().cloned().unwrap_or_default();
                match where_filter(&node.config) {
                    Some(w) => Ok(Value::from(where_subquery(&rel.to_string(), &w))),
                    None => Ok(rel),
                }
            }
            Func::Doc => {
                let name = args.last().and_then(|v| v.as_str()).unwrap_or_default();
                Ok(Value::from(self.ctx.node.shared.docs.get(name).cloned().unwrap_or_default()))
            }
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match (&self.func, method) {
            (Func::Config, "get") => {
                let key = args.first().and_then(|v| v.as_str()).unwrap_or_default();
                let (pos, kw) = split_kwargs(args);
                let default = pos.get(1).cloned().or_else(|| kw.and_then(|k| k.get::<Value>("default").ok())).unwrap_or(Value::from(()));
                Ok(self.lookup_config(key).map(|v| json_value(&v)).unwrap_or(default))
            }
            (Func::Config, "require") => {
                let key = args.first().and_then(|v| v.as_str()).unwrap_or_default();
                self.lookup_config(key)
                    .map(|v| json_value(&v))
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("config `{key}` is required")))
            }
            (Func::Config, "set") => Ok(Value::from("")),
            (Func::Var, "has_var") => {
                let name = args.first().and_then(|v| v.as_str()).unwrap_or_default();
                let node = &self.ctx.node;
                Ok(Value::from(node.shared.vars.get(&node.package).is_some_and(|v| v.contains_key(name))))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A JSON value as a Jinja value (maps keep their order).
pub(crate) fn json_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::from(()),
        },
        Json::String(s) => Value::from(s.clone()),
        // Python's own lists and dicts, which a template can change in place.
        Json::Array(a) => crate::render::python::collections::list(a.iter().map(json_value).collect()),
        Json::Object(m) => {
            crate::render::python::collections::dict(m.iter().map(|(k, v)| (Value::from(k.as_str()), json_value(v))).collect())
        }
    }
}

/// dbt macros see extra positional args as `varargs` and extra keyword args as `kwargs`;
/// every macro is declared with both (see `env::preprocess_macros`), so fill them here.
fn spread_extra_args(mac: &Value, args: &[Value]) -> Vec<Value> {
    let spec: Vec<String> = mac
        .get_attr("arguments")
        .ok()
        .and_then(|a| a.try_iter().ok().map(|it| it.filter_map(|v| v.as_str().map(str::to_string)).collect()))
        .unwrap_or_default();
    if !spec.iter().any(|a| a == "kwargs") {
        return args.to_vec();
    }
    let declared: Vec<&String> = spec.iter().filter(|a| *a != "varargs" && *a != "kwargs").collect();
    let (pos, kw) = split_kwargs(args);
    let mut out: Vec<Value> = pos.iter().take(declared.len()).cloned().collect();
    let varargs: Vec<Value> = pos.iter().skip(declared.len()).cloned().collect();
    let mut keep: Vec<(String, Value)> = Vec::new();
    let mut extra: Vec<(String, Value)> = Vec::new();
    if let Some(kw) = &kw {
        for key in kw.args() {
            let v = kw.peek::<Value>(key).unwrap_or_default();
            if declared.iter().any(|d| d.as_str() == key) || key == "caller" {
                keep.push((key.to_string(), v));
            } else {
                extra.push((key.to_string(), v));
            }
        }
    }
    // Positional slots between the given ones and varargs stay unset (their defaults apply).
    keep.push(("varargs".into(), Value::from(varargs)));
    keep.push(("kwargs".into(), Value::from_pairs(extra)));
    out.push(Value::from(keep.into_iter().collect::<Kwargs>()));
    out
}
