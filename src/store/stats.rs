//! Reads for charts and statistics that the rollup tables can't answer exactly: buckets that don't
//! line up with UTC hours (half-hour and quarter-hour time zones) and distinct visitors over a window
//! (distinct counts don't add up across buckets). Both read raw pageviews over at most two days,
//! through the `(site_id, created_at)` index.

use sqlx::Row;

use super::{Store, StoreError, traced};

/// Keeps pageviews of one path (`$4`).
const PAGE_FILTER: &str = "AND path = $4";
/// Keeps sessions with a pageview of path `$4` (a session's pageviews: its visitor's, from `started_at`
/// to `last_seen_at`; see `store::sessions`). The window's sessions and its pageviews of `$4` (plus a
/// day, for sessions that run past the window's end), both read through their `(site_id, time)`
/// index, are sorted together by visitor and time: each pageview falls in the latest session of its
/// visitor begun at or before it, if that one lasts until it. A session that runs into a later UTC
/// day (rare) is also matched by the visitor's ids of those days.
const SESSION_FILTER: &str = "AND ((visitor_id, started_at) IN (SELECT v, s FROM (\
     SELECT k, v, t, MAX(CASE WHEN k = 0 THEN t END) OVER w AS s, MAX(CASE WHEN k = 0 THEN e END) OVER w AS e FROM (\
     SELECT 0 AS k, visitor_id AS v, started_at AS t, last_seen_at AS e FROM sessions \
     WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 \
     UNION ALL SELECT 1, visitor_id, created_at, NULL FROM pageviews \
     WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 + 86400000 AND path = $4 AND is_bot = 0) AS ev \
     WINDOW w AS (PARTITION BY v ORDER BY t, k ROWS UNBOUNDED PRECEDING)) AS m WHERE k = 1 AND t <= e) \
     OR (later_visitor_ids <> '' AND EXISTS (SELECT 1 FROM pageviews p WHERE p.site_id = $1 \
     AND p.created_at >= sessions.started_at AND p.created_at <= sessions.last_seen_at AND p.path = $4 \
     AND p.is_bot = 0 AND sessions.later_visitor_ids LIKE '%,' || CAST(p.visitor_id AS TEXT) || ',%')))";

/// Non-bot pageviews and distinct visitors of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCounts {
    /// Start of the bucket, epoch ms.
    pub bucket: i64,
    pub pageviews: i64,
    pub visitors: i64,
}

impl Store {
    /// Hour-long buckets starting at `start` (not necessarily on a UTC hour) up to `end`, from raw
    /// pageviews (buckets without pageviews are absent), and the distinct visitors of the whole window.
    pub async fn hourly_counts_from(
        &self,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<(Vec<BucketCounts>, i64), StoreError> {
        let sql = self.dialect.hourly_counts_sql();
        let rows = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query(sql).bind(site_id).bind(start).bind(end).fetch_all(&self.pool),
        )
        .await?;
        let mut buckets = Vec::with_capacity(rows.len());
        let mut window_visitors = 0;
        for row in &rows {
            let visitors: i64 = row.try_get("visitors")?;
            match row.try_get::<Option<i64>, _>("bucket")? {
                Some(bucket) => buckets.push(BucketCounts { bucket, pageviews: row.try_get("pageviews")?, visitors }),
                None => window_visitors = visitors,
            }
        }
        Ok((buckets, window_visitors))
    }

    /// Distinct non-bot visitor ids of a site in `[start, end)`.
    pub async fn distinct_visitors(&self, site_id: i64, start: i64, end: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(DISTINCT visitor_id) FROM pageviews \
                   WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0";
        let n: i64 = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query_scalar(sql).bind(site_id).bind(start).bind(end).fetch_one(&self.pool),
        )
        .await?;
        Ok(n)
    }
}

/// A breakdown's rows are grouped by one column of raw pageviews or of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakdownSource {
    Pageviews,
    Sessions,
}

/// One row of a breakdown: the value and how many pageviews (or visits) and visitors it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    pub value: String,
    /// Pageviews for a pageview breakdown, visits for a session breakdown.
    pub count: i64,
    pub visitors: i64,
}

/// Visits, bounces and total visit time of sessions started in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitTotals {
    pub visits: i64,
    pub bounces: i64,
    pub duration_ms: i64,
}

