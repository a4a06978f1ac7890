//! DuckDB statements per materialization, written to leave relations with the same columns and
//! rows as dbt-duckdb 1.11's `dbt build`. Every build runs in one transaction, so a failing
//! statement rolls back to the previous relation.

use serde_json::Value;

use super::common::{Built, compiled_sql, error_at, hooks, literal, quote, render, sibling, test, unique_keys, warning_at};
use super::OtherTypeStatements;
use super::seed;
use crate::diagnostics::Diagnostics;
use crate::node::{Node, Relation, ResourceType};

/// A statement that fails with `message` when run (DuckDB's `error()`).
fn failing(message: &str) -> String {
    format!("select error({})", literal(message))
}

pub(super) fn statements(node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
    match node.resource_type {
        ResourceType::Model => model(node, full_refresh, diagnostics),
        ResourceType::Seed => seed::statements(node, full_refresh, project_root, diagnostics),
        ResourceType::Snapshot => snapshot(node, diagnostics),
        ResourceType::Test => {
            if node.config.store_failures == Some(true) {
                diagnostics.push(warning_at(
                    node,
                    "plan::store_failures",
                    format!("{}: store_failures is not supported yet; the test runs without storing its failures", node.unique_id),
                ));
            }
            Built { statements: vec![test(node)], ..Built::default() }
        }
        ResourceType::Analysis | ResourceType::Source => Built::default(),
    }
}

fn model(node: &Node, full_refresh: bool, diagnostics: &mut Diagnostics) -> Built {
    let sql = compiled_sql(node, diagnostics);
    match node.config.materialized.as_str() {
        "view" => Built {
            statements: view(node, sql, "view"),
            statements_other_type: Some(OtherTypeStatements { existing: "table".into(), statements: view(node, sql, "table") }),
            statements_create: Some(create_in_place(node, format!("create view {} as (\n{sql}\n  )", render(&node.relation)))),
            ..Built::default()
        },
        "table" => table_built(node, sql),
        "incremental" => {
            let mut built = table_built(node, sql);
            if !full_refresh {
                built.statements_incremental = Some(incremental(node, diagnostics));
            }
            built
        }
        "ephemeral" => Built::default(),
        other => {
            diagnostics.push(
                error_at(node, "plan::unknown_materialization", format!("{}: unknown materialization `{other}`", node.unique_id))
                    .with_help("orrery builds `view`, `table`, `incremental` and `ephemeral` models"),
            );
            Built::default()
        }
    }
}

