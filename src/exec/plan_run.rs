//! Running a run plan: the plan's nodes become scheduler tasks (tests placed per
//! `test_behavior`), and each task runs its node's statements on a pooled connection.
//! Nothing here reads the dbt project: the plan is all there is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{CancelToken, Completion, Dag, Outcome, Runner, Task};
use crate::adapter::{AdapterError, AdapterErrorKind, Connection, RelationType, Rows, Submit};
use crate::diagnostics::Diagnostics;
use crate::node::Relation;
use crate::plan::{PlanNode, RunPlan};

/// Where a model's tests run, as `[execution] test_behavior`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBehavior {
    /// Right after the model; they gate its children.
    AfterEach,
    /// After every other node.
    AfterAll,
    /// Not at all.
    None,
}

impl TestBehavior {
    pub fn parse(text: &str) -> TestBehavior {
        match text {
            "after_all" => TestBehavior::AfterAll,
            "none" => TestBehavior::None,
            _ => TestBehavior::AfterEach,
        }
    }
}

/// One scheduler phase: a DAG over some of the plan's nodes.
pub struct Phase {
    pub dag: Dag,
    /// Task index → index in `plan.nodes`.
    pub nodes: Vec<usize>,
}

/// The phases a plan runs in: one, or with `after_all` the nodes and then the tests.
pub fn phases(plan: &RunPlan, behavior: TestBehavior) -> Result<Vec<Phase>, Diagnostics> {
    let is_test = |n: &PlanNode| n.resource_type == "test";
    match behavior {
        TestBehavior::AfterEach => Ok(vec![phase(plan, |_| true, true)?]),
        TestBehavior::None => Ok(vec![phase(plan, |n| !is_test(n), false)?]),
        TestBehavior::AfterAll => Ok(vec![phase(plan, |n| !is_test(n), false)?, phase(plan, is_test, false)?]),
    }
}

fn phase(plan: &RunPlan, keep: impl Fn(&PlanNode) -> bool, gate_children: bool) -> Result<Phase, Diagnostics> {
    let nodes: Vec<usize> = (0..plan.nodes.len()).filter(|&i| keep(&plan.nodes[i])).collect();
    let task_of: HashMap<&str, usize> = nodes.iter().enumerate().map(|(t, &i)| (plan.nodes[i].id.as_str(), t)).collect();
    let mut deps: Vec<Vec<usize>> =
        nodes.iter().map(|&i| plan.nodes[i].depends_on.iter().filter_map(|d| task_of.get(d.as_str()).copied()).collect()).collect();
    if gate_children {
        add_test_gates(plan, &nodes, &mut deps);
    }
    let tasks = nodes
        .iter()
        .zip(deps)
        .map(|(&i, mut deps)| {
            deps.sort_unstable();
            deps.dedup();
            Task::new(plan.nodes[i].id.clone(), deps)
        })
        .collect();
    Ok(Phase { dag: Dag::new(tasks)?, nodes })
}

/// With `after_each`, a node's children wait for the tests on it — as dbt build does, a test
/// gates a child only when every node the test reads is the child's ancestor (so a
/// relationships test between a model and its child does not make a cycle).
fn add_test_gates(plan: &RunPlan, nodes: &[usize], deps: &mut [Vec<usize>]) {
    let n = nodes.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (t, d) in deps.iter().enumerate() {
        for &p in d {
            children[p].push(t);
        }
    }
    let is_test: Vec<bool> = nodes.iter().map(|&i| plan.nodes[i].resource_type == "test").collect();
    // Ancestor sets of non-test tasks, computed lazily in topological order (plan order is topological).
    let mut ancestors: Vec<Option<HashSet<usize>>> = vec![None; n];
    for t in 0..n {
        if is_test[t] {
            continue;
        }
        let mut set = HashSet::new();
        for &p in &deps[t] {
            if is_test[p] {
                continue;
            }
            set.insert(p);
            if let Some(a) = &ancestors[p] {
                set.extend(a.iter().copied());
            }
        }
        ancestors[t] = Some(set);
    }
    let mut gates: Vec<(usize, usize)> = Vec::new();
    for t in (0..n).filter(|&t| is_test[t]) {
        let parents: Vec<usize> = deps[t].iter().copied().filter(|&p| !is_test[p]).collect();
        for &p in &parents {
            for &child in &children[p] {
                if is_test[child] || parents.contains(&child) {
                    continue;
                }
                let Some(child_ancestors) = &ancestors[child] else { continue };
                if parents.iter().all(|q| child_ancestors.contains(q)) {
                    gates.push((child, t));
                }
            }
        }
    }
    for (child, test) in gates {
        deps[child].push(test);
    }
}

