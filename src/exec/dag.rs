//! The task graph the scheduler walks: ids, dependencies and priorities, nothing else.

use std::collections::HashMap;
use std::time::Duration;

use crate::diagnostics::{Diagnostic, Diagnostics};

/// One unit of work, known to the scheduler only by its id and dependencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// Indices of the tasks that must succeed before this one starts.
    pub deps: Vec<usize>,
    /// Expected duration; used only to order ready tasks.
    pub weight_hint: Option<Duration>,
}

impl Task {
    pub fn new(id: impl Into<String>, deps: impl Into<Vec<usize>>) -> Self {
        Task { id: id.into(), deps: deps.into(), weight_hint: None }
    }

    pub fn with_weight(mut self, weight: Duration) -> Self {
        self.weight_hint = Some(weight);
        self
    }
}

/// A validated, acyclic task graph with each task's priority (longest remaining path to a sink).
#[derive(Clone, Debug)]
pub struct Dag {
    tasks: Vec<Task>,
    children: Vec<Vec<usize>>,
    priority: Vec<u64>,
}

impl Dag {
    /// Validates the tasks (known dependencies, unique ids, no cycle) and seals them.
    pub fn new(mut tasks: Vec<Task>) -> Result<Dag, Diagnostics> {
        let mut diagnostics = Diagnostics::new();
        let n = tasks.len();
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, task) in tasks.iter().enumerate() {
            if let Some(first) = seen.insert(&task.id, i) {
                diagnostics.push(
                    Diagnostic::error(
                        crate::codes::exec::DUPLICATE_TASK,
                        format!("task `{}` is listed twice (#{first} and #{i})", task.id),
                    )
                    .with_help("every task id must be unique"),
                );
            }
            for &dep in &task.deps {
                if dep >= n {
                    diagnostics.push(
                        Diagnostic::error(
                            crate::codes::exec::UNKNOWN_DEPENDENCY,
                            format!("task `{}` depends on #{dep}, but there are only {n} tasks", task.id),
                        )
                        .with_help("dependencies are indices into the task list"),
                    );
                }
            }
        }
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        for task in &mut tasks {
            task.deps.sort_unstable();
            task.deps.dedup();
        }
        let mut children = vec![Vec::new(); n];
        for (i, task) in tasks.iter().enumerate() {
            for &dep in &task.deps {
                children[dep].push(i);
            }
        }
        let order = match topological_order(&tasks, &children) {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].id.as_str()).collect();
                diagnostics.push(
                    Diagnostic::error(crate::codes::exec::CYCLE, format!("tasks depend on each other in a cycle: {}", names.join(" -> ")))
                        .with_help("remove one of these dependencies"),
                );
                return Err(diagnostics);
            }
        };
        let weights = weights(&tasks);
        let mut priority = vec![0u64; n];
        for &i in order.iter().rev() {
            let longest_child = children[i].iter().map(|&c| priority[c]).max().unwrap_or(0);
            priority[i] = weights[i].saturating_add(longest_child);
        }
        Ok(Dag { tasks, children, priority })
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn task(&self, index: usize) -> &Task {
        &self.tasks[index]
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Tasks that depend directly on `index`.
    pub fn children(&self, index: usize) -> &[usize] {
        &self.children[index]
    }

    /// Length of the longest path from `index` to a sink, itself included, in weight units
    /// (nanoseconds of the weight hints, or task counts when no task has a hint).
    pub fn priority(&self, index: usize) -> u64 {
        self.priority[index]
    }
}

/// Weights for priorities: the hints in nanoseconds (a missing hint counts as the mean of
/// the given ones), or 1 per task when none is given.
fn weights(tasks: &[Task]) -> Vec<u64> {
    let hinted: Vec<u64> = tasks.iter().filter_map(|t| t.weight_hint).map(nanos).collect();
    if hinted.is_empty() {
        return vec![1; tasks.len()];
    }
    let mean = (hinted.iter().map(|&w| u128::from(w)).sum::<u128>() / hinted.len() as u128) as u64;
    tasks.iter().map(|t| t.weight_hint.map_or(mean, nanos).max(1)).collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Kahn's algorithm; on a cycle returns one cycle's members in dependency order.
fn topological_order(tasks: &[Task], children: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    let mut order: Vec<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                order.push(c);
            }
        }
    }
    if order.len() == tasks.len() {
        return Ok(order);
    }
    // Every task left waits on another task left, so walking deps from one of them must loop.
    let Some(start) = (0..tasks.len()).find(|&i| waiting[i] > 0) else { return Ok(order) };
    let mut position = vec![usize::MAX; tasks.len()];
    let mut path = Vec::new();
    let mut current = start;
    while position[current] == usize::MAX {
        position[current] = path.len();
        path.push(current);
        current = tasks[current].deps.iter().copied().find(|&d| waiting[d] > 0).unwrap_or(current);
    }
    let mut cycle = path.split_off(position[current]);
    cycle.reverse();
    // Start at the first task listed, so the message does not depend on where the walk began.
    let first = cycle.iter().enumerate().min_by_key(|&(_, &t)| t).map_or(0, |(i, _)| i);
    cycle.rotate_left(first);
    cycle.push(cycle[0]);
    Err(cycle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(result: Result<Dag, Diagnostics>) -> Vec<String> {
        match result {
            Ok(_) => vec![],
            Err(d) => d.0.iter().map(|d| format!("{}: {}", d.code, d.message)).collect(),
        }
    }

    #[test]
    fn reports_cycles_with_their_members() {
        let tasks = vec![Task::new("a", [2]), Task::new("b", [0]), Task::new("c", [1]), Task::new("d", [])];
        assert_eq!(messages(Dag::new(tasks)), ["exec::cycle: tasks depend on each other in a cycle: a -> b -> c -> a"]);
        assert_eq!(messages(Dag::new(vec![Task::new("self", [0])])), ["exec::cycle: tasks depend on each other in a cycle: self -> self"]);
    }

    #[test]
    fn reports_every_bad_reference_and_duplicate() {
        let tasks = vec![Task::new("a", [5]), Task::new("a", [0, 7])];
        assert_eq!(
            messages(Dag::new(tasks)),
            [
                "exec::unknown_dependency: task `a` depends on #5, but there are only 2 tasks",
                "exec::duplicate_task: task `a` is listed twice (#0 and #1)",
                "exec::unknown_dependency: task `a` depends on #7, but there are only 2 tasks",
            ]
        );
    }

    #[test]
    fn priority_is_the_longest_path_to_a_sink() {
        // a -> b -> c, a -> d
        let tasks = vec![Task::new("a", []), Task::new("b", [0]), Task::new("c", [1]), Task::new("d", [0, 0])];
        let dag = Dag::new(tasks).expect("acyclic");
        assert_eq!((0..4).map(|i| dag.priority(i)).collect::<Vec<_>>(), [3, 2, 1, 1]);
        assert_eq!(dag.task(3).deps, [0]);

        let ms = Duration::from_millis;
        let hinted = vec![Task::new("a", []).with_weight(ms(1)), Task::new("b", [0]).with_weight(ms(10)), Task::new("c", [0])];
        let dag = Dag::new(hinted).expect("acyclic");
        assert_eq!(dag.priority(0), 1_000_000 + 10_000_000);
        assert_eq!(dag.priority(2), 5_500_000);
    }
}
