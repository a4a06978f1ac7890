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

use crate::relation::quote_sql;
use serde_json::Value;

use super::OtherTypeStatements;
use super::common::{Built, Dialect, Snapshot, error_at, hooks, literal, render, sibling, unique_keys, warning_at};
use super::seed;
use crate::diagnostics::Diagnostics;
use crate::node::{Node, Relation};

/// Quotes for SQL carried inside a `do` block; SQL containing it is run without the block.
const BODY_TAG: &str = "$orrery_sql$";

/// PostgreSQL's statements.
pub(super) struct Postgres;

impl Dialect for Postgres {
    fn view(&self, node: &Node, sql: &str) -> Built {
        let target = render(&node.relation);
        Built {
            statements: view(node, sql),
            statements_other_type: Some(OtherTypeStatements {
                existing: "table".into(),
                statements: spelled_out(transaction(
                    node,
                    vec![format!("drop table if exists {target} cascade"), create_view(&target, sql)],
                )),
            }),
            statements_create: Some(transaction(node, vec![create_view(&target, sql)])),
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
        seed_statements(node, full_refresh, project_root, diagnostics)
    }

    fn snapshot(&self, node: &Node, diagnostics: &mut Diagnostics) -> Built {
        snapshot(node, diagnostics)
    }
}

/// `(schema, name)` as a `regclass` literal: PostgreSQL resolves it in the current database.
fn regclass(relation: &Relation) -> String {
    literal(&format!("{}.{}", quote_sql(&relation.schema), quote_sql(&relation.identifier)))
}

/// The temporary table a build stages its rows in (dbt-postgres' `__dbt_tmp` suffix).
fn tmp_name(relation: &Relation) -> String {
    quote_sql(&format!("{}__dbt_tmp", relation.identifier))
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
        let to: Vec<String> = grantees.iter().map(|g| quote_sql(g)).collect();
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
            statements: spelled_out(transaction(node, vec![format!("drop view if exists {target} cascade"), create_table(&target, sql)])),
        }),
        statements_create: Some(transaction(node, vec![create_table(&target, sql)])),
        ..Built::default()
    }
}

/// A statement list with no statement shared with `statements`.
fn spelled_out(statements: Vec<String>) -> Vec<Option<String>> {
    statements.into_iter().map(Some).collect()
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
        quote_sql(&backup.identifier),
        render(&backup),
    );
    transaction(node, vec![format!("create temporary table {tmp} on commit drop as (\n{sql}\n    )"), block])
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
            warning_at(
                node,
                crate::codes::plan::ON_SCHEMA_CHANGE,
                format!("{}: on_schema_change `{change}` is not supported yet; the table's columns are kept", node.unique_id),
            )
            .with_help("rebuild with --full-refresh after changing the columns"),
        );
    }
    let insert = format!("insert into {target} ({{cols}})\n    (\n        select {{cols}}\n        from pg_temp.{tmp}\n    )");
    let body: String = match strategy.as_str() {
        "append" => insert,
        "delete+insert" if keys.is_empty() => insert,
        "delete+insert" => {
            let delete = if keys.len() == 1 {
                format!(
                    "delete from {target}\n    where ({}) in (\n        select ({})\n        from pg_temp.{tmp}\n    );\n",
                    keys[0], keys[0]
                )
            } else {
                let on: Vec<String> = keys.iter().map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")).collect();
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
                    crate::codes::plan::UNKNOWN_INCREMENTAL_STRATEGY,
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
    transaction(node, vec![format!("create temporary table {tmp} on commit drop as (\n{sql}\n    )"), with_target_columns(relation, &body)])
}

/// Seeds: the table created with the inferred column types, the rows bulk-loaded with `COPY`
/// (the plan carries them as CSV after the statement's first line).
fn seed_statements(node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
    let Some((header, rows)) = seed::read_csv(node, project_root, diagnostics) else { return Built::default() };
    let (columns, create, names) = seed::create_table(node, &header, &rows);
    let target = render(&node.relation);
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
    if node.config.strategy.as_deref() == Some("check") && !matches!(node.config.check_cols, Some(Value::Array(_))) {
        diagnostics.push(
            error_at(
                node,
                crate::codes::plan::SNAPSHOT_CHECK_ALL,
                format!("{}: check_cols `all` is not supported on PostgreSQL yet", node.unique_id),
            )
            .with_help("list the columns to compare in check_cols"),
        );
        return Built::default();
    }
    let Some(snap) = Snapshot::from_node(node, "now()::timestamp without time zone", diagnostics) else { return Built::default() };
    let (target, updated) = (&snap.target, &snap.updated);
    let valid_to_null = format!("nullif({updated}, {updated})");
    let create = format!("create table {target} as (\n    {}\n    )", snap.first_select(&valid_to_null));
    let tmp = tmp_name(&node.relation);
    let staging = format!("create temporary table {tmp} on commit drop as (\n    {}\n    )", snap.staging_select(&valid_to_null, ("", "")));
    let insert = with_target_columns(
        &node.relation,
        &format!(
            "insert into {target} ({{cols}})\n    select {{source_cols}}\n    from pg_temp.{tmp} as DBT_INTERNAL_SOURCE\n    \
             where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text"
        ),
    );
    Built {
        statements: transaction(node, vec![create]),
        statements_incremental: Some(transaction(node, vec![staging, snap.close_updated(&format!("pg_temp.{tmp}")), insert])),
        statements_other_type: None,
        statements_create: None,
    }
}
