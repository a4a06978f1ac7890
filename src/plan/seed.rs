//! Seeds: the CSV's column types inferred as dbt's agate type tester does and dbt-duckdb maps
//! them, and the rows as SQL literals so the plan carries the data itself.

use super::common::{Built, literal, render};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::node::Node;
use crate::relation::quote_sql;

/// Rows per `insert` statement.
const BATCH: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedColumn {
    pub name: String,
    /// The SQL type of the column in `create table`.
    pub data_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Inferred {
    Number,
    Date,
    DateTime,
    IsoDateTime,
    Boolean,
    Text,
}

fn is_null(v: &str) -> bool {
    v.is_empty() || v.eq_ignore_ascii_case("null")
}

/// agate's Number: digits with an optional sign, group commas, decimals and exponent.
/// Returns the number of decimal places.
fn number_places(v: &str) -> Option<usize> {
    let t = v.trim().replace(',', "");
    let t = t.strip_prefix(['-', '+']).unwrap_or(&t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let exp: i64 = match exponent {
        Some(e) => e.strip_prefix('+').unwrap_or(e).parse().ok()?,
        None => 0,
    };
    // Python's Decimal keeps trailing zeros: "1.50" has two places, "3.0" one.
    let places = i64::try_from(frac.len()).unwrap_or(i64::MAX).saturating_sub(exp).max(0);
    usize::try_from(places).ok()
}

fn is_date(v: &str) -> bool {
    chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").is_ok()
}

fn is_datetime(v: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%d %H:%M:%S").is_ok()
}

fn is_iso_datetime(v: &str) -> bool {
    let v = v.trim();
    let Some((date, time)) = v.split_once('T') else { return false };
    if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
        return false;
    }
    let time = time.trim_end_matches('Z');
    let time = match time.rfind(['+', '-']) {
        Some(i) if i >= 5 => &time[..i],
        _ => time,
    };
    ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"].iter().any(|f| chrono::NaiveTime::parse_from_str(time, f).is_ok())
}

fn is_boolean(v: &str) -> bool {
    let v = v.replace(',', "");
    let v = v.trim();
    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

/// Column names and types for a seed's header and rows; `column_types` wins per column.
pub fn infer_seed_columns(header: &[String], rows: &[Vec<String>], column_types: &indexmap::IndexMap<String, String>) -> Vec<SeedColumn> {
    header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let given = column_types.get(name).or_else(|| column_types.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v));
            let data_type = match given {
                Some(t) => t.clone(),
                None => infer(rows.iter().map(|r| r.get(i).map_or("", String::as_str))),
            };
            SeedColumn { name: name.clone(), data_type }
        })
        .collect()
}

/// The first of agate's types (in dbt's order) that every value passes.
fn infer<'a>(values: impl Iterator<Item = &'a str> + Clone) -> String {
    type Test = (Inferred, fn(&str) -> bool);
    let tests: [Test; 5] = [
        (Inferred::Number, |v| number_places(v).is_some()),
        (Inferred::Date, is_date),
        (Inferred::DateTime, is_datetime),
        (Inferred::IsoDateTime, is_iso_datetime),
        (Inferred::Boolean, is_boolean),
    ];
    let kind = tests.iter().find(|(_, test)| values.clone().all(|v| is_null(v) || test(v))).map_or(Inferred::Text, |(kind, _)| *kind);
    match kind {
        Inferred::Number => {
            let places = values.filter(|v| !is_null(v)).filter_map(number_places).max().unwrap_or(0);
            if places > 0 { "float8".into() } else { "integer".into() }
        }
        Inferred::Date => "date".into(),
        Inferred::DateTime | Inferred::IsoDateTime => "timestamp without time zone".into(),
        Inferred::Boolean => "boolean".into(),
        Inferred::Text => "text".into(),
    }
}

pub(super) fn read_csv(
    node: &Node,
    project_root: &std::path::Path,
    diagnostics: &mut Diagnostics,
) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let path = node.seed_file.clone().unwrap_or_else(|| project_root.join(&node.original_file_path));
    let delimiter = node.config.delimiter.as_deref().and_then(|d| d.bytes().next()).unwrap_or(b',');
    let fail = |message: String| {
        Diagnostic::error(crate::codes::plan::SEED_CSV, message).with_file(&node.original_file_path).with_help("fix the CSV file")
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            diagnostics.push(fail(format!("cannot read seed {}: {err}", path.display())));
            return None;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(err) => {
            diagnostics.push(fail(format!("seed {}: {err}", node.original_file_path)));
            return None;
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => rows.push(r.iter().map(str::to_string).collect()),
            Err(err) => {
                diagnostics.push(fail(format!("seed {}: {err}", node.original_file_path)));
                return None;
            }
        }
    }
    Some((header, rows))
}

/// The seed's columns, its `create table` and its column names as statements write them
/// (quoted unless `quote_columns: false`).
pub(super) fn create_table(node: &Node, header: &[String], rows: &[Vec<String>]) -> (Vec<SeedColumn>, String, Vec<String>) {
    let columns = infer_seed_columns(header, rows, &node.config.column_types);
    let quote_columns = node.config.quote_columns.unwrap_or(true);
    let names: Vec<String> = columns.iter().map(|c| if quote_columns { quote_sql(&c.name) } else { c.name.clone() }).collect();
    let create = format!(
        "create table {} ({})",
        render(&node.relation),
        names.iter().zip(&columns).map(|(name, c)| format!("{name} {}", c.data_type)).collect::<Vec<_>>().join(",")
    );
    (columns, create, names)
}

pub(super) fn statements(node: &Node, full_refresh: bool, project_root: &std::path::Path, diagnostics: &mut Diagnostics) -> Built {
    let Some((header, rows)) = read_csv(node, project_root, diagnostics) else { return Built::default() };
    let (columns, create, _) = create_table(node, &header, &rows);
    let target = render(&node.relation);
    let inserts: Vec<String> = rows
        .chunks(BATCH)
        .map(|chunk| {
            let values: Vec<String> = chunk
                .iter()
                .map(|row| {
                    let cells: Vec<String> = (0..columns.len())
                        .map(|i| match row.get(i).map(String::as_str) {
                            None | Some("") => "NULL".to_string(),
                            Some(v) => literal(v),
                        })
                        .collect();
                    format!("({})", cells.join(","))
                })
                .collect();
            format!("insert into {target} values\n{}", values.join(",\n"))
        })
        .collect();
    let pre = node.config.pre_hook.iter().filter(|h| !h.trim().is_empty()).cloned();
    let post: Vec<String> = node.config.post_hook.iter().filter(|h| !h.trim().is_empty()).cloned().collect();
    let build = |first: Vec<String>| -> Vec<String> {
        let mut out = vec!["begin".to_string()];
        out.extend(pre.clone());
        out.extend(first);
        out.extend(inserts.iter().cloned());
        out.extend(post.iter().cloned());
        out.push("commit".into());
        out
    };
    let fresh = build(vec![format!("drop table if exists {target} cascade"), create]);
    Built {
        statements: fresh,
        // dbt keeps an existing seed table and reloads its rows.
        statements_incremental: (!full_refresh).then(|| build(vec![format!("truncate table {target}")])),
        // Not for a view of the seed's name: rare, and it would repeat every row a third time.
        statements_other_type: None,
        statements_create: None,
    }
}
