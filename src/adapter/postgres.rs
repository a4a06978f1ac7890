//! PostgreSQL on a server, through tokio-postgres driven by one small runtime shared by every
//! session of the process. Blocking calls wait on that runtime; `mode = "deferred"` submits a
//! node's statements to it and returns at once (see [`PgSubmitter`]).
//!
//! Profile keys as dbt-postgres reads them: `host`, `port`, `user`, `password` (or `pass`),
//! `dbname` (or `database`), `schema`, `sslmode`, `connect_timeout`, `search_path`,
//! `keepalives_idle`, `role`. Secrets are resolved from `env_var(...)` here and nowhere else, and
//! no error message is built from a resolved setting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, pin_mut};
use serde_json::{Number, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{AdapterError, AdapterErrorKind, Connection, ExecResult, Interrupt, RelationType, Rows, Submit, Submitted, resolve_setting};
use crate::node::{Relation, TargetInfo};
use crate::sql::string_literal as literal;

/// The runtime every PostgreSQL session of the process runs on: one worker thread does the
/// network work of all sessions; callers wait on it (blocking mode) or hand it futures (deferred).
fn runtime() -> Result<&'static tokio::runtime::Runtime, AdapterError> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("orrery-pg").enable_all().build().ok())
        .as_ref()
        .ok_or_else(|| AdapterError::new(AdapterErrorKind::Connection, "cannot start the PostgreSQL network thread"))
}

/// What opens a session: the resolved settings, kept in memory only.
struct Settings {
    target: String,
    config: tokio_postgres::Config,
    /// `None`: plain TCP (sslmode disable / allow).
    tls: Option<MakeRustlsConnect>,
    /// Statements run once per session after it opens (`set role`, `set search_path`).
    setup: Vec<String>,
    host: String,
    port: u16,
    dbname: String,
}

impl Settings {
    fn from_target(target: &TargetInfo) -> Result<Self, AdapterError> {
        let get = |keys: &[&str]| -> Result<Option<String>, AdapterError> {
            for key in keys {
                if let Some(value) = target.connection.get(*key) {
                    return resolve_setting(key, value);
                }
            }
            Ok(None)
        };
        let missing = |key: &str| {
            AdapterError::new(AdapterErrorKind::Config, format!("target `{}` has no `{key}`", target.name))
                .with_help(format!("set `{key}` in the target's output (profiles.yml or [profile.outputs])"))
        };
        let host = get(&["host"])?.ok_or_else(|| missing("host"))?;
        let user = get(&["user", "username"])?.ok_or_else(|| missing("user"))?;
        let dbname = get(&["dbname", "database"])?.ok_or_else(|| missing("dbname"))?;
        let port = match get(&["port"])? {
            Some(text) => text.trim().parse::<u16>().map_err(|_| {
                AdapterError::new(AdapterErrorKind::Config, format!("target `{}`: `port` must be a number from 1 to 65535", target.name))
            })?,
            None => 5432,
        };
        let seconds = |key: &str, default: Option<u64>| -> Result<Option<Duration>, AdapterError> {
            match get(&[key])? {
                Some(text) => text.trim().parse::<u64>().map(|s| Some(Duration::from_secs(s))).map_err(|_| {
                    AdapterError::new(
                        AdapterErrorKind::Config,
                        format!("target `{}`: `{key}` must be a whole number of seconds", target.name),
                    )
                }),
                None => Ok(default.map(Duration::from_secs)),
            }
        };
        let mut config = tokio_postgres::Config::new();
        config.host(&host).port(port).user(&user).dbname(&dbname).application_name("orrery");
        if let Some(password) = get(&["password", "pass"])? {
            config.password(password);
        }
        // dbt-postgres' default connect_timeout is 10 s.
        if let Some(timeout) = seconds("connect_timeout", Some(10))?.filter(|d| !d.is_zero()) {
            config.connect_timeout(timeout);
        }
        if let Some(idle) = seconds("keepalives_idle", None)?.filter(|d| !d.is_zero()) {
            config.keepalives(true).keepalives_idle(idle);
        }
        use tokio_postgres::config::SslMode;
        let root_cert = get(&["sslrootcert"])?.filter(|p| !p.is_empty());
        // libpq's modes: `prefer` (its default) and `require` encrypt without checking the
        // server's certificate; `verify-ca` / `verify-full` check it (here always with the host
        // name), against `sslrootcert` when given, else the system's roots.
        let tls = match get(&["sslmode"])?.as_deref().map(str::trim) {
            Some("disable") | Some("allow") => None,
            None | Some("") | Some("prefer") => Some((SslMode::Prefer, tls_config(false, None, &target.name)?)),
            Some("require") => Some((SslMode::Require, tls_config(false, None, &target.name)?)),
            Some("verify-ca") | Some("verify-full") => Some((SslMode::Require, tls_config(true, root_cert.as_deref(), &target.name)?)),
            Some(other) => {
                return Err(AdapterError::new(AdapterErrorKind::Config, format!("target `{}`: unknown sslmode `{other}`", target.name))
                    .with_help("use disable, allow, prefer, require, verify-ca or verify-full"));
            }
        };
        config.ssl_mode(tls.as_ref().map_or(SslMode::Disable, |(mode, _)| *mode));
        let tls = tls.map(|(_, connector)| connector);
        let mut setup = Vec::new();
        if let Some(role) = get(&["role"])?.filter(|r| !r.is_empty()) {
            setup.push(format!("set role {}", crate::relation::quote_sql(&role)));
        }
        if let Some(path) = get(&["search_path"])?.filter(|p| !p.is_empty()) {
            setup.push(format!("set search_path to {path}"));
        }
        Ok(Settings { target: target.name.clone(), config, tls, setup, host, port, dbname })
    }

