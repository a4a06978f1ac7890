//! Relations as dbt-duckdb and dbt-postgres write them into compiled SQL.

use crate::node::Relation;

/// Quotes one identifier. Both adapters wrap it in double quotes and, like dbt, escape nothing.
pub fn quote_identifier(adapter_type: &str, ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    push_identifier(&mut out, adapter_type, ident, true);
    out
}

/// Appends `ident`, quoted as [`quote_identifier`] quotes it when `quoted`.
fn push_identifier(out: &mut String, adapter_type: &str, ident: &str, quoted: bool) {
    // DuckDB and Postgres both use ANSI double quotes; other adapters would branch here.
    let _ = adapter_type;
    if quoted {
        out.push('"');
    }
    out.push_str(ident);
    if quoted {
        out.push('"');
    }
}

/// `"db"."schema"."name"`, or `"schema"."name"` when the relation has no database.
pub fn render_relation(adapter_type: &str, rel: &Relation) -> String {
    render_relation_with(adapter_type, rel, QuotePolicy::default())
}

/// Which parts are quoted: dbt's `quoting:` project config (all true by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotePolicy {
    pub database: bool,
    pub schema: bool,
    pub identifier: bool,
}

impl Default for QuotePolicy {
    fn default() -> Self {
        QuotePolicy { database: true, schema: true, identifier: true }
    }
}

/// As [`render_relation`], leaving unquoted the parts the policy says.
pub fn render_relation_with(adapter_type: &str, rel: &Relation, policy: QuotePolicy) -> String {
    // Written into one string of its final size (every ref() renders one).
    let parts = [
        (rel.database.as_deref(), policy.database),
        (Some(rel.schema.as_str()), policy.schema),
        (Some(rel.identifier.as_str()), policy.identifier),
    ];
    let len: usize = parts.iter().map(|(text, quoted)| text.map_or(0, |t| t.len() + 1 + 2 * usize::from(*quoted))).sum();
    let mut out = String::with_capacity(len);
    for (i, (text, quoted)) in parts.into_iter().enumerate() {
        let Some(text) = text else { continue };
        if i > 0 && (i > 1 || rel.database.is_some()) {
            out.push('.');
        }
        push_identifier(&mut out, adapter_type, text, quoted);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(db: Option<&str>) -> Relation {
        Relation { database: db.map(str::to_string), schema: "main".into(), identifier: "stg_orders".into() }
    }

    #[test]
    fn renders_as_the_adapters_do() {
        // From target/compiled of the fixture project: `from "shop"."main"."stg_orders"`.
        assert_eq!(render_relation("duckdb", &rel(Some("shop"))), r#""shop"."main"."stg_orders""#);
        assert_eq!(render_relation("postgres", &rel(Some("analytics"))), r#""analytics"."main"."stg_orders""#);
        assert_eq!(render_relation("duckdb", &rel(None)), r#""main"."stg_orders""#);
        assert_eq!(quote_identifier("postgres", "Order Items"), r#""Order Items""#);
        let policy = QuotePolicy { identifier: false, ..QuotePolicy::default() };
        assert_eq!(render_relation_with("duckdb", &rel(Some("shop")), policy), r#""shop"."main".stg_orders"#);
        let bare = QuotePolicy { database: false, schema: false, identifier: false };
        assert_eq!(render_relation_with("duckdb", &rel(Some("shop")), bare), "shop.main.stg_orders");
        let empty = Relation { database: None, schema: String::new(), identifier: "t".into() };
        assert_eq!(render_relation_with("duckdb", &empty, bare), ".t");
        assert_eq!(render_relation("duckdb", &empty), r#"""."t""#);
    }
}
