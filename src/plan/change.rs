//! The change plan: a run plan compared with the applied state, node by node.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PlanKind, PlanNode, RunPlan};
use crate::node::Relation;
use crate::state::{NodeState, State, statements_hash};

/// How many nodes get each action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActionCounts {
    pub create: usize,
    pub replace: usize,
    pub rebuild: usize,
    pub drop: usize,
    pub unchanged: usize,
}

impl ActionCounts {
    pub fn changes(&self) -> usize {
        self.create + self.replace + self.rebuild + self.drop
    }
}

/// What to plan beyond the comparison.
#[derive(Clone, Debug, Default)]
pub struct ChangeOptions {
    /// Node ids or names to replace whatever their state (`--replace`).
    pub replace: Vec<String>,
    /// Plan dropping everything in state (`--destroy`).
    pub destroy: bool,
    /// Every node id of the compiled project, selected or not: state nodes outside it are
    /// dropped; nodes only left out by a selection are not.
    pub project_ids: HashSet<String>,
    /// Nodes in state whose relation the warehouse no longer has (`--refresh`).
    pub missing: HashSet<String>,
}

/// Turns a run plan into a change plan against `state` (`None`: nothing applied yet).
pub fn change_plan(mut plan: RunPlan, state: Option<&State>, options: &ChangeOptions) -> RunPlan {
    let empty = std::collections::BTreeMap::new();
    let recorded = state.map_or(&empty, |s| &s.nodes);
    let mut actions: HashMap<String, &'static str> = HashMap::new();
    for node in &mut plan.nodes {
        let before = recorded.get(&node.id);
        let requested = options.replace.iter().any(|r| *r == node.id || *r == node.name);
        let upstream_changed = node.depends_on.iter().any(|d| matches!(actions.get(d), Some(&"create" | &"replace" | &"rebuild")));
        let (action, reason) = if options.destroy {
            ("unchanged", None)
        } else if requested {
            ("replace", Some("requested"))
        } else {
            match before {
                None => ("create", Some("new")),
                Some(_) if options.missing.contains(&node.id) => ("create", Some("missing_in_warehouse")),
                Some(before) if before.fingerprint != node.fingerprint => ("replace", Some(replace_reason(before, node))),
                Some(_) if upstream_changed && reads_upstream_data(node) => ("rebuild", Some("upstream_changed")),
                Some(_) => ("unchanged", None),
            }
        };
        actions.insert(node.id.clone(), action);
        node.action = action.to_string();
        node.reason = reason.map(str::to_string);
        if action == "unchanged" {
            node.statements.clear();
            node.statements_incremental = None;
            node.statements_other_type = None;
            node.statements_create = None;
        }
    }
    let mut drops: Vec<PlanNode> = recorded
        .iter()
        .filter(|(id, _)| options.destroy || !options.project_ids.contains(*id))
        .map(|(id, before)| drop_node(id, before))
        .collect();
    // Dependents before what they read, so a view goes before its table.
    drops.reverse();
    let mut nodes = drops;
    nodes.append(&mut plan.nodes);
    plan.nodes = nodes;
    plan.kind = PlanKind::Change;
    plan.serial = Some(state.map_or(0, |s| s.serial));
    plan.lineage = state.map(|s| s.lineage.clone());
    plan.summary.actions = Some(count_actions(&plan.nodes));
    plan
}

/// Tables, incrementals, snapshots and tests hold (or check) data read from upstream; a view
/// reads it live and needs nothing.
fn reads_upstream_data(node: &PlanNode) -> bool {
    node.resource_type == "test" || matches!(node.materialized.as_str(), "table" | "incremental" | "snapshot")
}

fn replace_reason(before: &NodeState, node: &PlanNode) -> &'static str {
    if before.materialized != node.materialized {
        "materialization_changed"
    } else if before.statements_hash != statements_hash(&node.statements) {
        "sql_changed"
    } else {
        "config_changed"
    }
}

fn drop_node(id: &str, before: &NodeState) -> PlanNode {
    let relation = Relation::from(&before.relation).render_dbt(crate::relation::QuotePolicy::default());
    let statements = match (before.resource_type.as_str(), before.materialized.as_str()) {
        ("test", _) => Vec::new(),
        (_, "view") => vec![format!("drop view if exists {relation} cascade")],
        _ => vec![format!("drop table if exists {relation} cascade")],
    };
    PlanNode {
        id: id.to_string(),
        name: id.rsplit('.').next().unwrap_or(id).to_string(),
        path: String::new(),
        resource_type: before.resource_type.clone(),
        materialized: before.materialized.clone(),
        relation: before.relation.clone(),
        depends_on: Vec::new(),
        fingerprint: before.fingerprint.clone(),
        action: "drop".into(),
        reason: Some("removed".into()),
        statements,
        statements_incremental: None,
        statements_other_type: None,
        statements_create: None,
        tests: Vec::new(),
        test: None,
        callbacks: Vec::new(),
        render: None,
        late_call: None,
        bundle: None,
    }
}

pub fn count_actions(nodes: &[PlanNode]) -> ActionCounts {
    let mut counts = ActionCounts::default();
    for node in nodes {
        match node.action.as_str() {
            "create" => counts.create += 1,
            "replace" => counts.replace += 1,
            "rebuild" => counts.rebuild += 1,
            "drop" => counts.drop += 1,
            _ => counts.unchanged += 1,
        }
    }
    counts
}

/// The plan as people read it, Terraform's way: drops first and loudly, then the rest.
pub fn render_human(plan: &RunPlan) -> String {
    let counts = plan.summary.actions.unwrap_or_else(|| count_actions(&plan.nodes));
    let mut out = String::new();
    if counts.changes() == 0 {
        out.push_str(&format!("No changes. The warehouse matches the project ({} nodes unchanged).\n", counts.unchanged));
        return out;
    }
    out.push_str(&format!("orrery will perform these actions on target `{}`:\n\n", plan.target.name));
    let relations = plan.nodes.iter().filter(|n| n.action == "drop" && n.resource_type != "test").count();
    if relations > 0 {
        out.push_str(&format!("  ! {relations} relation(s) will be DROPPED:\n"));
    }
    for symbol_action in [("-", "drop"), ("+", "create"), ("-/+", "replace"), ("~", "rebuild")] {
        let (symbol, action) = symbol_action;
        for node in plan.nodes.iter().filter(|n| n.action == action) {
            let reason = node.reason.as_deref().unwrap_or("");
            out.push_str(&format!("{symbol:>5} {action} {} ({reason})\n", node.id));
            // As Terraform prints a value it learns only while applying.
            if node.is_late() && action != "drop" {
                let call = node.late_call.as_deref().unwrap_or("its template");
                out.push_str(&format!("        statements: (known after apply), rendered at run time: {call} asks the warehouse\n"));
            }
        }
    }
    out.push_str(&format!(
        "\nPlan: {} to create, {} to replace, {} to rebuild, {} to drop, {} unchanged.\n",
        counts.create, counts.replace, counts.rebuild, counts.drop, counts.unchanged
    ));
    out
}

/// The nodes of a change plan that do something, as a plan the executor runs.
pub fn runnable(plan: &RunPlan) -> RunPlan {
    let mut runnable = plan.clone();
    runnable.nodes.retain(|n| n.action != "unchanged");
    runnable
}
