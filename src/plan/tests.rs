use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::json;

use super::*;
use crate::node::ResourceType;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan")
}

#[test]
fn plan_schema_is_checked_in() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json");
    let schema = json_schema();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &schema).expect("schemas/ is writable");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(checked_in == schema, "schemas/plan.schema.json is stale: run UPDATE_SCHEMAS=1 cargo test --lib plan");
}

fn node(kind: ResourceType, name: &str, materialized: &str, sql: &str) -> Node {
    let relation = Relation { database: Some("shop".into()), schema: "main".into(), identifier: name.into() };
    let mut node = Node::new(kind, "shop", name, relation);
    node.config_mut().materialized = materialized.into();
    node.raw_code = sql.into();
    node.compiled_code = Some(sql.into());
    node
}

fn compiled(nodes: Vec<Node>) -> Compiled {
    Compiled {
        project_name: "shop".into(),
        project_root: PathBuf::from("/project"),
        target_path: "target".into(),
        target: TargetInfo {
            name: "dev".into(),
            adapter_type: "duckdb".into(),
            database: "shop".into(),
            schema: "main".into(),
            threads: Some(4),
            connection: [
                ("type".to_string(), json!("duckdb")),
                ("path".to_string(), json!("shop.duckdb")),
                ("password".to_string(), json!("{{ env_var('SHOP_PASSWORD') }}")),
            ]
            .into_iter()
            .collect(),
        },
        nodes,
        sources: Vec::new(),
        macros: Vec::new(),
        on_run_start: vec!["create table if not exists main.audit (x integer)".into()],
        on_run_end: vec![],
        invocation_id: "x".into(),
        generated_at: "2026-01-01T00:00:00Z".into(),
        diagnostics: Diagnostics::new(),
        late_context: None,
    }
}

/// A small project: a seed, an ephemeral in the middle, a view, a table, incrementals, a
/// snapshot and a test with thresholds.
fn shop() -> Compiled {
    let mut people = node(ResourceType::Seed, "people", "seed", "");
    people.compiled_code = None;
    people.seed_file = Some(fixtures().join("seeds/people.csv"));
    people.config_mut().column_types.insert("age".into(), "bigint".into());
    let mut eph = node(ResourceType::Model, "eph", "ephemeral", "select * from \"shop\".\"main\".\"people\"");
    eph.depends_on = vec!["seed.shop.people".into()];
    let mut v = node(
        ResourceType::Model,
        "v",
        "view",
        "with __dbt__cte__eph as (\nselect * from \"shop\".\"main\".\"people\"\n) select * from __dbt__cte__eph",
    );
    v.depends_on = vec!["model.shop.eph".into()];
    v.config_mut().pre_hook = vec!["select 1".into()];
    v.config_mut().post_hook = vec!["select 2".into()];
    let mut t = node(ResourceType::Model, "t", "table", "select id, name from \"shop\".\"main\".\"v\"");
    t.depends_on = vec!["model.shop.v".into()];
    let mut inc = node(ResourceType::Model, "inc", "incremental", "select id, name from \"shop\".\"main\".\"people\"");
    inc.config_mut().unique_key = Some(json!("id"));
    inc.compiled_code_incremental = Some("select id, name from \"shop\".\"main\".\"people\" where id > 1".into());
    inc.depends_on = vec!["seed.shop.people".into()];
    let mut odd = node(ResourceType::Model, "odd", "incremental", "select 1 as id");
    odd.config_mut().incremental_strategy = Some("microbatch".into());
    let mut snap = node(ResourceType::Snapshot, "snap", "snapshot", "select * from \"shop\".\"main\".\"people\"");
    snap.relation.schema = "snapshots".into();
    snap.config_mut().unique_key = Some(json!("id"));
    snap.config_mut().strategy = Some("check".into());
    snap.config_mut().check_cols = Some(json!(["name", "age"]));
    snap.depends_on = vec!["seed.shop.people".into()];
    let mut test = node(ResourceType::Test, "not_null_t_name", "test", "select name\nfrom \"shop\".\"main\".\"t\"\nwhere name is null");
    test.relation.schema = "main_dbt_test__audit".into();
    test.config_mut().severity = Some("WARN".into());
    test.config_mut().warn_if = Some(">1".into());
    test.config_mut().error_if = Some(">10".into());
    test.config_mut().limit = Some(5);
    test.depends_on = vec!["model.shop.t".into()];
    test.attached_node = Some("model.shop.t".into());
    compiled(vec![people, eph, v, t, inc, odd, snap, test])
}

#[test]
fn run_plan_of_a_small_project() {
    let compiled = shop();
    let order: Vec<&Node> = compiled.nodes.iter().collect();
    let opts = PlanOptions { pipeline: "shop".into(), execution: json!({"threads": 4}), ..PlanOptions::default() };
    let (plan, diagnostics) = build_run_plan(&compiled, &order, &opts);
    let messages: Vec<String> = diagnostics.0.iter().map(|d| format!("{d:?}")).collect();
    insta::assert_json_snapshot!("run_plan_diagnostics", messages);
    insta::assert_snapshot!("run_plan", plan.to_json());
    let text = plan.to_json();
    assert!(!text.contains("SHOP_PASSWORD") || text.contains("env_var('SHOP_PASSWORD')"));
}

