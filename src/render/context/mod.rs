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

/// A macro as the environment knows it: its template and its package.
#[derive(Clone, Debug)]
pub struct MacroRef {
    pub name: String,
    pub package: String,
    pub template: String,
    pub unique_id: String,
}

/// What a node needs to know about another node to `ref` it.
#[derive(Clone, Debug)]
pub struct Target {
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
pub struct Shared {
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
}

/// Results of pure macros' calls (see `static_parse::macro_is_pure`), by macro, caller's
/// package, pass and arguments: a project calling `cents_to_dollars('amount')` from a
/// thousand models renders it once.
#[derive(Clone, Default)]
pub struct MacroMemo {
    pure: Arc<crate::FastSet<String>>,
    results: Arc<Mutex<crate::FastMap<String, Value>>>,
}

impl MacroMemo {
    pub fn new(pure: crate::FastSet<String>) -> Self {
        MacroMemo { pure: Arc::new(pure), results: Arc::default() }
    }

    /// The key of a call, when its macro is pure and its arguments are plain values.
    fn key(&self, node: &NodeRender, m: &MacroRef, args: &[Value]) -> Option<String> {
        if !self.pure.contains(&m.unique_id) || !args.iter().all(plain_value) {
            return None;
        }
        let mut key = String::with_capacity(m.unique_id.len() + node.package.len() + 16);
        key.push_str(&m.unique_id);
        key.push('\0');
        key.push_str(&node.package);
        key.push_str(if node.execute { "\0t" } else { "\0f" });
        for arg in args {
            push_key(&mut key, arg);
        }
        Some(key)
    }

    /// A pure macro's result for these arguments, when a call has rendered it already.
    pub fn lookup(&self, node: &NodeRender, m: &MacroRef, args: &[Value]) -> Option<Value> {
        self.get(&self.key(node, m, args)?)
    }

    fn get(&self, key: &str) -> Option<Value> {
        self.results.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn put(&self, key: String, value: &Value) {
        self.results.lock().unwrap_or_else(|e| e.into_inner()).insert(key, value.clone());
    }
}

/// Spells a plain value (see [`plain_value`]) into a memo key, so that two values spell the
/// same only when they are the same: each value behind a letter for its kind, a string behind
/// its length (and whether it is marked safe), a list or keyword arguments between brackets.
/// Numbers as minijinja debug-prints them (`1` and `1.0` apart); a compile makes thousands of
/// keys, mostly of strings, so they are not debug-printed.
fn push_key(key: &mut String, v: &Value) {
    use minijinja::value::ValueKind;
    use std::fmt::Write as _;
    match v.kind() {
        ValueKind::None => key.push('n'),
        ValueKind::Bool => key.push(if v.is_true() { 't' } else { 'f' }),
        ValueKind::String => {
            let text = v.as_str().unwrap_or_default();
            let _ = write!(key, "{}{}:", if v.is_safe() { 'S' } else { 's' }, text.len());
            key.push_str(text);
        }
        ValueKind::Seq => {
            key.push('[');
            if let Ok(items) = v.try_iter() {
                for item in items {
                    push_key(key, &item);
                }
            }
            key.push(']');
        }
        ValueKind::Map => {
            key.push('{');
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    push_key(key, &k);
                    push_key(key, &v.get_item(&k).unwrap_or_default());
                }
            }
            key.push('}');
        }
        _ => {
            let _ = write!(key, "#{v:?};");
        }
    }
}

/// A value a call's key can spell exactly: none, a boolean, number or string, or a list or
/// keyword arguments of those.
fn plain_value(v: &Value) -> bool {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Number | ValueKind::String => true,
        ValueKind::Seq => v.try_iter().is_ok_and(|mut it| it.all(|x| plain_value(&x))),
        ValueKind::Map if v.is_kwargs() => {
            v.try_iter().is_ok_and(|mut keys| keys.all(|k| k.kind() == ValueKind::String && v.get_item(&k).is_ok_and(|x| plain_value(&x))))
        }
        _ => false,
    }
}

impl Shared {
    /// Finds a macro visible from `package`: its own, then the root project's, then others, then dbt's.
    pub fn find_macro(&self, package: &str, name: &str) -> Option<&MacroRef> {
        if let Some(m) = self.macros.get(package).and_then(|m| m.get(name)) {
            return Some(m);
        }
        self.package_order.iter().find_map(|p| self.macros.get(p).and_then(|m| m.get(name)))
    }

