//! Warehouse connections behind one trait: DuckDB (embedded default) and PostgreSQL (a server).
//! `exec` runs a plan's statements through [`Connection`]; nothing else talks to a warehouse.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostics::Diagnostic;
use crate::node::{Relation, TargetInfo};

#[cfg(feature = "duckdb")]
pub mod duckdb;
#[cfg(feature = "postgres")]
pub mod postgres;

/// What a statement did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub rows_affected: Option<u64>,
}

/// A query's result: `(name, type)` per column and every row as JSON values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
}

/// Whether an existing relation is a table or a view (plans choose statements by it).
pub use crate::relation::RelationKind as RelationType;

/// Cancels the statement running on one connection, from any thread.
pub trait Interrupt {
    fn interrupt(&self);
}

/// One session with a warehouse. Statements run one at a time; open more connections (with
/// [`Connection::try_clone`]) to run nodes in parallel.
///
/// `mode = "deferred"`: a server adapter hands out a [`Submit`] that runs statement lists in the
/// background; DuckDB, embedded, has none and stays blocking.
pub trait Connection: Send {
    fn execute(&mut self, sql: &str) -> Result<ExecResult, AdapterError>;
    fn query(&mut self, sql: &str) -> Result<Rows, AdapterError>;
    /// `None` when the relation does not exist.
    fn relation_type(&mut self, relation: &Relation) -> Result<Option<RelationType>, AdapterError>;
    fn relation_exists(&mut self, relation: &Relation) -> Result<bool, AdapterError> {
        Ok(self.relation_type(relation)?.is_some())
    }
    /// Every table and view in the database, when the adapter can list them in one query
    /// (`None` otherwise): a run looks relations up there instead of one query per node.
    fn list_relations(&mut self) -> Result<Option<Vec<(Relation, RelationType)>>, AdapterError> {
        Ok(None)
    }
    /// A handle that cancels the running query from another thread (it then fails with
    /// [`AdapterErrorKind::Interrupted`]).
    fn interrupt_handle(&self) -> Arc<dyn Interrupt + Send + Sync>;
    /// Another connection to the same database.
    fn try_clone(&self) -> Result<Box<dyn Connection>, AdapterError>;
    fn begin(&mut self) -> Result<(), AdapterError> {
        self.execute("begin").map(drop)
    }
    fn commit(&mut self) -> Result<(), AdapterError> {
        self.execute("commit").map(drop)
    }
    /// Ends a transaction left open by a failed statement; a no-op when none is open.
    fn rollback(&mut self) -> Result<(), AdapterError>;
    /// Deferred mode: where statements can run without a thread waiting for them, a submitter
    /// running at most `max_in_flight` lists at a time. `None`: the adapter only blocks.
    fn submitter(&self, max_in_flight: usize) -> Option<Arc<dyn Submit>> {
        let _ = max_in_flight;
        None
    }
}

/// What a submitted statement list did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Submitted {
    pub rows_affected: Option<u64>,
    /// The last statement's rows, when asked for.
    pub rows: Option<Rows>,
}

/// Runs statement lists in the background (deferred mode).
pub trait Submit: Send + Sync {
    /// Starts `statements`, in order, on one session, and returns at once with a handle that
    /// cancels them on the server. `done` is called exactly once, on the adapter's own thread
    /// (keep it short); on failure the session's transaction is rolled back first. With
    /// `query_last`, the last statement's rows come back.
    fn submit(
        &self,
        statements: Vec<String>,
        query_last: bool,
        done: Box<dyn FnOnce(Result<Submitted, AdapterError>) + Send>,
    ) -> Arc<dyn Interrupt + Send + Sync>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterErrorKind {
    /// The target's settings are wrong or incomplete (exit 2).
    Config,
    /// The database could not be opened or reached.
    Connection,
    /// A statement failed in the database.
    Query,
    /// The statement was cancelled through its interrupt handle.
    Interrupted,
    /// The adapter type is unknown or not built in.
    Unsupported,
}

impl AdapterErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            AdapterErrorKind::Config => crate::codes::adapter::CONFIG,
            AdapterErrorKind::Connection => crate::codes::adapter::CONNECTION,
            AdapterErrorKind::Query => crate::codes::adapter::QUERY,
            AdapterErrorKind::Interrupted => crate::codes::adapter::INTERRUPTED,
            AdapterErrorKind::Unsupported => crate::codes::adapter::UNSUPPORTED,
        }
    }
}