#[test]
fn full_refresh_plans_only_the_full_variant() {
    let compiled = shop();
    let order: Vec<&Node> = compiled.nodes.iter().collect();
    let opts = PlanOptions { full_refresh: true, ..PlanOptions::default() };
    let (plan, _) = build_run_plan(&compiled, &order, &opts);
    let inc = plan.nodes.iter().find(|n| n.name == "inc").map(|n| n.statements_incremental.is_some());
    let seed = plan.nodes.iter().find(|n| n.name == "people").map(|n| n.statements_incremental.is_some());
    assert_eq!((inc, seed), (Some(false), Some(false)));
}

#[test]
fn plans_round_trip_through_files() {
    let compiled = shop();
    let order: Vec<&Node> = compiled.nodes.iter().collect();
    let (plan, _) = build_run_plan(&compiled, &order, &PlanOptions::default());
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("target/plan.json");
    plan.write(&path).expect("written");
    assert_eq!(RunPlan::read(&path).ok(), Some(plan));
    std::fs::write(&path, "{\"format_version\": 1,\n \"kind\": \"run\", \"bogus\": 1}").expect("written");
    let err = RunPlan::read(&path).err().map(|d| (d.code.clone(), d.location().and_then(|l| l.1)));
    assert_eq!(err.map(|e| e.0), Some(crate::codes::plan::INVALID.to_string()));
}

#[test]
fn other_type_statements_write_only_what_differs_and_spell_out_in_full() {
    let compiled = shop();
    let order: Vec<&Node> = compiled.nodes.iter().collect();
    let (plan, _) = build_run_plan(&compiled, &order, &PlanOptions::default());
    for (name, kind, other) in [("v", "view", "table"), ("t", "table", "view")] {
        let node = plan.nodes.iter().find(|n| n.name == name).expect("planned");
        let other_type = node.statements_other_type.as_ref().expect("a view or table has one");
        assert_eq!(other_type.existing, other);
        let written: Vec<&String> = other_type.statements.iter().flatten().collect();
        let backup = format!("\"shop\".\"main\".\"{name}__dbt_backup\" cascade");
        assert_eq!(written, [&format!("drop {other} if exists {backup}"), &format!("drop {other} if exists {backup}")]);
        // Spelled out: the same statements, where the backup is dropped as the other type.
        let same_drop = format!("drop {kind} if exists {backup}");
        let expected: Vec<String> =
            node.statements.iter().map(|s| if *s == same_drop { format!("drop {other} if exists {backup}") } else { s.clone() }).collect();
        let resolved: Vec<String> = other_type.resolve(&node.statements).expect("no dangling null").into_iter().cloned().collect();
        assert_eq!(resolved, expected);
        assert!(resolved.iter().any(|s| s.starts_with(&format!("create {kind} "))), "{resolved:?}");
    }
    // A null past the end of the node's statements: the plan is refused on reading.
    let mut broken = plan.clone();
    let t = broken.nodes.iter_mut().find(|n| n.name == "t").expect("planned");
    t.statements_other_type.as_mut().expect("has one").statements.push(None);
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("plan.json");
    broken.write(&path).expect("written");
    let err = RunPlan::read(&path).expect_err("refused");
    assert_eq!(err.code, crate::codes::plan::INVALID);
    assert!(err.message.contains("model.shop.t"), "{}", err.message);
    // Pointed at the node's statements_other_type key, by line and column.
    let text = std::fs::read_to_string(&path).expect("read");
    let at = text.find("\"model.shop.t\"").and_then(|i| text[i..].find("\"statements_other_type\"").map(|k| i + k)).expect("key");
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    assert_eq!(err.location(), Some((path.clone(), Some((line, column)))));
}

#[test]
fn seed_types_follow_dbt_inference() {
    let read = |name: &str, delimiter: u8| {
        let mut reader =
            csv::ReaderBuilder::new().delimiter(delimiter).from_path(fixtures().join("seeds").join(name)).expect("fixture exists");
        let header: Vec<String> = reader.headers().expect("header").iter().map(String::from).collect();
        let rows: Vec<Vec<String>> = reader.records().map(|r| r.expect("row").iter().map(String::from).collect()).collect();
        (header, rows)
    };
    let (header, rows) = read("people.csv", b',');
    let mut types = IndexMap::new();
    types.insert("age".to_string(), "bigint".to_string());
    let cols: Vec<(String, String)> = infer_seed_columns(&header, &rows, &types).into_iter().map(|c| (c.name, c.data_type)).collect();
    let (header, rows) = read("semicolon.csv", b';');
    let semi: Vec<(String, String)> =
        infer_seed_columns(&header, &rows, &IndexMap::new()).into_iter().map(|c| (c.name, c.data_type)).collect();
    insta::assert_json_snapshot!("seed_types", (cols, semi));
}