    /// The model, seed or snapshot (enabled or not) `ref` finds when called from `package`.
    pub fn ref_target(&self, package: &str, call: &RefCall) -> Option<&Target> {
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
    pub fn builtin_where_subquery(&self, package: &str) -> Option<[&str; 2]> {
        let outer = self.find_macro(package, "get_where_subquery")?;
        let inner = self.dispatch(package, "get_where_subquery", Some("dbt"))?;
        (outer.package == "dbt" && inner.package == "dbt").then_some([outer.unique_id.as_str(), inner.unique_id.as_str()])
    }

    /// What `adapter.dispatch(name, namespace)` picks, seen from `package`.
    pub fn dispatch(&self, package: &str, name: &str, namespace: Option<&str>) -> Option<&MacroRef> {
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

    pub fn quote(&self, ident: &str) -> String {
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
pub struct Recorded {
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
    pub fn add_macro(&mut self, unique_id: &str) {
        if !self.macros.iter().any(|m| m == unique_id) {
            self.macros.push(unique_id.to_string());
        }
    }

    /// Notes a `ref` call and the node it found, in first-use order without repeats.
    pub fn add_ref(&mut self, call: RefCall, target_id: &str) {
        if !self.refs.contains(&call) {
            self.refs.push(call);
        }
        self.add_dependency(target_id);
    }

    /// Notes a `source` call and the source table it found, in first-use order without repeats.
    pub fn add_source(&mut self, pair: [String; 2], source_id: &str) {
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
    pub fn absorb(&mut self, other: Recorded) {
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

/// One render of one node.
pub struct NodeRender {
    pub shared: Arc<Shared>,
    pub package: String,
    pub execute: bool,
    pub incremental: bool,
    pub this: Option<Relation>,
    pub model: Value,
    /// The node's config as known so far (final in the compile pass).
    pub config: serde_json::Map<String, Json>,
    pub test_kwargs: Option<Value>,
    pub rec: Mutex<Recorded>,
}

impl NodeRender {
    fn record<R>(&self, f: impl FnOnce(&mut Recorded) -> R) -> R {
        let mut guard = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// The root context object of a template (a node or a macro file called from it).
#[derive(Clone)]
pub struct Ctx {
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
            "execute" => Some(Value::from(node.execute)),
            "this" => node.this.as_ref().map(|r| relation_value(&node.shared, r.clone())),
            "model" => Some(node.model.clone()),
            "target" => Some(node.shared.target.clone()),
            "graph" => Some(node.shared.graph.clone()),
            "project_name" => Some(Value::from(node.shared.root_package.clone())),
            "adapter" => Some(Value::from_object(Adapter { ctx: (**self).clone() })),
            "_dbt_generic_test_kwargs" => node.test_kwargs.clone(),
            "context" => Some(Value::from_dyn_object(self.clone())),
            _ => self.macro_or_namespace(key),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["ref", "source", "config", "var", "this", "target", "model", "execute", "graph"])
    }
}

pub fn macro_value(node: &Arc<NodeRender>, m: &MacroRef) -> Value {
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

/// A macro callable from any template: renders its file with the caller's node context.
pub struct MacroFn {
    node: Arc<NodeRender>,
    m: MacroRef,
}

impl fmt::Debug for MacroFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.m.name)
    }
}

/// The value carried by dbt's `return(x)` up to the macro call that catches it.
#[derive(Debug)]
pub struct ReturnSignal(pub Value);

impl fmt::Display for ReturnSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("return() outside of a macro")
    }
}

impl std::error::Error for ReturnSignal {}

fn returned_value(err: &Error) -> Option<Value> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(sig) = e.downcast_ref::<ReturnSignal>() {
            return Some(sig.0.clone());
        }
        cur = e.source();
    }
    None
}

impl MacroFn {
    pub fn invoke(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.node.record(|r| r.add_macro(&self.m.unique_id));
        let memo = &self.node.shared.memo;
        let key = memo.key(&self.node, &self.m, args);
        if let Some(found) = key.as_deref().and_then(|k| memo.get(k)) {
            return Ok(found);
        }
        let result = self.call_macro(state, args);
        if let (Some(key), Ok(value)) = (key, &result) {
            memo.put(key, value);
        }
        result
    }

