use indexmap::IndexMap;
use serde_json::json;

use super::*;
use crate::diagnostics::SourceFile;
use crate::node::{Relation, SourceTable, TargetInfo, TestMetadata};

/// A node with defaults from (unique_id, depends_on, tags, path, materialized).
fn node(id: &str, deps: &[&str], tags: &[&str], path: &str, materialized: &str) -> Node {
    let parts: Vec<&str> = id.split('.').collect();
    let resource_type = match parts[0] {
        "model" => ResourceType::Model,
        "seed" => ResourceType::Seed,
        "snapshot" => ResourceType::Snapshot,
        "test" => ResourceType::Test,
        "analysis" => ResourceType::Analysis,
        other => panic!("no resource type {other}"),
    };
    let name = parts[2].to_string();
    let dirs: Vec<String> =
        path.split('/').skip(1).collect::<Vec<_>>().split_last().map_or(vec![], |(_, d)| d.iter().map(|s| s.to_string()).collect());
    let mut fqn = vec![parts[1].to_string()];
    fqn.extend(dirs);
    fqn.push(name.clone());
    let relation = Relation { database: Some("shop".into()), schema: "main".into(), identifier: name.clone() };
    let mut node = Node::new(resource_type, parts[1], &name, relation);
    node.unique_id = id.to_string();
    node.path = path.split_once('/').map_or(path, |(_, rest)| rest).to_string();
    node.original_file_path = path.to_string();
    node.fqn = fqn;
    node.config_mut().materialized = materialized.to_string();
    node.config_mut().tags = tags.iter().map(|t| t.to_string()).collect();
    node.depends_on = deps.iter().map(|d| d.to_string()).collect();
    node
}

