//! What the dialects share: quoting, relation names, node diagnostics and dbt's test wrapper.

use crate::relation::quote_sql;
use serde_json::Value;

use super::OtherTypeStatements;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::node::{Node, Relation, ResourceType};

#[derive(Debug, Default)]
pub(super) struct Built {
    pub statements: Vec<String>,
    pub statements_incremental: Option<Vec<String>>,
    pub statements_other_type: Option<OtherTypeStatements>,
    pub statements_create: Option<Vec<String>>,
}

/// `prefix`, the SQL, `suffix` as one string, allocated once (a model's SQL is long).
pub(super) fn around(prefix: &str, sql: &str, suffix: &str) -> String {
    cat(&[prefix, sql, suffix])
}

/// The parts as one string, allocated once at its final size: statements are made for every
/// node, and `format!` is several times slower for such short ones.
pub(super) fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

pub(super) use crate::sql::string_literal as literal;

pub(super) fn render(relation: &Relation) -> String {
    relation.render_sql()
}

/// [`render`] of the relation whose identifier has `suffix` appended (see [`sibling`]).
pub(super) fn render_suffixed(relation: &Relation, suffix: &str) -> String {
    relation.render_sql_suffixed(suffix)
}

pub(super) fn sibling(relation: &Relation, suffix: &str) -> Relation {
    Relation { identifier: format!("{}{suffix}", relation.identifier), ..relation.clone() }
}

pub(super) fn create_schema(database: Option<&str>, schema: &str) -> String {
    match database {
        Some(db) => format!("create schema if not exists {}.{}", quote_sql(db), quote_sql(schema)),
        None => format!("create schema if not exists {}", quote_sql(schema)),
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
    let mut warning = error_at(node, code, message);
    warning.severity = crate::diagnostics::Severity::Warning;
    warning
}

pub(super) fn hooks(hooks: &[String]) -> impl Iterator<Item = String> + '_ {
    hooks.iter().filter(|h| !h.trim().is_empty()).cloned()
}