impl Store {
    /// Rows of `column` (from `source`) in `[start, end)`, biggest first, `limit` from `offset`, and the
    /// number of distinct values. `path`, when given, keeps only pageviews of that path (or sessions
    /// that viewed it).
    ///
    /// `column` must be one of the fixed column names of `stats::breakdown` (never input): it is the
    /// one part of the statement that is not a bound parameter.
    #[allow(clippy::too_many_arguments)]
    pub async fn breakdown(
        &self,
        source: BreakdownSource,
        column: &'static str,
        site_id: i64,
        start: i64,
        end: i64,
        path: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<BreakdownRow>, i64), StoreError> {
        // The path filter is written into the statement only when asked for (an `$4 = '' OR …` form
        // hides the plan from the reader), and as an uncorrelated `IN` over the window's pageviews,
        // which the (site_id, created_at) index serves.
        let (table, time, bots, filter) = match source {
            BreakdownSource::Pageviews => ("pageviews", "created_at", "AND is_bot = 0", PAGE_FILTER),
            BreakdownSource::Sessions => ("sessions", "started_at", "", SESSION_FILTER),
        };
        let filter = if path.is_some() { filter } else { "AND $4 = $4" };
        let scope = format!(
            "FROM {table} WHERE site_id = $1 AND {time} >= $2 AND {time} < $3 {bots} {filter} AND {column} <> ''"
        );
        let rows_sql = format!(
            "SELECT {column} AS value, COUNT(*) AS n, COUNT(DISTINCT visitor_id) AS visitors {scope} \
             GROUP BY {column} ORDER BY n DESC, value LIMIT $5 OFFSET $6"
        );
        let total_sql = format!("SELECT COUNT(DISTINCT {column}) {scope}");
        let path = path.unwrap_or("");
        let rows = traced(
            self.span("SELECT", table, &rows_sql),
            sqlx::query(sqlx::AssertSqlSafe(rows_sql.clone()))
                .bind(site_id)
                .bind(start)
                .bind(end)
                .bind(path)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool),
        )
        .await?;
        let total: i64 = traced(
            self.span("SELECT", table, &total_sql),
            sqlx::query_scalar(sqlx::AssertSqlSafe(total_sql.clone()))
                .bind(site_id)
                .bind(start)
                .bind(end)
                .bind(path)
                .fetch_one(&self.pool),
        )
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(BreakdownRow {
                    value: row.try_get("value")?,
                    count: row.try_get("n")?,
                    visitors: row.try_get("visitors")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((rows, total))
    }

    /// Non-bot pageviews and distinct visitors in `[start, end)`, optionally of one path.
    pub async fn pageview_totals(
        &self,
        site_id: i64,
        start: i64,
        end: i64,
        path: Option<&str>,
    ) -> Result<(i64, i64), StoreError> {
        let sql = match path {
            None => {
                "SELECT COUNT(*) AS n, COUNT(DISTINCT visitor_id) AS visitors FROM pageviews \
                     WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 AND $4 = $4"
            }
            Some(_) => {
                "SELECT COUNT(*) AS n, COUNT(DISTINCT visitor_id) AS visitors FROM pageviews \
                        WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 AND path = $4"
            }
        };
        let row = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query(sql).bind(site_id).bind(start).bind(end).bind(path.unwrap_or("")).fetch_one(&self.pool),
        )
        .await?;
        Ok((row.try_get("n")?, row.try_get("visitors")?))
    }

    /// Visits (sessions started in `[start, end)`), bounces and total duration, optionally only
    /// sessions that viewed `path`.
    pub async fn visit_totals(
        &self,
        site_id: i64,
        start: i64,
        end: i64,
        path: Option<&str>,
    ) -> Result<VisitTotals, StoreError> {
        const VISITS: &str = "SELECT COUNT(*) AS visits, CAST(COALESCE(SUM(is_bounce), 0) AS BIGINT) AS bounces, \
                              CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS duration FROM sessions \
                              WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 ";
        static ALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{VISITS}AND $4 = $4"));
        static WITH_PATH: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("{VISITS}{SESSION_FILTER}"));
        let sql: &'static str = if path.is_some() { WITH_PATH.as_str() } else { ALL.as_str() };
        let row = traced(
            self.span("SELECT", "sessions", sql),
            sqlx::query(sql).bind(site_id).bind(start).bind(end).bind(path.unwrap_or("")).fetch_one(&self.pool),
        )
        .await?;
        Ok(VisitTotals {
            visits: row.try_get("visits")?,
            bounces: row.try_get("bounces")?,
            duration_ms: row.try_get("duration")?,
        })
    }
}