fn source(source_name: &str, name: &str, tags: &[&str]) -> SourceTable {
    SourceTable {
        unique_id: format!("source.shop.{source_name}.{name}"),
        source_name: source_name.to_string(),
        name: name.to_string(),
        package_name: "shop".into(),
        original_file_path: "models/staging/sources.yml".into(),
        fqn: vec!["shop".into(), "staging".into(), source_name.into(), name.into()],
        relation: Relation { database: Some("shop".into()), schema: source_name.into(), identifier: name.into() },
        description: String::new(),
        doc_blocks: Vec::new(),
        columns: IndexMap::new(),
        meta: IndexMap::new(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        loaded_at_field: None,
        origin: None,
    }
}

fn generic(mut n: Node, test: &str) -> Node {
    n.test_metadata = Some(TestMetadata { name: test.into(), namespace: None, kwargs: IndexMap::new() });
    n
}

/// Points the node's origin at `needle` in a file holding `text`.
fn at(mut n: Node, text: &str, needle: &str) -> Node {
    let start = text.find(needle).expect("needle in text");
    n.origin = Some(Origin { source: SourceFile::new(&n.original_file_path, text), span: start..start + needle.len() });
    n
}

fn compiled(mut nodes: Vec<Node>, sources: Vec<SourceTable>) -> Compiled {
    nodes.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    Compiled {
        project_name: "shop".into(),
        project_root: "/nonexistent/shop".into(),
        target_path: "target".into(),
        target: TargetInfo {
            name: "dev".into(),
            adapter_type: "duckdb".into(),
            database: "shop".into(),
            schema: "main".into(),
            threads: None,
            connection: IndexMap::new(),
        },
        nodes,
        sources,
        macros: vec![],
        on_run_start: vec![],
        on_run_end: vec![],
        invocation_id: String::new(),
        generated_at: String::new(),
        diagnostics: Diagnostics::new(),
        late_context: None,
    }
}

/// A small shop: two sources and a seed, staging views, marts, a snapshot, tests, an analysis.
fn shop() -> Compiled {
    let mut orders = node(
        "model.shop.orders",
        &["model.shop.stg_orders", "model.shop.int_order_items", "model.shop.stg_customers"],
        &["nightly"],
        "models/marts/orders.sql",
        "table",
    );
    orders.config_mut().meta.insert("owner".into(), json!("ana"));
    orders.config_mut().extra.insert("group".into(), json!("finance"));
    let mut customers = node(
        "model.shop.customers",
        &["model.shop.stg_customers", "model.shop.orders"],
        &["nightly", "pii"],
        "models/marts/customers.sql",
        "incremental",
    );
    customers.config_mut().meta.insert("owner".into(), json!("bo"));
    customers.config_mut().unique_key = Some(json!("customer_id"));
    let mut legacy = node("model.shop.legacy_orders", &["model.shop.orders"], &[], "models/legacy/legacy_orders.sql", "view");
    legacy.config_mut().enabled = false;
    let mut not_null =
        generic(node("test.shop.not_null_orders_order_id", &["model.shop.orders"], &[], "models/marts/schema.yml", "test"), "not_null");
    not_null.config_mut().severity = Some("warn".into());
    compiled(
        vec![
            node("seed.shop.countries", &[], &[], "seeds/countries.csv", "seed"),
            node("model.shop.stg_orders", &["source.shop.raw.orders"], &["staging"], "models/staging/stg_orders.sql", "view"),
            node(
                "model.shop.stg_customers",
                &["source.shop.raw.customers", "seed.shop.countries"],
                &["staging", "pii"],
                "models/staging/stg_customers.sql",
                "view",
            ),
            node("model.shop.int_order_items", &["model.shop.stg_orders"], &[], "models/marts/int_order_items.sql", "ephemeral"),
            orders,
            customers,
            legacy,
            node("snapshot.shop.customers_snapshot", &["model.shop.stg_customers"], &[], "snapshots/customers_snapshot.sql", "snapshot"),
            not_null,
            generic(
                node(
                    "test.shop.relationships_orders_customer_id__customer_id__ref_stg_customers_",
                    &["model.shop.stg_customers", "model.shop.orders"],
                    &[],
                    "models/marts/schema.yml",
                    "test",
                ),
                "relationships",
            ),
            node("test.shop.assert_positive_totals", &["model.shop.orders"], &[], "tests/assert_positive_totals.sql", "test"),
            node("analysis.shop.revenue", &["model.shop.orders"], &[], "analyses/revenue.sql", "view"),
        ],
        vec![source("raw", "customers", &[]), source("raw", "orders", &["raw_data"])],
    )
}

/// Labels of what `include` minus `exclude` selects, sorted.
fn pick(c: &Compiled, include: &[&str], exclude: &[&str]) -> Vec<String> {
    let graph = Graph::build(c).expect("valid graph");
    let selection = graph.select_strs(include, exclude).unwrap_or_else(|d| panic!("{:?}", d.0));
    let mut labels: Vec<String> = selection.ids().iter().map(|id| graph.member(id).expect("member").label()).collect();
    labels.sort();
    labels
}

fn render(diagnostics: &Diagnostics) -> String {
    let mut out = String::new();
    for d in &diagnostics.0 {
        out.push_str(&format!("{d:?}\n"));
        if let Some(label) = &d.label {
            out.push_str(&format!("  label: {label}\n"));
        }
        if let Some(help) = &d.help {
            out.push_str(&format!("  help: {help}\n"));
        }
        for r in &d.related {
            out.push_str(&format!("  related: {r:?}\n"));
        }
    }
    out
}

const ORDERS_TESTS: [&str; 3] =
    ["assert_positive_totals", "not_null_orders_order_id", "relationships_orders_customer_id__customer_id__ref_stg_customers_"];

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
    all.sort();
    all
}

#[test]
fn a_name_selects_the_node_and_its_tests() {
    let c = shop();
    assert_eq!(pick(&c, &["orders"], &[]), with(&["orders"], &ORDERS_TESTS));
    assert_eq!(pick(&c, &["countries"], &[]), ["countries"]);
}

#[test]
fn graph_operators_follow_edges_with_depths() {
    let c = shop();
    assert_eq!(
        pick(&c, &["+stg_customers"], &[]),
        ["countries", "raw.customers", "relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers"]
    );
    assert_eq!(pick(&c, &["stg_orders+"], &[]), with(&["customers", "int_order_items", "orders", "revenue", "stg_orders"], &ORDERS_TESTS));
    assert_eq!(pick(&c, &["stg_orders+1"], &[]), with(&["int_order_items", "orders", "stg_orders"], &ORDERS_TESTS));
    assert_eq!(pick(&c, &["int_order_items+0"], &[]), ["int_order_items"]);
    assert_eq!(pick(&c, &["1+orders"], &[]), with(&["int_order_items", "orders", "stg_customers", "stg_orders"], &ORDERS_TESTS));
    assert_eq!(
        pick(&c, &["2+orders"], &[]),
        with(&["countries", "int_order_items", "orders", "raw.customers", "raw.orders", "stg_customers", "stg_orders"], &ORDERS_TESTS)
    );
}

