//! The pass on SQLite: its own connection through the C API (`store::sqlite_direct`), run on a
//! blocking thread. With more than one window, a second connection on another thread reads the next
//! windows' chunks while this one writes, outside the write lock ([`PassIo::unchanged`] tells the
//! pass whether those reads still hold: `PRAGMA data_version`, nobody else committed since), and
//! checkpoints the WAL now and then, which the writer's commits would otherwise stop for.

use std::path::Path;
use std::sync::LazyLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::super::retention::{PRUNED_BEFORE, READ_SETTING};
use super::super::rollups::{Grain, RollupCounts};
use super::super::sessions::{LONGEST_LOOKBACK_MS, SESSION_BOUNDS, SESSION_TIMEOUT_MS, STORED_SESSIONS, Session};
use super::super::sqlite_direct::{Db, Stmt, Value, values_sql};
use super::super::{Store, StoreError, traced_sync};
use super::{
    Ahead, BucketRow, Chunk, DELETE_SESSION, DELETE_STAGED, PassIo, RowTable, SCAN, SESSION_CONFLICT, SESSION_INSERT,
    SIGNATURE, Signature, UPSERT_DAY, UPSERT_HOUR, UPSERT_STAGED, Writes, ahead_ranges,
};
use crate::config::SqliteSync;

/// Chunks the reader may have ready before the writer takes them.
const READ_AHEAD: usize = 2;

/// The reader checkpoints the WAL (copies it into the database file) after this many chunks, so the
/// writer, which would otherwise do it inside a commit, never waits for it.
const CHECKPOINT_EVERY: usize = 16;

/// What the pool's connections (and this one, once the reader is done) checkpoint at.
const AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 16384";

/// Sessions written per statement: one step writes many rows, so the statement's fixed cost (cursors,
/// the descent from the root, ending the statement) is paid once per batch.
const SESSION_BATCH: usize = 64;
const SESSION_COLUMNS: usize = 13;
static UPSERT_SESSION: LazyLock<String> =
    LazyLock::new(|| values_sql(SESSION_INSERT, SESSION_COLUMNS, 1, SESSION_CONFLICT));
static UPSERT_SESSIONS: LazyLock<String> =
    LazyLock::new(|| values_sql(SESSION_INSERT, SESSION_COLUMNS, SESSION_BATCH, SESSION_CONFLICT));