/// Every breakdown: its name in the API, the table it counts and the column it groups by. The one
/// list both the raw reader and the daily breakdown rollups use.
pub const DIMENSIONS: &[(&str, BreakdownSource, &str)] = &[
    ("pages", BreakdownSource::Pageviews, "path"),
    ("entry_pages", BreakdownSource::Sessions, "entry_page"),
    ("exit_pages", BreakdownSource::Sessions, "exit_page"),
    ("referrers", BreakdownSource::Sessions, "referrer_domain"),
    ("utm_source", BreakdownSource::Pageviews, "utm_source"),
    ("utm_medium", BreakdownSource::Pageviews, "utm_medium"),
    ("utm_campaign", BreakdownSource::Pageviews, "utm_campaign"),
    ("browsers", BreakdownSource::Pageviews, "browser"),
    ("os", BreakdownSource::Pageviews, "os"),
    ("devices", BreakdownSource::Pageviews, "device_type"),
    ("countries", BreakdownSource::Pageviews, "country"),
];

/// Recomputes every dimension of one site's UTC day `[$2, $3)`: one `INSERT … SELECT … UNION ALL`,
/// built once from [`DIMENSIONS`] (column names are constants, never input).
static REFRESH_DAY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let parts: Vec<String> = DIMENSIONS
        .iter()
        .map(|(name, source, column)| match source {
            BreakdownSource::Pageviews => format!(
                "SELECT $1, $2, '{name}', {column}, COUNT(*), COUNT(DISTINCT visitor_id) FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 AND {column} <> '' \
                 GROUP BY {column}"
            ),
            BreakdownSource::Sessions => format!(
                "SELECT $1, $2, '{name}', {column}, COUNT(*), COUNT(DISTINCT visitor_id) FROM sessions \
                 WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 AND {column} <> '' GROUP BY {column}"
            ),
        })
        .collect();
    format!(
        "INSERT INTO daily_breakdowns (site_id, day_bucket, dimension, value, hits, visitors) {}",
        parts.join(" UNION ALL ")
    )
});