    /// Opens a session. A failure names the target, host, port and database, never a secret.
    async fn open(&self) -> Result<Client, AdapterError> {
        // The connection task ends when the client is dropped or the server goes away.
        let client = match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(|err| self.connect_error(&err))?;
                tokio::spawn(async move { drop(connection.await) });
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(|err| self.connect_error(&err))?;
                tokio::spawn(async move { drop(connection.await) });
                client
            }
        };
        for sql in &self.setup {
            client.batch_execute(sql).await.map_err(|err| self.connect_error(&err))?;
        }
        Ok(client)
    }

    fn connect_error(&self, err: &tokio_postgres::Error) -> AdapterError {
        let reason = match err.as_db_error() {
            Some(db) => db.message().to_string(),
            None => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(err);
                while let Some(inner) = source {
                    text = format!("{text}: {inner}");
                    source = inner.source();
                }
                text
            }
        };
        let help = match err.code() {
            Some(code) if *code == tokio_postgres::error::SqlState::INVALID_PASSWORD => {
                "check the target's user and password (the password comes from the profile's env_var)"
            }
            Some(code) if *code == tokio_postgres::error::SqlState::INVALID_CATALOG_NAME => {
                "create the database, or set the target's `dbname` to one that exists"
            }
            _ => "check the target's host, port and that the server accepts connections",
        };
        AdapterError::new(
            AdapterErrorKind::Connection,
            format!(
                "cannot connect to target `{}` (PostgreSQL at {}:{}, database `{}`): {reason}",
                self.target, self.host, self.port, self.dbname
            ),
        )
        .with_help(help)
    }
}

pub struct PgConnection {
    settings: Arc<Settings>,
    client: Client,
}

impl PgConnection {
    pub fn open(target: &TargetInfo) -> Result<Self, AdapterError> {
        let settings = Arc::new(Settings::from_target(target)?);
        let client = runtime()?.block_on(settings.open())?;
        Ok(PgConnection { settings, client })
    }

    fn wait<T>(&self, work: impl std::future::Future<Output = Result<T, AdapterError>>) -> Result<T, AdapterError> {
        runtime()?.block_on(work)
    }
}

fn query_error(err: &tokio_postgres::Error) -> AdapterError {
    match err.as_db_error() {
        Some(db) => {
            let kind = if *db.code() == tokio_postgres::error::SqlState::QUERY_CANCELED {
                AdapterErrorKind::Interrupted
            } else {
                AdapterErrorKind::Query
            };
            let mut message = format!("Database Error: {}", db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            AdapterError::new(kind, message)
        }
        None => AdapterError::new(AdapterErrorKind::Query, format!("PostgreSQL: {err}")),
    }
}

/// `copy ... from stdin` statements of a plan carry their CSV rows after the first line.
fn split_copy(sql: &str) -> Option<(&str, &str)> {
    let (head, data) = sql.split_once('\n')?;
    let lower = head.to_ascii_lowercase();
    (lower.starts_with("copy ") && lower.contains(" from stdin")).then_some((head, data))
}

/// Runs one statement (or a `;`-separated batch, as hooks may hold) and counts its rows.
async fn execute_on(client: &Client, sql: &str) -> Result<ExecResult, AdapterError> {
    if let Some((copy, data)) = split_copy(sql) {
        let sink = client.copy_in::<_, bytes::Bytes>(copy).await.map_err(|e| query_error(&e))?;
        pin_mut!(sink);
        sink.send(bytes::Bytes::copy_from_slice(data.as_bytes())).await.map_err(|e| query_error(&e))?;
        let rows = sink.finish().await.map_err(|e| query_error(&e))?;
        return Ok(ExecResult { rows_affected: Some(rows) });
    }
    let messages = client.simple_query(sql).await.map_err(|e| query_error(&e))?;
    let rows = messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    Ok(ExecResult { rows_affected: rows })
}

/// A query's rows as JSON: the statement is described first for its column types, then run in
/// the text protocol, and each value converted by its column's type.
async fn query_on(client: &Client, sql: &str) -> Result<Rows, AdapterError> {
    let statement = client.prepare(sql).await.map_err(|e| query_error(&e))?;
    let types: Vec<Type> = statement.columns().iter().map(|c| c.type_().clone()).collect();
    let columns = statement.columns().iter().map(|c| (c.name().to_string(), c.type_().name().to_string())).collect();
    let messages = client.simple_query(sql).await.map_err(|e| query_error(&e))?;
    let mut rows = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            let values = (0..row.len()).map(|i| to_json(row.get(i), types.get(i).unwrap_or(&Type::TEXT))).collect();
            rows.push(values);
        }
    }
    Ok(Rows { columns, rows })
}

