//! Our own Jinja for the dbt global macros a compile needs, loaded as the internal `dbt`
//! package; a project or package macro of the same name overrides them, as in dbt.
//!
//! The Jinja relies on these globals, which the render stage provides:
//! - `adapter.dispatch(name, 'dbt')`: the `<adapter>__<name>`, else `default__<name>` macro,
//!   searched in the project, then packages, then these files;
//! - `return(value)`: a macro call evaluates to `value` instead of its text (dbt's `return`);
//!   each macro here calls it last, as `{{ return(...) }}`;
//! - `config.get(key, default)`: the rendered node's config (`where`, `store_failures`);
//! - `target` (`name`, `schema`, `database`) and, when defined, `flags.STORE_FAILURES`;
//! - macros callable by name across files (`should_store_failures`, `get_where_subquery`).
//!
//! A generic test node renders `test_<name>(**kwargs)`; its kwargs are rendered first as dbt
//! does: `model` (`{{ get_where_subquery(ref(...)) }}`) and strings that look like a
//! `ref(`/`source(`/`var(`/`env_var(`/`doc(` call are evaluated, `column_name` is kept verbatim.
//! The generate_* macros' output is stripped by the caller, as dbt strips it.

/// `(file name, Jinja source)` of every built-in macro file.
pub(crate) fn macro_files() -> &'static [(&'static str, &'static str)] {
    &[
        ("generic_tests.sql", include_str!("macros/generic_tests.sql")),
        ("where_subquery.sql", include_str!("macros/where_subquery.sql")),
        ("naming.sql", include_str!("macros/naming.sql")),
        ("cross_db.sql", include_str!("macros/cross_db.sql")),
    ]
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Arc;

    use minijinja::value::{Kwargs, Object, Value};
    use minijinja::{Environment, Error, ErrorKind, State};
    use serde_json::Value as Json;

    use super::macro_files;
    use crate::render::builtins::fixtures;

    thread_local! {
        /// One slot per macro call in progress: what `return()` handed back.
        static RETURNS: RefCell<Vec<Option<Value>>> = const { RefCell::new(Vec::new()) };
    }

    /// A macro callable from anywhere by name, as the render stage exposes them.
    #[derive(Debug)]
    struct MacroRef {
        file: String,
        name: String,
    }

    impl Object for MacroRef {
        fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
            let tmpl = state.env().get_template(&self.file)?;
            let mut captured = tmpl.render_captured(())?;
            RETURNS.with(|r| r.borrow_mut().push(None));
            let out = captured.with_state_mut(|st| st.call_macro(&self.name, args));
            let returned = RETURNS.with(|r| r.borrow_mut().pop()).flatten();
            let out = out?;
            Ok(returned.unwrap_or_else(|| Value::from_safe_string(out)))
        }
    }

    #[derive(Debug)]
    struct Adapter;

    impl Object for Adapter {
        fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
            match (method, args.first().and_then(|a| a.as_str())) {
                ("dispatch", Some(name)) => {
                    let name = format!("default__{name}");
                    state.lookup(&name).ok_or_else(|| Error::new(ErrorKind::UnknownFunction, name))
                }
                _ => Err(Error::from(ErrorKind::UnknownMethod)),
            }
        }
    }

    #[derive(Debug)]
    struct Config(serde_json::Map<String, Json>);

    impl Object for Config {
        fn call_method(self: &Arc<Self>, _: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
            let key = args.first().and_then(|a| a.as_str()).unwrap_or_default();
            match (method, self.0.get(key)) {
                ("get", Some(v)) if !v.is_null() => Ok(to_value(v)),
                ("get", _) => Ok(args.get(1).cloned().unwrap_or(Value::from(()))),
                _ => Err(Error::from(ErrorKind::UnknownMethod)),
            }
        }
    }

    /// JSON as Jinja sees YAML values (the crate builds minijinja without its serde feature).
    fn to_value(j: &Json) -> Value {
        match j {
            Json::Null => Value::from(()),
            Json::Bool(b) => Value::from(*b),
            Json::Number(n) => n.as_i64().map_or_else(|| Value::from(n.as_f64().unwrap_or_default()), Value::from),
            Json::String(s) => Value::from(s.as_str()),
            Json::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
            Json::Object(map) => Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), to_value(v)))),
        }
    }

    /// An environment with the built-in macros, the globals they need and the fixture's relations.
    fn environment(manifest: &Json, config: &Json) -> Environment<'static> {
        let mut env = Environment::new();
        // Strict, so the macros are known to work whatever undefined behaviour render picks.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_formatter(|out, state, value| match crate::render::python::repr::python_display(value) {
            Some(text) => out.write_str(&text).map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string())),
            None => minijinja::escape_formatter(out, state, value),
        });
        for (file, source) in macro_files() {
            env.add_template_owned(file.to_string(), source.to_string()).expect("macro file parses");
            for name in source.split("{% macro ").skip(1).filter_map(|s| s.split('(').next()) {
                env.add_global(name.to_string(), Value::from_object(MacroRef { file: file.to_string(), name: name.to_string() }));
            }
        }
        env.add_global("adapter", Value::from_object(Adapter));
        env.add_global("config", Value::from_object(Config(config.as_object().cloned().unwrap_or_default())));
        env.add_global("target", to_value(&serde_json::json!({"name": "dev", "schema": "main", "database": "shop"})));
        env.add_function("return", |v: Value| {
            RETURNS.with(|r| {
                if let Some(slot @ None) = r.borrow_mut().last_mut() {
                    *slot = Some(v);
                }
            });
            String::new()
        });
        let mut relations = HashMap::new();
        for node in manifest["nodes"].as_object().expect("nodes").values() {
            let version = node["version"].as_str().map(str::to_string).or(node["version"].as_i64().map(|v| v.to_string()));
            relations.insert((node["name"].as_str().unwrap_or_default().to_string(), version), node["relation_name"].clone());
        }
        for src in manifest["sources"].as_object().expect("sources").values() {
            let key = format!("{}.{}", src["source_name"].as_str().unwrap_or_default(), src["name"].as_str().unwrap_or_default());
            relations.insert((key, None), src["relation_name"].clone());
        }
        let relations = Arc::new(relations);
        let refs = relations.clone();
        env.add_function("ref", move |name: String, kwargs: Kwargs| {
            let version: Option<Value> = kwargs.get("version").ok();
            let version = version.filter(|v| !v.is_none()).map(|v| v.to_string());
            Ok::<_, Error>(to_value(&refs.get(&(name, version)).cloned().unwrap_or(Json::Null)))
        });
        env.add_function("source", move |source: String, table: String| {
            to_value(&relations.get(&(format!("{source}.{table}"), None)).cloned().unwrap_or(Json::Null))
        });
        env
    }

    /// Renders a generic test node the way dbt does: kwargs first, then `test_<name>(**kwargs)`.
    fn compile_test(manifest: &Json, node: &Json) -> String {
        let env = environment(manifest, &node["config"]);
        let meta = &node["test_metadata"];
        let looks_like_call = regex::Regex::new(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$").expect("regex");
        let mut kwargs: Vec<(String, Value)> = Vec::new();
        for (key, value) in meta["kwargs"].as_object().expect("kwargs") {
            let rendered = match value.as_str() {
                Some(s) if key != "column_name" => {
                    let source = if looks_like_call.is_match(s) { format!("{{{{ {s} }}}}") } else { s.to_string() };
                    Value::from_safe_string(env.render_str(&source, ()).expect("kwarg renders"))
                }
                _ => to_value(value),
            };
            kwargs.push((key.clone(), rendered));
        }
        let name = format!("test_{}", meta["name"].as_str().expect("name"));
        let call = env.get_template("generic_tests.sql").expect("template");
        let mut captured = call.render_captured(()).expect("renders");
        let args = [Value::from(Kwargs::from_iter(kwargs))];
        let out = captured.with_state_mut(|st| st.call_macro(&name, &args));
        out.unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    #[test]
    fn builtin_generic_tests_compile_as_dbt_does() {
        let manifest: Json = serde_json::from_str(&fixtures::read("expected/manifest.json")).expect("json");
        let (mut checked, mut failures) = (0, Vec::new());
        for node in manifest["nodes"].as_object().expect("nodes").values() {
            let builtin = ["unique", "not_null", "accepted_values", "relationships"];
            let Some(name) = node["test_metadata"]["name"].as_str() else { continue };
            if !builtin.contains(&name) || !node["test_metadata"]["namespace"].is_null() {
                continue;
            }
            let compiled_path = node["compiled_path"].as_str().expect("compiled_path");
            let rel = compiled_path.strip_prefix("target/compiled/").expect("under compiled");
            let expected = fixtures::read(&format!("expected/compiled/{rel}"));
            let got = compile_test(&manifest, node);
            if got != expected {
                failures.push(format!("{rel}\n--- ours\n{got:?}\n--- dbt\n{expected:?}"));
            }
            checked += 1;
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        assert!(checked >= 20, "only {checked} tests checked");
    }

    /// Calls a built-in macro through its global, stripped as dbt strips generate_* results.
    fn call(env: &Environment<'static>, name: &str, args: &[Value]) -> String {
        let tmpl = env.template_from_str("").expect("empty template");
        let mut captured = tmpl.render_captured(()).expect("renders");
        let f = captured.state().lookup(name).expect("a global macro");
        let out = captured.with_state_mut(|st| f.call(st, args)).expect("macro runs");
        out.to_string().trim().to_string()
    }

    #[test]
    fn generate_names_follow_dbts_defaults() {
        let manifest: Json = serde_json::from_str(&fixtures::read("expected/manifest.json")).expect("json");
        let env = environment(&manifest, &Json::Null);
        let none = Value::from(());
        let node = |name: &str, version: Option<i64>| {
            Value::from_pairs([("name", Value::from(name)), ("version", version.map_or(Value::from(()), Value::from))])
        };
        // The fixture's marts models have `+schema: marts`.
        let orders = &manifest["nodes"]["model.shop.orders"];
        assert_eq!(orders["schema"], "main_marts");
        assert_eq!(call(&env, "generate_schema_name", &[Value::from(" marts "), none.clone()]), "main_marts");
        assert_eq!(call(&env, "generate_schema_name", &[none.clone(), none.clone()]), "main");
        assert_eq!(manifest["nodes"]["model.shop.customer_events"]["alias"], "cust_events");
        assert_eq!(call(&env, "generate_alias_name", &[Value::from("cust_events "), node("customer_events", None)]), "cust_events");
        assert_eq!(manifest["nodes"]["model.shop.dim_customers.v1"]["alias"], "dim_customers_v1");
        assert_eq!(call(&env, "generate_alias_name", &[none.clone(), node("dim_customers", Some(1))]), "dim_customers_v1");
        assert_eq!(call(&env, "generate_alias_name", &[none.clone(), node("orders", None)]), "orders");
        assert_eq!(orders["database"], "shop");
        assert_eq!(call(&env, "generate_database_name", &[none.clone(), node("orders", None)]), "shop");
        assert_eq!(call(&env, "generate_database_name", &[Value::from("other"), none.clone()]), "other");
        assert_eq!(call(&env, "generate_schema_name_for_env", &[Value::from("marts"), none]), "main");
    }
}