#[test]
fn at_selects_descendants_and_their_parents() {
    let c = shop();
    // customers' parents include stg_customers, which brings countries and raw.customers.
    assert_eq!(
        pick(&c, &["@int_order_items"], &[]),
        with(
            &[
                "countries",
                "customers",
                "int_order_items",
                "orders",
                "raw.customers",
                "raw.orders",
                "revenue",
                "stg_customers",
                "stg_orders",
            ],
            &ORDERS_TESTS
        )
    );
}

#[test]
fn methods_select_by_tag_path_file_config_and_type() {
    let c = shop();
    assert_eq!(
        pick(&c, &["tag:staging"], &[]),
        ["relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers", "stg_orders"]
    );
    assert_eq!(pick(&c, &["tag:raw_*"], &[]), ["raw.orders"]);
    assert_eq!(pick(&c, &["path:models/staging"], &[]), pick(&c, &["path:models/staging/"], &[]));
    assert_eq!(
        pick(&c, &["path:models/staging"], &[]),
        ["raw.customers", "raw.orders", "relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers", "stg_orders"]
    );
    assert_eq!(pick(&c, &["models/staging/stg_orders.sql"], &[]), ["stg_orders"]);
    assert_eq!(pick(&c, &["path:snapshots/*.sql"], &[]), ["customers_snapshot"]);
    assert_eq!(pick(&c, &["file:customers_snapshot"], &[]), ["customers_snapshot"]);
    assert_eq!(pick(&c, &["countries.csv"], &[]), ["countries"]);
    assert_eq!(pick(&c, &["config.materialized:incremental"], &[]), ["customers"]);
    assert_eq!(pick(&c, &["config.meta.owner:ana"], &[]), with(&["orders"], &ORDERS_TESTS));
    assert_eq!(
        pick(&c, &["config.tags:pii"], &[]),
        ["customers", "relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers"]
    );
    assert_eq!(pick(&c, &["config.severity:WARN"], &[]), ["not_null_orders_order_id"]);
    assert_eq!(pick(&c, &["config.unique_key:customer_id"], &[]), ["customers"]);
    assert_eq!(pick(&c, &["config.enabled:true,resource_type:seed"], &[]), ["countries"]);
    // Each criterion brings its tests, so tests of both sides survive an intersection.
    assert_eq!(pick(&c, &["group:fin*,resource_type:model"], &[]), with(&["orders"], &ORDERS_TESTS));
    assert_eq!(pick(&c, &["resource_type:snapshot"], &[]), ["customers_snapshot"]);
    assert_eq!(pick(&c, &["resource_type:analysis"], &[]), ["revenue"]);
    assert_eq!(pick(&c, &["test_name:not_null"], &[]), ["not_null_orders_order_id"]);
    assert_eq!(pick(&c, &["test_type:singular"], &[]), ["assert_positive_totals"]);
}

#[test]
fn sources_are_selectable_with_graph_operators() {
    let c = shop();
    assert_eq!(pick(&c, &["source:raw"], &[]), ["raw.customers", "raw.orders"]);
    assert_eq!(pick(&c, &["source:raw.orders"], &[]), ["raw.orders"]);
    assert_eq!(pick(&c, &["source:shop.raw.cust*"], &[]), ["raw.customers"]);
    assert_eq!(pick(&c, &["source:raw.orders+1"], &[]), ["raw.orders", "stg_orders"]);
    assert_eq!(pick(&c, &["resource_type:source"], &[]), ["raw.customers", "raw.orders"]);
}

#[test]
fn fqn_package_and_wildcards() {
    let c = shop();
    assert_eq!(pick(&c, &["fqn:shop.staging.*"], &[]), pick(&c, &["staging"], &[]));
    assert_eq!(
        pick(&c, &["staging"], &[]),
        ["relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers", "stg_orders"]
    );
    assert_eq!(pick(&c, &["stg_*"], &[]), pick(&c, &["staging"], &[]));
    assert_eq!(pick(&c, &["shop.marts.int_order_items"], &[]), ["int_order_items"]);
    assert_eq!(pick(&c, &["package:this"], &[]), pick(&c, &["package:shop"], &[]));
    assert_eq!(pick(&c, &["package:shop"], &[]).len(), 13);
}