/// Runs plan nodes on connections cloned from one, at most one per worker at a time.
pub struct PlanRunner<'a> {
    plan: &'a RunPlan,
    nodes: &'a [usize],
    base: Mutex<Box<dyn Connection>>,
    pool: Mutex<Vec<Box<dyn Connection>>>,
    full_refresh: bool,
    /// Tests: failing rows of the last attempt, by task.
    failures: Arc<Mutex<HashMap<usize, u64>>>,
    /// What exists in the warehouse, listed once and kept up to date as nodes build;
    /// `None` inside when the adapter cannot list relations (then each node asks).
    existing: Arc<Existing>,
    /// Deferred mode: where nodes' statements are submitted.
    submitter: Option<Arc<dyn Submit>>,
    /// Nodes rendered at run time: their compiled SQL and where dbt writes it (below the target folder).
    realized_sql: Mutex<Vec<(std::path::PathBuf, String)>>,
}

/// A relation's name as the warehouse compares it (DuckDB: case-insensitive).
type RelationKey = (String, String, String);

fn relation_key(relation: &Relation) -> RelationKey {
    let lower = |s: &str| s.to_lowercase();
    (relation.database.as_deref().map(lower).unwrap_or_default(), lower(&relation.schema), lower(&relation.identifier))
}

impl<'a> PlanRunner<'a> {
    pub fn new(plan: &'a RunPlan, phase: &'a Phase, base: Box<dyn Connection>, full_refresh: bool) -> Self {
        PlanRunner {
            plan,
            nodes: &phase.nodes,
            base: Mutex::new(base),
            pool: Mutex::new(Vec::new()),
            full_refresh,
            failures: Arc::new(Mutex::new(HashMap::new())),
            existing: Arc::new(Mutex::new(None)),
            submitter: None,
            realized_sql: Mutex::new(Vec::new()),
        }
    }

    /// Deferred mode: nodes' statements go to `submitter` instead of a worker's connection.
    pub fn with_submitter(mut self, submitter: Option<Arc<dyn Submit>>) -> Self {
        self.submitter = submitter;
        self
    }

    /// The type of the node's relation in the warehouse, from the run's listing when there is one.
    fn existing_type(&self, node: &PlanNode, conn: &mut dyn Connection) -> Result<Option<RelationType>, AdapterError> {
        let relation = Relation::from(&node.relation);
        let mut existing = self.existing.lock().unwrap_or_else(|e| e.into_inner());
        if existing.is_none() {
            let listed = conn.list_relations()?;
            *existing = Some(listed.map(|all| all.iter().map(|(r, t)| (relation_key(r), *t)).collect()));
        }
        match existing.as_ref().and_then(Option::as_ref) {
            Some(map) if relation.database.is_some() => Ok(map.get(&relation_key(&relation)).copied()),
            _ => {
                drop(existing);
                conn.relation_type(&relation)
            }
        }
    }

    /// Records what a node left in the warehouse after it built.
    fn built(&self, node: &PlanNode) {
        if let Some(record) = built_record(node) {
            record(&self.existing);
        }
    }