    fn call_macro(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let env = state.env();
        let tmpl = env.get_template(&self.m.template)?;
        let root = Value::from_object(Ctx { node: self.node.clone(), package: Arc::from(self.m.package.as_str()) });
        let mut captured = tmpl.render_captured(root)?;
        let name = super::env::hidden_name(&self.m.name);
        let result = captured.with_state_mut(|st| {
            let Some(mac) = st.lookup(&name) else {
                return Err(Error::new(ErrorKind::UnknownFunction, format!("macro `{name}` not found")));
            };
            let args = spread_extra_args(&mac, args);
            mac.call(st, &args)
        });
        match result {
            Ok(v) => Ok(v),
            Err(err) => match returned_value(&err) {
                Some(v) => Ok(v),
                None => Err(err),
            },
        }
    }
}

/// A template with no macros, imported when a call block's callee is not a project macro.
pub const EMPTY_TEMPLATE: &str = "<empty>";

/// `__dbt_call_template(m)`: the template defining macro `m` (see `env::call_blocks`).
pub fn call_template(callee: Value) -> Value {
    match callee.downcast_object_ref::<MacroFn>() {
        Some(f) => Value::from(f.m.template.clone()),
        None => Value::from(EMPTY_TEMPLATE),
    }
}

/// `__dbt_call_target(m, imported)`: `m` bound to its definition imported into the caller's state.
pub fn call_target(callee: Value, imported: Value) -> Value {
    match callee.downcast_object_ref::<MacroFn>() {
        Some(f) if !imported.is_undefined() => Value::from_object(BoundMacro { node: f.node.clone(), m: f.m.clone(), mac: imported }),
        _ => callee,
    }
}

/// A project macro evaluated in the calling template's state, so that it can call `caller()`.
struct BoundMacro {
    node: Arc<NodeRender>,
    m: MacroRef,
    mac: Value,
}

impl fmt::Debug for BoundMacro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.m.name)
    }
}

impl Object for BoundMacro {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.node.record(|r| r.add_macro(&self.m.unique_id));
        let args = spread_extra_args(&self.mac, args);
        match self.mac.call(state, &args) {
            Ok(v) => Ok(v),
            Err(err) => match returned_value(&err) {
                Some(v) => Ok(v),
                None => Err(err),
            },
        }
    }
}

impl Object for MacroFn {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.invoke(state, args)
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.m.name.clone())),
            "package_name" => Some(Value::from(self.m.package.clone())),
            _ => None,
        }
    }
}

/// `return(x)`: ends the macro, making its call evaluate to `x`.
pub fn dbt_return(value: Option<Value>) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, "return").with_source(ReturnSignal(value.unwrap_or(Value::from(())))))
}