#[test]
fn unions_intersections_and_exclusion() {
    let c = shop();
    assert_eq!(pick(&c, &["stg_orders countries"], &[]), ["countries", "stg_orders"]);
    assert_eq!(pick(&c, &["stg_orders", "countries"], &[]), ["countries", "stg_orders"]);
    assert_eq!(pick(&c, &["tag:nightly,tag:pii"], &[]), ["customers", "relationships_orders_customer_id__customer_id__ref_stg_customers_"]);
    assert_eq!(pick(&c, &["+customers,resource_type:seed"], &[]), ["countries"]);
    assert_eq!(pick(&c, &["tag:nightly"], &["customers"]), with(&["orders"], &ORDERS_TESTS));
    assert_eq!(pick(&c, &["tag:staging tag:nightly"], &["path:models/marts", "test_type:singular"]), ["stg_customers", "stg_orders"]);
}

#[test]
fn excluding_a_model_excludes_its_tests_but_keeps_the_rest() {
    let c = shop();
    // The relationships test hangs on both stg_customers and orders: excluding either drops it.
    assert_eq!(pick(&c, &["orders"], &["stg_customers"]), ["assert_positive_totals", "not_null_orders_order_id", "orders"]);
    assert_eq!(pick(&c, &["orders"], &["test_type:generic"]), ["assert_positive_totals", "orders"]);
    assert_eq!(pick(&c, &["stg_customers"], &[]), ["relationships_orders_customer_id__customer_id__ref_stg_customers_", "stg_customers"]);
}

#[test]
fn no_include_selects_everything_enabled_including_sources() {
    let c = shop();
    let everything = pick(&c, &[], &[]);
    assert_eq!(everything.len(), 13);
    assert!(everything.contains(&"raw.orders".to_string()));
    assert!(!everything.contains(&"legacy_orders".to_string()));
    assert_eq!(
        pick(&c, &[], &["tag:nightly", "source:*", "resource_type:test", "revenue"]),
        ["countries", "customers_snapshot", "int_order_items", "stg_customers", "stg_orders"]
    );
}

#[test]
fn topo_order_is_stable_and_skips_sources() {
    let c = shop();
    let graph = Graph::build(&c).expect("valid");
    let order: Vec<&str> = graph.topo_order(&graph.select_all()).iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "countries",
            "stg_customers",
            "customers_snapshot",
            "stg_orders",
            "int_order_items",
            "orders",
            "revenue",
            "customers",
            "assert_positive_totals",
            "not_null_orders_order_id",
            "relationships_orders_customer_id__customer_id__ref_stg_customers_",
        ]
    );
    let selection = graph.select_strs(&["stg_orders+"], &["int_order_items"]).expect("selects");
    let order: Vec<&str> = graph.topo_order(&selection).iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order[..3], ["stg_orders", "orders", "revenue"]);
    // A session's second graph of the same compile, made without its checks, is the same graph.
    let checked = Graph::build_checked(&c).expect("valid");
    let ids = |g: &Graph<'_>| g.topo_members(&g.select_all()).map(|m| m.unique_id().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&checked), ids(&graph));
    assert_eq!(checked.children("model.shop.stg_orders"), graph.children("model.shop.stg_orders"));
}

#[test]
fn neighbours_and_transitive_queries() {
    let c = shop();
    let graph = Graph::build(&c).expect("valid");
    assert_eq!(graph.parents("model.shop.stg_customers"), ["seed.shop.countries", "source.shop.raw.customers"]);
    assert_eq!(
        graph.children("model.shop.stg_customers"),
        [
            "model.shop.customers",
            "model.shop.orders",
            "snapshot.shop.customers_snapshot",
            "test.shop.relationships_orders_customer_id__customer_id__ref_stg_customers_",
        ]
    );
    assert_eq!(
        graph.ancestors("model.shop.orders"),
        [
            "model.shop.int_order_items",
            "model.shop.stg_customers",
            "model.shop.stg_orders",
            "seed.shop.countries",
            "source.shop.raw.customers",
            "source.shop.raw.orders",
        ]
    );
    assert_eq!(graph.descendants("model.shop.customers"), Vec::<&str>::new());
    assert!(graph.parents("model.shop.nope").is_empty());
    assert!(graph.node("model.shop.legacy_orders").is_none());
}

