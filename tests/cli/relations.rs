//! Dumps every relation of a DuckDB file as the dbt fixtures record them
//! (tests/fixtures/dbt/dump_relations.py), values compared as text.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, PartialEq)]
pub(crate) struct Dumped {
    pub kind: String,
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Option<String>>>,
}

pub(crate) const MASK: &str = "<nondeterministic>";

/// Every relation in the database file, keyed `schema.name`; rows sorted.
pub(crate) fn dump(db: &Path) -> BTreeMap<String, Dumped> {
    let conn = duckdb::Connection::open(db).expect("open the database orrery built");
    let mut stmt = conn
        .prepare(
            "select table_schema, table_name, table_type from information_schema.tables \
             where table_catalog = current_database() order by 1, 2",
        )
        .expect("list relations");
    let relations: Vec<(String, String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query relations").map(|r| r.expect("relation row")).collect();
    let mut out = BTreeMap::new();
    for (schema, name, kind) in relations {
        let mut stmt = conn
            .prepare(
                "select column_name, data_type from information_schema.columns \
                 where table_catalog = current_database() and table_schema = ? and table_name = ? \
                 order by ordinal_position",
            )
            .expect("columns");
        let columns: Vec<(String, String)> = stmt
            .query_map([&schema, &name], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query columns")
            .map(|r| r.expect("column row"))
            .collect();
        // A FLOAT as Python prints it (dump_relations.py reads it as a double).
        let select = columns
            .iter()
            .map(|(c, t)| {
                let c = format!("\"{}\"", c.replace('"', "\"\""));
                if t == "FLOAT" { format!("cast(cast({c} as double) as varchar)") } else { format!("cast({c} as varchar)") }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("select {select} from \"{schema}\".\"{name}\"");
        let mut stmt = conn.prepare(&sql).expect("select rows");
        let width = columns.len();
        let mut rows: Vec<Vec<Option<String>>> = stmt
            .query_map([], |r| (0..width).map(|i| r.get::<_, Option<String>>(i)).collect())
            .expect("query rows")
            .map(|r| r.expect("row"))
            .collect();
        rows.sort();
        let kind = if kind == "VIEW" { "view" } else { "table" }.to_string();
        out.insert(format!("{schema}.{name}"), Dumped { kind, columns, rows });
    }
    out
}

fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// A fixture file of dump_relations.py, in the same shape as [`dump`].
pub(crate) fn fixture(path: &Path) -> BTreeMap<String, Dumped> {
    let text = std::fs::read_to_string(path).expect("read relations fixture");
    let json: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).expect("relations fixture is JSON");
    json.into_iter()
        .map(|(key, rel)| {
            let columns = rel["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["type"].as_str().unwrap_or("").to_string()))
                .collect();
            let mut rows: Vec<Vec<Option<String>>> =
                rel["rows"].as_array().expect("rows").iter().map(|r| r.as_array().expect("row").iter().map(json_text).collect()).collect();
            rows.sort();
            (key, Dumped { kind: rel["kind"].as_str().unwrap_or("").to_string(), columns, rows })
        })
        .collect()
}

/// Applies the fixture's masks (build-clock columns) to what orrery built, then re-sorts.
pub(crate) fn mask_like(built: &mut Dumped, expected: &Dumped) {
    let masked: Vec<usize> = (0..expected.columns.len())
        .filter(|&i| expected.rows.first().is_some_and(|r| r.get(i).and_then(|v| v.as_deref()) == Some(MASK)))
        .collect();
    for row in &mut built.rows {
        for &i in &masked {
            if let Some(v) = row.get_mut(i) {
                *v = Some(MASK.to_string());
            }
        }
    }
    built.rows.sort();
}

/// Compares every relation; returns a readable list of differences (empty when equal).
pub(crate) fn differences(built: &mut BTreeMap<String, Dumped>, expected: &BTreeMap<String, Dumped>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, want) in expected {
        let Some(got) = built.get_mut(key) else {
            out.push(format!("{key}: missing (dbt built it)"));
            continue;
        };
        mask_like(got, want);
        if got.kind != want.kind {
            out.push(format!("{key}: a {} where dbt built a {}", got.kind, want.kind));
        }
        if got.columns != want.columns {
            out.push(format!("{key}: columns {:?}\n    dbt: {:?}", got.columns, want.columns));
        } else if got.rows != want.rows {
            let extra: Vec<_> = got.rows.iter().filter(|r| !want.rows.contains(r)).take(3).collect();
            let missing: Vec<_> = want.rows.iter().filter(|r| !got.rows.contains(r)).take(3).collect();
            out.push(format!(
                "{key}: {} rows vs dbt's {}; e.g. only ours {extra:?}; only dbt's {missing:?}",
                got.rows.len(),
                want.rows.len()
            ));
        }
    }
    for key in built.keys() {
        if !expected.contains_key(key) {
            out.push(format!("{key}: built by orrery, not by dbt"));
        }
    }
    out
}