/// A warehouse error. Messages are built from the database's own text and setting names,
/// never from resolved credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterError {
    pub kind: AdapterErrorKind,
    pub message: String,
    pub help: Option<String>,
}

impl AdapterError {
    pub fn new(kind: AdapterErrorKind, message: impl Into<String>) -> Self {
        AdapterError { kind, message: message.into(), help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::error(self.kind.code(), self.message.clone());
        match &self.help {
            Some(help) => diagnostic.with_help(help.clone()),
            None => diagnostic,
        }
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdapterError {}

impl From<AdapterError> for Diagnostic {
    fn from(err: AdapterError) -> Self {
        err.to_diagnostic()
    }
}

/// Opens a connection for a target. `env_var(...)` references in the target's settings are
/// resolved here and nowhere else.
pub fn connect(target: &TargetInfo, project_root: &Path) -> Result<Box<dyn Connection>, AdapterError> {
    match target.adapter_type.as_str() {
        #[cfg(feature = "duckdb")]
        "duckdb" => duckdb::DuckDbConnection::open(target, project_root).map(|c| Box::new(c) as Box<dyn Connection>),
        #[cfg(not(feature = "duckdb"))]
        "duckdb" => {
            let _ = project_root;
            Err(AdapterError::new(AdapterErrorKind::Unsupported, "this orrery was built without DuckDB")
                .with_help("rebuild with the default `duckdb` cargo feature"))
        }
        #[cfg(feature = "postgres")]
        "postgres" => postgres::PgConnection::open(target).map(|c| Box::new(c) as Box<dyn Connection>),
        #[cfg(not(feature = "postgres"))]
        "postgres" => Err(AdapterError::new(AdapterErrorKind::Unsupported, "this orrery was built without PostgreSQL")
            .with_help("rebuild with the default `postgres` cargo feature")),
        other => Err(AdapterError::new(
            AdapterErrorKind::Unsupported,
            format!("target `{}` has adapter type `{other}`, which orrery cannot run yet", target.name),
        )
        .with_help("supported adapter types: duckdb, postgres")),
    }
}

/// A listing query's rows `(database, schema, name, kind)` as relations; `is_view` reads the kind.
#[cfg(any(feature = "duckdb", feature = "postgres"))]
pub(crate) fn listed_relations(rows: &Rows, is_view: impl Fn(&Value) -> bool) -> Vec<(Relation, RelationType)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    rows.rows
        .iter()
        .filter(|r| r.len() == 4)
        .map(|r| {
            let relation = Relation { database: Some(text(&r[0])), schema: text(&r[1]), identifier: text(&r[2]) };
            let kind = if is_view(&r[3]) { RelationType::View } else { RelationType::Table };
            (relation, kind)
        })
        .collect()
}

/// A connection setting as a string with `{{ env_var('NAME'[, 'default']) }}` resolved.
/// Errors name the variable, never a value.
pub fn resolve_setting(key: &str, value: &Value) -> Result<Option<String>, AdapterError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    resolve_env_refs(key, &text).map(Some)
}

fn resolve_env_refs(key: &str, text: &str) -> Result<String, AdapterError> {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(r#"\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*(?:\|\s*\w+\s*)?\}\}"#)
            .expect("the env_var pattern is valid")
    });
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in pattern.captures_iter(text) {
        let whole = caps.get(0).expect("group 0 always matches");
        out.push_str(&text[last..whole.start()]);
        let name = &caps[1];
        match (std::env::var(name), caps.get(2)) {
            (Ok(value), _) => out.push_str(&value),
            (Err(_), Some(default)) => out.push_str(default.as_str()),
            (Err(_), None) => {
                return Err(AdapterError::new(
                    AdapterErrorKind::Config,
                    format!("setting `{key}` needs the environment variable `{name}`, which is not set"),
                )
                .with_help(format!("export {name}=… before running")));
            }
        }
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_resolve_with_defaults_and_name_missing_variables() {
        let value = Value::String("{{ env_var('ORRERY_TEST_UNSET_VAR', 'dev.duckdb') }}".into());
        assert_eq!(resolve_setting("path", &value).ok().flatten().as_deref(), Some("dev.duckdb"));
        let missing = Value::String("x/{{ env_var(\"ORRERY_TEST_UNSET_VAR\") }}".into());
        let err = resolve_setting("password", &missing).err().map(|e| (e.kind, e.message));
        assert_eq!(
            err,
            Some((
                AdapterErrorKind::Config,
                "setting `password` needs the environment variable `ORRERY_TEST_UNSET_VAR`, which is not set".into()
            ))
        );
    }
}