pub(crate) fn json_of(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Merges one `config()` call into the recorded config, as dbt merges configs.
pub fn merge_config(into: &mut serde_json::Map<String, Json>, key: &str, value: Json) {
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
        if node.execute && !target.enabled {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("ref to `{name}`, which is disabled")));
        }
        node.record(|r| {
            r.add_ref(call, &target.unique_id);
            if target.ephemeral && !r.ephemerals.contains(&target.unique_id) {
                r.ephemerals.push(target.unique_id.clone());
            }
        });
        if target.ephemeral && node.execute {
            return Ok(Value::from_object(RelationObj {
                rel: Relation { database: None, schema: String::new(), identifier: format!("__dbt__cte__{}", target.relation.identifier) },
                cte: true,
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
        Ok(Value::from_object(RelationObj { rel: rel.clone(), cte: false, shared: node.shared.clone(), quoting: Default::default() }))
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
            Func::IsIncremental => Ok(Value::from(self.ctx.node.incremental)),
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

/// A relation as Jinja sees it: renders quoted, exposes its parts.
pub struct RelationObj {
    pub rel: Relation,
    pub cte: bool,
    pub shared: Arc<Shared>,
    pub quoting: crate::relation::QuotePolicy,
}

/// A test's `where` config as `get_where_subquery` reads it: none when unset, empty or false.
pub fn where_filter(config: &serde_json::Map<String, Json>) -> Option<String> {
    match config.get("where") {
        None | Some(Json::Null | Json::Bool(false)) => None,
        Some(Json::String(w)) => Some(w.clone()).filter(|w| !w.is_empty()),
        Some(other) => Some(other.to_string()),
    }
}

/// What `get_where_subquery` gives for a relation (as SQL) and a `where` filter.
pub fn where_subquery(relation: &str, filter: &str) -> String {
    format!("(select * from {relation} where {filter}) dbt_subquery")
}

/// A `ref` or `source` call read off a template (see `static_parse`), resolved.
pub enum Resolved {
    Ref { call: RefCall, unique_id: String, relation: Relation },
    Source { pair: [String; 2], unique_id: String, relation: Relation },
}

impl Resolved {
    /// The relation as the call prints it: a model by the project's `quoting:`, a source by
    /// its own (every part quoted), as `ref()` and `source()` print them.
    pub fn sql(&self, shared: &Shared) -> String {
        match self {
            Resolved::Ref { relation, .. } => shared.relation_sql(relation),
            Resolved::Source { relation, .. } => relation.render_dbt(crate::relation::QuotePolicy::default()),
        }
    }

    /// Records the call as `ref()` or `source()` records it.
    pub fn record(self, rec: &mut Recorded) {
        match self {
            Resolved::Ref { call, unique_id, .. } => rec.add_ref(call, &unique_id),
            Resolved::Source { pair, unique_id, .. } => rec.add_source(pair, &unique_id),
        }
    }
}

impl Shared {
    /// A node's relation as SQL, quoted as the project's `quoting:` says.
    pub fn relation_sql(&self, relation: &Relation) -> String {
        relation.render_dbt(self.quoting)
    }

    /// A `ref` or `source` call read off a template, resolved from `package` as the compile
    /// pass resolves it; `None` for any other call, one that would fail, and a ref to an
    /// ephemeral or disabled model (the render writes those differently).
    pub fn resolve(&self, package: &str, call: super::static_parse::Call) -> Option<Resolved> {
        use super::static_parse::Call;
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
pub fn relation_value(shared: &Arc<Shared>, rel: Relation) -> Value {
    Value::from_object(RelationObj { rel, cte: false, shared: shared.clone(), quoting: shared.quoting })
}

impl fmt::Debug for RelationObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.rel)
    }
}

impl Object for RelationObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let r = &self.rel;
        Some(match key.as_str()? {
            "database" => r.database.clone().map(Value::from).unwrap_or_default(),
            "schema" => Value::from(r.schema.clone()),
            "identifier" | "name" | "table" => Value::from(r.identifier.clone()),
            "is_table" | "is_view" | "is_cte" => Value::from(self.cte && key.as_str() == Some("is_cte")),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.to_sql())),
            "include" | "quote" => {
                let (_, kw) = split_kwargs(args);
                let mut rel = self.rel.clone();
                if method == "include"
                    && let Some(kw) = kw
                {
                    if kw.get::<Option<bool>>("database").ok().flatten() == Some(false) {
                        rel.database = None;
                    }
                    if kw.get::<Option<bool>>("schema").ok().flatten() == Some(false) {
                        rel.schema = String::new();
                    }
                }
                Ok(Value::from_object(RelationObj { rel, cte: self.cte, shared: self.shared.clone(), quoting: self.quoting }))
            }
            "incorporate" => Ok(Value::from_object(RelationObj {
                rel: self.rel.clone(),
                cte: self.cte,
                shared: self.shared.clone(),
                quoting: self.quoting,
            })),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql())
    }
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
struct Adapter {
    ctx: Ctx,
}

impl Object for Adapter {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
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
            "get_relation" | "load_relation" => Ok(Value::from(())),
            "get_columns_in_relation" | "list_relations_without_caching" => Ok(Value::from(Vec::<Value>::new())),
            "already_exists" => Ok(Value::from(false)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A JSON value as a Jinja value (maps keep their order).
pub fn json_value(v: &Json) -> Value {
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
        Json::Array(a) => Value::from(a.iter().map(json_value).collect::<Vec<_>>()),
        Json::Object(m) => Value::from_pairs(m.iter().map(|(k, v)| (k.clone(), json_value(v)))),
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
