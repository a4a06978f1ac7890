//! What the dialects share: quoting, relation names, node diagnostics and dbt's test wrapper.

use serde_json::Value;

use super::OtherTypeStatements;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::node::{Node, Relation};

#[derive(Debug, Default)]
pub(super) struct Built {
    pub statements: Vec<String>,
    pub statements_incremental: Option<Vec<String>>,
    pub statements_other_type: Option<OtherTypeStatements>,
    pub statements_create: Option<Vec<String>>,
}

pub(super) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(super) fn render(relation: &Relation) -> String {
    match &relation.database {
        Some(db) => format!("{}.{}.{}", quote(db), quote(&relation.schema), quote(&relation.identifier)),
        None => format!("{}.{}", quote(&relation.schema), quote(&relation.identifier)),
    }
}

pub(super) fn sibling(relation: &Relation, suffix: &str) -> Relation {
    Relation { identifier: format!("{}{suffix}", relation.identifier), ..relation.clone() }
}

pub(super) fn create_schema(relation: &Relation) -> String {
    match &relation.database {
        Some(db) => format!("create schema if not exists {}.{}", quote(db), quote(&relation.schema)),
        None => format!("create schema if not exists {}", quote(&relation.schema)),
    }
}

pub(super) fn error_at(node: &Node, code: &str, message: String) -> Diagnostic {
    let diagnostic = Diagnostic::error(code, message);
    match &node.origin {
        Some(origin) => diagnostic.at(&origin.source, origin.span.clone()),
        None => diagnostic.with_file(&node.original_file_path),
    }
}

pub(super) fn warning_at(node: &Node, code: &str, message: String) -> Diagnostic {
    Diagnostic { severity: crate::diagnostics::Severity::Warning, ..error_at(node, code, message) }
}

pub(super) fn hooks(hooks: &[String]) -> impl Iterator<Item = String> + '_ {
    hooks.iter().filter(|h| !h.trim().is_empty()).cloned()
}

pub(super) fn compiled_sql<'a>(node: &'a Node, diagnostics: &mut Diagnostics) -> &'a str {
    match node.compiled_code.as_deref() {
        Some(sql) => sql,
        None => {
            diagnostics.push(error_at(node, "plan::not_compiled", format!("{} has no compiled SQL", node.unique_id)));
            ""
        }
    }
}

/// The unique_key as column expressions (a string or a list of strings).
pub(super) fn unique_keys(node: &Node) -> Vec<String> {
    match &node.config.unique_key {
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// dbt's test wrapper: one row of `failures`, `should_warn`, `should_error`.
pub(super) fn test(node: &Node) -> String {
    let sql = node.compiled_code.as_deref().unwrap_or("");
    let calc = node.config.fail_calc.clone().unwrap_or_else(|| "count(*)".into());
    let warn_if = node.config.warn_if.clone().unwrap_or_else(|| "!= 0".into());
    let error_if = node.config.error_if.clone().unwrap_or_else(|| "!= 0".into());
    let limit = node.config.limit.map(|n| format!("\n  limit {n}")).unwrap_or_default();
    format!(
        "select\n      {calc} as failures,\n      {calc} {warn_if} as should_warn,\n      {calc} {error_if} as should_error\n    from (\n{sql}{limit}\n    ) dbt_internal_test"
    )
}

