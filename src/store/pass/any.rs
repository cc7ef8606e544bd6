//! The pass through sqlx (PostgreSQL): a window's chunk arrives as one JSON array in one value, and
//! each kind of write goes back as one JSON batch in one statement (`Dialect`'s pass statements), so
//! a window costs a handful of round trips however many rows it holds. With more than one window, a
//! task on another pool connection reads the next windows' chunks meanwhile; the pass checks each
//! against the database under the lock (same count and largest id) before using it.

use serde::Serialize;
use sqlx::Row;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::super::retention::{PRUNED_BEFORE, READ_SETTING};
use super::super::rollups::{Grain, RollupCounts};
use super::super::sessions::{LONGEST_LOOKBACK_MS, SESSION_BOUNDS, SESSION_TIMEOUT_MS, STORED_SESSIONS, Session};
use super::super::{Store, StoreError, json_batch, traced};
use super::{
    Ahead, BucketRow, Chunk, DELETE_STAGED, PassIo, RowTable, SIGNATURE, Signature, UPSERT_DAY, UPSERT_STAGED, Writes,
    ahead_ranges,
};

/// Chunks the reader may have ready before the pass takes them.
const READ_AHEAD: usize = 2;

pub(in crate::store) struct AnyIo<'s> {
    store: &'s Store,
    site_id: i64,
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    ahead: Option<mpsc::Receiver<Result<Chunk, StoreError>>>,
    /// A chunk taken from `ahead` that no window has asked for yet.
    pending: Option<Chunk>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl<'s> AnyIo<'s> {
    pub(in crate::store) fn new(store: &'s Store, site_id: i64) -> AnyIo<'s> {
        AnyIo { store, site_id, tx: None, ahead: None, pending: None, reader: None }
    }

    /// [`AnyIo::new`] with a reader for `ahead` (the hourly windows the pass will run), when there
    /// is more than one.
    pub(in crate::store) async fn reading_ahead(
        store: &'s Store,
        site_id: i64,
        ahead: &[(i64, i64)],
    ) -> Result<AnyIo<'s>, StoreError> {
        let mut io = AnyIo::new(store, site_id);
        if let [(first, _), _, ..] = *ahead {
            let span = store.span("SELECT", "sessions", SESSION_BOUNDS);
            let query = sqlx::query_scalar(SESSION_BOUNDS)
                .bind(site_id)
                .bind(first - LONGEST_LOOKBACK_MS)
                .bind(first)
                .bind(first - SESSION_TIMEOUT_MS);
            let open: Option<i64> = traced(span, query.fetch_one(&store.pool)).await?;
            let ranges = ahead_ranges(open, ahead);
            let (send, receive) = mpsc::channel(READ_AHEAD);
            let store = store.clone();
            let read = async move {
                for (from, to) in ranges {
                    let chunk = scan(&store, &store.pool, site_id, from, to).await;
                    let failed = chunk.is_err();
                    if send.send(chunk).await.is_err() || failed {
                        return;
                    }
                }
            };
            io.reader = Some(tokio::spawn(read.instrument(tracing::Span::current())));
            io.ahead = Some(receive);
        }
        Ok(io)
    }

    fn tx(&mut self) -> &mut sqlx::AnyConnection {
        self.tx.as_mut().expect("inside a window's transaction")
    }
}

impl Drop for AnyIo<'_> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

/// One pageview of the scan: `[id, created_at, visitor_id, visitor_id_prev, is_bot, path, referrer,
/// referrer_domain]`.
type ScanRow = (i64, i64, i64, Option<i64>, i64, String, String, String);

/// The raw pageviews of `[from, to)` through `executor`, as one JSON value.
async fn scan<'e>(
    store: &Store,
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    site_id: i64,
    from: i64,
    to: i64,
) -> Result<Chunk, StoreError> {
    let sql = store.dialect.pass_scan_sql();
    let span = store.span("SELECT", "pageviews", sql);
    let json: Option<String> =
        traced(span, sqlx::query_scalar(sql).bind(site_id).bind(from).bind(to).fetch_one(executor)).await?;
    let rows: Vec<ScanRow> = match json {
        Some(json) => serde_json::from_str(&json).map_err(decode)?,
        None => Vec::new(),
    };
    let mut chunk = Chunk::new(from, to);
    for (id, created_at, visitor_id, prev, is_bot, path, referrer, referrer_domain) in rows {
        chunk.push(id, created_at, visitor_id, prev, is_bot != 0, &path, &referrer, &referrer_domain);
    }
    Ok(chunk)
}