/// A text value of `ty` as JSON: numbers and booleans typed, the rest as PostgreSQL writes them.
fn to_json(text: Option<&str>, ty: &Type) -> Value {
    let Some(text) = text else { return Value::Null };
    match *ty {
        Type::BOOL => Value::Bool(text == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => text.parse::<i64>().map_or_else(|_| Value::String(text.into()), Value::from),
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => {
            text.parse::<f64>().ok().and_then(Number::from_f64).map_or_else(|| Value::String(text.into()), Value::Number)
        }
        Type::JSON | Type::JSONB => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
        _ => Value::String(text.into()),
    }
}

const LIST_RELATIONS: &str = "select current_database(), n.nspname, c.relname, c.relkind in ('v', 'm') \
     from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
     where c.relkind in ('r', 'p', 'v', 'm', 'f') \
       and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'";

impl Connection for PgConnection {
    fn execute(&mut self, sql: &str) -> Result<ExecResult, AdapterError> {
        self.wait(execute_on(&self.client, sql))
    }

    fn query(&mut self, sql: &str) -> Result<Rows, AdapterError> {
        self.wait(query_on(&self.client, sql))
    }

    fn relation_type(&mut self, relation: &Relation) -> Result<Option<RelationType>, AdapterError> {
        let sql = format!(
            "select c.relkind in ('v', 'm') from pg_catalog.pg_class c join pg_catalog.pg_namespace n \
             on n.oid = c.relnamespace where n.nspname = {} and c.relname = {} and c.relkind in ('r', 'p', 'v', 'm', 'f')",
            literal(&relation.schema),
            literal(&relation.identifier)
        );
        let rows = self.query(&sql)?;
        Ok(rows
            .rows
            .first()
            .and_then(|r| r.first())
            .map(|is_view| if is_view.as_bool() == Some(true) { RelationType::View } else { RelationType::Table }))
    }

    fn list_relations(&mut self) -> Result<Option<Vec<(Relation, RelationType)>>, AdapterError> {
        let rows = self.query(LIST_RELATIONS)?;
        Ok(Some(super::listed_relations(&rows, |is_view| is_view.as_bool() == Some(true))))
    }

    fn interrupt_handle(&self) -> Arc<dyn Interrupt + Send + Sync> {
        let slot = CancelSlot::default();
        slot.set(&self.client, self.settings.tls.as_ref());
        Arc::new(slot)
    }

    fn try_clone(&self) -> Result<Box<dyn Connection>, AdapterError> {
        let client = runtime()?.block_on(self.settings.open())?;
        Ok(Box::new(PgConnection { settings: self.settings.clone(), client }))
    }

    fn rollback(&mut self) -> Result<(), AdapterError> {
        // Outside a transaction PostgreSQL only warns.
        self.wait(async { self.client.batch_execute("rollback").await.map_err(|e| query_error(&e)) })
    }

    fn submitter(&self, max_in_flight: usize) -> Option<Arc<dyn Submit>> {
        Some(Arc::new(PgSubmitter {
            settings: self.settings.clone(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
        }))
    }
}

/// A session's cancel token, and the TLS its cancel request goes over.
type Canceller = (tokio_postgres::CancelToken, Option<MakeRustlsConnect>);

/// Sends a cancel request for whatever the session runs — the server stops the query, which
/// then fails with `query_canceled` — or, before a session is attached, marks it cancelled.
#[derive(Clone, Default)]
struct CancelSlot {
    token: Arc<Mutex<Option<Canceller>>>,
    cancelled: Arc<AtomicBool>,
}

impl CancelSlot {
    fn set(&self, client: &Client, tls: Option<&MakeRustlsConnect>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some((client.cancel_token(), tls.cloned()));
    }

    fn clear(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Interrupt for CancelSlot {
    fn interrupt(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let token = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let (Some((token, tls)), Ok(rt)) = (token, runtime()) {
            // The request goes out on its own connection to the server (encrypted as the
            // session is); wait for it so that a process exiting right after (SIGINT) sent it.
            let send = async move {
                let limit = Duration::from_secs(5);
                let _ = match tls {
                    Some(tls) => tokio::time::timeout(limit, token.cancel_query(tls)).await,
                    None => tokio::time::timeout(limit, token.cancel_query(NoTls)).await,
                };
            };
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.spawn(send);
            } else {
                rt.block_on(send);
            }
        }
    }
}

/// Deferred mode: statement lists submitted to the shared runtime, at most `max_in_flight` at a
/// time, each on a pooled session; no thread waits for the server.
pub struct PgSubmitter {
    settings: Arc<Settings>,
    idle: Arc<Mutex<Vec<Client>>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Submit for PgSubmitter {
    fn submit(
        &self,
        statements: Vec<String>,
        query_last: bool,
        done: Box<dyn FnOnce(Result<Submitted, AdapterError>) + Send>,
    ) -> Arc<dyn Interrupt + Send + Sync> {
        let slot = CancelSlot::default();
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(err) => {
                done(Err(err));
                return Arc::new(slot);
            }
        };
        let (settings, idle, permits, handle) = (self.settings.clone(), self.idle.clone(), self.permits.clone(), slot.clone());
        rt.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let client = match pooled {
                Some(client) if !client.is_closed() => client,
                _ => match settings.open().await {
                    Ok(client) => client,
                    Err(err) => return done(Err(err)),
                },
            };
            handle.set(&client, settings.tls.as_ref());
            let result = if handle.is_cancelled() {
                Err(AdapterError::new(AdapterErrorKind::Interrupted, "cancelled before it started"))
            } else {
                run_list(&client, &statements, query_last).await
            };
            handle.clear();
            if result.is_err() {
                let _ = client.batch_execute("rollback").await;
            }
            if !client.is_closed() {
                idle.lock().unwrap_or_else(|e| e.into_inner()).push(client);
            }
            done(result);
        });
        Arc::new(slot)
    }
}

async fn run_list(client: &Client, statements: &[String], query_last: bool) -> Result<Submitted, AdapterError> {
    let mut out = Submitted::default();
    for (i, sql) in statements.iter().enumerate() {
        if query_last && i + 1 == statements.len() {
            out.rows = Some(query_on(client, sql).await?);
        } else {
            let result = execute_on(client, sql).await?;
            out.rows_affected = result.rows_affected.or(out.rows_affected);
        }
    }
    Ok(out)
}

/// The TLS client of a target: with `verify`, the server's certificate is checked against
/// `root_cert` (a PEM file) or the system's roots; without, any certificate is accepted, as
/// libpq does for `prefer` and `require`.
fn tls_config(verify: bool, root_cert: Option<&str>, target: &str) -> Result<MakeRustlsConnect, AdapterError> {
    crate::store::install_crypto();
    let bad = |what: String| {
        AdapterError::new(AdapterErrorKind::Config, format!("target `{target}`: {what}"))
            .with_help("check the target's sslmode and sslrootcert")
    };
    let config = match (verify, root_cert) {
        (true, Some(path)) => {
            use rustls::pki_types::pem::PemObject as _;
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read sslrootcert `{path}`: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(format!("sslrootcert `{path}` is not PEM: {e}")))?;
                roots.add(cert).map_err(|e| bad(format!("sslrootcert `{path}`: {e}")))?;
            }
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
        }
        (true, None) => {
            use rustls_platform_verifier::ConfigVerifierExt as _;
            rustls::ClientConfig::with_platform_verifier().map_err(|e| bad(format!("cannot load the system's certificates: {e}")))?
        }
        (false, _) => {
            rustls::ClientConfig::builder().dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate)).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `prefer` / `require`: encryption without authenticating the server (libpq's semantics);
/// signatures are still checked, so the session key is the certificate holder's.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &signature_algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &signature_algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        signature_algorithms().supported_schemes()
    }
}

/// The signature checks of ring, the one crypto provider orrery builds rustls with.
fn signature_algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}