pub(super) fn compiled_sql<'a>(node: &'a Node, diagnostics: &mut Diagnostics) -> &'a str {
    match node.compiled_code.as_deref() {
        Some(sql) => sql,
        None => {
            diagnostics.push(error_at(node, crate::codes::plan::NOT_COMPILED, format!("{} has no compiled SQL", node.unique_id)));
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
    let head = format!(
        "select\n      {calc} as failures,\n      {calc} {warn_if} as should_warn,\n      {calc} {error_if} as should_error\n    from (\n"
    );
    around(&head, sql, &format!("{limit}\n    ) dbt_internal_test"))
}

/// What a dialect writes; [`statements`] picks by resource type and materialization.
pub(super) trait Dialect {
    /// A view model: replace, other type, first build.
    fn view(&self, node: &Node, sql: &str) -> Built;
    /// A table model (and an incremental model's full builds).
    fn table(&self, node: &Node, sql: &str) -> Built;
    /// An incremental model's run against its existing table.
    fn incremental(&self, node: &Node, diagnostics: &mut Diagnostics) -> Vec<String>;
    fn seed(&self, node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built;
    fn snapshot(&self, node: &Node, diagnostics: &mut Diagnostics) -> Built;
}

pub(super) fn statements(
    dialect: &impl Dialect,
    node: &Node,
    full_refresh: bool,
    project_root: &std::path::Path,
    diagnostics: &mut Diagnostics,
) -> Built {
    match node.resource_type {
        ResourceType::Model => model(dialect, node, full_refresh, diagnostics),
        ResourceType::Seed => dialect.seed(node, full_refresh, project_root, diagnostics),
        ResourceType::Snapshot => dialect.snapshot(node, diagnostics),
        ResourceType::Test => {
            if node.config.store_failures == Some(true) {
                diagnostics.push(warning_at(
                    node,
                    crate::codes::plan::STORE_FAILURES,
                    format!("{}: store_failures is not supported yet; the test runs without storing its failures", node.unique_id),
                ));
            }
            Built { statements: vec![test(node)], ..Built::default() }
        }
        ResourceType::Analysis | ResourceType::Source => Built::default(),
    }
}

fn model(dialect: &impl Dialect, node: &Node, full_refresh: bool, diagnostics: &mut Diagnostics) -> Built {
    let sql = compiled_sql(node, diagnostics);
    match node.config.materialized.as_str() {
        "view" => dialect.view(node, sql),
        "table" => dialect.table(node, sql),
        "incremental" => {
            let mut built = dialect.table(node, sql);
            if !full_refresh {
                built.statements_incremental = Some(dialect.incremental(node, diagnostics));
            }
            built
        }
        "ephemeral" => Built::default(),
        other => {
            diagnostics.push(
                error_at(
                    node,
                    crate::codes::plan::UNKNOWN_MATERIALIZATION,
                    format!("{}: unknown materialization `{other}`", node.unique_id),
                )
                .with_help("orrery builds `view`, `table`, `incremental` and `ephemeral` models"),
            );
            Built::default()
        }
    }
}

/// A snapshot's configuration checked, and the SQL pieces both dialects build it from.
pub(super) struct Snapshot<'a> {
    pub sql: &'a str,
    pub target: String,
    /// The expression of the row's version time (`updated_at`, or the clock for `check`).
    pub updated: String,
    /// True when a row changed, comparing `snapshotted_data` with `source_data`.
    pub changed: String,
    /// `check_cols = 'all'`.
    pub check_all: bool,
    pub scd_id: String,
    pub key_cols: String,
    pub key_names: Vec<String>,
}

impl<'a> Snapshot<'a> {
    /// `now`: the dialect's clock as a timestamp (the `check` strategy's version time).
    pub(super) fn from_node(node: &'a Node, now: &str, diagnostics: &mut Diagnostics) -> Option<Snapshot<'a>> {
        let sql = compiled_sql(node, diagnostics);
        let keys = unique_keys(node);
        if keys.is_empty() {
            diagnostics.push(
                error_at(node, crate::codes::plan::SNAPSHOT_UNIQUE_KEY, format!("{}: a snapshot needs a `unique_key`", node.unique_id))
                    .with_help("set unique_key in the snapshot's config"),
            );
            return None;
        }
        if node.config.invalidate_hard_deletes == Some(true) {
            diagnostics.push(warning_at(
                node,
                crate::codes::plan::HARD_DELETES,
                format!("{}: invalidate_hard_deletes is not supported yet; deleted source rows stay current", node.unique_id),
            ));
        }
        let strategy = node.config.strategy.as_deref().unwrap_or("timestamp");
        let check_all = strategy == "check" && !matches!(node.config.check_cols, Some(Value::Array(_)));
        let (updated, changed) = match strategy {
            "timestamp" => {
                let Some(updated_at) = node.config.updated_at.clone() else {
                    diagnostics.push(
                        error_at(
                            node,
                            crate::codes::plan::SNAPSHOT_UPDATED_AT,
                            format!("{}: the timestamp strategy needs `updated_at`", node.unique_id),
                        )
                        .with_help("set updated_at to the column that records changes"),
                    );
                    return None;
                };
                let changed = format!("(snapshotted_data.dbt_valid_from < source_data.{updated_at})");
                (updated_at, changed)
            }
            "check" => {
                let changed = match &node.config.check_cols {
                    Some(Value::Array(cols)) => {
                        let parts: Vec<String> = cols
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|c| {
                                let (s, d) = (format!("snapshotted_data.{}", quote_sql(c)), format!("source_data.{}", quote_sql(c)));
                                format!("{s} != {d} or (({s} is null) and not ({d} is null)) or ((not {s} is null) and ({d} is null))")
                            })
                            .collect();
                        format!("({})", parts.join(" or "))
                    }
                    // `all`: compare every column of the query, as one text value per row.
                    _ => "(snapshotted_data.dbt_check_row is distinct from source_data.dbt_check_row)".to_string(),
                };
                (now.to_string(), changed)
            }
            other => {
                diagnostics.push(
                    error_at(
                        node,
                        crate::codes::plan::SNAPSHOT_STRATEGY,
                        format!("{}: unknown snapshot strategy `{other}`", node.unique_id),
                    )
                    .with_help("use `timestamp` or `check`"),
                );
                return None;
            }
        };
        let scd_id = {
            let mut parts: Vec<String> = keys.iter().map(|k| format!("coalesce(cast({k} as varchar ), '')")).collect();
            parts.push(format!("coalesce(cast({updated} as varchar ), '')"));
            format!("md5({})", parts.join(" || '|' || "))
        };
        let (key_cols, key_names) = if keys.len() == 1 {
            (format!("{} as dbt_unique_key", keys[0]), vec!["dbt_unique_key".to_string()])
        } else {
            let cols = keys.iter().enumerate().map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1)).collect::<Vec<_>>();
            (cols.join(", "), (1..=keys.len()).map(|i| format!("dbt_unique_key_{i}")).collect())
        };
        Some(Snapshot { sql, target: render(&node.relation), updated, changed, check_all, scd_id, key_cols, key_names })
    }

    /// The first build's `select`: the query's rows with the snapshot's columns; `valid_to_null`
    /// is the dialect's null of the version time's type.
    pub(super) fn first_select(&self, valid_to_null: &str) -> String {
        let (sql, scd_id, updated) = (self.sql, &self.scd_id, &self.updated);
        format!(
            "select *,\n        {scd_id} as dbt_scd_id,\n        {updated} as dbt_updated_at,\n        {updated} as dbt_valid_from,\n        \
             {valid_to_null} as dbt_valid_to\n    from (\n{sql}\n    ) sbq"
        )
    }

    /// The query of a later run's staging table: the rows to insert and to close.
    /// `check_rows`: extra select items of the snapshotted and the source side (`check_cols = 'all'`).
    pub(super) fn staging_select(&self, valid_to_null: &str, check_rows: (&str, &str)) -> String {
        let Snapshot { sql, target, updated, changed, scd_id, key_cols, key_names, .. } = self;
        let (check_row_snap, check_row_src) = check_rows;
        let join = key_names.iter().map(|k| format!("snapshotted_data.{k} = source_data.{k}")).collect::<Vec<_>>().join(" and ");
        let key_null = format!("snapshotted_data.{} is null", key_names[0]);
        let src_select = format!("*, {key_cols}{check_row_src}");
        format!(
            "with snapshot_query as (\n{sql}\n    ),\n    \
             snapshotted_data as (\n        select *, {key_cols}{check_row_snap}\n        from {target}\n        where dbt_valid_to is null\n    ),\n    \
             insertions_source_data as (\n        select {src_select},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            \
             {valid_to_null} as dbt_valid_to,\n            {scd_id} as dbt_scd_id\n        from snapshot_query\n    ),\n    \
             updates_source_data as (\n        select {src_select},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            \
             {updated} as dbt_valid_to\n        from snapshot_query\n    ),\n    \
             insertions as (\n        select 'insert' as dbt_change_type, source_data.*\n        from insertions_source_data as source_data\n        \
             left outer join snapshotted_data on {join}\n        where {key_null} or ({changed})\n    ),\n    \
             updates as (\n        select 'update' as dbt_change_type, source_data.*, snapshotted_data.dbt_scd_id\n        \
             from updates_source_data as source_data\n        join snapshotted_data on {join}\n        where {changed}\n    )\n    \
             select * from insertions\n    union all\n    select * from updates"
        )
    }

    /// Closes the versions the staging table `tmp` replaces.
    pub(super) fn close_updated(&self, tmp: &str) -> String {
        let target = &self.target;
        format!(
            "update {target} as DBT_INTERNAL_TARGET\n    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to\n    from {tmp} as DBT_INTERNAL_SOURCE\n    \
             where DBT_INTERNAL_SOURCE.dbt_scd_id::text = DBT_INTERNAL_TARGET.dbt_scd_id::text\n      \
             and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n      and DBT_INTERNAL_TARGET.dbt_valid_to is null"
        )
    }
}