#[test]
fn dot_mermaid_and_json_outputs() {
    let c = shop();
    let graph = Graph::build(&c).expect("valid");
    let selection = graph.select_strs(&["+orders"], &["resource_type:test"]).expect("selects");
    insta::assert_snapshot!("shop_dot", graph.to_dot(&selection));
    insta::assert_snapshot!("shop_mermaid", graph.to_mermaid(&selection));
    insta::assert_json_snapshot!("shop_json", graph.to_json(&selection));
}

#[test]
fn bad_selectors_are_all_reported_with_their_place_in_orrery_toml() {
    let c = shop();
    let graph = Graph::build(&c).expect("valid");
    let toml = "[select]\ninclude = [\"+fct_orders tag:nightly\", \"tga:x\", \"@orders+\"]\nexclude = [\"path:models/nope\"]\n";
    let file = SourceFile::new("orrery.toml", toml);
    let arg = |text: &str| {
        let quoted = format!("\"{text}\"");
        let start = toml.find(&quoted).expect("in toml");
        SelectorArg::new(text).at(&file, start..start + quoted.len())
    };
    let include = [arg("+fct_orders tag:nightly"), arg("tga:x"), arg("@orders+")];
    let problems = graph.select(&include, &[arg("path:models/nope")]).expect_err("invalid");
    // Syntax errors and selectors that match nothing, all in one go.
    insta::assert_snapshot!("bad_selectors", render(&problems));
    let problems = graph.select(&[arg("+fct_orders tag:nightly")], &[arg("path:models/nope")]).expect_err("empty");
    insta::assert_snapshot!("empty_selectors", render(&problems));
}

#[test]
fn selector_syntax_errors() {
    let c = shop();
    let graph = Graph::build(&c).expect("valid");
    for (selector, code) in [
        ("+", crate::codes::graph::INVALID_SELECTOR),
        ("orders,", crate::codes::graph::INVALID_SELECTOR),
        ("config:table", crate::codes::graph::INVALID_SELECTOR),
        ("config.materialized:", crate::codes::graph::INVALID_SELECTOR),
        ("resource_type:modle", crate::codes::graph::INVALID_SELECTOR),
        ("source:a.b.c.d", crate::codes::graph::INVALID_SELECTOR),
        ("state:modified", crate::codes::graph::UNSUPPORTED_SELECTOR),
        ("99999999999999999999999+orders", crate::codes::graph::INVALID_SELECTOR),
        ("exposure:weekly", crate::codes::graph::EMPTY_SELECTOR),
        ("tag:nightly,resource_type:seed", crate::codes::graph::EMPTY_SELECTOR),
    ] {
        let problems = graph.select_strs(&[selector], &[]).expect_err(selector);
        assert_eq!(problems.0.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), [code], "{selector}");
    }
    let problems = graph.select_strs(&["resource_type:modle"], &[]).expect_err("typo");
    assert_eq!(problems.0[0].help.as_deref(), Some("did you mean `resource_type:model`?"));
}

#[test]
fn build_reports_every_problem_at_once() {
    let a_sql = "select * from {{ ref('b') }}\n";
    let b_sql = "-- b\nselect * from {{ ref('c') }}\n";
    let c_sql = "select * from {{ ref('a') }}\n";
    let self_sql = "select 1 from {{ ref('loop') }}\n";
    let orphan_sql = "select * from {{ ref('stg_order') }} join {{ ref('legacy') }}\n";
    let mut legacy = node("model.shop.legacy", &[], &[], "models/legacy.sql", "view");
    legacy.config_mut().enabled = false;
    let mut alias = node("model.shop.orders_v2", &[], &[], "models/orders_v2.sql", "table");
    alias.relation.identifier = "stg_orders".into();
    let c = compiled(
        vec![
            at(node("model.shop.a", &["model.shop.b"], &[], "models/a.sql", "view"), a_sql, "ref('b')"),
            at(node("model.shop.b", &["model.shop.c"], &[], "models/b.sql", "view"), b_sql, "ref('c')"),
            at(node("model.shop.c", &["model.shop.a"], &[], "models/c.sql", "view"), c_sql, "ref('a')"),
            at(node("model.shop.loop", &["model.shop.loop"], &[], "models/loop.sql", "view"), self_sql, "ref('loop')"),
            at(
                node("model.shop.orphan", &["model.shop.stg_order", "model.shop.legacy"], &[], "models/orphan.sql", "view"),
                orphan_sql,
                "ref('stg_order')",
            ),
            node("model.shop.stg_orders", &[], &[], "models/staging/stg_orders.sql", "view"),
            node("seed.shop.stg_orders", &[], &[], "seeds/stg_orders.csv", "seed"),
            alias,
            legacy,
        ],
        vec![],
    );
    let problems = Graph::build(&c).err().expect("invalid");
    insta::assert_snapshot!("build_problems", render(&problems));
}

