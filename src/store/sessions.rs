//! Sessions: runs of one visitor's non-bot pageviews with no gap longer than 30 minutes.
//!
//! Computed in SQL, set-wise, by the hourly recompute of a window `[A, B)` (see `rollups`):
//! `LAG(created_at)` over each visitor's pageviews marks where a gap exceeds the timeout, a running
//! `SUM` of those marks numbers the runs, and every pageview of a run gets the id of the run's first
//! pageview as `session_id`. A session's id *is* its entry pageview's id, so recomputing a window
//! recreates the same ids and the pageviews of other windows that point at them stay valid.
//!
//! Context the window needs, and why it is enough:
//! - 30 minutes before `A` (further back for sessions still open then): those pageviews keep the
//!   `session_id` an earlier window gave them, and a run that starts there continues under that id.
//! - Forward to the end of every session that was open at `B` or began within 30 minutes after it,
//!   so a late pageview that now bridges two sessions merges them whole.
//! - Midnight: visitor ids change with the daily salt, so during the first 30 minutes of a UTC day
//!   ingest also stores the id under yesterday's salt (`visitor_id_prev`). A visitor seen with such a
//!   link is keyed by yesterday's id for the whole day, so the run continues across midnight. Links
//!   are followed across one midnight: a session longer than a whole day splits at the second.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rollups::DAY_MS;
use super::{Store, StoreError, traced};

/// Inactivity that ends a session; the same value as `ingest::visitor::SESSION_TIMEOUT_MS`, which
/// decides how long after midnight `visitor_id_prev` is recorded.
pub const SESSION_TIMEOUT_MS: i64 = 1_800_000;

/// How far before a window a session that is still open at its start can have begun.
const LONGEST_LOOKBACK_MS: i64 = 2 * DAY_MS;

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The id of its first pageview.
    pub id: i64,
    pub site_id: i64,
    /// The visitor id of its first pageview.
    pub visitor_id: i64,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub pageview_count: i64,
    /// Exactly one pageview.
    pub is_bounce: bool,
    /// Last pageview minus first, ms.
    pub duration_ms: i64,
    pub entry_page: String,
    pub exit_page: String,
    /// The referrer of the entry pageview.
    pub referrer: String,
    pub referrer_domain: String,
}

