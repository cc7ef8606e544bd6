//! Store: every byte Squirrel Stats keeps, behind one interface for SQLite and PostgreSQL.
//!
//! Owns the connection pool, the migrations and all SQL. Nothing outside this module writes SQL or asks
//! which backend it runs on; the few real differences live in [`dialect`], and the hourly pass
//! (`pass`) on SQLite talks to the file through SQLite's C API (`sqlite_direct`) instead of the pool.
//! Times are epoch milliseconds (UTC) and booleans are 0/1, the two representations `sqlx::Any`
//! decodes alike on both backends. Every statement runs inside a CLIENT span made by [`Store::span`],
//! named and attributed per the OpenTelemetry database conventions, with the statement text
//! (placeholders only, never values); a statement the pass runs once per row has one span per batch.

mod auth;
mod checkpoint;
mod dialect;
mod inserter;
mod pageviews;
mod pass;
mod retention;
mod rollups;
mod salts;
mod sessions;
mod settings;
mod sites;
mod sqlite_direct;
mod stats;
mod users;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use auth::ApiToken;
pub use dialect::Dialect;
pub use inserter::{InsertError, PageviewInserter};
pub use pageviews::{NewPageview, StoredPageview};
pub use retention::PrunableSite;
pub use rollups::{DAY_MS, Grain, HOUR_MS, RollupCounts, RollupRow, SiteRef};
pub use sessions::{SESSION_TIMEOUT_MS, Session};
pub use sites::{Site, SiteSummary};
pub use stats::{BreakdownRow, BreakdownSource, BucketCounts, DIMENSIONS, VisitTotals};
pub use users::User;

use crate::config::{SqliteSync, StoreConfig};

/// A failed store operation. `Unavailable` means "try again later" (pool exhausted, connection lost,
/// database locked past the busy timeout, disk full, server restarting); everything else is a bug or
/// a constraint the caller broke.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Unavailable(err),
            sqlx::Error::Database(db) if Dialect::is_unavailable(db.as_ref()) => StoreError::Unavailable(err),
            _ => StoreError::Database(err),
        }
    }
}

/// The shared handle to the database. Cheap to clone (the pool is reference-counted).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the file and its durability, for the connections of the ingest writer
    /// ([`PageviewInserter`]) and of the hourly pass, which bypass the pool.
    sqlite_file: Option<SqliteFile>,
    /// PostgreSQL only: how to open the ingest writer's own connection, outside the pool.
    postgres: Option<PostgresOptions>,
}

/// How to connect to PostgreSQL. Its `Debug` leaves the options out: they hold the password.
#[derive(Clone)]
pub(crate) struct PostgresOptions(pub sqlx::postgres::PgConnectOptions);

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresOptions { .. }")
    }
}

/// Where a SQLite database lives, for connections opened outside the pool.
#[derive(Debug, Clone)]
pub(crate) struct SqliteFile {
    pub path: PathBuf,
    pub sync: SqliteSync,
}

static INSTALL_DRIVERS: Once = Once::new();

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        INSTALL_DRIVERS.call_once(|| {
            sqlite_direct::disable_memory_statistics();
            sqlx::any::install_default_drivers();
        });
        let dialect =
            Dialect::from_url(&config.database_url).expect("config validation accepts only sqlite and postgres URLs");
        let url = dialect.normalize_url(&config.database_url);
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let sync = config.sqlite_sync;
        let pool = AnyPoolOptions::new()
            .max_connections(dialect.pool_size())
            .test_before_acquire(dialect.test_before_acquire())
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for pragma in dialect.connect_statements(sync) {
                        conn.execute(*pragma).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let sqlite_file = match dialect {
            Dialect::Sqlite => Some(SqliteFile {
                path: sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.get_filename().to_path_buf(),
                sync,
            }),
            Dialect::Postgres => None,
        };
        let postgres = match dialect {
            Dialect::Postgres => Some(PostgresOptions(
                sqlx::postgres::PgConnectOptions::from_str(&url)?
                    .application_name(inserter::POSTGRES_APPLICATION_NAME)
                    .log_statements(tracing::log::LevelFilter::Trace)
                    .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1)),
            )),
            Dialect::Sqlite => None,
        };
        let store = Store { pool, dialect, sqlite_file, postgres };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Dialect::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Cheap liveness probe for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let sql = "SELECT 1";
        traced(self.span("SELECT", "", sql), sqlx::query(sql).execute(&self.pool)).await?;
        Ok(())
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The CLIENT span for one statement, per the OpenTelemetry database semantic conventions.
    pub(crate) fn span(&self, operation: &'static str, table: &'static str, sql: &str) -> tracing::Span {
        tracing::info_span!(
            "db",
            otel.name = %StatementName { operation, table },
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = self.dialect.system_name(),
            db.operation.name = operation,
            db.collection.name = table,
            db.query.text = sql,
            error.type = tracing::field::Empty,
        )
    }
}

/// `INSERT pageviews` (or just `SELECT` without a table), formatted only when a span is recorded.
struct StatementName {
    operation: &'static str,
    table: &'static str,
}

impl std::fmt::Display for StatementName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.table.is_empty() { f.write_str(self.operation) } else { write!(f, "{} {}", self.operation, self.table) }
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Rows as the one JSON array a batch statement takes as its single parameter (see `dialect`).
pub(crate) fn json_batch<T: serde::Serialize>(rows: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|err| sqlx::Error::Encode(Box::new(err)))
}

/// Runs one statement inside its span and marks the span failed when the statement fails.
pub(crate) async fn traced<T>(
    span: tracing::Span,
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    let result = tracing::Instrument::instrument(statement, span.clone()).await;
    if let Err(err) = &result {
        // sqlx's message names the failure (constraint, timeout), never a bound value or the URL.
        mark_failed(&span, error_type(err), &err.to_string());
    }
    result.map_err(StoreError::from)
}

/// Marks a statement's span failed: status ERROR, `error.type`, and an `exception` event.
pub(crate) fn mark_failed(span: &tracing::Span, kind: &'static str, message: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
    crate::telemetry::record_error(span, kind, message);
}

/// [`traced`] for work that does not go through sqlx (the hourly pass on SQLite): runs `work` inside
/// `span` and marks the span failed when it fails.
pub(crate) fn traced_sync<T>(
    span: tracing::Span,
    work: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = span.in_scope(work);
    if let Err(err) = &result {
        let (kind, message) = match err {
            StoreError::Database(inner) | StoreError::Unavailable(inner) => (error_type(inner), inner.to_string()),
            other => ("other", other.to_string()),
        };
        mark_failed(&span, kind, &message);
    }
    result
}

pub(super) fn error_type(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::RowNotFound => "row_not_found",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_options_never_show_their_password() {
        let options =
            sqlx::postgres::PgConnectOptions::from_str("postgres://squirrel:s3cret-pw@db.internal:5432/stats").unwrap();
        let shown = format!("{:?}", PostgresOptions(options));
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }
}
