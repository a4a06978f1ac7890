//! `orrery graph` output: Graphviz dot, Mermaid and JSON of a selection, deterministic.

use std::fmt::Write;

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use serde_json::{Value, json};

use super::{Graph, Member, Selection};
use crate::node::ResourceType;

impl<'a> Graph<'a> {
    /// Selected vertices in topological order, and the edges between them in that order.
    fn view(&self, selection: &Selection<'a>) -> (Vec<NodeIndex>, Vec<(usize, usize)>) {
        let order: Vec<NodeIndex> = self.topo.iter().copied().filter(|ix| selection.has(*ix)).collect();
        let mut position = vec![usize::MAX; self.len()];
        for (pos, ix) in order.iter().enumerate() {
            position[ix.index()] = pos;
        }
        let mut edges = Vec::new();
        for (from, ix) in order.iter().enumerate() {
            for child in self.dag.neighbors_directed(*ix, Direction::Outgoing) {
                if position[child.index()] != usize::MAX {
                    edges.push((from, position[child.index()]));
                }
            }
        }
        edges.sort_unstable();
        (order, edges)
    }

    /// Graphviz dot, one vertex per selected node or source, edges parent → child.
    pub fn to_dot(&self, selection: &Selection<'a>) -> String {
        let (order, edges) = self.view(selection);
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_quote(&self.compiled.project_name));
        out.push_str("  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n");
        for ix in &order {
            let member = self.dag[*ix];
            let (shape, style) = match member.resource_type() {
                ResourceType::Source => ("cylinder", ""),
                ResourceType::Seed => ("folder", ""),
                ResourceType::Snapshot => ("box3d", ""),
                ResourceType::Test => ("ellipse", ", style=dashed"),
                ResourceType::Analysis => ("note", ""),
                ResourceType::Model if member.materialized() == Some("ephemeral") => ("box", ", style=dotted"),
                ResourceType::Model => ("box", ""),
            };
            let _ = writeln!(out, "  {} [label={}, shape={shape}{style}];", dot_quote(member.unique_id()), dot_quote(&member.label()));
        }
        for (from, to) in edges {
            let _ = writeln!(out, "  {} -> {};", dot_quote(self.dag[order[from]].unique_id()), dot_quote(self.dag[order[to]].unique_id()));
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart; vertices are `n0`, `n1`… in topological order.
    pub fn to_mermaid(&self, selection: &Selection<'a>) -> String {
        let (order, edges) = self.view(selection);
        let mut out = String::from("flowchart LR\n");
        for (pos, ix) in order.iter().enumerate() {
            let member = self.dag[*ix];
            let label = mermaid_quote(&member.label());
            let shape = match member.resource_type() {
                ResourceType::Source => format!("[({label})]"),
                ResourceType::Seed => format!("[/{label}/]"),
                ResourceType::Snapshot => format!("[[{label}]]"),
                ResourceType::Test => format!("{{{{{label}}}}}"),
                ResourceType::Analysis => format!(">{label}]"),
                ResourceType::Model => format!("[{label}]"),
            };
            let _ = writeln!(out, "  n{pos}{shape}");
        }
        for (from, to) in edges {
            let _ = writeln!(out, "  n{from} --> n{to}");
        }
        out
    }

    /// `{nodes: [{id, name, resource_type, materialized}], edges: [[from, to]]}`, nodes in
    /// topological order.
    pub fn to_json(&self, selection: &Selection<'a>) -> Value {
        let (order, edges) = self.view(selection);
        let nodes: Vec<Value> = order
            .iter()
            .map(|ix| {
                let member: Member<'_> = self.dag[*ix];
                json!({
                    "id": member.unique_id(),
                    "name": member.name(),
                    "resource_type": member.resource_type().as_str(),
                    "materialized": member.materialized(),
                })
            })
            .collect();
        let edges: Vec<Value> =
            edges.into_iter().map(|(from, to)| json!([self.dag[order[from]].unique_id(), self.dag[order[to]].unique_id()])).collect();
        json!({ "nodes": nodes, "edges": edges })
    }
}

fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Mermaid labels are double-quoted; quotes inside become the `#quot;` entity.
fn mermaid_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}
