//! Rollups: the hourly and daily rows, recomputed from raw pageviews, exactly and idempotently.
//!
//! A row is never incremented. Each run recomputes its whole window from the raw rows, so a late
//! pageview, a second run or two runs at once all end with the same numbers: `pageview_count` =
//! non-bot pageviews with `created_at` in the bucket, `unique_session_count` = distinct non-bot
//! visitor ids in it. Each row also keeps the count and largest id of the raw rows (bots included)
//! it was computed from, so [`Store::changed_windows`] finds every bucket whose raw data changed
//! since, not only missing rows, and a recompute writes only rows that differ. Buckets are integer
//! arithmetic on epoch milliseconds (`created_at - created_at % 3600000`), the same on both backends.
//!
//! Hourly rows come from the hourly pass (`store::pass`), which also recomputes the sessions of the
//! window and stages the totals of each whole UTC day it reads (`daily_stats_staged`). A daily
//! recompute adopts a day's staged totals while the day's raw rows still have the count and largest
//! id they were computed from, and otherwise counts the raw rows itself (`GROUP BY`).

use sqlx::Row;

use super::{Store, StoreError, pass, traced};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The width of a rollup bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub fn ms(self) -> i64 {
        match self {
            Grain::Hour => HOUR_MS,
            Grain::Day => DAY_MS,
        }
    }

    /// The start of the bucket holding `at_ms`.
    pub fn floor(self, at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(self.ms())
    }

    pub(super) fn sql(self) -> &'static GrainSql {
        match self {
            Grain::Hour => &HOUR_SQL,
            Grain::Day => &DAY_SQL,
        }
    }
}

/// What one recompute did. `created`/`updated` count rows; `processed` counts pageviews newly counted
/// (the sum of `pageview_count` after minus before, so a rerun over unchanged data reports 0, as the
/// original did); `raw_rows` counts the raw rows the window holds (bots included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupCounts {
    pub created: i64,
    pub updated: i64,
    pub processed: i64,
    pub raw_rows: i64,
}

impl std::ops::AddAssign for RollupCounts {
    fn add_assign(&mut self, other: RollupCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.processed += other.processed;
        self.raw_rows += other.raw_rows;
    }
}

/// One hourly or daily row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// Start of the bucket, epoch ms (UTC).
    pub bucket: i64,
    pub pageview_count: i64,
    pub unique_session_count: i64,
}

/// A site as the jobs see it: the internal id and the public identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRef {
    pub id: i64,
    pub identifier: String,
}

pub(super) struct GrainSql {
    pub(super) table: &'static str,
    /// Recomputes the window's rows from the raw rows (`GROUP BY`), writing only rows that differ.
    pub(super) upsert: &'static str,
    /// Zeroes rows whose raw rows are all gone.
    pub(super) zero_vanished: &'static str,
    /// `n` rows, `pageviews` and `raw` sums of the window's rows.
    pub(super) totals: &'static str,
    changed: &'static str,
    rows: &'static str,
}

