//! The ingest writer's connection: stores batches of pageviews from a plain thread, one transaction
//! per batch.
//!
//! On SQLite it is a `rusqlite` connection of its own, used only by the writer's thread. Through the
//! pool, every statement is a round trip to the connection's sqlx worker thread (a wake-up there and
//! one back), and the batch had to travel as JSON to fit one statement; on a 2-core machine those
//! hops, not SQLite, set how often a batch can commit. Here the writer thread calls SQLite itself: a
//! cached prepared INSERT, one execution per row, inside one transaction. Same file, same pragmas
//! ([`Dialect::connect_statements`]), same durability: `Ok` means committed.
//!
//! On PostgreSQL it is a connection of its own too, driven by a single-threaded Tokio runtime on the
//! writer's thread. Through the server's runtime, the reply to each commit waited until a busy
//! request worker next polled the I/O driver; here the thread that waits is the one that reads the
//! socket. The batch travels as one binary array per column (`INSERT … SELECT FROM UNNEST`): one
//! round trip and one autocommit transaction whatever its size, and no text to parse on the server.
//!
//! The statement's CLIENT span is on the telemetry fast lane (`telemetry::lane`), a child of the
//! writer's `ingest_batch` span, with a span link to each request whose row it stores.

use std::borrow::Borrow;
use std::time::{Duration, Instant};

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
    /// `conn` is opened at the first batch and kept; dropped after a failed batch, so the next one
    /// starts on a new connection. `runtime` is built on the writer's thread at that first batch.
    Postgres {
        options: sqlx::postgres::PgConnectOptions,
        runtime: Option<tokio::runtime::Runtime>,
        conn: Option<IdleConnection>,
    },
}

const SQLITE_INSERT: &str = "INSERT INTO pageviews (site_id, created_at, url, path, referrer, referrer_domain, \
     utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, \
     country, is_bot, visitor_id, visitor_id_prev) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

const POSTGRES_INSERT: &str = "INSERT INTO pageviews (site_id, created_at, url, path, referrer, referrer_domain, \
     utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, \
     country, is_bot, visitor_id, visitor_id_prev) \
     SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
     $16::text[], $17::int8[], $18::int8[], $19::int8[])";

/// How long the writer waits for a new PostgreSQL connection before failing the batch (503s).
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection unused for longer is pinged before its next batch: a server restart, an
/// administrator or a firewall may have ended it meanwhile, and its first batch would fail (503s).
/// Under steady traffic batches follow each other closely and no ping is paid.
const POSTGRES_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How the writer's connection shows in `pg_stat_activity`.
pub(super) const POSTGRES_APPLICATION_NAME: &str = "squirrel-ingest";

/// The writer's PostgreSQL connection and when its last batch ended.
pub struct IdleConnection {
    conn: sqlx::postgres::PgConnection,
    since: Instant,
}

impl Store {
    /// A connection for the ingest writer's thread (see the module docs).
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
            _ => Ok(PageviewInserter::Postgres {
                options: self.postgres.clone().expect("a store that is not SQLite is PostgreSQL").0,
                runtime: None,
                conn: None,
            }),
        }
    }
}

