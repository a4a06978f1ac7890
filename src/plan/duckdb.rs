//! DuckDB statements per materialization, written to leave relations with the same columns and
//! rows as dbt-duckdb 1.11's `dbt build`. Every build runs in one transaction, so a failing
//! statement rolls back to the previous relation.

use super::OtherTypeStatements;
use super::common::{Built, Dialect, Snapshot, around, cat, hooks, literal, render, render_suffixed, unique_keys, warning_at};
use super::seed;
use crate::diagnostics::Diagnostics;
use crate::node::Node;
use crate::relation::quote_sql;

/// A statement that fails with `message` when run (DuckDB's `error()`).
fn failing(message: &str) -> String {
    format!("select error({})", literal(message))
}

/// DuckDB's statements.
pub(super) struct DuckDb;

impl Dialect for DuckDb {
    fn view(&self, node: &Node, sql: &str) -> Built {
        let (statements, other) = replace(node, sql, "view", "table");
        Built {
            statements,
            statements_other_type: Some(OtherTypeStatements { existing: "table".into(), statements: other }),
            statements_create: Some(create_in_place(node, around(&format!("create view {} as (\n", render(&node.relation)), sql, "\n  )"))),
            ..Built::default()
        }
    }

    fn table(&self, node: &Node, sql: &str) -> Built {
        table_built(node, sql)
    }

    fn incremental(&self, node: &Node, diagnostics: &mut Diagnostics) -> Vec<String> {
        incremental(node, diagnostics)
    }

    fn seed(&self, node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
        seed::statements(node, full_refresh, project_root, diagnostics)
    }

    fn snapshot(&self, node: &Node, diagnostics: &mut Diagnostics) -> Built {
        snapshot(node, diagnostics)
    }
}

fn table_built(node: &Node, sql: &str) -> Built {
    let (statements, other) = replace(node, sql, "table", "view");
    Built {
        statements,
        statements_other_type: Some(OtherTypeStatements { existing: "view".into(), statements: other }),
        statements_create: Some(create_in_place(node, around(&format!("create table {} as (\n", render(&node.relation)), sql, "\n    )"))),
        ..Built::default()
    }
}

/// A first build: nothing exists to keep, so the relation is created under its own name
/// (a failure still leaves nothing). One statement is its own transaction; with hooks they
/// share one.
fn create_in_place(node: &Node, create: String) -> Vec<String> {
    if node.config.pre_hook.iter().chain(&node.config.post_hook).all(|h| h.trim().is_empty()) {
        return vec![create];
    }
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.push(create);
    out.extend(hooks(&node.config.post_hook));
    out.push("commit".into());
    out
}

/// Builds `kind` (`view` or `table`) as a temporary relation and swaps it in where a relation of
/// the same kind stands; and what changes where one of kind `other` stands instead: the two
/// statements dropping the renamed-away relation (DuckDB refuses `drop view` of a table, even with
/// `if exists`), every other place `None`, the same statement.
fn replace(node: &Node, sql: &str, kind: &str, other: &str) -> (Vec<String>, Vec<Option<String>>) {
    let target = &node.relation;
    let tmp = render_suffixed(target, "__dbt_tmp");
    let backup = render_suffixed(target, "__dbt_backup");
    // The backup's name alone: the last part of `backup`, quoted as it is there.
    let backup_name = &backup[backup.len() - (quote_sql(&target.identifier).len() + "__dbt_backup".len())..];
    let drop_backup = |existing: &str| cat(&["drop ", existing, " if exists ", &backup, " cascade"]);
    // dbt-duckdb's indentation of the closing parenthesis differs by kind.
    let close = if kind == "view" { "\n  )" } else { "\n    )" };
    let mut out = Vec::with_capacity(8);
    out.push("begin".to_string());
    out.extend(hooks(&node.config.pre_hook));
    out.push(cat(&["drop ", kind, " if exists ", &tmp, " cascade"]));
    out.push(cat(&["create ", kind, " ", &tmp, " as (\n", sql, close]));
    let swap = out.len();
    out.push(drop_backup(kind));
    // DuckDB's `alter table if exists` renames views too, and is a no-op when nothing exists.
    out.push(cat(&["alter table if exists ", &render(target), " rename to ", backup_name]));
    out.push(cat(&["alter ", kind, " ", &tmp, " rename to ", &quote_sql(&target.identifier)]));
    out.push(drop_backup(kind));
    out.extend(hooks(&node.config.post_hook));
    out.push("commit".into());
    let mut other_type = vec![None; out.len()];
    other_type[swap] = Some(drop_backup(other));
    other_type[swap + 3] = Some(drop_backup(other));
    (out, other_type)
}

