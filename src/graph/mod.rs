//! The petgraph DAG of nodes and sources, its validation, and dbt selectors.
//!
//! [`Graph::build`] turns a [`Compiled`] into a validated DAG or every problem found;
//! [`Graph::select`] evaluates dbt selectors into a [`Selection`]; the queries and the
//! `orrery graph` outputs (dot, mermaid, JSON) work on a selection.

mod config_keys;
mod output;
mod select;
mod selector;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::FastMap;
use crate::diagnostics::{Diagnostic, Diagnostics, did_you_mean, display_path};
use crate::node::{Compiled, Node, Origin, ResourceType, SourceTable};

pub use config_keys::unknown_config_keys;
pub use select::Selection;
pub use selector::SelectorArg;

/// One vertex of the graph: a node or a source table.
#[derive(Clone, Copy, Debug)]
pub enum Member<'a> {
    Node(&'a Node),
    Source(&'a SourceTable),
}

impl<'a> Member<'a> {
    pub fn unique_id(self) -> &'a str {
        match self {
            Member::Node(n) => &n.unique_id,
            Member::Source(s) => &s.unique_id,
        }
    }

    pub fn name(self) -> &'a str {
        match self {
            Member::Node(n) => &n.name,
            Member::Source(s) => &s.name,
        }
    }

    pub fn resource_type(self) -> ResourceType {
        match self {
            Member::Node(n) => n.resource_type,
            Member::Source(_) => ResourceType::Source,
        }
    }

    pub fn package_name(self) -> &'a str {
        match self {
            Member::Node(n) => &n.package_name,
            Member::Source(s) => &s.package_name,
        }
    }

    pub fn original_file_path(self) -> &'a str {
        match self {
            Member::Node(n) => &n.original_file_path,
            Member::Source(s) => &s.original_file_path,
        }
    }

    pub fn fqn(self) -> &'a [String] {
        match self {
            Member::Node(n) => &n.fqn,
            Member::Source(s) => &s.fqn,
        }
    }

    pub fn tags(self) -> &'a [String] {
        match self {
            Member::Node(n) => &n.config.tags,
            Member::Source(s) => &s.tags,
        }
    }

    /// The materialization; `None` for sources.
    pub fn materialized(self) -> Option<&'a str> {
        match self {
            Member::Node(n) => Some(&n.config.materialized),
            Member::Source(_) => None,
        }
    }

    pub fn node(self) -> Option<&'a Node> {
        match self {
            Member::Node(n) => Some(n),
            Member::Source(_) => None,
        }
    }

    pub fn origin(self) -> Option<&'a Origin> {
        match self {
            Member::Node(n) => n.origin.as_ref(),
            Member::Source(s) => s.origin.as_ref(),
        }
    }

    /// The name users know it by: `orders`, or `raw.orders` for a source.
    pub fn label(self) -> String {
        match self {
            Member::Node(n) => n.name.clone(),
            Member::Source(s) => format!("{}.{}", s.source_name, s.name),
        }
    }
}

/// The validated DAG of enabled nodes and sources; edges run parent → child.
/// Only [`Graph::build`] makes one, so a `Graph` is always acyclic and fully resolved.
pub struct Graph<'a> {
    compiled: &'a Compiled,
    dag: DiGraph<Member<'a>, ()>,
    index: FastMap<&'a str, NodeIndex>,
    /// Every vertex in a stable topological order (ties by unique_id).
    topo: Vec<NodeIndex>,
    warnings: Diagnostics,
}

/// The graph before validation; private so no one can use an unvalidated graph.
struct Unvalidated<'a> {
    compiled: &'a Compiled,
    dag: DiGraph<Member<'a>, ()>,
    index: FastMap<&'a str, NodeIndex>,
    problems: Diagnostics,
}

impl<'a> Graph<'a> {
    /// Builds and validates the graph, reporting every problem at once.
    pub fn build(compiled: &'a Compiled) -> Result<Graph<'a>, Diagnostics> {
        Unvalidated::new(compiled).validate()
    }

    /// [`Graph::build`] of nodes a [`Graph::build`] found no duplicates or cycles in already
    /// (the compile of a session's build, validated when it was made): those two checks, about
    /// half of the work at 10k nodes, are not made again.
    pub fn build_checked(compiled: &'a Compiled) -> Result<Graph<'a>, Diagnostics> {
        Unvalidated::new(compiled).finish()
    }

    pub fn compiled(&self) -> &'a Compiled {
        self.compiled
    }

    /// Warnings found while building (errors make `build` fail).
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// Number of vertices (enabled nodes and sources).
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.dag.node_count() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    pub fn member(&self, id: &str) -> Option<Member<'a>> {
        self.index.get(id).map(|&ix| self.dag[ix])
    }