impl Session {
    fn from_row(row: &AnyRow) -> Result<Session, sqlx::Error> {
        Ok(Session {
            id: row.try_get("id")?,
            site_id: row.try_get("site_id")?,
            visitor_id: row.try_get("visitor_id")?,
            started_at: row.try_get("started_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            pageview_count: row.try_get("pageview_count")?,
            is_bounce: row.try_get::<i64, _>("is_bounce")? != 0,
            duration_ms: row.try_get("duration_ms")?,
            entry_page: row.try_get("entry_page")?,
            exit_page: row.try_get("exit_page")?,
            referrer: row.try_get("referrer")?,
            referrer_domain: row.try_get("referrer_domain")?,
        })
    }
}

/// Sessions that may touch `[A, B)`: begun before `B` + timeout, still open at `A` − timeout.
/// `$1` site, `$2` earliest start considered, `$3` B + timeout, `$4` A − timeout.
const BOUNDS: &str = "SELECT MIN(started_at) AS lo, MAX(last_seen_at) AS hi FROM sessions \
     WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 AND last_seen_at >= $4";

/// Assigns `session_id` to the non-bot pageviews in `[A, hi)` that need a new one.
/// `$1` site, `$2` A, `$3` hi, `$4` lo (context start), `$5..$10` the first 30 minutes of up to three
/// UTC days, where `visitor_id_prev` links live (three index range scans: SQLite plans an `OR` of
/// bound ranges as a scan of the whole site).
const ASSIGN: &str = "WITH links AS (\
       SELECT visitor_id AS y, MIN(visitor_id_prev) AS x FROM (\
       SELECT visitor_id, visitor_id_prev FROM pageviews \
       WHERE site_id = $1 AND created_at >= $5 AND created_at < $6 AND visitor_id_prev IS NOT NULL \
       UNION ALL SELECT visitor_id, visitor_id_prev FROM pageviews \
       WHERE site_id = $1 AND created_at >= $7 AND created_at < $8 AND visitor_id_prev IS NOT NULL \
       UNION ALL SELECT visitor_id, visitor_id_prev FROM pageviews \
       WHERE site_id = $1 AND created_at >= $9 AND created_at < $10 AND visitor_id_prev IS NOT NULL) AS linked \
       GROUP BY visitor_id), \
     keyed AS (\
       SELECT p.id, p.created_at, p.session_id, COALESCE(l.x, p.visitor_id) AS k \
       FROM pageviews p LEFT JOIN links l ON l.y = p.visitor_id \
       WHERE p.site_id = $1 AND p.created_at >= $4 AND p.created_at < $3 AND p.is_bot = 0), \
     flagged AS (\
       SELECT id, created_at, session_id, k, \
       CASE WHEN created_at - LAG(created_at) OVER (PARTITION BY k ORDER BY created_at, id) <= 1800000 \
       THEN 0 ELSE 1 END AS brk FROM keyed), \
     grouped AS (\
       SELECT id, created_at, session_id, k, \
       SUM(brk) OVER (PARTITION BY k ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS g FROM flagged), \
     assigned AS (\
       SELECT id, created_at, \
       FIRST_VALUE(CASE WHEN created_at < $2 THEN COALESCE(session_id, id) ELSE id END) \
       OVER (PARTITION BY k, g ORDER BY created_at, id) AS sid FROM grouped) \
     UPDATE pageviews SET session_id = assigned.sid FROM assigned \
     WHERE pageviews.site_id = $1 AND pageviews.created_at >= $2 AND pageviews.created_at < $3 \
     AND pageviews.id = assigned.id AND assigned.created_at >= $2 \
     AND (pageviews.session_id IS NULL OR pageviews.session_id <> assigned.sid)";

/// Sessions begun in `[A, hi)` whose entry pageview no longer starts a session (merged away).
const DELETE_MERGED: &str = "DELETE FROM sessions WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 \
     AND id NOT IN (SELECT id FROM pageviews WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 \
     AND session_id = id)";

/// Recomputes every session with a pageview in `[A, hi)` from its pageviews.
/// `$1` site, `$2` A, `$3` hi, `$4` lo.
const UPSERT: &str = "WITH member AS (\
       SELECT session_id AS sid, id, created_at, path FROM pageviews \
       WHERE site_id = $1 AND created_at >= $4 AND created_at < $3 AND is_bot = 0 AND session_id IS NOT NULL), \
     ranked AS (\
       SELECT sid, path, COUNT(*) OVER whole AS n, MIN(created_at) OVER whole AS first_at, \
       MAX(created_at) OVER whole AS last_at, ROW_NUMBER() OVER latest AS rn FROM member \
       WINDOW latest AS (PARTITION BY sid ORDER BY created_at DESC, id DESC), \
       whole AS (latest ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) \
     INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageview_count, is_bounce, \
       duration_ms, entry_page, exit_page, referrer, referrer_domain) \
     SELECT r.sid, e.site_id, e.visitor_id, r.first_at, r.last_at, r.n, CASE WHEN r.n = 1 THEN 1 ELSE 0 END, \
       r.last_at - r.first_at, e.path, r.path, e.referrer, e.referrer_domain \
     FROM ranked r JOIN pageviews e ON e.id = r.sid WHERE r.rn = 1 AND r.last_at >= $2 \
     ON CONFLICT (id) DO UPDATE SET visitor_id = excluded.visitor_id, started_at = excluded.started_at, \
       last_seen_at = excluded.last_seen_at, pageview_count = excluded.pageview_count, \
       is_bounce = excluded.is_bounce, duration_ms = excluded.duration_ms, entry_page = excluded.entry_page, \
       exit_page = excluded.exit_page, referrer = excluded.referrer, referrer_domain = excluded.referrer_domain \
     WHERE sessions.started_at <> excluded.started_at OR sessions.last_seen_at <> excluded.last_seen_at \
       OR sessions.pageview_count <> excluded.pageview_count OR sessions.exit_page <> excluded.exit_page \
       OR sessions.entry_page <> excluded.entry_page";

impl Store {
    /// Recomputes the sessions touching `[start, end)` inside `tx` (see the module doc).
    pub(super) async fn recompute_sessions(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<(), StoreError> {
        let bounds = traced(
            self.span("SELECT", "sessions", BOUNDS),
            sqlx::query(BOUNDS)
                .bind(site_id)
                .bind(start - LONGEST_LOOKBACK_MS)
                .bind(end + SESSION_TIMEOUT_MS)
                .bind(start - SESSION_TIMEOUT_MS)
                .fetch_one(&mut **tx),
        )
        .await?;
        let open_from: Option<i64> = bounds.try_get("lo")?;
        let open_until: Option<i64> = bounds.try_get("hi")?;
        let lo = open_from.map_or(start - SESSION_TIMEOUT_MS, |lo| lo.min(start - SESSION_TIMEOUT_MS));
        let hi = open_until.map_or(end, |hi| (hi + 1).max(end));
        let first_day = lo - lo.rem_euclid(DAY_MS);
        let last_day = (hi - 1) - (hi - 1).rem_euclid(DAY_MS);
        let days = [first_day, first_day + DAY_MS, last_day];
        let mut assign = sqlx::query(ASSIGN).bind(site_id).bind(start).bind(hi).bind(lo);
        for day in days {
            assign = assign.bind(day).bind(day + SESSION_TIMEOUT_MS);
        }
        traced(self.span("UPDATE", "pageviews", ASSIGN), assign.execute(&mut **tx)).await?;
        traced(
            self.span("DELETE", "sessions", DELETE_MERGED),
            sqlx::query(DELETE_MERGED).bind(site_id).bind(start).bind(hi).execute(&mut **tx),
        )
        .await?;
        traced(
            self.span("INSERT", "sessions", UPSERT),
            sqlx::query(UPSERT).bind(site_id).bind(start).bind(hi).bind(lo).execute(&mut **tx),
        )
        .await?;
        Ok(())
    }

    /// Every session of a site, oldest first (tests and small exports).
    pub async fn sessions_of_site(&self, site_id: i64) -> Result<Vec<Session>, StoreError> {
        let sql = "SELECT id, site_id, visitor_id, started_at, last_seen_at, pageview_count, is_bounce, \
                   duration_ms, entry_page, exit_page, referrer, referrer_domain \
                   FROM sessions WHERE site_id = $1 ORDER BY started_at, id";
        let rows =
            traced(self.span("SELECT", "sessions", sql), sqlx::query(sql).bind(site_id).fetch_all(&self.pool)).await?;
        rows.iter().map(Session::from_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// `(pageview id, session id)` of every pageview of a site, by id (tests).
    pub async fn pageview_sessions(&self, site_id: i64) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
        let sql = "SELECT id, session_id FROM pageviews WHERE site_id = $1 ORDER BY id";
        let rows =
            traced(self.span("SELECT", "pageviews", sql), sqlx::query(sql).bind(site_id).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("session_id")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_timeout_is_the_ingest_timeout() {
        assert_eq!(SESSION_TIMEOUT_MS, crate::ingest::visitor::SESSION_TIMEOUT_MS);
        assert!(ASSIGN.contains(&format!("<= {SESSION_TIMEOUT_MS} ")));
    }
}