pub(in crate::store) struct SqliteIo {
    store: Store,
    site_id: i64,
    db: Db,
    /// `data_version` when the pass began.
    version: i64,
    ahead: Option<Receiver<Result<Chunk, StoreError>>>,
    /// A chunk taken from `ahead` that no window has asked for yet.
    pending: Option<Chunk>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SqliteIo {
    /// Opens the pass's connection to `path`; with more than one window in `ahead` (the hourly
    /// windows the pass will run), starts the reader.
    pub(in crate::store) fn open(
        store: &Store,
        path: &Path,
        sync: SqliteSync,
        site_id: i64,
        ahead: &[(i64, i64)],
    ) -> Result<SqliteIo, StoreError> {
        let mut db = Db::open(path, sync)?;
        let version = db.data_version()?;
        let mut io = SqliteIo { store: store.clone(), site_id, db, version, ahead: None, pending: None, reader: None };
        if let [(first, _), _, ..] = *ahead {
            let open =
                session_bounds(&mut io.db, site_id, first - LONGEST_LOOKBACK_MS, first, first - SESSION_TIMEOUT_MS)?;
            let ranges = ahead_ranges(open, ahead);
            let reader = Db::open(path, sync)?;
            io.db.exec("PRAGMA wal_autocheckpoint = 0")?; // the reader checkpoints
            let (send, receive) = sync_channel(READ_AHEAD);
            let (store, parent) = (store.clone(), tracing::Span::current());
            io.reader = Some(std::thread::spawn(move || {
                let _entered = parent.enter();
                read_ahead(&store, reader, site_id, &ranges, &send);
            }));
            io.ahead = Some(receive);
        }
        Ok(io)
    }
}

/// The reader thread: each range's chunk in turn, until the pass stops listening.
fn read_ahead(
    store: &Store,
    mut db: Db,
    site_id: i64,
    ranges: &[(i64, i64)],
    send: &SyncSender<Result<Chunk, StoreError>>,
) {
    for (at, &(from, to)) in ranges.iter().enumerate() {
        let chunk = traced_sync(store.span("SELECT", "pageviews", SCAN), || scan(&mut db, site_id, from, to));
        let failed = chunk.is_err();
        if send.send(chunk).is_err() || failed {
            return;
        }
        if (at + 1) % CHECKPOINT_EVERY == 0 {
            // PASSIVE: copies what no reader still needs, never waits for the writer. A failure
            // leaves the copy to the next checkpoint.
            let sql = "PRAGMA wal_checkpoint(PASSIVE)";
            let _ = traced_sync(store.span("PRAGMA", "", sql), || db.exec(sql));
        }
    }
}

impl Drop for SqliteIo {
    fn drop(&mut self) {
        // Dropping the receiver stops the reader at its next chunk.
        self.ahead = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn scan(db: &mut Db, site_id: i64, from: i64, to: i64) -> Result<Chunk, StoreError> {
    let stmt = db.stmt(SCAN)?;
    stmt.bind_int(1, site_id)?.bind_int(2, from)?.bind_int(3, to)?;
    let mut chunk = Chunk::new(from, to);
    while stmt.step()? {
        chunk.push(
            stmt.int(0),
            stmt.int(1),
            stmt.int(2),
            stmt.opt_int(3),
            stmt.int(4) != 0,
            &stmt.text(5),
            &stmt.text(6),
            &stmt.text(7),
        );
    }
    Ok(chunk)
}

fn session_bounds(db: &mut Db, site_id: i64, from: i64, to: i64, open_at: i64) -> Result<Option<i64>, StoreError> {
    db.stmt(SESSION_BOUNDS)?.bind_int(1, site_id)?.bind_int(2, from)?.bind_int(3, to)?.bind_int(4, open_at)?.one_int()
}

/// A session's values in the column order of [`SESSION_INSERT`].
fn session_values<'a>(s: &'a Session, out: &mut Vec<Value<'a>>) {
    out.extend([
        Value::Int(s.id),
        Value::Int(s.site_id),
        Value::Int(s.visitor_id),
        Value::Int(s.started_at),
        Value::Int(s.last_seen_at),
        Value::Int(s.pageview_count),
        Value::Int(i64::from(s.is_bounce)),
        Value::Int(s.duration_ms),
        Value::Text(&s.entry_page),
        Value::Text(&s.exit_page),
        Value::Text(&s.referrer),
        Value::Text(&s.referrer_domain),
        Value::Text(&s.later_visitor_ids),
    ]);
}

fn bind_row(stmt: &mut Stmt, site_id: i64, row: &BucketRow) -> Result<(), StoreError> {
    stmt.bind_int(1, site_id)?
        .bind_int(2, row.bucket)?
        .bind_int(3, row.pageview_count)?
        .bind_int(4, row.unique_session_count)?
        .bind_int(5, row.raw_count)?
        .bind_int(6, row.raw_max_id)?;
    Ok(())
}

impl PassIo for SqliteIo {
    async fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock up front (see `Dialect::begin_write_sql`).
        traced_sync(self.store.span("BEGIN", "", "BEGIN IMMEDIATE"), || self.db.exec("BEGIN IMMEDIATE"))
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        traced_sync(self.store.span("COMMIT", "", "COMMIT"), || self.db.exec("COMMIT"))
    }

    async fn rollback(&mut self) {
        let _ = self.db.exec("ROLLBACK");
    }

    async fn pruned_before(&mut self) -> Result<Option<i64>, StoreError> {
        traced_sync(self.store.span("SELECT", "settings", READ_SETTING), || {
            let stmt = self.db.stmt(READ_SETTING)?;
            stmt.bind_text(1, PRUNED_BEFORE)?;
            let value = if stmt.step()? { stmt.text(0).parse().ok() } else { None };
            stmt.reset();
            Ok(value)
        })
    }

    async fn session_bounds(&mut self, from: i64, to: i64, open_at: i64) -> Result<Option<i64>, StoreError> {
        traced_sync(self.store.span("SELECT", "sessions", SESSION_BOUNDS), || {
            session_bounds(&mut self.db, self.site_id, from, to, open_at)
        })
    }

