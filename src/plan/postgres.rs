//! PostgreSQL statements per materialization, leaving relations with the columns and rows
//! dbt-postgres 1.11's `dbt build` leaves.
//!
//! Rebuilding an existing table never shows a reader an error, a missing relation or a
//! half-built table, and views on it keep working: the new rows are built into a temporary
//! table, then — in the same transaction — the table's rows are deleted and the new ones
//! inserted, when the columns are the same (the usual case). PostgreSQL's MVCC lets readers go
//! on seeing the old rows, without waiting, until the commit shows them the new ones; the table
//! keeps its identity, so views, grants and readers queued on it are unaffected. Only when the
//! columns change is the table dropped and created again (as dbt-postgres always does, with its
//! `cascade` dropping views on it; the run rebuilds the ones it manages).
//!
//! Statements that need the target's column list (incremental inserts and merges, snapshot
//! inserts) read it from the catalog at run time in a `do` block, as dbt-postgres reads it
//! with `get_columns_in_relation` before writing them; the plan stays static SQL.

use serde_json::Value;

use super::OtherTypeStatements;
use super::common::{Built, compiled_sql, error_at, hooks, literal, quote, render, sibling, test, unique_keys, warning_at};
use super::seed;
use crate::diagnostics::Diagnostics;
use crate::node::{Node, Relation, ResourceType};

/// Quotes for SQL carried inside a `do` block; SQL containing it is run without the block.
const BODY_TAG: &str = "$orrery_sql$";

