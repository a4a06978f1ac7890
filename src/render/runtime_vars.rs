//! Runtime variables (`[export.airflow] runtime_vars`) checked at compile time: a value bound
//! only when the plan runs may stand in SQL as data, never in control flow or in a name.

use super::*;

/// Runtime variables used where the plan cannot bind them: `compiled` rendered each runtime
/// variable as its placeholder, `probe` as an empty string. A node whose SQL, hooks or
/// materialization differ other than by the placeholder used the value in control flow (an
/// `if`, a comparison's branch, a filter, a string method, `length`): an error at the `var()`
/// call when it is in the node's own file.
pub fn runtime_var_misuse(compiled: &Compiled, probe: &Compiled, names: &[String]) -> Diagnostics {
    let mut found = Diagnostics::new();
    let probes: HashMap<&str, &Node> = probe.nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect();
    let strip = |text: &str| names.iter().fold(text.to_string(), |t, name| t.replace(&crate::node::runtime_var_marker(name), ""));
    let texts = |n: &Node| {
        [
            n.compiled_code.clone().unwrap_or_default(),
            n.compiled_code_incremental.clone().unwrap_or_default(),
            n.config.pre_hook.join("\n"),
            n.config.post_hook.join("\n"),
            n.config.materialized.clone(),
        ]
    };
    for node in &compiled.nodes {
        let Some(other) = probes.get(node.unique_id.as_str()) else { continue };
        let same = texts(node).iter().zip(texts(other).iter()).all(|(a, b)| strip(a) == *b);
        if same {
            continue;
        }
        let used: Vec<&String> = names.iter().filter(|n| node.raw_code.contains(n.as_str())).collect();
        let shown = used.first().map_or_else(|| names.join("`, `"), |n| n.to_string());
        let mut diagnostic = Diagnostic::error(
            crate::codes::render::RUNTIME_VAR_CONTROL_FLOW,
            format!(
                "{}: runtime variable `{shown}` changes what the node compiles to (an `if`, a filter or a string method on it); it is bound only at run time",
                node.unique_id
            ),
        )
        .with_help("use a runtime variable only as a value in SQL, e.g. `where day = '{{ var(\"ds\") }}'`, or remove it from [export.airflow] runtime_vars");
        diagnostic = at_var_call(diagnostic, node, used.first().map(|n| n.as_str()));
        found.push(diagnostic);
    }
    found
}

/// `diagnostic` placed at the node's first `var('name')` call, else at the node's file.
fn at_var_call(diagnostic: Diagnostic, node: &Node, name: Option<&str>) -> Diagnostic {
    let call = name.and_then(|name| {
        let origin = node.origin.as_ref()?;
        let pattern = regex::Regex::new(&format!(r#"var\(\s*['"]{}['"]"#, regex::escape(name))).ok()?;
        let m = pattern.find(&origin.source.text)?;
        Some((origin.source.clone(), m.range()))
    });
    match call {
        Some((source, span)) => diagnostic.at(&source, span),
        None => diagnostic.with_file(&node.original_file_path),
    }
}

/// Runtime variables whose placeholder lands inside a `"quoted identifier"` of a node's SQL
/// or hooks: a value is bound as data and can never be a name, so each is an error at the
/// `var()` call.
pub fn runtime_var_in_identifier(compiled: &Compiled, names: &[String]) -> Diagnostics {
    let dialect = crate::sql::Dialect::of(&compiled.target.adapter_type);
    let mut found = Diagnostics::new();
    for node in &compiled.nodes {
        let texts = [node.compiled_code.as_deref(), node.compiled_code_incremental.as_deref()]
            .into_iter()
            .flatten()
            .chain(node.config.pre_hook.iter().map(String::as_str))
            .chain(node.config.post_hook.iter().map(String::as_str));
        let texts: Vec<&str> = texts.collect();
        for name in names {
            let marker = crate::node::runtime_var_marker(name);
            if texts.iter().all(|t| crate::sql::bind::in_identifiers(t, dialect, &marker).is_empty()) {
                continue;
            }
            let diagnostic = Diagnostic::error(
                crate::codes::render::RUNTIME_VAR_IN_IDENTIFIER,
                format!("{}: runtime variable `{name}` stands inside a quoted identifier; it is bound as a value, never as a name", node.unique_id),
            )
            .with_help("use the runtime variable as a value, e.g. `where day = '{{ var(\"ds\") }}'`, or remove it from [export.airflow] runtime_vars");
            found.push(at_var_call(diagnostic, node, Some(name)));
        }
    }
    found
}