fn incremental(node: &Node, diagnostics: &mut Diagnostics) -> Vec<String> {
    let target = render(&node.relation);
    let tmp_name = quote_sql(&format!("{}__dbt_tmp", node.relation.identifier));
    let sql = node.compiled_code_incremental.as_deref().or(node.compiled_code.as_deref()).unwrap_or("");
    let keys = unique_keys(node);
    let strategy = node.config.incremental_strategy.clone().unwrap_or_else(|| "delete+insert".into());
    if let Some(change) = node.config.on_schema_change.as_deref().filter(|c| *c != "ignore") {
        diagnostics.push(
            warning_at(
                node,
                crate::codes::plan::ON_SCHEMA_CHANGE,
                format!("{}: on_schema_change `{change}` is not supported yet; columns are matched by name", node.unique_id),
            )
            .with_help("rebuild with --full-refresh after changing the columns"),
        );
    }
    let insert = format!("insert into {target} by name select * from {tmp_name}");
    let body: Vec<String> = match strategy.as_str() {
        "append" => vec![insert],
        "delete+insert" if keys.is_empty() => vec![insert],
        "delete+insert" if keys.len() == 1 => {
            vec![format!("delete from {target} where ({}) in (select ({}) from {tmp_name})", keys[0], keys[0]), insert]
        }
        "delete+insert" => {
            let on: Vec<String> = keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect();
            vec![
                format!("delete from {target} as DBT_INTERNAL_DEST using {tmp_name} as DBT_INTERNAL_SOURCE where ({})", on.join(" and ")),
                insert,
            ]
        }
        "merge" => {
            let on = if keys.is_empty() {
                "false".to_string()
            } else {
                keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect::<Vec<_>>().join(" and ")
            };
            vec![format!(
                "merge into {target} as DBT_INTERNAL_DEST using {tmp_name} as DBT_INTERNAL_SOURCE on ({on}) \
                 when matched then update by name when not matched then insert by name"
            )]
        }
        other => {
            diagnostics.push(
                warning_at(
                    node,
                    crate::codes::plan::UNKNOWN_INCREMENTAL_STRATEGY,
                    format!("{}: unknown incremental_strategy `{other}`; its incremental run will fail", node.unique_id),
                )
                .with_help("use `append`, `delete+insert` or `merge` (or run with --full-refresh)"),
            );
            return vec![failing(&format!("{}: incremental_strategy `{other}` is not supported by orrery on DuckDB", node.unique_id))];
        }
    };
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.push(around(&format!("create or replace temporary table {tmp_name} as (\n"), sql, "\n    )"));
    out.extend(body);
    out.extend(hooks(&node.config.post_hook));
    out.push(format!("drop table if exists temp.main.{tmp_name}"));
    out.push("commit".into());
    out
}

fn snapshot(node: &Node, diagnostics: &mut Diagnostics) -> Built {
    let Some(snap) = Snapshot::from_node(node, "now()::timestamp", diagnostics) else { return Built::default() };
    let (target, updated) = (&snap.target, &snap.updated);
    let valid_to_null = format!("coalesce(nullif({updated}, {updated}), null)");
    let first = vec![
        "begin".to_string(),
        format!("create table {target} as (\n    {}\n    )", snap.first_select(&valid_to_null)),
        "commit".to_string(),
    ];
    // `check_cols = all`: one hash per row over the query's columns, on both sides.
    let check_rows = if snap.check_all {
        (
            ",\n            md5(cast(row(*columns(* exclude (dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to))) as varchar)) as dbt_check_row",
            ",\n            md5(cast(row(*columns(*)) as varchar)) as dbt_check_row",
        )
    } else {
        ("", "")
    };
    let tmp_name = quote_sql(&format!("{}__dbt_tmp", node.relation.identifier));
    let staging =
        format!("create or replace temporary table {tmp_name} as (\n    {}\n    )", snap.staging_select(&valid_to_null, check_rows));
    let mut exclude: Vec<String> = vec!["dbt_change_type".into()];
    exclude.extend(snap.key_names.iter().cloned());
    if snap.check_all {
        exclude.push("dbt_check_row".into());
    }
    let later = vec![
        "begin".to_string(),
        staging,
        snap.close_updated(&tmp_name),
        format!(
            "insert into {target} by name\n    select * exclude ({}) from {tmp_name}\n    where dbt_change_type::text = 'insert'::text",
            exclude.join(", ")
        ),
        format!("drop table if exists temp.main.{tmp_name}"),
        "commit".to_string(),
    ];
    let mut statements = first;
    let mut incremental = later;
    for list in [&mut statements, &mut incremental] {
        let commit = list.pop();
        list.splice(1..1, hooks(&node.config.pre_hook));
        list.extend(hooks(&node.config.post_hook));
        list.extend(commit);
    }
    Built { statements, statements_incremental: Some(incremental), statements_other_type: None, statements_create: None }
}