pub(super) fn statements(node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
    match node.resource_type {
        ResourceType::Model => model(node, full_refresh, diagnostics),
        ResourceType::Seed => seed_statements(node, full_refresh, project_root, diagnostics),
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

/// `(schema, name)` as a `regclass` literal: PostgreSQL resolves it in the current database.
fn regclass(relation: &Relation) -> String {
    literal(&format!("{}.{}", quote(&relation.schema), quote(&relation.identifier)))
}

/// The temporary table a build stages its rows in (dbt-postgres' `__dbt_tmp` suffix).
fn tmp_name(relation: &Relation) -> String {
    quote(&format!("{}__dbt_tmp", relation.identifier))
}

/// The `grants` config applied as dbt-postgres applies it after a build: privileges granted
/// to anyone but the current user and not in the config are revoked, then the configured ones
/// granted. No `grants` config: privileges are left as they are.
fn grants(node: &Node) -> Vec<String> {
    let configured: Vec<(&String, &Vec<String>)> = node.config.grants.iter().filter(|(_, g)| !g.is_empty()).collect();
    if configured.is_empty() {
        return Vec::new();
    }
    let target = render(&node.relation);
    let mut out = vec![format!(
        "do $orrery$\ndeclare\n    r record;\nbegin\n    for r in select grantee, privilege_type from information_schema.role_table_grants\n        \
         where table_schema = {} and table_name = {} and grantee <> current_user loop\n        \
         execute format('revoke %s on %s from %I', r.privilege_type, {}, r.grantee);\n    end loop;\nend\n$orrery$",
        literal(&node.relation.schema),
        literal(&node.relation.identifier),
        literal(&target),
    )];
    out.extend(configured.into_iter().map(|(privilege, grantees)| {
        let to: Vec<String> = grantees.iter().map(|g| quote(g)).collect();
        format!("grant {privilege} on {target} to {}", to.join(", "))
    }));
    out
}

/// `begin`, pre-hooks, `body`, post-hooks, grants, `commit`.
fn transaction(node: &Node, body: Vec<String>) -> Vec<String> {
    let mut out = vec!["begin".to_string()];
    out.extend(hooks(&node.config.pre_hook));
    out.extend(body);
    out.extend(hooks(&node.config.post_hook));
    out.extend(grants(node));
    out.push("commit".into());
    out
}

/// A `do` block that runs `template` with the target's columns substituted: `{cols}` (quoted
/// names), `{source_cols}` (`DBT_INTERNAL_SOURCE."name"`) and `{sets}` (`"name" =
/// DBT_INTERNAL_SOURCE."name"`), in the table's column order.
fn with_target_columns(target: &Relation, template: &str) -> String {
    format!(
        "do $orrery$\ndeclare\n    cols text;\n    source_cols text;\n    sets text;\nbegin\n    \
         select string_agg(quote_ident(attname), ', ' order by attnum),\n           \
         string_agg('DBT_INTERNAL_SOURCE.' || quote_ident(attname), ', ' order by attnum),\n           \
         string_agg(quote_ident(attname) || ' = DBT_INTERNAL_SOURCE.' || quote_ident(attname), ', ' order by attnum)\n      \
         into cols, source_cols, sets\n      from pg_catalog.pg_attribute\n     \
         where attrelid = {}::regclass and attnum > 0 and not attisdropped;\n    \
         execute replace(replace(replace({BODY_TAG}{template}{BODY_TAG}, '{{cols}}', cols), '{{source_cols}}', source_cols), '{{sets}}', sets);\nend\n$orrery$",
        regclass(target)
    )
}

fn model(node: &Node, full_refresh: bool, diagnostics: &mut Diagnostics) -> Built {
    let sql = compiled_sql(node, diagnostics);
    let target = render(&node.relation);
    match node.config.materialized.as_str() {
        "view" => Built {
            statements: view(node, sql),
            statements_other_type: Some(OtherTypeStatements {
                existing: "table".into(),
                statements: transaction(node, vec![format!("drop table if exists {target} cascade"), create_view(&target, sql)]),
            }),
            statements_create: Some(transaction(node, vec![create_view(&target, sql)])),
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

fn create_view(target: &str, sql: &str) -> String {
    format!("create view {target} as (\n{sql}\n  )")
}

fn create_table(target: &str, sql: &str) -> String {
    format!("create table {target} as (\n{sql}\n    )")
}

/// An existing view is replaced in place (`create or replace view` keeps the views built on
/// it); when its columns changed in a way PostgreSQL cannot replace, it is dropped and created.
fn view(node: &Node, sql: &str) -> Vec<String> {
    let target = render(&node.relation);
    let replace = format!("create or replace view {target} as (\n{sql}\n  )");
    if sql.contains(BODY_TAG) {
        return transaction(node, vec![format!("drop view if exists {target} cascade"), create_view(&target, sql)]);
    }
    let block = format!(
        "do $orrery$\nbegin\n    execute {BODY_TAG}{replace}{BODY_TAG};\nexception when invalid_table_definition or datatype_mismatch or feature_not_supported then\n    \
         execute {BODY_TAG}drop view if exists {target} cascade{BODY_TAG};\n    execute {BODY_TAG}{}{BODY_TAG};\nend\n$orrery$",
        create_view(&target, sql)
    );
    transaction(node, vec![block])
}

fn table_built(node: &Node, sql: &str) -> Built {
    let target = render(&node.relation);
    Built {
        statements: table(node, sql),
        statements_other_type: Some(OtherTypeStatements {
            existing: "view".into(),
            statements: transaction(node, vec![format!("drop view if exists {target} cascade"), create_table(&target, sql)]),
        }),
        statements_create: Some(transaction(node, vec![create_table(&target, sql)])),
        ..Built::default()
    }
}

/// Rebuilds an existing table in place (see the module's documentation).
fn table(node: &Node, sql: &str) -> Vec<String> {
    let relation = &node.relation;
    let target = render(relation);
    let tmp = tmp_name(relation);
    let backup = sibling(relation, "__dbt_backup");
    let signature = |rel: &str| {
        format!(
            "select coalesce(array_agg(attname::text || ' ' || format_type(atttypid, atttypmod) order by attnum), '{{}}') \
             from pg_catalog.pg_attribute where attrelid = {rel}::regclass and attnum > 0 and not attisdropped"
        )
    };
    let block = format!(
        "do $orrery$\nbegin\n    if ({}) = ({}) then\n        \
         delete from {target};\n        insert into {target} select * from pg_temp.{tmp};\n    else\n        \
         drop table if exists {} cascade;\n        alter table {target} rename to {};\n        \
         create table {target} as select * from pg_temp.{tmp};\n        drop table {} cascade;\n    end if;\nend\n$orrery$",
        signature(&regclass(relation)),
        signature(&literal(&format!("pg_temp.{tmp}"))),
        render(&backup),
        quote(&backup.identifier),
        render(&backup),
    );
    transaction(
        node,
        vec![
            format!("create temporary table {tmp} on commit drop as (\n{sql}\n    )"),
            block,
        ],
    )
}

fn incremental(node: &Node, diagnostics: &mut Diagnostics) -> Vec<String> {
    let relation = &node.relation;
    let target = render(relation);
    let tmp = tmp_name(relation);
    let sql = node.compiled_code_incremental.as_deref().or(node.compiled_code.as_deref()).unwrap_or("");
    let keys = unique_keys(node);
    let default_strategy = if keys.is_empty() { "append" } else { "delete+insert" };
    let strategy = node.config.incremental_strategy.clone().unwrap_or_else(|| default_strategy.into());
    if let Some(change) = node.config.on_schema_change.as_deref().filter(|c| *c != "ignore") {
        diagnostics.push(
            warning_at(node, "plan::on_schema_change", format!("{}: on_schema_change `{change}` is not supported yet; the table's columns are kept", node.unique_id))
                .with_help("rebuild with --full-refresh after changing the columns"),
        );
    }
    let insert = format!("insert into {target} ({{cols}})\n    (\n        select {{cols}}\n        from pg_temp.{tmp}\n    )");
    let body: String = match strategy.as_str() {
        "append" => insert,
        "delete+insert" if keys.is_empty() => insert,
        "delete+insert" => {
            let delete = if keys.len() == 1 {
                format!("delete from {target}\n    where ({}) in (\n        select ({})\n        from pg_temp.{tmp}\n    );\n", keys[0], keys[0])
            } else {
                let on: Vec<String> =
                    keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect();
                format!(
                    "delete from {target} as DBT_INTERNAL_DEST\n    using pg_temp.{tmp} as DBT_INTERNAL_SOURCE\n    where (\n        {}\n    );\n",
                    on.join("\n        and ")
                )
            };
            format!("{delete}{insert}")
        }
        "merge" => {
            let on = if keys.is_empty() {
                "FALSE".to_string()
            } else {
                keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect::<Vec<_>>().join(" and ")
            };
            format!(
                "merge into {target} as DBT_INTERNAL_DEST\n    using pg_temp.{tmp} as DBT_INTERNAL_SOURCE\n    on ({on})\n    \
                 when matched then update set {{sets}}\n    when not matched then insert ({{cols}}) values ({{source_cols}})"
            )
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
            return vec![format!(
                "do $orrery$ begin raise exception '%', {}; end $orrery$",
                literal(&format!("{}: incremental_strategy `{other}` is not supported by orrery on PostgreSQL", node.unique_id))
            )];
        }
    };
    transaction(
        node,
        vec![
            format!("create temporary table {tmp} on commit drop as (\n{sql}\n    )"),
            with_target_columns(relation, &body),
        ],
    )
}

/// Seeds: the table created with the inferred column types, the rows bulk-loaded with `COPY`
/// (the plan carries them as CSV after the statement's first line).
fn seed_statements(node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
    let Some((header, rows)) = seed::read_csv(node, project_root, diagnostics) else { return Built::default() };
    let columns = seed::infer_seed_columns(&header, &rows, &node.config.column_types);
    let quote_columns = node.config.quote_columns.unwrap_or(true);
    let col = |name: &str| if quote_columns { quote(name) } else { name.to_string() };
    let target = render(&node.relation);
    let create = format!(
        "create table {target} ({})",
        columns.iter().map(|c| format!("{} {}", col(&c.name), c.data_type)).collect::<Vec<_>>().join(",")
    );
    let names: Vec<String> = columns.iter().map(|c| col(&c.name)).collect();
    let mut copy = format!("copy {target} ({}) from stdin with (format csv)\n", names.join(", "));
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for row in &rows {
        // Empty cells stay unquoted: CSV `COPY` reads them as NULL, as dbt's agate does.
        let cells = (0..columns.len()).map(|i| row.get(i).map_or("", String::as_str));
        if writer.write_record(cells).is_err() {
            break;
        }
    }
    copy.push_str(&String::from_utf8_lossy(&writer.into_inner().unwrap_or_default()));
    let build = |first: Vec<String>| -> Vec<String> {
        let mut body = first;
        if !rows.is_empty() {
            body.push(copy.clone());
        }
        transaction(node, body)
    };
    Built {
        statements: build(vec![format!("drop table if exists {target} cascade"), create]),
        // dbt keeps an existing seed table and reloads its rows.
        statements_incremental: (!full_refresh).then(|| build(vec![format!("truncate table {target}")])),
        statements_other_type: None,
        statements_create: None,
    }
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
    if node.config.invalidate_hard_deletes == Some(true) {
        diagnostics.push(warning_at(
            node,
            "plan::hard_deletes",
            format!("{}: invalidate_hard_deletes is not supported yet; deleted source rows stay current", node.unique_id),
        ));
    }
    let strategy = node.config.strategy.as_deref().unwrap_or("timestamp");
    let (updated, cond) = match strategy {
        "timestamp" => {
            let Some(updated_at) = node.config.updated_at.clone() else {
                diagnostics.push(
                    error_at(node, "plan::snapshot_updated_at", format!("{}: the timestamp strategy needs `updated_at`", node.unique_id))
                        .with_help("set updated_at to the column that records changes"),
                );
                return Built::default();
            };
            let cond = format!("(snapshotted_data.dbt_valid_from < source_data.{updated_at})");
            (updated_at, cond)
        }
        "check" => {
            let Some(Value::Array(cols)) = &node.config.check_cols else {
                diagnostics.push(
                    error_at(node, "plan::snapshot_check_all", format!("{}: check_cols `all` is not supported on PostgreSQL yet", node.unique_id))
                        .with_help("list the columns to compare in check_cols"),
                );
                return Built::default();
            };
            let parts: Vec<String> = cols
                .iter()
                .filter_map(Value::as_str)
                .map(|c| {
                    let (s, d) = (format!("snapshotted_data.{}", quote(c)), format!("source_data.{}", quote(c)));
                    format!("{s} != {d} or (({s} is null) and not ({d} is null)) or ((not {s} is null) and ({d} is null))")
                })
                .collect();
            (format!("{}::timestamp without time zone", "now()"), format!("({})", parts.join(" or ")))
        }
        other => {
            diagnostics.push(
                error_at(node, "plan::snapshot_strategy", format!("{}: unknown snapshot strategy `{other}`", node.unique_id))
                    .with_help("use `timestamp` or `check`"),
            );
            return Built::default();
        }
    };
    let relation = &node.relation;
    let target = render(relation);
    let scd_id = {
        let mut parts: Vec<String> = keys.iter().map(|k| format!("coalesce(cast({k} as varchar ), '')")).collect();
        parts.push(format!("coalesce(cast({updated} as varchar ), '')"));
        format!("md5({})", parts.join(" || '|' || "))
    };
    let create = format!(
        "create table {target} as (\n    select *,\n        {scd_id} as dbt_scd_id,\n        {updated} as dbt_updated_at,\n        {updated} as dbt_valid_from,\n        \
         nullif({updated}, {updated}) as dbt_valid_to\n    from (\n{sql}\n    ) sbq\n    )"
    );
    let key_cols = if keys.len() == 1 {
        format!("{} as dbt_unique_key", keys[0])
    } else {
        keys.iter().enumerate().map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1)).collect::<Vec<_>>().join(", ")
    };
    let key_names: Vec<String> =
        if keys.len() == 1 { vec!["dbt_unique_key".into()] } else { (1..=keys.len()).map(|i| format!("dbt_unique_key_{i}")).collect() };
    let join = key_names.iter().map(|k| format!("snapshotted_data.{k} = source_data.{k}")).collect::<Vec<_>>().join(" and ");
    let key_null = format!("snapshotted_data.{} is null", key_names[0]);
    let tmp = tmp_name(relation);
    let staging = format!(
        "create temporary table {tmp} on commit drop as (\n    with snapshot_query as (\n{sql}\n    ),\n    \
         snapshotted_data as (\n        select *, {key_cols}\n        from {target}\n        where dbt_valid_to is null\n    ),\n    \
         insertions_source_data as (\n        select *, {key_cols},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            \
         nullif({updated}, {updated}) as dbt_valid_to,\n            {scd_id} as dbt_scd_id\n        from snapshot_query\n    ),\n    \
         updates_source_data as (\n        select *, {key_cols},\n            {updated} as dbt_updated_at,\n            {updated} as dbt_valid_from,\n            \
         {updated} as dbt_valid_to\n        from snapshot_query\n    ),\n    \
         insertions as (\n        select 'insert' as dbt_change_type, source_data.*\n        from insertions_source_data as source_data\n        \
         left outer join snapshotted_data on {join}\n        where {key_null} or ({cond})\n    ),\n    \
         updates as (\n        select 'update' as dbt_change_type, source_data.*, snapshotted_data.dbt_scd_id\n        \
         from updates_source_data as source_data\n        join snapshotted_data on {join}\n        where {cond}\n    )\n    \
         select * from insertions\n    union all\n    select * from updates\n    )"
    );
    let update = format!(
        "update {target} as DBT_INTERNAL_TARGET\n    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to\n    from pg_temp.{tmp} as DBT_INTERNAL_SOURCE\n    \
         where DBT_INTERNAL_SOURCE.dbt_scd_id::text = DBT_INTERNAL_TARGET.dbt_scd_id::text\n      \
         and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n      and DBT_INTERNAL_TARGET.dbt_valid_to is null"
    );
    let insert = with_target_columns(
        relation,
        &format!(
            "insert into {target} ({{cols}})\n    select {{source_cols}}\n    from pg_temp.{tmp} as DBT_INTERNAL_SOURCE\n    \
             where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text"
        ),
    );
    Built {
        statements: transaction(node, vec![create]),
        statements_incremental: Some(transaction(node, vec![staging, update, insert])),
        statements_other_type: None,
        statements_create: None,
    }
}
