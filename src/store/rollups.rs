//! Rollups: the hourly and daily rows, recomputed from raw pageviews, exactly and idempotently.
//!
//! A row is never incremented. Each run recomputes its whole window from the raw rows with one
//! `INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`, so a late pageview, a second run or two runs
//! at once all end with the same numbers: `pageview_count` = non-bot pageviews with `created_at` in
//! the bucket, `unique_session_count` = distinct non-bot visitor ids in it. Each row also keeps the
//! count and largest id of the raw rows (bots included) it was computed from, so
//! [`Store::changed_windows`] finds every bucket whose raw data changed since, not only missing rows.
//! Buckets are integer arithmetic on epoch milliseconds (`created_at - created_at % 3600000`), the
//! same on both backends. An hourly recompute also recomputes the sessions of its window (`sessions`).

use sqlx::Row;

use super::{Store, StoreError, now_ms, traced};

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

    fn sql(self) -> &'static GrainSql {
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

struct GrainSql {
    table: &'static str,
    upsert: &'static str,
    zero_vanished: &'static str,
    totals: &'static str,
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
    /// bucket-aligned) in one transaction; for [`Grain::Hour`] also the sessions and
    /// `pageviews.session_id` of that window. Idempotent.
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
        let sql = grain.sql();
        let mut tx = self.pool.begin_with(self.dialect.begin_write_sql()).await?;
        if let Some(lock) = self.dialect.lock_site_sql() {
            traced(self.span("SELECT", "", lock), sqlx::query(lock).bind(site_id).fetch_one(&mut *tx)).await?;
        }
        // Buckets whose raw rows were pruned are frozen: a recompute would see no rows and zero them.
        let start = start.max(self.pruned_before_in(&mut tx).await?.unwrap_or(i64::MIN));
        if start >= end {
            tx.commit().await?;
            return Ok(RollupCounts::default());
        }
        if grain == Grain::Hour {
            self.recompute_sessions(&mut tx, site_id, start, end).await?;
        }
        let before = totals(self, &mut tx, sql, site_id, start, end).await?;
        let now = now_ms();
        let upserted = traced(
            self.span("INSERT", sql.table, sql.upsert),
            sqlx::query(sql.upsert).bind(site_id).bind(start).bind(end).bind(now).execute(&mut *tx),
        )
        .await?
        .rows_affected();
        let zeroed = traced(
            self.span("UPDATE", sql.table, sql.zero_vanished),
            sqlx::query(sql.zero_vanished).bind(site_id).bind(start).bind(end).bind(now).execute(&mut *tx),
        )
        .await?
        .rows_affected();
        let after = totals(self, &mut tx, sql, site_id, start, end).await?;
        tx.commit().await?;
        let created = after.0 - before.0;
        let changed = i64::try_from(upserted + zeroed).unwrap_or(i64::MAX);
        Ok(RollupCounts {
            created,
            updated: changed - created,
            processed: (after.1 - before.1).max(0),
            raw_rows: after.2,
        })
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

/// (rows, sum of pageview_count, sum of raw_count) of a site's rows in a window.
async fn totals(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sql: &GrainSql,
    site_id: i64,
    start: i64,
    end: i64,
) -> Result<(i64, i64, i64), StoreError> {
    let row = traced(
        store.span("SELECT", sql.table, sql.totals),
        sqlx::query(sql.totals).bind(site_id).bind(start).bind(end).fetch_one(&mut **tx),
    )
    .await?;
    Ok((row.try_get("n")?, row.try_get("pageviews")?, row.try_get("raw")?))
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
