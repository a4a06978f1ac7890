//! Relations: what a node builds in the warehouse (`database.schema.identifier`), what kind it
//! is there, which parts are quoted, and the two ways orrery writes one:
//! - [`Relation::render_dbt`], dbt's form, written into compiled SQL, templates and artifacts
//!   (`relation_name`): each part wrapped in double quotes as its quote policy says, nothing
//!   escaped, as dbt-duckdb and dbt-postgres print relations;
//! - [`Relation::render_sql`], the escaped form, for the statements orrery itself runs: every
//!   part quoted with `"` doubled, so an identifier is always one name.
//!
//! Every module that writes a relation or quotes an identifier goes through here.

use serde::{Deserialize, Serialize};

/// `{ database, schema, identifier }`, unquoted; rendered by one of the two forms above.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

/// What a relation is in the warehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::View => "view",
        }
    }
}

/// Which parts dbt's form quotes: the project's `quoting:` config (all true by default).
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

/// One identifier in dbt's form: wrapped in double quotes, nothing escaped (as `adapter.quote`).
pub fn quote_dbt(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    push_part(&mut out, ident, true, false);
    out
}

/// One identifier for a statement orrery runs: double quotes, an inner `"` doubled.
pub fn quote_sql(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    push_part(&mut out, ident, true, true);
    out
}

fn push_part(out: &mut String, part: &str, quoted: bool, escaped: bool) {
    if !quoted {
        out.push_str(part);
        return;
    }
    out.push('"');
    if escaped && part.contains('"') {
        out.push_str(&part.replace('"', "\"\""));
    } else {
        out.push_str(part);
    }
    out.push('"');
}

impl Relation {
    /// dbt's form: `"db"."schema"."name"` (`"schema"."name"` without a database), leaving
    /// unquoted the parts `policy` says; an `include(schema=false)` relation keeps its dot.
    pub fn render_dbt(&self, policy: QuotePolicy) -> String {
        let parts = [
            (self.database.as_deref(), policy.database),
            (Some(self.schema.as_str()), policy.schema),
            (Some(self.identifier.as_str()), policy.identifier),
        ];
        // Written into one string of its final size (every ref() renders one).
        let len: usize = parts.iter().map(|(text, quoted)| text.map_or(0, |t| t.len() + 1 + 2 * usize::from(*quoted))).sum();
        let mut out = String::with_capacity(len);
        for (i, (text, quoted)) in parts.into_iter().enumerate() {
            let Some(text) = text else { continue };
            if i > 0 && (i > 1 || self.database.is_some()) {
                out.push('.');
            }
            push_part(&mut out, text, quoted, false);
        }
        out
    }

    /// The escaped form for statements: every part quoted, `"` doubled.
    pub fn render_sql(&self) -> String {
        self.render_sql_suffixed("")
    }

    /// [`Relation::render_sql`] of the relation whose identifier has `suffix` appended (the
    /// temporary and backup siblings statements build beside a relation).
    pub fn render_sql_suffixed(&self, suffix: &str) -> String {
        let db_len = self.database.as_ref().map_or(0, |db| db.len() + 3);
        let mut out = String::with_capacity(db_len + self.schema.len() + self.identifier.len() + suffix.len() + 6);
        if let Some(db) = &self.database {
            push_part(&mut out, db, true, true);
            out.push('.');
        }
        push_part(&mut out, &self.schema, true, true);
        out.push('.');
        if suffix.is_empty() {
            push_part(&mut out, &self.identifier, true, true);
        } else {
            push_part(&mut out, &format!("{}{suffix}", self.identifier), true, true);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(db: Option<&str>) -> Relation {
        Relation { database: db.map(str::to_string), schema: "main".into(), identifier: "stg_orders".into() }
    }

    #[test]
    fn dbts_form_is_what_the_adapters_print() {
        // From target/compiled of the fixture project: `from "shop"."main"."stg_orders"`.
        assert_eq!(rel(Some("shop")).render_dbt(QuotePolicy::default()), r#""shop"."main"."stg_orders""#);
        assert_eq!(rel(None).render_dbt(QuotePolicy::default()), r#""main"."stg_orders""#);
        assert_eq!(quote_dbt("Order Items"), r#""Order Items""#);
        assert_eq!(quote_dbt(r#"a"b"#), r#""a"b""#);
        let policy = QuotePolicy { identifier: false, ..QuotePolicy::default() };
        assert_eq!(rel(Some("shop")).render_dbt(policy), r#""shop"."main".stg_orders"#);
        let bare = QuotePolicy { database: false, schema: false, identifier: false };
        assert_eq!(rel(Some("shop")).render_dbt(bare), "shop.main.stg_orders");
        let empty = Relation { database: None, schema: String::new(), identifier: "t".into() };
        assert_eq!(empty.render_dbt(bare), ".t");
        assert_eq!(empty.render_dbt(QuotePolicy::default()), r#"""."t""#);
    }

    #[test]
    fn the_statement_form_escapes_quotes() {
        let odd = Relation { database: Some("d".into()), schema: r#"s"x"#.into(), identifier: "t".into() };
        assert_eq!(odd.render_sql(), r#""d"."s""x"."t""#);
        assert_eq!(odd.render_sql_suffixed("__tmp"), r#""d"."s""x"."t__tmp""#);
        assert_eq!(quote_sql(r#"a"b"#), r#""a""b""#);
        assert_eq!(rel(Some("shop")).render_sql(), rel(Some("shop")).render_dbt(QuotePolicy::default()));
    }
}