fn table_built(node: &Node, sql: &str) -> Built {
    Built {
        statements: table(node, sql, "table"),
        statements_other_type: Some(OtherTypeStatements { existing: "view".into(), statements: table(node, sql, "view") }),
        statements_create: Some(create_in_place(node, format!("create table {} as (\n{sql}\n    )", render(&node.relation)))),
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

/// `create view tmp`, then swap it in; `existing` is the type of what it replaces.
fn view(node: &Node, sql: &str, existing: &str) -> Vec<String> {
    let target = &node.relation;
    let tmp = render(&sibling(target, "__dbt_tmp"));
    let backup = sibling(target, "__dbt_backup");
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.push(format!("drop view if exists {tmp} cascade"));
    out.push(format!("create view {tmp} as (\n{sql}\n  )"));
    out.extend(swap(target, &backup, existing, "view"));
    out.extend(hooks(&node.config.post_hook));
    out.push("commit".into());
    out
}

/// `create table tmp as`, then swap it in; `existing` is the type of what it replaces.
fn table(node: &Node, sql: &str, existing: &str) -> Vec<String> {
    let target = &node.relation;
    let tmp = render(&sibling(target, "__dbt_tmp"));
    let backup = sibling(target, "__dbt_backup");
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.push(format!("drop table if exists {tmp} cascade"));
    out.push(format!("create table {tmp} as (\n{sql}\n    )"));
    out.extend(swap(target, &backup, existing, "table"));
    out.extend(hooks(&node.config.post_hook));
    out.push("commit".into());
    out
}

/// Renames the old relation away, the new one in, and drops the old (all in the caller's transaction).
fn swap(target: &Relation, backup: &Relation, existing: &str, new_kind: &str) -> Vec<String> {
    let tmp = render(&sibling(target, "__dbt_tmp"));
    vec![
        format!("drop {existing} if exists {} cascade", render(backup)),
        // DuckDB's `alter table if exists` renames views too, and is a no-op when nothing exists.
        format!("alter table if exists {} rename to {}", render(target), quote(&backup.identifier)),
        format!("alter {new_kind} {tmp} rename to {}", quote(&target.identifier)),
        format!("drop {existing} if exists {} cascade", render(backup)),
    ]
}

fn incremental(node: &Node, diagnostics: &mut Diagnostics) -> Vec<String> {
    let target = render(&node.relation);
    let tmp_name = quote(&format!("{}__dbt_tmp", node.relation.identifier));
    let sql = node.compiled_code_incremental.as_deref().or(node.compiled_code.as_deref()).unwrap_or("");
    let keys = unique_keys(node);
    let strategy = node.config.incremental_strategy.clone().unwrap_or_else(|| "delete+insert".into());
    if let Some(change) = node.config.on_schema_change.as_deref().filter(|c| *c != "ignore") {
        diagnostics.push(
            warning_at(node, "plan::on_schema_change", format!("{}: on_schema_change `{change}` is not supported yet; columns are matched by name", node.unique_id))
                .with_help("rebuild with --full-refresh after changing the columns"),
        );
    }
    let insert = format!("insert into {target} by name select * from {tmp_name}");
    let body: Vec<String> = match strategy.as_str() {
        "append" => vec![insert],
        "delete+insert" if keys.is_empty() => vec![insert],
        "delete+insert" if keys.len() == 1 => vec![
            format!("delete from {target} where ({}) in (select ({}) from {tmp_name})", keys[0], keys[0]),
            insert,
        ],
        "delete+insert" => {
            let on: Vec<String> =
                keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect();
            vec![
                format!(
                    "delete from {target} as DBT_INTERNAL_DEST using {tmp_name} as DBT_INTERNAL_SOURCE where ({})",
                    on.join(" and ")
                ),
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
                    "plan::unknown_incremental_strategy",
                    format!("{}: unknown incremental_strategy `{other}`; its incremental run will fail", node.unique_id),
                )
                .with_help("use `append`, `delete+insert` or `merge` (or run with --full-refresh)"),
            );
            return vec![failing(&format!(
                "{}: incremental_strategy `{other}` is not supported by orrery on DuckDB",
                node.unique_id
            ))];
        }
    };
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.push(format!("create or replace temporary table {tmp_name} as (\n{sql}\n    )"));
    out.extend(body);
    out.extend(hooks(&node.config.post_hook));
    out.push(format!("drop table if exists temp.main.{tmp_name}"));
    out.push("commit".into());
    out
}

fn snapshot(node: &Node, diagnostics: &mut Diagnostics) -> Built {
    let sql = compiled_sql(node, diagnostics);
    let keys = unique_keys(node);
    if keys.is_empty() {
        diagnostics.push(
            error_at(node, "plan::snapshot_unique_key", format!("{}: a snapshot needs a `unique_key`", node.unique_id))
                .with_help("set unique_key in the snapshot's config"),
        );
        return Built::default();
    }
    let strategy = node.config.strategy.as_deref().unwrap_or("timestamp");
    if node.config.invalidate_hard_deletes == Some(true) {
        diagnostics.push(warning_at(
            node,
            "plan::hard_deletes",
            format!("{}: invalidate_hard_deletes is not supported yet; deleted source rows stay current", node.unique_id),
        ));
    }
    let (updated, changed): (String, Box<dyn Fn() -> String>) = match strategy {
        "timestamp" => {
            let Some(updated_at) = node.config.updated_at.clone() else {
                diagnostics.push(
                    error_at(node, "plan::snapshot_updated_at", format!("{}: the timestamp strategy needs `updated_at`", node.unique_id))
                        .with_help("set updated_at to the column that records changes"),
                );
                return Built::default();
            };
            let cond = format!("(snapshotted_data.dbt_valid_from < source_data.{updated_at})");
            (updated_at, Box::new(move || cond.clone()))
        }
        "check" => {
            let cond = match &node.config.check_cols {
                Some(Value::Array(cols)) => {
                    let parts: Vec<String> = cols
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|c| {
                            let (s, d) = (format!("snapshotted_data.{}", quote(c)), format!("source_data.{}", quote(c)));
                            format!("{s} != {d} or (({s} is null) and not ({d} is null)) or ((not {s} is null) and ({d} is null))")
                        })
                        .collect();
                    format!("({})", parts.join(" or "))
                }
                // `all`: compare every column of the query, as one text value per row.
                _ => "(snapshotted_data.dbt_check_row is distinct from source_data.dbt_check_row)".to_string(),
            };
            ("now()::timestamp".to_string(), Box::new(move || cond.clone()))
        }
        other => {
            diagnostics.push(
                error_at(node, "plan::snapshot_strategy", format!("{}: unknown snapshot strategy `{other}`", node.unique_id))
                    .with_help("use `timestamp` or `check`"),
            );
            return Built::default();
        }
    };
    let check_all = strategy == "check" && !matches!(node.config.check_cols, Some(Value::Array(_)));
    let target = render(&node.relation);
    let scd_id = {
        let mut parts: Vec<String> = keys.iter().map(|k| format!("coalesce(cast({k} as varchar ), '')")).collect();
        parts.push(format!("coalesce(cast({updated} as varchar ), '')"));
        format!("md5({})", parts.join(" || '|' || "))
    };
    let create = format!(
        "create table {target} as (\n    select *,\n        {scd_id} as dbt_scd_id,\n        {updated} as dbt_updated_at,\n        {updated} as dbt_valid_from,\n        coalesce(nullif({updated}, {updated}), null) as dbt_valid_to\n    from (\n{sql}\n    ) sbq\n    )"
    );
    let first = vec!["begin".to_string(), create, "commit".to_string()];

    let key_cols = |alias: &str| -> String {
        if keys.len() == 1 {
            format!("{alias}{} as dbt_unique_key", keys[0])
        } else {
            keys.iter().enumerate().map(|(i, k)| format!("{alias}{k} as dbt_unique_key_{}", i + 1)).collect::<Vec<_>>().join(", ")
        }
    };
    let key_names: Vec<String> =
        if keys.len() == 1 { vec!["dbt_unique_key".into()] } else { (1..=keys.len()).map(|i| format!("dbt_unique_key_{i}")).collect() };
    let join = key_names.iter().map(|k| format!("snapshotted_data.{k} = source_data.{k}")).collect::<Vec<_>>().join(" and ");
    let key_null = format!("snapshotted_data.{} is null", key_names[0]);
    // `check_cols = all`: one hash per row over the query's columns, on both sides.
    let (check_row_snap, check_row_src) = if check_all {
        (
            ",\n            md5(cast(row(*columns(* exclude (dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to))) as varchar)) as dbt_check_row",
            ",\n            md5(cast(row(*columns(*)) as varchar)) as dbt_check_row",
        )
    } else {
        ("", "")
    };
    let snapshotted_cte = format!(
        "snapshotted_data as (\n        select *, {}{check_row_snap}\n        from {target}\n        where dbt_valid_to is null\n    )",
        key_cols("")
    );
    let tmp_name = quote(&format!("{}__dbt_tmp", node.relation.identifier));
    let cond = changed();
    let src_select = format!("*, {}{check_row_src}", key_cols(""));
    let src_from = "snapshot_query";
    let staging = format!(
        "create or replace temporary table {tmp_name} as (\n    with snapshot_query as (\n{sql}\n    ),\n    {snapshotted_cte},\n    insertions_source_data as (\n        select {src_select},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            coalesce(nullif({updated}, {updated}), null) as dbt_valid_to,\n            {scd_id} as dbt_scd_id\n        from {src_from}\n    ),\n    updates_source_data as (\n        select {src_select},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            {updated} as dbt_valid_to\n        from {src_from}\n    ),\n    insertions as (\n        select 'insert' as dbt_change_type, source_data.*\n        from insertions_source_data as source_data\n        left outer join snapshotted_data on {join}\n        where {key_null} or ({cond})\n    ),\n    updates as (\n        select 'update' as dbt_change_type, source_data.*, snapshotted_data.dbt_scd_id\n        from updates_source_data as source_data\n        join snapshotted_data on {join}\n        where {cond}\n    )\n    select * from insertions\n    union all\n    select * from updates\n    )"
    );
    let mut exclude: Vec<String> = vec!["dbt_change_type".into()];
    exclude.extend(key_names.iter().cloned());
    if check_all {
        exclude.push("dbt_check_row".into());
    }
    let later = vec![
        "begin".to_string(),
        staging,
        format!(
            "update {target} as DBT_INTERNAL_TARGET\n    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to\n    from {tmp_name} as DBT_INTERNAL_SOURCE\n    where DBT_INTERNAL_SOURCE.dbt_scd_id::text = DBT_INTERNAL_TARGET.dbt_scd_id::text\n      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n      and DBT_INTERNAL_TARGET.dbt_valid_to is null"
        ),
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
