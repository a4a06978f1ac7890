//! Evaluating selectors over the graph: graph operators, unions, intersections, exclusion and
//! dbt's eager indirect selection of tests.

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::Graph;
use super::selector::{Criterion, MatchContext, SelectorArg, parse_criterion};
use crate::diagnostics::{Diagnostic, Diagnostics, did_you_mean};
use crate::node::ResourceType;

/// The vertices (nodes and sources) a selection chose. Tied to the graph that made it.
#[derive(Clone, Debug)]
pub struct Selection<'a> {
    mask: Vec<bool>,
    /// Selected unique_ids, sorted.
    ids: Vec<&'a str>,
}

impl<'a> Selection<'a> {
    pub fn contains(&self, id: &str) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Selected unique_ids (sources included), sorted.
    pub fn ids(&self) -> &[&'a str] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn has(&self, ix: NodeIndex) -> bool {
        self.mask.get(ix.index()).copied().unwrap_or(false)
    }
}

/// One space-separated part of a selector argument: an intersection of criteria.
struct Item<'s> {
    arg: &'s SelectorArg,
    text: &'s str,
    offset: usize,
    criteria: Vec<Criterion>,
    parsed: bool,
}

impl<'a> Graph<'a> {
    /// Evaluates dbt selectors: `include` (everything when empty) minus `exclude`.
    /// Every unparsable selector and every part that selects nothing is reported together.
    pub fn select(&self, include: &[SelectorArg], exclude: &[SelectorArg]) -> Result<Selection<'a>, Diagnostics> {
        let mut problems = Diagnostics::new();
        let include = parse_items(include, &mut problems);
        let exclude = parse_items(exclude, &mut problems);

        let n = self.len();
        let mut included = vec![include.is_empty(); n];
        let mut excluded = vec![false; n];
        for (items, into) in [(&include, &mut included), (&exclude, &mut excluded)] {
            // Items that did not parse are already reported; the rest are still checked.
            for item in items.iter().filter(|item| item.parsed) {
                let selected = self.eval_item(item);
                if !selected.contains(&true) {
                    let message = format!("selector `{}` matches no enabled node or source", item.text);
                    let suggestion = match item.criteria.as_slice() {
                        [only] => only.bare_name().and_then(|name| did_you_mean(name, self.members().map(|m| m.name()))),
                        _ => None,
                    };
                    let help = match suggestion {
                        Some(name) => format!("did you mean `{name}`?"),
                        None if item.criteria.len() > 1 => "each part of `a,b` may match, but no node matches all of them".to_string(),
                        None => "check the spelling; `orrery graph` lists what can be selected".to_string(),
                    };
                    problems.push(item.arg.locate(
                        Diagnostic::error(crate::codes::graph::EMPTY_SELECTOR, message).with_help(help),
                        item.offset,
                        item.text.len(),
                    ));
                }
                for (slot, hit) in into.iter_mut().zip(selected) {
                    *slot |= hit;
                }
            }
        }
        if problems.has_errors() {
            problems.sort();
            return Err(problems);
        }

        let mask: Vec<bool> = included.iter().zip(&excluded).map(|(inc, exc)| *inc && !*exc).collect();
        let ids = (0..n).filter(|&i| mask[i]).map(|i| self.dag[NodeIndex::new(i)].unique_id()).collect();
        Ok(Selection { mask, ids })
    }

    /// Shorthand for [`Graph::select`] with plain strings.
    pub fn select_strs(&self, include: &[&str], exclude: &[&str]) -> Result<Selection<'a>, Diagnostics> {
        let args = |list: &[&str]| list.iter().map(|s| SelectorArg::from(*s)).collect::<Vec<_>>();
        self.select(&args(include), &args(exclude))
    }

    /// Everything: every enabled node and every source.
    pub fn select_all(&self) -> Selection<'a> {
        let ids = self.dag.node_indices().map(|ix| self.dag[ix].unique_id()).collect();
        Selection { mask: vec![true; self.len()], ids }
    }

    fn eval_item(&self, item: &Item<'_>) -> Vec<bool> {
        let mut result: Option<Vec<bool>> = None;
        for criterion in &item.criteria {
            let selected = self.eval_criterion(criterion);
            result = Some(match result {
                None => selected,
                Some(acc) => acc.iter().zip(selected).map(|(a, b)| *a && b).collect(),
            });
        }
        result.unwrap_or_else(|| vec![false; self.len()])
    }

    /// The criterion's matches, its graph operators, then the tests of all of them (eager).
    fn eval_criterion(&self, criterion: &Criterion) -> Vec<bool> {
        let ctx = MatchContext { project_name: &self.compiled.project_name };
        let matched: Vec<bool> = self.dag.node_indices().map(|ix| criterion.matches(self.dag[ix], &ctx)).collect();
        let mut selected = matched.clone();
        let mut add = |extra: Vec<bool>| {
            for (slot, hit) in selected.iter_mut().zip(extra) {
                *slot |= hit;
            }
        };
        if criterion.childrens_parents {
            let mut family = self.reach(&matched, Direction::Outgoing, None);
            for (slot, hit) in family.iter_mut().zip(&matched) {
                *slot |= *hit;
            }
            add(self.reach(&family, Direction::Incoming, None));
            add(family);
        }
        if let Some(depth) = criterion.parents {
            add(self.reach(&matched, Direction::Incoming, depth));
        }
        if let Some(depth) = criterion.children {
            add(self.reach(&matched, Direction::Outgoing, depth));
        }
        self.add_eager_tests(&mut selected);
        selected
    }

    /// dbt's eager indirect selection: a test comes with any one of its selected parents.
    fn add_eager_tests(&self, selected: &mut [bool]) {
        let parents: Vec<NodeIndex> = (0..selected.len()).filter(|&i| selected[i]).map(NodeIndex::new).collect();
        for parent in parents {
            for child in self.dag.neighbors_directed(parent, Direction::Outgoing) {
                if self.dag[child].resource_type() == ResourceType::Test {
                    selected[child.index()] = true;
                }
            }
        }
    }
}

fn parse_items<'s>(args: &'s [SelectorArg], problems: &mut Diagnostics) -> Vec<Item<'s>> {
    let mut items = Vec::new();
    for arg in args {
        for (offset, text) in split_whitespace_indices(&arg.text) {
            let mut criteria = Vec::new();
            let mut part_offset = offset;
            let mut parsed = true;
            for part in text.split(',') {
                match parse_criterion(part) {
                    Ok(criterion) => criteria.push(criterion),
                    Err(diagnostic) => {
                        parsed = false;
                        problems.push(arg.locate(*diagnostic, part_offset, part.len()));
                    }
                }
                part_offset += part.len() + 1;
            }
            items.push(Item { arg, text, offset, criteria, parsed });
        }
    }
    items
}

fn split_whitespace_indices(text: &str) -> Vec<(usize, &str)> {
    let mut parts = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                parts.push((s, &text[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        parts.push((s, &text[s..]));
    }
    parts
}
