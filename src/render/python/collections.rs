//! Python's lists and dicts, which templates change in place (`cols.append(x)`,
//! `d.update(other)`, dbt_utils' idiom): minijinja's own cannot change. Every list and dict
//! orrery hands a template (config, vars, kwargs, `fromjson`) is one of these, and so is every
//! literal a template that changes one makes (see `rewrite`).

use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// A list of these values, growable in place.
pub(crate) fn list(items: Vec<Value>) -> Value {
    Value::from_object(GrowableList(Mutex::new(items)))
}

/// A changeable dict of the entries of `map` (any mapping).
pub(crate) fn dict_of(map: &Value) -> Result<Value, Error> {
    let entries = map.try_iter()?.map(|k| map.get_item(&k).map(|v| (k, v))).collect::<Result<_, _>>()?;
    Ok(Value::from_object(ChangeableDict(Mutex::new(entries))))
}

/// A changeable dict of these entries, in this order.
pub(crate) fn dict(entries: indexmap::IndexMap<Value, Value>) -> Value {
    Value::from_object(ChangeableDict(Mutex::new(entries)))
}

/// `v` as a value the template can change: a list or dict of ours as it is (the same object,
/// so every name bound to it sees a change), minijinja's own list or map as a copy of ours,
/// anything else unchanged.
pub(crate) fn own(v: Value) -> Value {
    if v.downcast_object_ref::<GrowableList>().is_some() || v.downcast_object_ref::<ChangeableDict>().is_some() {
        return v;
    }
    match v.kind() {
        ValueKind::Seq => match v.try_iter() {
            Ok(items) => list(items.collect()),
            Err(_) => v,
        },
        ValueKind::Map if v.as_object().is_some_and(|o| matches!(o.repr(), ObjectRepr::Map)) && v.try_iter().is_ok() => {
            dict_of(&v).unwrap_or(v)
        }
        _ => v,
    }
}

/// A dict Python's methods can change in place: `update`, `setdefault`, `pop`; in insertion
/// order, as Python's.
#[derive(Debug)]
struct ChangeableDict(Mutex<indexmap::IndexMap<Value, Value>>);

impl ChangeableDict {
    fn entries(&self) -> MutexGuard<'_, indexmap::IndexMap<Value, Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for ChangeableDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.entries().get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries().keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.entries().len())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let mut entries = self.entries();
        match (method, args) {
            ("update", [other]) => {
                for k in other.try_iter()? {
                    let v = other.get_item(&k)?;
                    entries.insert(k, v);
                }
                Ok(Value::from(()))
            }
            ("setdefault", [k, rest @ ..]) => {
                Ok(entries.entry(k.clone()).or_insert_with(|| rest.first().cloned().unwrap_or(Value::from(()))).clone())
            }
            ("pop", [k, rest @ ..]) => match (entries.shift_remove(k), rest.first()) {
                (Some(v), _) => Ok(v),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(Error::new(ErrorKind::InvalidOperation, format!("key {k} not in dict"))),
            },
            ("get", [k, rest @ ..]) => Ok(entries.get(k).cloned().or_else(|| rest.first().cloned()).unwrap_or(Value::from(()))),
            ("keys", []) => Ok(Value::from(entries.keys().cloned().collect::<Vec<_>>())),
            ("values", []) => Ok(Value::from(entries.values().cloned().collect::<Vec<_>>())),
            ("items", []) => Ok(Value::from(entries.iter().map(|(k, v)| Value::from(vec![k.clone(), v.clone()])).collect::<Vec<_>>())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A list Python's methods can change in place: `append`, `extend`, `insert`, `pop`, `remove`.
#[derive(Debug)]
struct GrowableList(Mutex<Vec<Value>>);

impl GrowableList {
    fn items(&self) -> MutexGuard<'_, Vec<Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Python's index `i` into a list of `len` items (negative from the end), when it is in it.
fn list_index(i: &Value, len: usize) -> Option<usize> {
    let i = i64::try_from(i.clone()).ok()?;
    usize::try_from(if i < 0 { len as i64 + i } else { i }).ok().filter(|&i| i < len)
}

impl Object for GrowableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        items.get(list_index(key, items.len())?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items().clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.items().len())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let arg =
            |i: usize| args.get(i).cloned().ok_or_else(|| Error::new(ErrorKind::MissingArgument, format!("{method}() needs an argument")));
        let mut items = self.items();
        match method {
            "append" => items.push(arg(0)?),
            "extend" => items.extend(arg(0)?.try_iter()?),
            "insert" => {
                let at = usize::try_from(i64::try_from(arg(0)?)?.max(0)).unwrap_or(0).min(items.len());
                items.insert(at, arg(1)?);
            }
            "pop" => {
                let at = match args.first() {
                    Some(i) => list_index(i, items.len()),
                    None => items.len().checked_sub(1),
                };
                return match at {
                    Some(i) => Ok(items.remove(i)),
                    None => Err(Error::new(ErrorKind::InvalidOperation, "pop from an empty list or past its end")),
                };
            }
            "remove" => {
                let v = arg(0)?;
                let at = items
                    .iter()
                    .position(|x| *x == v)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "list.remove(x): x not in list"))?;
                items.remove(at);
            }
            "index" => {
                let v = arg(0)?;
                return items
                    .iter()
                    .position(|x| *x == v)
                    .map(Value::from)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "x not in list"));
            }
            "count" => {
                let v = arg(0)?;
                return Ok(Value::from(items.iter().filter(|x| **x == v).count()));
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// Python's `set(items)`: its distinct items (in first-seen order, for iteration), equal to
/// another set of the same items in any order.
pub(crate) fn set(items: impl Iterator<Item = Value>) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Value::from_object(PySet(out))
}

#[derive(Debug)]
struct PySet(Vec<Value>);

impl Object for PySet {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_usize()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }

    /// Equal to a set of the same items, in any order; otherwise ordered by size.
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<std::cmp::Ordering> {
        let other = other.downcast_ref::<Self>()?;
        let same = self.0.len() == other.0.len() && self.0.iter().all(|x| other.0.contains(x));
        Some(if same { std::cmp::Ordering::Equal } else { self.0.len().cmp(&other.0.len()).then(std::cmp::Ordering::Less) })
    }
}