/// The statements of one grain, written once for both grains. Parameters: `$1` site id, `$2`/`$3`
/// the half-open window `[start, end)` in epoch ms, `$4` now.
macro_rules! grain_sql {
    ($table:literal, $bucket:literal, $ms:literal) => {
        GrainSql {
            table: $table,
            upsert: concat!(
                "INSERT INTO ", $table, " (site_id, ", $bucket, ", pageview_count, unique_session_count, raw_count, raw_max_id, created_at, updated_at) ",
                "SELECT site_id, created_at - created_at % ", $ms, ", ",
                "SUM(CASE WHEN is_bot = 0 THEN 1 ELSE 0 END), COUNT(DISTINCT CASE WHEN is_bot = 0 THEN visitor_id END), ",
                "COUNT(*), MAX(id), CAST($4 AS BIGINT), CAST($4 AS BIGINT) ",
                "FROM pageviews WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 ",
                "GROUP BY site_id, created_at - created_at % ", $ms, " ",
                "ON CONFLICT (site_id, ", $bucket, ") DO UPDATE SET pageview_count = excluded.pageview_count, ",
                "unique_session_count = excluded.unique_session_count, raw_count = excluded.raw_count, ",
                "raw_max_id = excluded.raw_max_id, updated_at = excluded.updated_at ",
                "WHERE ", $table, ".raw_count <> excluded.raw_count OR ", $table, ".raw_max_id <> excluded.raw_max_id ",
                "OR ", $table, ".pageview_count <> excluded.pageview_count ",
                "OR ", $table, ".unique_session_count <> excluded.unique_session_count"
            ),
            zero_vanished: concat!(
                "UPDATE ", $table, " SET pageview_count = 0, unique_session_count = 0, raw_count = 0, raw_max_id = 0, updated_at = $4 ",
                "WHERE site_id = $1 AND ", $bucket, " >= $2 AND ", $bucket, " < $3 AND raw_count > 0 ",
                "AND NOT EXISTS (SELECT 1 FROM pageviews p WHERE p.site_id = $1 AND p.created_at >= ", $table, ".", $bucket, " ",
                "AND p.created_at < ", $table, ".", $bucket, " + ", $ms, ")"
            ),
            totals: concat!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(pageview_count), 0) AS BIGINT) AS pageviews, ",
                "CAST(COALESCE(SUM(raw_count), 0) AS BIGINT) AS raw FROM ", $table, " ",
                "WHERE site_id = $1 AND ", $bucket, " >= $2 AND ", $bucket, " < $3"
            ),
            changed: concat!(
                "SELECT r.bucket AS bucket FROM (",
                "SELECT created_at - created_at % ", $ms, " AS bucket, COUNT(*) AS n, MAX(id) AS m FROM pageviews ",
                "WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY created_at - created_at % ", $ms,
                ") r LEFT JOIN ", $table, " s ON s.site_id = $1 AND s.", $bucket, " = r.bucket ",
                "WHERE s.site_id IS NULL OR s.raw_count <> r.n OR s.raw_max_id <> r.m ",
                "UNION SELECT s.", $bucket, " AS bucket FROM ", $table, " s ",
                "WHERE s.site_id = $1 AND s.", $bucket, " >= $2 AND s.", $bucket, " < $3 AND s.raw_count > 0 ",
                "AND NOT EXISTS (SELECT 1 FROM pageviews p WHERE p.site_id = $1 AND p.created_at >= s.", $bucket, " ",
                "AND p.created_at < s.", $bucket, " + ", $ms, ") ",
                "ORDER BY bucket"
            ),
            rows: concat!(
                "SELECT ", $bucket, " AS bucket, pageview_count, unique_session_count FROM ", $table, " ",
                "WHERE site_id = $1 AND ", $bucket, " >= $2 AND ", $bucket, " < $3 ORDER BY ", $bucket
            ),
        }
    };
}

static HOUR_SQL: GrainSql = grain_sql!("hourly_stats", "hour_bucket", "3600000");
static DAY_SQL: GrainSql = grain_sql!("daily_stats", "day_bucket", "86400000");

/// Inserts or rewrites one row of a rollup table: `$1` site, `$2` bucket, `$3` pageviews, `$4`
/// visitors, `$5` raw rows, `$6` largest raw id, `$7` now (when the table keeps times).
macro_rules! upsert_row {
    ($table:literal, $bucket:literal, $stamps:literal, $stamp_values:literal, $on_update:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (site_id, ",
            $bucket,
            ", pageview_count, unique_session_count, raw_count, raw_max_id",
            $stamps,
            ") VALUES ($1, $2, $3, $4, $5, $6",
            $stamp_values,
            ") ON CONFLICT (site_id, ",
            $bucket,
            ") DO UPDATE SET ",
            "pageview_count = excluded.pageview_count, unique_session_count = excluded.unique_session_count, ",
            "raw_count = excluded.raw_count, raw_max_id = excluded.raw_max_id",
            $on_update
        )
    };
}

pub(super) const UPSERT_HOUR: &str = upsert_row!(
    "hourly_stats",
    "hour_bucket",
    ", created_at, updated_at",
    ", $7, $7",
    ", updated_at = excluded.updated_at"
);
pub(super) const UPSERT_DAY: &str = upsert_row!(
    "daily_stats",
    "day_bucket",
    ", created_at, updated_at",
    ", $7, $7",
    ", updated_at = excluded.updated_at"
);
pub(super) const UPSERT_STAGED: &str = upsert_row!("daily_stats_staged", "day_bucket", "", "", "");
pub(super) const DELETE_STAGED: &str = "DELETE FROM daily_stats_staged WHERE site_id = $1 AND day_bucket = $2";