    pub fn node(&self, id: &str) -> Option<&'a Node> {
        self.member(id).and_then(Member::node)
    }

    /// Every vertex, sorted by unique_id.
    pub fn members(&self) -> impl Iterator<Item = Member<'a>> + '_ {
        self.dag.node_indices().map(|ix| self.dag[ix])
    }

    /// The selected nodes (not sources) in a stable topological order, ties by unique_id.
    pub fn topo_order(&self, selection: &Selection<'a>) -> Vec<&'a Node> {
        self.topo_members(selection).filter_map(Member::node).collect()
    }

    /// The selected vertices, sources included, in the same stable topological order.
    pub fn topo_members<'s>(&'s self, selection: &'s Selection<'a>) -> impl Iterator<Item = Member<'a>> + 's {
        self.topo.iter().filter(|ix| selection.has(**ix)).map(|&ix| self.dag[ix])
    }

    /// Direct parents of `id` (what it depends on), sorted; empty for an unknown id.
    pub fn parents(&self, id: &str) -> Vec<&'a str> {
        self.neighbors(id, Direction::Incoming)
    }

    /// Direct children of `id` (what depends on it), sorted; empty for an unknown id.
    pub fn children(&self, id: &str) -> Vec<&'a str> {
        self.neighbors(id, Direction::Outgoing)
    }

    /// Everything `id` depends on, directly or not, sorted.
    pub fn ancestors(&self, id: &str) -> Vec<&'a str> {
        self.reachable_from(id, Direction::Incoming)
    }

    /// Everything that depends on `id`, directly or not, sorted.
    pub fn descendants(&self, id: &str) -> Vec<&'a str> {
        self.reachable_from(id, Direction::Outgoing)
    }

    fn neighbors(&self, id: &str, dir: Direction) -> Vec<&'a str> {
        let Some(&ix) = self.index.get(id) else { return Vec::new() };
        let mut found: Vec<NodeIndex> = self.dag.neighbors_directed(ix, dir).collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|n| self.dag[n].unique_id()).collect()
    }

    fn reachable_from(&self, id: &str, dir: Direction) -> Vec<&'a str> {
        let Some(&ix) = self.index.get(id) else { return Vec::new() };
        let mut seeds = vec![false; self.len()];
        seeds[ix.index()] = true;
        let reached = self.reach(&seeds, dir, None);
        // Vertex order is unique_id order, so index order is sorted output.
        (0..self.len()).filter(|&i| reached[i]).map(|i| self.dag[NodeIndex::new(i)].unique_id()).collect()
    }

    /// Vertices reachable from `seeds` in `dir`, at most `depth` steps (all when `None`).
    fn reach(&self, seeds: &[bool], dir: Direction, depth: Option<usize>) -> Vec<bool> {
        let mut reached = vec![false; self.len()];
        let mut frontier: Vec<NodeIndex> = (0..seeds.len()).filter(|&i| seeds[i]).map(NodeIndex::new).collect();
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for &ix in &frontier {
                for nb in self.dag.neighbors_directed(ix, dir) {
                    if !reached[nb.index()] {
                        reached[nb.index()] = true;
                        next.push(nb);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        reached
    }
}

impl<'a> Unvalidated<'a> {
    fn new(compiled: &'a Compiled) -> Self {
        let mut problems = Diagnostics::new();
        let mut members: Vec<Member<'a>> = compiled
            .nodes
            .iter()
            .filter(|n| n.config.enabled)
            .map(Member::Node)
            .chain(compiled.sources.iter().map(Member::Source))
            .collect();
        // Sorted vertices make index order unique_id order: stable ties everywhere after.
        members.sort_unstable_by(|a, b| a.unique_id().cmp(b.unique_id()));

        let mut dag = DiGraph::with_capacity(members.len(), members.len() * 2);
        let mut index = FastMap::with_capacity_and_hasher(members.len(), Default::default());
        let mut previous: Option<Member<'a>> = None;
        for member in members {
            if let Some(prev) = previous.filter(|p| p.unique_id() == member.unique_id()) {
                problems.push(
                    locate(compiled, error(crate::codes::graph::DUPLICATE, format!("`{}` is defined twice", member.unique_id())), member)
                        .with_help("each node and source needs its own unique_id; remove or rename one of them")
                        .with_related(locate(compiled, error(crate::codes::graph::DUPLICATE, "first defined here"), prev)),
                );
                continue;
            }
            index.insert(member.unique_id(), dag.add_node(member));
            previous = Some(member);
        }

        let mut graph = Unvalidated { compiled, dag, index, problems };
        graph.add_edges();
        graph
    }

    fn add_edges(&mut self) {
        let mut edges = Vec::new();
        let mut missing = Vec::new();
        for child in self.dag.node_indices() {
            let Member::Node(node) = self.dag[child] else { continue };
            for dep in &node.depends_on {
                match self.index.get(dep.as_str()) {
                    Some(&parent) => edges.push((parent, child)),
                    None => missing.push((node, dep.as_str())),
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        for (parent, child) in edges {
            self.dag.add_edge(parent, child, ());
        }
        missing.dedup_by(|a, b| std::ptr::eq(a.0, b.0) && a.1 == b.1);
        if !missing.is_empty() {
            self.report_missing(&missing);
        }
    }

    /// Dependencies on nodes that are disabled or do not exist (render normally catches these).
    fn report_missing(&mut self, missing: &[(&'a Node, &str)]) {
        let disabled: FastMap<&str, ()> =
            self.compiled.nodes.iter().filter(|n| !n.config.enabled).map(|n| (n.unique_id.as_str(), ())).collect();
        // Suggestions scan every id: keep them for the first few so a broken project stays fast.
        let mut suggestions_left = 20;
        for &(node, dep) in missing {
            let diagnostic = if disabled.contains_key(dep) {
                error(crate::codes::graph::DISABLED_DEPENDENCY, format!("`{}` depends on `{dep}`, which is disabled", node.unique_id))
                    .with_help(format!("enable `{dep}` or disable `{}` as well", node.name))
            } else {
                let suggestion = if suggestions_left > 0 {
                    suggestions_left -= 1;
                    did_you_mean(dep, self.index.keys().copied())
                } else {
                    None
                };
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "check the ref() and source() calls of this node".to_string(),
                };
                error(crate::codes::graph::UNKNOWN_DEPENDENCY, format!("`{}` depends on `{dep}`, which does not exist", node.unique_id))
                    .with_help(help)
            };
            self.problems.push(locate(self.compiled, diagnostic, Member::Node(node)));
        }
    }

    /// The checks and the order they would let through, side by side (the order is dropped
    /// when a check fails).
    fn validate(mut self) -> Result<Graph<'a>, Diagnostics> {
        let (duplicates, (cycles, topo)) =
            rayon::join(|| self.duplicate_names(), || rayon::join(|| self.cycles(), || stable_topo(&self.dag)));
        self.problems.extend(duplicates);
        self.problems.extend(cycles);
        self.finish_with(topo)
    }

    fn finish(self) -> Result<Graph<'a>, Diagnostics> {
        let topo = stable_topo(&self.dag);
        self.finish_with(topo)
    }

    fn finish_with(self, topo: Vec<NodeIndex>) -> Result<Graph<'a>, Diagnostics> {
        let (errors, warnings): (Vec<_>, Vec<_>) = self.problems.0.into_iter().partition(Diagnostic::is_error);
        if !errors.is_empty() {
            let mut all = Diagnostics(errors);
            all.0.extend(warnings);
            all.sort();
            return Err(all);
        }
        let mut warnings = Diagnostics(warnings);
        warnings.sort();
        Ok(Graph { compiled: self.compiled, dag: self.dag, index: self.index, topo, warnings })
    }

    /// Two refable nodes of one package with one name, or two nodes building one relation.
    fn duplicate_names(&self) -> Diagnostics {
        let mut problems = Diagnostics::new();
        let n = self.dag.node_count();
        let mut names: FastMap<(&str, &str, Option<&str>), &Node> = FastMap::with_capacity_and_hasher(n, Default::default());
        let mut relations: FastMap<(Option<&str>, &str, &str), &Node> = FastMap::with_capacity_and_hasher(n, Default::default());
        for ix in self.dag.node_indices() {
            let Member::Node(node) = self.dag[ix] else { continue };
            if !matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) {
                continue;
            }
            let key = (node.package_name.as_str(), node.name.as_str(), node.version.as_deref());
            if let Some(first) = names.insert(key, node) {
                let message = format!(
                    "two resources are named `{}` in package `{}`: `{}` and `{}`",
                    node.name, node.package_name, first.unique_id, node.unique_id
                );
                problems.push(
                    locate(self.compiled, error(crate::codes::graph::DUPLICATE, message), Member::Node(node))
                        .with_help("ref() could not tell them apart: rename one, or disable one with `enabled: false`")
                        .with_related(locate(self.compiled, error(crate::codes::graph::DUPLICATE, "the other one"), Member::Node(first))),
                );
                continue;
            }
            if node.config.materialized == "ephemeral" {
                continue;
            }
            let r = &node.relation;
            let relation = (r.database.as_deref(), r.schema.as_str(), r.identifier.as_str());
            if let Some(first) = relations.get(&relation) {
                let message = format!("`{}` and `{}` both build the relation {}", first.unique_id, node.unique_id, relation_name(node));
                problems.push(
                    locate(self.compiled, error(crate::codes::graph::DUPLICATE, message), Member::Node(node))
                        .with_help("give one of them another `alias` or `schema`")
                        .with_related(locate(self.compiled, error(crate::codes::graph::DUPLICATE, "the other one"), Member::Node(first))),
                );
            } else {
                relations.insert(relation, node);
            }
        }
        problems
    }

    /// One diagnostic per strongly connected component, showing its shortest cycle.
    fn cycles(&self) -> Diagnostics {
        let mut problems = Diagnostics::new();
        let n = self.dag.node_count();
        let mut component = vec![usize::MAX; n];
        let mut cyclic = Vec::new();
        for (c, scc) in petgraph::algo::tarjan_scc(&self.dag).into_iter().enumerate() {
            let self_loop = scc.len() == 1 && self.dag.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                for ix in &scc {
                    component[ix.index()] = c;
                }
                cyclic.push((c, scc.iter().copied().min().unwrap_or(scc[0])));
            }
        }
        cyclic.sort_by_key(|(_, start)| *start);
        for (c, start) in cyclic {
            let path = self.cycle_from(start, &component, c);
            let ids: Vec<&str> = path.iter().map(|ix| self.dag[*ix].unique_id()).collect();
            let first = self.dag[path[0]];
            let mut diagnostic =
                locate(self.compiled, error(crate::codes::graph::CYCLE, format!("dependency cycle: {}", ids.join(" -> "))), first)
                    .with_label(format!("depends on `{}`", ids[1]))
                    .with_help("`a -> b` reads \"a depends on b\"; remove one of these ref() or source() calls");
            for pair in path[1..path.len() - 1].iter().zip(&path[2..]) {
                let (here, next) = (self.dag[*pair.0], self.dag[*pair.1]);
                let note = format!("`{}` depends on `{}`", here.unique_id(), next.unique_id());
                diagnostic = diagnostic.with_related(locate(self.compiled, error(crate::codes::graph::CYCLE, note), here));
            }
            problems.push(diagnostic);
        }
        problems
    }

    /// Shortest path from `start` back to itself along depends_on, within its component.
    fn cycle_from(&self, start: NodeIndex, component: &[usize], c: usize) -> Vec<NodeIndex> {
        let mut came_from: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(ix) = queue.pop_front() {
            let mut parents: Vec<NodeIndex> = self.dag.neighbors_directed(ix, Direction::Incoming).collect();
            parents.sort_unstable();
            for parent in parents {
                if component[parent.index()] != c {
                    continue;
                }
                if parent == start {
                    let mut path = vec![ix];
                    let mut at = ix;
                    while let Some(&next) = came_from.get(&at) {
                        path.push(next);
                        at = next;
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = came_from.entry(parent) {
                    slot.insert(ix);
                    queue.push_back(parent);
                }
            }
        }
        vec![start, start]
    }
}

/// Kahn's algorithm taking the smallest ready index (= unique_id) first.
fn stable_topo<N>(dag: &DiGraph<N, ()>) -> Vec<NodeIndex> {
    let mut in_degree: Vec<usize> = dag.node_indices().map(|ix| dag.neighbors_directed(ix, Direction::Incoming).count()).collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = dag.node_indices().filter(|ix| in_degree[ix.index()] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(dag.node_count());
    while let Some(Reverse(ix)) = ready.pop() {
        order.push(ix);
        for child in dag.neighbors_directed(ix, Direction::Outgoing) {
            in_degree[child.index()] -= 1;
            if in_degree[child.index()] == 0 {
                ready.push(Reverse(child));
            }
        }
    }
    order
}

fn relation_name(node: &Node) -> String {
    node.relation.render_dbt(crate::relation::QuotePolicy::default())
}

fn error(code: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(code, message)
}

/// Points a diagnostic at where the member was defined, else at its file.
fn locate(compiled: &Compiled, diagnostic: Diagnostic, member: Member<'_>) -> Diagnostic {
    match member.origin() {
        Some(origin) => diagnostic.at(&origin.source, origin.span.clone()),
        None => diagnostic.with_file(display_path(&compiled.project_root.join(member.original_file_path()))),
    }
}