    /// The failing rows a test task found, when it ran.
    pub fn failures(&self, task: usize) -> Option<u64> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).get(&task).copied()
    }

    fn checkout(&self) -> Result<Box<dyn Connection>, AdapterError> {
        if let Some(conn) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        self.base.lock().unwrap_or_else(|e| e.into_inner()).try_clone()
    }

    fn checkin(&self, conn: Box<dyn Connection>) {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }

    /// Runs `work` on a pooled connection (callbacks fetching inputs use this).
    pub fn with_connection<T>(&self, work: impl FnOnce(&mut dyn Connection) -> T) -> Result<T, AdapterError> {
        let mut conn = self.checkout()?;
        let result = work(conn.as_mut());
        self.checkin(conn);
        Ok(result)
    }

    /// The compiled SQL of the nodes this runner rendered at run time, and where it goes.
    pub fn take_realized_sql(&self) -> Vec<(std::path::PathBuf, String)> {
        std::mem::take(&mut *self.realized_sql.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The plan index of a task.
    pub fn plan_index(&self, task: usize) -> usize {
        self.nodes[task]
    }

    /// A node rendered at run time, realized: rendered with a connection of its own (its
    /// template asks the warehouse), then given the statements a static node of that SQL has.
    /// A render error fails the node, at its file:line:column.
    fn realize(&self, node: &PlanNode, conn: &dyn Connection) -> Result<PlanNode, AdapterError> {
        let failed = |message: String| AdapterError::new(AdapterErrorKind::Query, message);
        let (Some(context), Some(bundle)) = (&self.plan.render_context, &node.bundle) else {
            return Err(failed(format!("{} is rendered at run time, but the plan has no render context or bundle for it", node.id)));
        };
        let warehouse = ConnectionWarehouse(conn.try_clone()?);
        let options = crate::render::RenderOptions { full_refresh: self.full_refresh, ..Default::default() };
        let shown = |d: &crate::diagnostics::Diagnostic| match d.place() {
            Some(place) => format!("{place}: {}", d.message),
            None => d.message.clone(),
        };
        let rendered = crate::render::realize(context, bundle, Box::new(warehouse), &options).map_err(|d| failed(shown(&d)))?;
        if let Some(sql) = &rendered.compiled_code {
            let path = crate::artifacts::compiled::in_target(&rendered);
            self.realized_sql.lock().unwrap_or_else(|e| e.into_inner()).push((path, sql.clone()));
        }
        self.plan.realized(node, &rendered, self.full_refresh, std::path::Path::new(".")).map_err(|d| failed(shown(&d)))
    }

    fn run_node(&self, task: usize, node: &PlanNode, conn: &mut dyn Connection) -> Result<Outcome, AdapterError> {
        let realized;
        let node = if node.is_late() {
            realized = self.realize(node, conn)?;
            &realized
        } else {
            node
        };
        if node.resource_type == "test" {
            let (failures, outcome) = run_test(node, conn)?;
            self.failures.lock().unwrap_or_else(|e| e.into_inner()).insert(task, failures);
            return Ok(outcome);
        }
        let statements = self.choose_statements(node, conn)?;
        let mut rows = None;
        for sql in statements {
            match conn.execute(sql) {
                Ok(result) => rows = result.rows_affected.or(rows),
                Err(err) => {
                    let _ = conn.rollback();
                    return Err(err);
                }
            }
        }
        self.built(node);
        Ok(Outcome::Success { rows_affected: rows, message: None })
    }

    /// The statement list DESIGN.md's plan describes: by what exists in the warehouse.
    fn choose_statements<'n>(&self, node: &'n PlanNode, conn: &mut dyn Connection) -> Result<Vec<&'n String>, AdapterError> {
        let needs_lookup =
            node.statements_incremental.is_some() || node.statements_other_type.is_some() || node.statements_create.is_some();
        if !needs_lookup {
            return Ok(node.statements.iter().collect());
        }
        let existing = self.existing_type(node, conn)?;
        if let (Some(other), Some(found)) = (&node.statements_other_type, existing) {
            let found = match found {
                RelationType::Table => "table",
                RelationType::View => "view",
            };
            if other.existing == found {
                return other.resolve(&node.statements).ok_or_else(|| {
                    AdapterError::new(
                        AdapterErrorKind::Config,
                        format!("the plan's statements_other_type of {} has a null where its statements have none", node.id),
                    )
                    .with_help("write the plan again with `orrery compile`")
                });
            }
        }
        let chosen = match (&node.statements_incremental, &node.statements_create, existing) {
            (Some(incremental), _, Some(_)) if !self.full_refresh => incremental,
            (_, Some(create), None) => create,
            _ => &node.statements,
        };
        Ok(chosen.iter().collect())
    }
}

/// A test's statement returns one row `(failures, should_warn, should_error)`.
fn run_test(node: &PlanNode, conn: &mut dyn Connection) -> Result<(u64, Outcome), AdapterError> {
    let rows = conn.query(test_sql(node))?;
    Ok(test_outcome(&rows, node.test.as_ref().map_or("error", |t| t.severity.as_str())))
}

fn test_sql(node: &PlanNode) -> &str {
    node.statements.first().map(String::as_str).unwrap_or("select 0, false, false")
}

/// The failing rows and the outcome of a test's `(failures, should_warn, should_error)` row.
fn test_outcome(rows: &Rows, severity: &str) -> (u64, Outcome) {
    let row = rows.rows.first().cloned().unwrap_or_default();
    let failures = row.first().and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64))).unwrap_or(0);
    let flag = |i: usize| row.get(i).is_some_and(|v| v.as_bool().unwrap_or(false));
    let (should_warn, should_error) = (flag(1), flag(2));
    let noun = if failures == 1 { "result" } else { "results" };
    let outcome = if should_error && severity == "error" {
        Outcome::Failure { message: format!("Got {failures} {noun}, configured to fail if != 0") }
    } else if should_warn || should_error {
        Outcome::Warn { rows_affected: None, message: format!("Got {failures} {noun}, configured to warn if != 0") }
    } else {
        Outcome::Success { rows_affected: None, message: None }
    };
    (failures, outcome)
}