    async fn scan(&mut self, from: i64, to: i64) -> Result<Chunk, StoreError> {
        traced_sync(self.store.span("SELECT", "pageviews", SCAN), || scan(&mut self.db, self.site_id, from, to))
    }

    async fn read_ahead(&mut self, from: i64, to: i64) -> Result<Option<Chunk>, StoreError> {
        loop {
            if self.pending.is_none() {
                let Some(ahead) = &self.ahead else { return Ok(None) };
                self.pending = match ahead.recv() {
                    Ok(Ok(chunk)) => Some(chunk),
                    // A failed or finished reader: the pass reads under the lock instead, and
                    // checkpoints as the pool's connections do.
                    Ok(Err(_)) | Err(_) => {
                        self.ahead = None;
                        self.db.exec(AUTOCHECKPOINT)?;
                        return Ok(None);
                    }
                };
            }
            match Ahead::of(self.pending.as_ref().expect("taken above"), from, to) {
                Ahead::Take => return Ok(self.pending.take()),
                Ahead::Drop => self.pending = None,
                Ahead::Keep => return Ok(None),
            }
        }
    }

    async fn unchanged(&mut self) -> Result<bool, StoreError> {
        Ok(self.db.data_version()? == self.version)
    }

    async fn signature(&mut self, from: i64, to: i64) -> Result<Signature, StoreError> {
        traced_sync(self.store.span("SELECT", "pageviews", SIGNATURE), || {
            let stmt = self.db.stmt(SIGNATURE)?;
            stmt.bind_int(1, self.site_id)?.bind_int(2, from)?.bind_int(3, to)?;
            let signature =
                if stmt.step()? { Signature { count: stmt.int(0), max_id: stmt.int(1) } } else { Signature::default() };
            stmt.reset();
            Ok(signature)
        })
    }

    async fn stored_sessions(&mut self, from: i64, to: i64) -> Result<Vec<Session>, StoreError> {
        traced_sync(self.store.span("SELECT", "sessions", STORED_SESSIONS), || {
            let stmt = self.db.stmt(STORED_SESSIONS)?;
            stmt.bind_int(1, self.site_id)?.bind_int(2, from)?.bind_int(3, to)?;
            let mut sessions = Vec::new();
            while stmt.step()? {
                sessions.push(Session {
                    id: stmt.int(0),
                    site_id: stmt.int(1),
                    visitor_id: stmt.int(2),
                    started_at: stmt.int(3),
                    last_seen_at: stmt.int(4),
                    pageview_count: stmt.int(5),
                    is_bounce: stmt.int(6) != 0,
                    duration_ms: stmt.int(7),
                    entry_page: stmt.text(8).into_owned(),
                    exit_page: stmt.text(9).into_owned(),
                    referrer: stmt.text(10).into_owned(),
                    referrer_domain: stmt.text(11).into_owned(),
                    later_visitor_ids: stmt.text(12).into_owned(),
                });
            }
            Ok(sessions)
        })
    }

    async fn stored_rows(&mut self, table: RowTable, from: i64, to: i64) -> Result<Vec<BucketRow>, StoreError> {
        let sql = table.select();
        traced_sync(self.store.span("SELECT", table.name(), sql), || {
            let stmt = self.db.stmt(sql)?;
            stmt.bind_int(1, self.site_id)?.bind_int(2, from)?.bind_int(3, to)?;
            let mut rows = Vec::new();
            while stmt.step()? {
                rows.push(BucketRow {
                    bucket: stmt.int(0),
                    pageview_count: stmt.int(1),
                    unique_session_count: stmt.int(2),
                    raw_count: stmt.int(3),
                    raw_max_id: stmt.int(4),
                });
            }
            Ok(rows)
        })
    }