#[test]
fn versions_and_ephemerals_are_not_duplicates() {
    let mut v1 = node("model.shop.dim.v1", &[], &[], "models/dim_v1.sql", "table");
    v1.name = "dim".into();
    v1.version = Some("1".into());
    v1.latest_version = Some("2".into());
    v1.relation.identifier = "dim_v1".into();
    v1.fqn = vec!["shop".into(), "dim".into(), "v1".into()];
    let mut v2 = v1.clone();
    v2.unique_id = "model.shop.dim.v2".into();
    v2.version = Some("2".into());
    v2.relation.identifier = "dim_v2".into();
    v2.fqn[2] = "v2".into();
    let mut e1 = node("model.shop.e1", &[], &[], "models/e1.sql", "ephemeral");
    e1.relation.identifier = "same".into();
    let mut e2 = node("model.shop.e2", &[], &[], "models/e2.sql", "ephemeral");
    e2.relation.identifier = "same".into();
    let c = compiled(vec![v1, v2, e1, e2], vec![]);
    assert_eq!(pick(&c, &["dim"], &[]), ["dim", "dim"]);
    let graph = Graph::build(&c).expect("valid");
    assert_eq!(graph.select_strs(&["dim_v2"], &[]).expect("v2").ids(), ["model.shop.dim.v2"]);
    assert_eq!(graph.select_strs(&["version:latest"], &[]).expect("latest").ids(), ["model.shop.dim.v2"]);
    assert_eq!(graph.select_strs(&["version:old"], &[]).expect("old").ids(), ["model.shop.dim.v1"]);
}

#[test]
fn fnmatch_follows_python() {
    use super::selector::fnmatch;
    assert!(fnmatch("stg_orders", "stg_*"));
    assert!(fnmatch("stg_orders", "*orders"));
    assert!(fnmatch("a.b", "*"));
    assert!(fnmatch("v1", "v[0-9]"));
    assert!(!fnmatch("vx", "v[0-9]"));
    assert!(fnmatch("vx", "v[!0-9]"));
    assert!(fnmatch("a[", "a["));
    assert!(fnmatch("ab", "a?"));
    assert!(!fnmatch("Stg", "stg*"));
}

/// 10k models in layers like the bench generator; prints timings (not asserted).
#[test]
#[ignore = "manual performance check: cargo test --lib graph -- --ignored --nocapture"]
fn ten_thousand_nodes() {
    let mut nodes = Vec::new();
    for i in 0..10_000usize {
        let deps: Vec<String> = if i < 1000 {
            vec![]
        } else {
            (1..=(i % 4 + 1)).map(|k| format!("model.shop.m{:05}", (i * 7 + k * 131) % (i - i % 1000))).collect()
        };
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        let tags: &[&str] = if i % 10 == 0 { &["nightly"] } else { &[] };
        nodes.push(node(&format!("model.shop.m{i:05}"), &deps, tags, &format!("models/l{}/m{i:05}.sql", i / 1000), "table"));
        if i % 5 == 0 {
            let test = format!("test.shop.not_null_m{i:05}_id");
            let parent = format!("model.shop.m{i:05}");
            nodes.push(node(&test, &[parent.as_str()], &[], "models/schema.yml", "test"));
        }
    }
    let c = compiled(nodes, vec![]);
    let include = ["+m09999 tag:nightly m05*", "path:models/l3"];
    // The fastest of ten runs: the machine is shared, the minimum is the honest figure.
    let (mut build, mut select) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..10 {
        let start = std::time::Instant::now();
        let graph = Graph::build(&c).expect("valid");
        build = build.min(start.elapsed());
        let start = std::time::Instant::now();
        let selection = graph.select_strs(&include, &["m00001+"]).expect("selects");
        select = select.min(start.elapsed());
        assert!(graph.topo_order(&selection).len() > 1000);
    }
    println!("10k models + 2k tests: build {build:?}, select {select:?}");
}