/// A session as `Dialect::upsert_sessions_sql` reads it.
#[derive(Serialize)]
struct SessionJson<'a> {
    id: i64,
    site_id: i64,
    visitor_id: i64,
    started_at: i64,
    last_seen_at: i64,
    pageview_count: i64,
    is_bounce: i64,
    duration_ms: i64,
    entry_page: &'a str,
    exit_page: &'a str,
    referrer: &'a str,
    referrer_domain: &'a str,
    later_visitor_ids: &'a str,
}

/// An hourly row as `Dialect::upsert_hours_sql` reads it.
#[derive(Serialize)]
struct HourJson {
    site_id: i64,
    bucket: i64,
    pageview_count: i64,
    unique_session_count: i64,
    raw_count: i64,
    raw_max_id: i64,
    now: i64,
}

fn decode(err: serde_json::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(err.into()))
}

impl PassIo for AnyIo<'_> {
    async fn begin(&mut self) -> Result<(), StoreError> {
        let mut tx = self.store.pool.begin_with(self.store.dialect.begin_write_sql()).await?;
        if let Some(lock) = self.store.dialect.lock_site_sql() {
            traced(self.store.span("SELECT", "", lock), sqlx::query(lock).bind(self.site_id).fetch_one(&mut *tx))
                .await?;
        }
        if let Some(setting) = self.store.dialect.rollup_commit_sql() {
            traced(self.store.span("SET", "", setting), sqlx::query(setting).execute(&mut *tx)).await?;
        }
        self.tx = Some(tx);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.rollback().await;
        }
    }

    async fn pruned_before(&mut self) -> Result<Option<i64>, StoreError> {
        let span = self.store.span("SELECT", "settings", READ_SETTING);
        let value: Option<String> =
            traced(span, sqlx::query_scalar(READ_SETTING).bind(PRUNED_BEFORE).fetch_optional(self.tx())).await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    async fn session_bounds(&mut self, from: i64, to: i64, open_at: i64) -> Result<Option<i64>, StoreError> {
        let span = self.store.span("SELECT", "sessions", SESSION_BOUNDS);
        let query = sqlx::query_scalar(SESSION_BOUNDS).bind(self.site_id).bind(from).bind(to).bind(open_at);
        traced(span, query.fetch_one(self.tx())).await
    }

    async fn scan(&mut self, from: i64, to: i64) -> Result<Chunk, StoreError> {
        let (store, site_id) = (self.store, self.site_id);
        scan(store, self.tx(), site_id, from, to).await
    }

    async fn read_ahead(&mut self, from: i64, to: i64) -> Result<Option<Chunk>, StoreError> {
        loop {
            if self.pending.is_none() {
                let Some(ahead) = &mut self.ahead else { return Ok(None) };
                self.pending = match ahead.recv().await {
                    Some(Ok(chunk)) => Some(chunk),
                    // A failed or finished reader: the pass reads under the lock instead.
                    Some(Err(_)) | None => {
                        self.ahead = None;
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
        Ok(false)
    }

    async fn signature(&mut self, from: i64, to: i64) -> Result<Signature, StoreError> {
        let span = self.store.span("SELECT", "pageviews", SIGNATURE);
        let row =
            traced(span, sqlx::query(SIGNATURE).bind(self.site_id).bind(from).bind(to).fetch_one(self.tx())).await?;
        Ok(Signature { count: row.try_get(0)?, max_id: row.try_get(1)? })
    }

    async fn stored_sessions(&mut self, from: i64, to: i64) -> Result<Vec<Session>, StoreError> {
        let span = self.store.span("SELECT", "sessions", STORED_SESSIONS);
        let query = sqlx::query(STORED_SESSIONS).bind(self.site_id).bind(from).bind(to);
        let rows = traced(span, query.fetch_all(self.tx())).await?;
        rows.iter().map(Session::from_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    async fn stored_rows(&mut self, table: RowTable, from: i64, to: i64) -> Result<Vec<BucketRow>, StoreError> {
        let sql = table.select();
        let span = self.store.span("SELECT", table.name(), sql);
        let rows = traced(span, sqlx::query(sql).bind(self.site_id).bind(from).bind(to).fetch_all(self.tx())).await?;
        rows.iter()
            .map(|row| {
                Ok(BucketRow {
                    bucket: row.try_get(0)?,
                    pageview_count: row.try_get(1)?,
                    unique_session_count: row.try_get(2)?,
                    raw_count: row.try_get(3)?,
                    raw_max_id: row.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn apply(&mut self, writes: &Writes<'_>, now: i64) -> Result<(), StoreError> {
        let (store, site_id) = (self.store, writes.site_id);
        let dialect = store.dialect;
        if !writes.sessions.is_empty() {
            let rows: Vec<SessionJson> = writes
                .sessions
                .iter()
                .map(|s| SessionJson {
                    id: s.id,
                    site_id: s.site_id,
                    visitor_id: s.visitor_id,
                    started_at: s.started_at,
                    last_seen_at: s.last_seen_at,
                    pageview_count: s.pageview_count,
                    is_bounce: i64::from(s.is_bounce),
                    duration_ms: s.duration_ms,
                    entry_page: &s.entry_page,
                    exit_page: &s.exit_page,
                    referrer: &s.referrer,
                    referrer_domain: &s.referrer_domain,
                    later_visitor_ids: &s.later_visitor_ids,
                })
                .collect();
            let sql = dialect.upsert_sessions_sql();
            let batch = json_batch(&rows)?;
            traced(store.span("INSERT", "sessions", sql), sqlx::query(sql).bind(batch).execute(self.tx())).await?;
        }
        if !writes.deleted_sessions.is_empty() {
            let sql = dialect.delete_sessions_sql();
            let batch = json_batch(&writes.deleted_sessions)?;
            let query = sqlx::query(sql).bind(site_id).bind(batch);
            traced(store.span("DELETE", "sessions", sql), query.execute(self.tx())).await?;
        }
        if !writes.hours.is_empty() {
            let rows: Vec<HourJson> = writes
                .hours
                .iter()
                .map(|r| HourJson {
                    site_id,
                    bucket: r.bucket,
                    pageview_count: r.pageview_count,
                    unique_session_count: r.unique_session_count,
                    raw_count: r.raw_count,
                    raw_max_id: r.raw_max_id,
                    now,
                })
                .collect();
            let sql = dialect.upsert_hours_sql();
            let batch = json_batch(&rows)?;
            traced(store.span("INSERT", "hourly_stats", sql), sqlx::query(sql).bind(batch).execute(self.tx())).await?;
        }
        for day in &writes.days {
            let query = sqlx::query(UPSERT_STAGED)
                .bind(site_id)
                .bind(day.bucket)
                .bind(day.pageview_count)
                .bind(day.unique_session_count)
                .bind(day.raw_count)
                .bind(day.raw_max_id);
            traced(store.span("INSERT", "daily_stats_staged", UPSERT_STAGED), query.execute(self.tx())).await?;
        }
        for row in &writes.daily {
            let query = sqlx::query(UPSERT_DAY)
                .bind(site_id)
                .bind(row.bucket)
                .bind(row.pageview_count)
                .bind(row.unique_session_count)
                .bind(row.raw_count)
                .bind(row.raw_max_id)
                .bind(now);
            traced(store.span("INSERT", "daily_stats", UPSERT_DAY), query.execute(self.tx())).await?;
        }
        for &day in &writes.deleted_days {
            let query = sqlx::query(DELETE_STAGED).bind(site_id).bind(day);
            traced(store.span("DELETE", "daily_stats_staged", DELETE_STAGED), query.execute(self.tx())).await?;
        }
        Ok(())
    }

    async fn count_days_from_raw(&mut self, from: i64, to: i64) -> Result<RollupCounts, StoreError> {
        let sql = Grain::Day.sql();
        let before = self.totals(from, to).await?;
        let now = super::super::now_ms();
        let mut changed = 0;
        for (operation, statement) in [("INSERT", sql.upsert), ("UPDATE", sql.zero_vanished)] {
            let query = sqlx::query(statement).bind(self.site_id).bind(from).bind(to).bind(now);
            changed += traced(self.store.span(operation, sql.table, statement), query.execute(self.tx()))
                .await?
                .rows_affected();
        }
        let after = self.totals(from, to).await?;
        let created = after.0 - before.0;
        let changed = i64::try_from(changed).unwrap_or(i64::MAX);
        Ok(RollupCounts {
            created,
            updated: changed - created,
            processed: (after.1 - before.1).max(0),
            raw_rows: after.2,
        })
    }
}

impl AnyIo<'_> {
    /// (rows, sum of pageview_count, sum of raw_count) of the site's daily rows in `[from, to)`.
    async fn totals(&mut self, from: i64, to: i64) -> Result<(i64, i64, i64), StoreError> {
        let sql = Grain::Day.sql();
        let span = self.store.span("SELECT", sql.table, sql.totals);
        let query = sqlx::query(sql.totals).bind(self.site_id).bind(from).bind(to);
        let row = traced(span, query.fetch_one(self.tx())).await?;
        Ok((row.try_get("n")?, row.try_get("pageviews")?, row.try_get("raw")?))
    }
}