    async fn apply(&mut self, writes: &Writes<'_>, now: i64) -> Result<(), StoreError> {
        let db = &mut self.db;
        let site_id = writes.site_id;
        if !writes.sessions.is_empty() {
            traced_sync(self.store.span("INSERT", "sessions", UPSERT_SESSIONS.as_str()), || {
                let mut values = Vec::with_capacity(SESSION_BATCH * SESSION_COLUMNS);
                for batch in writes.sessions.chunks(SESSION_BATCH) {
                    values.clear();
                    batch.iter().for_each(|session| session_values(session, &mut values));
                    let sql =
                        if batch.len() == SESSION_BATCH { UPSERT_SESSIONS.as_str() } else { UPSERT_SESSION.as_str() };
                    if batch.len() == SESSION_BATCH {
                        db.stmt(sql)?.run_values(&values)?;
                    } else {
                        for one in values.chunks(SESSION_COLUMNS) {
                            db.stmt(sql)?.run_values(one)?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        if !writes.deleted_sessions.is_empty() {
            traced_sync(self.store.span("DELETE", "sessions", DELETE_SESSION), || {
                let stmt = db.stmt(DELETE_SESSION)?;
                for &id in &writes.deleted_sessions {
                    stmt.bind_int(1, site_id)?.bind_int(2, id)?.run()?;
                }
                Ok(())
            })?;
        }
        if !writes.hours.is_empty() {
            traced_sync(self.store.span("INSERT", "hourly_stats", UPSERT_HOUR), || {
                let stmt = db.stmt(UPSERT_HOUR)?;
                for row in &writes.hours {
                    bind_row(stmt, site_id, row)?;
                    stmt.bind_int(7, now)?.run()?;
                }
                Ok(())
            })?;
        }
        if !writes.days.is_empty() {
            traced_sync(self.store.span("INSERT", "daily_stats_staged", UPSERT_STAGED), || {
                let stmt = db.stmt(UPSERT_STAGED)?;
                for row in &writes.days {
                    bind_row(stmt, site_id, row)?;
                    stmt.run()?;
                }
                Ok(())
            })?;
        }
        if !writes.daily.is_empty() {
            traced_sync(self.store.span("INSERT", "daily_stats", UPSERT_DAY), || {
                let stmt = db.stmt(UPSERT_DAY)?;
                for row in &writes.daily {
                    bind_row(stmt, site_id, row)?;
                    stmt.bind_int(7, now)?.run()?;
                }
                Ok(())
            })?;
        }
        if !writes.deleted_days.is_empty() {
            traced_sync(self.store.span("DELETE", "daily_stats_staged", DELETE_STAGED), || {
                let stmt = db.stmt(DELETE_STAGED)?;
                for &day in &writes.deleted_days {
                    stmt.bind_int(1, site_id)?.bind_int(2, day)?.run()?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    async fn count_days_from_raw(&mut self, from: i64, to: i64) -> Result<RollupCounts, StoreError> {
        let sql = Grain::Day.sql();
        let site_id = self.site_id;
        let before = self.totals(from, to)?;
        let now = super::super::now_ms();
        let mut changed = 0;
        for statement in [sql.upsert, sql.zero_vanished] {
            let operation = if statement == sql.upsert { "INSERT" } else { "UPDATE" };
            let db = &mut self.db;
            changed += traced_sync(self.store.span(operation, sql.table, statement), || {
                db.stmt(statement)?
                    .bind_int(1, site_id)?
                    .bind_int(2, from)?
                    .bind_int(3, to)?
                    .bind_int(4, now)?
                    .run()?;
                Ok(db.changes())
            })?;
        }
        let after = self.totals(from, to)?;
        let created = after.0 - before.0;
        Ok(RollupCounts {
            created,
            updated: changed - created,
            processed: (after.1 - before.1).max(0),
            raw_rows: after.2,
        })
    }
}

impl SqliteIo {
    /// (rows, sum of pageview_count, sum of raw_count) of the site's daily rows in `[from, to)`.
    fn totals(&mut self, from: i64, to: i64) -> Result<(i64, i64, i64), StoreError> {
        let sql = Grain::Day.sql();
        let (db, site_id) = (&mut self.db, self.site_id);
        traced_sync(self.store.span("SELECT", sql.table, sql.totals), || {
            let stmt = db.stmt(sql.totals)?;
            stmt.bind_int(1, site_id)?.bind_int(2, from)?.bind_int(3, to)?;
            let totals = if stmt.step()? { (stmt.int(0), stmt.int(1), stmt.int(2)) } else { (0, 0, 0) };
            stmt.reset();
            Ok(totals)
        })
    }
}