impl Store {
    /// Brings the daily breakdowns of `site_id` for the days in `[start, end)` up to date with the
    /// day's `daily_stats` row: days whose row was computed from other raw rows than the breakdowns
    /// were (or that have no breakdowns yet) are recomputed, newest first, each in its own
    /// transaction, at most `max_days` of them. Returns how many stale days are left. Days the daily
    /// job has not rolled up yet have no breakdowns, as they have no chart bar.
    pub async fn refresh_daily_breakdowns(
        &self,
        site_id: i64,
        start: i64,
        end: i64,
        max_days: usize,
    ) -> Result<usize, StoreError> {
        let stale = "SELECT d.day_bucket AS day, d.raw_count AS n, d.raw_max_id AS m FROM daily_stats d \
                     LEFT JOIN daily_breakdown_sources s ON s.site_id = d.site_id AND s.day_bucket = d.day_bucket \
                     WHERE d.site_id = $1 AND d.day_bucket >= $2 AND d.day_bucket < $3 \
                     AND (s.site_id IS NULL OR s.raw_count <> d.raw_count OR s.raw_max_id <> d.raw_max_id) \
                     ORDER BY d.day_bucket DESC";
        let days = traced(
            self.span("SELECT", "daily_stats", stale),
            sqlx::query(stale).bind(site_id).bind(start).bind(end).fetch_all(&self.pool),
        )
        .await?;
        for row in days.iter().take(max_days) {
            let (day, raw_count, raw_max_id): (i64, i64, i64) =
                (row.try_get("day")?, row.try_get("n")?, row.try_get("m")?);
            let mut tx = self.pool.begin_with(self.dialect.begin_write_sql()).await?;
            // Two refreshes of one day (a request and the background task) must not interleave their
            // DELETE and INSERT: the site's rollup lock serialises them (SQLite: the write lock).
            if let Some(lock) = self.dialect.lock_site_sql() {
                traced(self.span("SELECT", "", lock), sqlx::query(lock).bind(site_id).fetch_one(&mut *tx)).await?;
            }
            let clear = "DELETE FROM daily_breakdowns WHERE site_id = $1 AND day_bucket = $2";
            traced(
                self.span("DELETE", "daily_breakdowns", clear),
                sqlx::query(clear).bind(site_id).bind(day).execute(&mut *tx),
            )
            .await?;
            let fill = REFRESH_DAY.as_str();
            traced(
                self.span("INSERT", "daily_breakdowns", fill),
                sqlx::query(fill).bind(site_id).bind(day).bind(day + super::DAY_MS).execute(&mut *tx),
            )
            .await?;
            let visits = "SELECT COUNT(*) AS visits, CAST(COALESCE(SUM(is_bounce), 0) AS BIGINT) AS bounces, \
                          CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS duration FROM sessions \
                          WHERE site_id = $1 AND started_at >= $2 AND started_at < $3";
            let totals = traced(
                self.span("SELECT", "sessions", visits),
                sqlx::query(visits).bind(site_id).bind(day).bind(day + super::DAY_MS).fetch_one(&mut *tx),
            )
            .await?;
            let (visits, bounces, duration): (i64, i64, i64) =
                (totals.try_get("visits")?, totals.try_get("bounces")?, totals.try_get("duration")?);
            let mark = "INSERT INTO daily_breakdown_sources \
                        (site_id, day_bucket, raw_count, raw_max_id, visits, bounces, duration_ms) \
                        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site_id, day_bucket) DO UPDATE \
                        SET raw_count = excluded.raw_count, raw_max_id = excluded.raw_max_id, visits = excluded.visits, \
                        bounces = excluded.bounces, duration_ms = excluded.duration_ms";
            traced(
                self.span("INSERT", "daily_breakdown_sources", mark),
                sqlx::query(mark)
                    .bind(site_id)
                    .bind(day)
                    .bind(raw_count)
                    .bind(raw_max_id)
                    .bind(visits)
                    .bind(bounces)
                    .bind(duration)
                    .execute(&mut *tx),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(days.len().saturating_sub(max_days))
    }

    /// A breakdown over the UTC days in `[start, end)` from the daily breakdowns: hits (pageviews or
    /// visits) summed, visitors summed (a visitor id lives one UTC day, so the sum is the count of
    /// distinct ids), biggest first; and the number of distinct values.
    pub async fn breakdown_from_days(
        &self,
        dimension: &str,
        site_id: i64,
        start: i64,
        end: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<BreakdownRow>, i64), StoreError> {
        let rows_sql = "SELECT value, CAST(SUM(hits) AS BIGINT) AS n, CAST(SUM(visitors) AS BIGINT) AS visitors \
                        FROM daily_breakdowns WHERE site_id = $1 AND dimension = $2 AND day_bucket >= $3 \
                        AND day_bucket < $4 GROUP BY value ORDER BY n DESC, value LIMIT $5 OFFSET $6";
        let rows = traced(
            self.span("SELECT", "daily_breakdowns", rows_sql),
            sqlx::query(rows_sql)
                .bind(site_id)
                .bind(dimension)
                .bind(start)
                .bind(end)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool),
        )
        .await?;
        let count_sql = "SELECT COUNT(DISTINCT value) FROM daily_breakdowns WHERE site_id = $1 AND dimension = $2 \
                         AND day_bucket >= $3 AND day_bucket < $4";
        let total: i64 = traced(
            self.span("SELECT", "daily_breakdowns", count_sql),
            sqlx::query_scalar(count_sql).bind(site_id).bind(dimension).bind(start).bind(end).fetch_one(&self.pool),
        )
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(BreakdownRow {
                    value: row.try_get("value")?,
                    count: row.try_get("n")?,
                    visitors: row.try_get("visitors")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((rows, total))
    }

    /// Visit totals of the UTC days in `[start, end)` from the per-day rows kept with the breakdowns
    /// (call [`Store::refresh_daily_breakdowns`] first).
    pub async fn visit_totals_from_days(&self, site_id: i64, start: i64, end: i64) -> Result<VisitTotals, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(visits), 0) AS BIGINT) AS visits, \
                   CAST(COALESCE(SUM(bounces), 0) AS BIGINT) AS bounces, \
                   CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS duration FROM daily_breakdown_sources \
                   WHERE site_id = $1 AND day_bucket >= $2 AND day_bucket < $3";
        let row = traced(
            self.span("SELECT", "daily_breakdown_sources", sql),
            sqlx::query(sql).bind(site_id).bind(start).bind(end).fetch_one(&self.pool),
        )
        .await?;
        Ok(VisitTotals {
            visits: row.try_get("visits")?,
            bounces: row.try_get("bounces")?,
            duration_ms: row.try_get("duration")?,
        })
    }
}