impl PageviewInserter {
    /// Stores `rows` in one transaction: all durable on `Ok`, none on `Err`. The INSERT's span, a
    /// child of `parent` (the batch's), links to each of `requests` (the spans of the requests whose
    /// rows these are).
    pub fn insert<R: Borrow<NewPageview>>(
        &mut self,
        rows: &[R],
        requests: impl IntoIterator<Item = SpanRef>,
        parent: Option<SpanRef>,
    ) -> Result<(), InsertError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (dialect, sql) = match self {
            PageviewInserter::Postgres { .. } => (Dialect::Postgres, POSTGRES_INSERT),
            PageviewInserter::Sqlite { .. } => (Dialect::Sqlite, SQLITE_INSERT),
        };
        let mut span = LaneSpan::child_of(parent, Name::Static("INSERT pageviews"), Kind::Client);
        span.set_str(names::DB_SYSTEM_NAME, dialect.system_name());
        span.set_str(names::DB_OPERATION_NAME, "INSERT");
        span.set_str(names::DB_COLLECTION_NAME, "pageviews");
        span.set_str(names::DB_QUERY_TEXT, sql);
        if span.is_recording() {
            span.reserve_links(rows.len());
            for request in requests {
                span.link(request);
            }
        }
        match self {
            PageviewInserter::Postgres { options, runtime, conn } => insert_postgres(options, runtime, conn, rows)
                .map_err(|err| {
                    let kind = super::error_type(&err);
                    span.set_str(names::ERROR_TYPE, kind);
                    span.error(kind, &err.to_string());
                    InsertError::from(StoreError::from(err))
                }),
            PageviewInserter::Sqlite { conn, .. } => insert_sqlite(conn, rows).map_err(|err| {
                span.set_str(names::ERROR_TYPE, "database");
                span.error("database", &err.to_string());
                from_rusqlite(err)
            }),
        }
    }
}

fn insert_sqlite<R: Borrow<NewPageview>>(conn: &mut rusqlite::Connection, rows: &[R]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(SQLITE_INSERT)?;
        for row in rows {
            let row = row.borrow();
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

/// One autocommit `INSERT … SELECT FROM UNNEST` on the writer's own connection, (re)opened as needed.
fn insert_postgres<R: Borrow<NewPageview>>(
    options: &sqlx::postgres::PgConnectOptions,
    runtime: &mut Option<tokio::runtime::Runtime>,
    conn: &mut Option<IdleConnection>,
    rows: &[R],
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    if runtime.is_none() {
        let built = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        *runtime = Some(built);
    }
    let runtime = runtime.as_ref().expect("just set");
    let result = runtime.block_on(async {
        if let Some(idle) = conn.as_mut()
            && idle.since.elapsed() > POSTGRES_PING_AFTER_IDLE
        {
            let alive = matches!(tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, idle.conn.ping()).await, Ok(Ok(())));
            if !alive {
                *conn = None;
            }
        }
        if conn.is_none() {
            let connect = sqlx::postgres::PgConnection::connect_with(options);
            let opened = tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, connect).await.map_err(|_| {
                let message = format!("no PostgreSQL connection within {POSTGRES_CONNECT_TIMEOUT:?}");
                sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
            })??;
            *conn = Some(IdleConnection { conn: opened, since: Instant::now() });
        }
        let held = &mut conn.as_mut().expect("just set").conn;
        let mut texts: [Vec<&str>; TEXT_COLUMNS] = Default::default();
        for row in rows {
            for (column, value) in texts.iter_mut().zip(text_columns(row.borrow())) {
                column.push(value);
            }
        }
        let ints = |column: fn(&NewPageview) -> i64| rows.iter().map(|row| column(row.borrow())).collect::<Vec<i64>>();
        let mut insert = sqlx::query(POSTGRES_INSERT).bind(ints(|row| row.site_id)).bind(ints(|row| row.created_at));
        for column in texts {
            insert = insert.bind(column);
        }
        insert
            .bind(ints(|row| i64::from(row.is_bot)))
            .bind(ints(|row| row.visitor_id))
            .bind(rows.iter().map(|row| row.borrow().visitor_id_prev).collect::<Vec<Option<i64>>>())
            .execute(held)
            .await
    });
    match (&result, conn.as_mut()) {
        (Ok(_), Some(idle)) => idle.since = Instant::now(),
        _ => *conn = None,
    }
    result.map(drop)
}

/// The text columns of `POSTGRES_INSERT` (`$3` … `$16`), in order.
const TEXT_COLUMNS: usize = 14;

fn text_columns(row: &NewPageview) -> [&str; TEXT_COLUMNS] {
    [
        &row.url,
        &row.path,
        &row.referrer,
        &row.referrer_domain,
        &row.utm_source,
        &row.utm_medium,
        &row.utm_campaign,
        &row.utm_term,
        &row.utm_content,
        &row.browser,
        &row.browser_version,
        &row.os,
        row.device_type,
        &row.country,
    ]
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