/// What the run knows exists: `None` until listed, `Some(None)` when the adapter cannot list.
type Existing = Mutex<Option<Option<HashMap<RelationKey, RelationType>>>>;

/// What records a built node's relation in the run's listing (none for tests and ephemerals).
fn built_record(node: &PlanNode) -> Option<impl FnOnce(&Existing) + Send + 'static> {
    let kind = match node.materialized.as_str() {
        "view" => RelationType::View,
        "ephemeral" => return None,
        _ if node.resource_type == "test" => return None,
        _ => RelationType::Table,
    };
    let key = relation_key(&Relation::from(&node.relation));
    Some(move |existing: &Existing| {
        if let Some(Some(map)) = existing.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.insert(key, kind);
        }
    })
}

impl Runner for PlanRunner<'_> {
    fn run(&self, task: usize, _attempt: u32, cancel: &CancelToken) -> Outcome {
        let node = &self.plan.nodes[self.nodes[task]];
        let mut conn = match self.checkout() {
            Ok(conn) => conn,
            Err(err) => return Outcome::Failure { message: err.message },
        };
        let interrupt = conn.interrupt_handle();
        let _guard = cancel.on_cancel(move || interrupt.interrupt());
        let outcome = match self.run_node(task, node, conn.as_mut()) {
            Ok(outcome) => outcome,
            Err(err) if err.kind == AdapterErrorKind::Interrupted || cancel.is_cancelled() => {
                Outcome::Cancelled { message: Some(err.message) }
            }
            Err(err) => Outcome::Failure { message: err.message },
        };
        self.checkin(conn);
        outcome
    }

    fn submit(&self, task: usize, attempt: u32, cancel: &CancelToken, done: Completion) -> Option<Outcome> {
        let Some(submitter) = &self.submitter else { return Some(self.run(task, attempt, cancel)) };
        let node = &self.plan.nodes[self.nodes[task]];
        let realized;
        let node = if node.is_late() {
            // Rendered here, holding this worker for its length.
            let base = self.base.lock().unwrap_or_else(|e| e.into_inner());
            match self.realize(node, base.as_ref()) {
                Ok(r) => {
                    realized = r;
                    &realized
                }
                Err(err) => return Some(Outcome::Failure { message: err.message }),
            }
        } else {
            node
        };
        let is_test = node.resource_type == "test";
        let statements: Vec<String> = if is_test {
            vec![test_sql(node).to_string()]
        } else {
            let chosen = {
                let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
                self.choose_statements(node, base.as_mut()).map(|chosen| chosen.into_iter().cloned().collect())
            };
            match chosen {
                Ok(statements) => statements,
                Err(err) => return Some(Outcome::Failure { message: err.message }),
            }
        };
        let severity = node.test.as_ref().map_or("error", |t| t.severity.as_str()).to_string();
        let (failures, existing, record) = (self.failures.clone(), self.existing.clone(), built_record(node));
        // The cancel handler lives until the outcome is in: a later cancel must not reach a
        // session that has moved on to another node.
        let guard: Arc<Mutex<Option<super::OnCancel>>> = Arc::default();
        let guard_slot = guard.clone();
        let finished = move |result: Result<crate::adapter::Submitted, AdapterError>| {
            drop(guard_slot.lock().unwrap_or_else(|e| e.into_inner()).take());
            let outcome = match result {
                Ok(submitted) if is_test => {
                    let (count, outcome) = test_outcome(&submitted.rows.unwrap_or_default(), &severity);
                    failures.lock().unwrap_or_else(|e| e.into_inner()).insert(task, count);
                    outcome
                }
                Ok(submitted) => {
                    if let Some(record) = record {
                        record(&existing);
                    }
                    Outcome::Success { rows_affected: submitted.rows_affected, message: None }
                }
                Err(err) if err.kind == AdapterErrorKind::Interrupted => Outcome::Cancelled { message: Some(err.message) },
                Err(err) => Outcome::Failure { message: err.message },
            };
            done(outcome);
        };
        let interrupt = submitter.submit(statements, is_test, Box::new(finished));
        let registered = cancel.on_cancel(move || interrupt.interrupt());
        *guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(registered);
        None
    }
}

/// A connection as the renderer asks it (`render::Warehouse`).
struct ConnectionWarehouse(Box<dyn Connection>);

impl crate::render::Warehouse for ConnectionWarehouse {
    fn query(&mut self, sql: &str) -> Result<crate::render::QueryResult, String> {
        let rows = self.0.query(sql).map_err(|e| e.message)?;
        Ok(crate::render::QueryResult { columns: rows.columns, rows: rows.rows })
    }
}
