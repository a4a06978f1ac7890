//! Macros as templates call them: a call that catches dbt's `return()`, call blocks with
//! `caller()`, and the memo of pure macros' results.

use super::*;

/// Results of pure macros' calls (see `static_parse::macro_is_pure`), by macro, caller's
/// package, pass and arguments: a project calling `cents_to_dollars('amount')` from a
/// thousand models renders it once.
#[derive(Clone, Default)]
pub(crate) struct MacroMemo {
    pure: Arc<crate::FastSet<String>>,
    results: Arc<Mutex<crate::FastMap<String, Value>>>,
}

impl MacroMemo {
    pub(crate) fn new(pure: crate::FastSet<String>) -> Self {
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
        key.push_str(if node.pass.executes() { "\0t" } else { "\0f" });
        for arg in args {
            push_key(&mut key, arg);
        }
        Some(key)
    }

    /// A pure macro's result for these arguments, when a call has rendered it already.
    pub(crate) fn lookup(&self, node: &NodeRender, m: &MacroRef, args: &[Value]) -> Option<Value> {
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

/// A macro callable from any template: renders its file with the caller's node context.
pub(crate) struct MacroFn {
    pub(super) node: Arc<NodeRender>,
    pub(super) m: MacroRef,
}

impl fmt::Debug for MacroFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.m.name)
    }
}

/// The value carried by dbt's `return(x)` up to the macro call that catches it.
#[derive(Debug)]
pub(crate) struct ReturnSignal(pub Value);

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
    pub(crate) fn invoke(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
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
        let name = crate::render::env::hidden_name(&self.m.name);
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
pub(crate) const EMPTY_TEMPLATE: &str = "<empty>";

/// `__dbt_call_template(m)`: the template defining macro `m` (see `env::call_blocks`).
pub(crate) fn call_template(callee: Value) -> Value {
    match callee.downcast_object_ref::<MacroFn>() {
        Some(f) => Value::from(f.m.template.clone()),
        None => Value::from(EMPTY_TEMPLATE),
    }
}

/// `__dbt_call_target(m, imported)`: `m` bound to its definition imported into the caller's state.
pub(crate) fn call_target(callee: Value, imported: Value) -> Value {
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
pub(crate) fn dbt_return(value: Option<Value>) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, "return").with_source(ReturnSignal(value.unwrap_or(Value::from(())))))
}