impl Store {
    /// Every site, oldest first, as the schedulers iterate them.
    pub async fn site_refs(&self) -> Result<Vec<SiteRef>, StoreError> {
        let sql = "SELECT id, identifier FROM sites ORDER BY id";
        let rows = traced(self.span("SELECT", "sites", sql), sqlx::query(sql).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| Ok(SiteRef { id: row.try_get("id")?, identifier: row.try_get("identifier")? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Recomputes the `grain` rows of `site_id` whose bucket starts in `[start, end)` (both
    /// bucket-aligned) in one transaction; for [`Grain::Hour`] also the sessions that touch the
    /// window and the staged totals of the whole UTC days in it. Idempotent.
    ///
    /// Holds the write lock for the whole window (SQLite: the database's; PostgreSQL: the site's
    /// advisory lock), so callers keep windows to about a day.
    pub async fn recompute_rollup(
        &self,
        grain: Grain,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<RollupCounts, StoreError> {
        self.recompute_rollups(grain, site_id, &[(start, end)], &mut |_| {}).await
    }

    /// [`Store::recompute_rollup`] of each of `windows` (ascending and adjacent), one transaction
    /// each, in one pass: hourly windows read each raw row once, carrying open sessions from one
    /// window to the next. `progress` hears each window's counts once it is committed; windows
    /// committed before an error stay committed.
    pub async fn recompute_rollups(
        &self,
        grain: Grain,
        site_id: i64,
        windows: &[(i64, i64)],
        progress: &mut (dyn FnMut(RollupCounts) + Send),
    ) -> Result<RollupCounts, StoreError> {
        match &self.sqlite_file {
            None => {
                let ahead = if grain == Grain::Hour { windows } else { &[] };
                let mut io = pass::AnyIo::reading_ahead(self, site_id, ahead).await?;
                pass::run(&mut io, grain, site_id, windows, progress).await
            }
            Some(file) => {
                // The C API blocks: the pass runs on a blocking thread and reports back here.
                let (store, path, sync, windows) = (self.clone(), file.path.clone(), file.sync, windows.to_vec());
                let (send, mut receive) = tokio::sync::mpsc::unbounded_channel();
                let span = tracing::Span::current();
                let work = tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let ahead = if grain == Grain::Hour { windows.as_slice() } else { &[] };
                    let mut io = pass::SqliteIo::open(&store, &path, sync, site_id, ahead)?;
                    pass::run_blocking(pass::run(&mut io, grain, site_id, &windows, &mut |counts| {
                        let _ = send.send(counts);
                    }))
                });
                while let Some(counts) = receive.recv().await {
                    progress(counts);
                }
                work.await.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
            }
        }
    }

    /// The `grain` rows of a site with buckets in `[start, end)`, oldest first.
    pub async fn rollup_rows(
        &self,
        grain: Grain,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let sql = grain.sql();
        let rows = traced(
            self.span("SELECT", sql.table, sql.rows),
            sqlx::query(sql.rows).bind(site_id).bind(start).bind(end).fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RollupRow {
                    bucket: row.try_get("bucket")?,
                    pageview_count: row.try_get("pageview_count")?,
                    unique_session_count: row.try_get("unique_session_count")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Buckets in `[start, end)` whose row is missing, or was computed from other raw rows than the
    /// window holds now (late pageviews), oldest first. Empty windows without a row are not listed.
    pub async fn changed_windows(
        &self,
        grain: Grain,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<i64>, StoreError> {
        // Pruned buckets have no raw rows left to compare with (see `store::retention`).
        let start = start.max(self.pruned_before().await?.unwrap_or(i64::MIN));
        if start >= end {
            return Ok(Vec::new());
        }
        let sql = grain.sql();
        let rows = traced(
            self.span("SELECT", sql.table, sql.changed),
            sqlx::query(sql.changed).bind(site_id).bind(start).bind(end).fetch_all(&self.pool),
        )
        .await?;
        rows.iter().map(|row| row.try_get("bucket")).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_toward_the_past_even_before_the_epoch() {
        assert_eq!(Grain::Hour.floor(3_600_000 + 5), 3_600_000);
        assert_eq!(Grain::Hour.floor(-1), -3_600_000);
        assert_eq!(Grain::Day.floor(DAY_MS * 3 - 1), DAY_MS * 2);
    }

    #[test]
    fn both_grains_share_one_statement_shape() {
        assert!(HOUR_SQL.upsert.contains("ON CONFLICT (site_id, hour_bucket)"));
        assert!(DAY_SQL.upsert.contains("created_at - created_at % 86400000"));
        assert_eq!(
            HOUR_SQL.upsert.replace("hourly_stats", "T").replace("hour_bucket", "B").replace("3600000", "M"),
            DAY_SQL.upsert.replace("daily_stats", "T").replace("day_bucket", "B").replace("86400000", "M")
        );
    }
}
