//! The ingest writer's connection: stores batches of pageviews from a plain thread, one transaction
//! per batch.
//!
//! On SQLite it is a `rusqlite` connection of its own, used only by the writer's thread. Through the
//! pool, every statement is a round trip to the connection's sqlx worker thread (a wake-up there and
//! one back), and the batch had to travel as JSON to fit one statement; on a 2-core machine those
//! hops, not SQLite, set how often a batch can commit. Here the writer thread calls SQLite itself: a
//! cached prepared INSERT, one execution per row, inside one transaction. Same file, same pragmas
//! ([`Dialect::connect_statements`]), same durability: `Ok` means committed.
//! On PostgreSQL the batch goes through the pool (one statement over a JSON array), driven to
//! completion on the writer's thread.
//!
//! The statement's CLIENT span is on the telemetry fast lane (`telemetry::lane`), a child of the
//! writer's `ingest_batch` span, with a span link to each request whose row it stores.

use super::dialect::{Dialect, sqlite_code_is_unavailable};
use super::{NewPageview, Store, StoreError};
use crate::telemetry::lane::{Kind, LaneSpan, Name, SpanRef};
use crate::telemetry::names;

/// Why a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The database can't take writes now (locked, unreachable, disk full, read-only): retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused these rows (e.g. a foreign key: the site was just deleted).
    #[error("rows refused: {0}")]
    Refused(String),
}

impl From<StoreError> for InsertError {
    fn from(err: StoreError) -> Self {
        let unavailable = matches!(err, StoreError::Unavailable(_));
        let message = format!("{:#}", anyhow::Error::from(err));
        if unavailable { InsertError::Unavailable(message) } else { InsertError::Refused(message) }
    }
}

/// Stores batches of pageviews. Blocking: run it on a thread of its own, never on the async runtime.
pub enum PageviewInserter {
    Sqlite {
        store: Store,
        conn: Box<rusqlite::Connection>,
    },
    /// `conn` is the writer's own connection, taken from the pool at its first batch and kept (a
    /// pool acquire per batch pinged the server first: a round trip and server CPU per commit);
    /// dropped after a failed batch, so the next one starts on a tested connection.
    Pool {
        store: Store,
        runtime: tokio::runtime::Handle,
        conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    },
}

const SQLITE_INSERT: &str = "INSERT INTO pageviews (site_id, created_at, url, path, referrer, referrer_domain, \
     utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, \
     country, is_bot, visitor_id, visitor_id_prev) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

impl Store {
    /// A connection for the ingest writer's thread (see the module docs). Call from async code:
    /// the PostgreSQL variant keeps a handle to the current runtime.
    pub fn pageview_inserter(&self) -> Result<PageviewInserter, InsertError> {
        match (&self.sqlite_file, self.dialect) {
            (Some(file), Dialect::Sqlite) => {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = rusqlite::Connection::open_with_flags(&file.path, flags).map_err(from_rusqlite)?;
                for pragma in Dialect::Sqlite.connect_statements(file.sync) {
                    conn.execute_batch(pragma).map_err(from_rusqlite)?;
                }
                // Appends touch only the right edge of two b-trees: a small page cache is enough.
                conn.execute_batch("PRAGMA cache_size = -512").map_err(from_rusqlite)?;
                Ok(PageviewInserter::Sqlite { store: self.clone(), conn: Box::new(conn) })
            }
            _ => Ok(PageviewInserter::Pool {
                store: self.clone(),
                runtime: tokio::runtime::Handle::current(),
                conn: None,
            }),
        }
    }
}

impl PageviewInserter {
    /// Stores `rows` in one transaction: all durable on `Ok`, none on `Err`. The INSERT's span, a
    /// child of `parent` (the batch's), links to each of `requests` (the spans of the requests whose
    /// rows these are).
    pub fn insert(
        &mut self,
        rows: &[&NewPageview],
        requests: &[SpanRef],
        parent: Option<SpanRef>,
    ) -> Result<(), InsertError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (dialect, sql) = match self {
            PageviewInserter::Pool { store, .. } => (store.dialect, store.dialect.insert_pageviews_sql()),
            PageviewInserter::Sqlite { .. } => (Dialect::Sqlite, SQLITE_INSERT),
        };
        let mut span = LaneSpan::child_of(parent, Name::Static("INSERT pageviews"), Kind::Client);
        span.set_str(names::DB_SYSTEM_NAME, dialect.system_name());
        span.set_str(names::DB_OPERATION_NAME, "INSERT");
        span.set_str(names::DB_COLLECTION_NAME, "pageviews");
        span.set_str(names::DB_QUERY_TEXT, sql);
        for request in requests {
            span.link(*request);
        }
        match self {
            PageviewInserter::Pool { store, runtime, conn } => {
                let result = runtime.block_on(async {
                    if conn.is_none() {
                        *conn = Some(store.pool.acquire().await?);
                    }
                    let held = conn.as_mut().expect("just set");
                    store.insert_pageviews_on(held, rows).await
                });
                if result.is_err() {
                    *conn = None;
                }
                result.map_err(|err| {
                    let kind = super::error_type(&err);
                    span.set_str(names::ERROR_TYPE, kind);
                    span.error(kind, &err.to_string());
                    InsertError::from(StoreError::from(err))
                })
            }
            PageviewInserter::Sqlite { conn, .. } => insert_sqlite(conn, rows).map_err(|err| {
                span.set_str(names::ERROR_TYPE, "database");
                span.error("database", &err.to_string());
                from_rusqlite(err)
            }),
        }
    }
}

fn insert_sqlite(conn: &mut rusqlite::Connection, rows: &[&NewPageview]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(SQLITE_INSERT)?;
        for row in rows {
            insert.execute(rusqlite::params![
                row.site_id,
                row.created_at,
                row.url,
                row.path,
                row.referrer,
                row.referrer_domain,
                row.utm_source,
                row.utm_medium,
                row.utm_campaign,
                row.utm_term,
                row.utm_content,
                row.browser,
                row.browser_version,
                row.os,
                row.device_type,
                row.country,
                i64::from(row.is_bot),
                row.visitor_id,
                row.visitor_id_prev,
            ])?;
        }
    }
    tx.commit()
}

fn from_rusqlite(err: rusqlite::Error) -> InsertError {
    let message = err.to_string();
    match &err {
        rusqlite::Error::SqliteFailure(failure, _) if sqlite_code_is_unavailable(failure.extended_code) => {
            InsertError::Unavailable(message)
        }
        rusqlite::Error::SqliteFailure(..) => InsertError::Refused(message),
        _ => InsertError::Unavailable(message),
    }
}
