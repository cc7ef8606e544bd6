//! The only place that knows SQLite and PostgreSQL apart: URL forms, connection settings, pool sizes,
//! how each reports "busy, try again", and the statements that unpack JSON batches. (One more place
//! is SQLite-only by nature: the hourly pass reads and writes SQLite files through its C API,
//! `store::sqlite_direct`.)

use std::time::Duration;

use crate::config::SqliteSync;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Picks the backend from the URL scheme; `None` for anything else.
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// `sqlite://PATH` and `sqlite:PATH` open-or-create the file (`mode=rwc`) unless a mode is given,
    /// so the embedded default works on first run.
    pub(super) fn normalize_url(self, url: &str) -> String {
        match self {
            Dialect::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        }
    }

    /// The `db.system.name` of the OpenTelemetry conventions.
    pub fn system_name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgresql",
        }
    }

    /// SQLite allows one writer at a time, so more connections only help readers; PostgreSQL gains
    /// from parallel writers up to about the core count of a small server.
    pub(super) fn pool_size(self) -> u32 {
        match self {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 16,
        }
    }

    /// Whether the pool pings a connection before handing it out. A SQLite connection is a file
    /// handle that cannot go stale, and the ping is a round trip to its worker thread on every
    /// acquire (half the hops of an ingest batch); a PostgreSQL connection can die with its server.
    pub(super) fn test_before_acquire(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// How many group-commit writers run at once: one on either backend. SQLite has a single writer
    /// lock. On PostgreSQL a commit costs the server ~150 µs of CPU besides its per-row work and
    /// the flush, so two writers split the same traffic into twice the commits and fought the
    /// requests for CPU: 19.9-21.3 k hits/s against 23.9-27.8 k for one (2 cores, bench/README.md).
    pub fn ingest_writers(self) -> usize {
        1
    }

    /// How long a writer lets a small batch grow under concurrent load. On SQLite a commit is cheap
    /// and its per-transaction costs dominate small batches: lingering 50 µs pays. On PostgreSQL the
    /// commit itself takes ~0.5 ms, during which the next batch gathers anyway; lingering only
    /// delayed it (20.4-23.9 k hits/s with 50-300 µs, 27.8 k with none).
    pub fn ingest_linger(self) -> Duration {
        match self {
            Dialect::Sqlite => Duration::from_micros(50),
            Dialect::Postgres => Duration::ZERO,
        }
    }

    /// Statements run on every new connection. WAL lets readers proceed during a write;
    /// checkpoints are left to `Store::run_checkpointer` (the automatic one, raised to 256 MB of WAL, is
    /// only a safety net) because an automatic checkpoint runs inside the committing write and its
    /// fsyncs would stall every request waiting on that commit;
    /// `synchronous=NORMAL` in WAL mode survives a process crash (a committed transaction is in the
    /// WAL file), `FULL` also survives power loss.
    pub(super) fn connect_statements(self, sync: SqliteSync) -> &'static [&'static str] {
        match (self, sync) {
            (Dialect::Sqlite, SqliteSync::Normal) => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 5000",
                "PRAGMA wal_autocheckpoint = 65536",
            ],
            (Dialect::Sqlite, SqliteSync::Full) => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 5000",
                "PRAGMA wal_autocheckpoint = 65536",
            ],
            (Dialect::Postgres, _) => &[],
        }
    }

    /// Errors that say "the database can't take this now, try again later" rather than "this row
    /// is wrong": the caller answers 503, never a 4xx or 500, and a later retry can succeed.
    /// SQLite (extended codes; the low byte is the primary one): BUSY, LOCKED, READONLY, IOERR,
    /// FULL (disk full), CANTOPEN. PostgreSQL: connection exceptions (08), insufficient resources
    /// (53: disk full, out of memory, too many connections), shutdown and startup (57P01–57P03),
    /// system and I/O errors (58), serialization failure (40001).
    pub(super) fn is_unavailable(err: &dyn sqlx::error::DatabaseError) -> bool {
        let Some(code) = err.code() else { return false };
        if let Ok(extended) = code.parse::<i32>() {
            return sqlite_code_is_unavailable(extended);
        }
        ["08", "53", "58", "57P01", "57P02", "57P03", "40001"].iter().any(|prefix| code.starts_with(prefix))
    }

    /// SQLite's and PostgreSQL's codes for a UNIQUE violation.
    pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
        match err {
            sqlx::Error::Database(db) => {
                matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
            }
            _ => false,
        }
    }

    /// Non-bot pageviews and distinct visitors per hour-long bucket from `$2` to `$3` of site `$1`, plus
    /// one row with a NULL bucket for the whole window. PostgreSQL computes both from one index scan
    /// (`GROUPING SETS`); SQLite, which lacks them, scans twice in the one statement.
    pub(super) fn hourly_counts_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT created_at - (created_at - $2) % 3600000 AS bucket, COUNT(*) AS pageviews, \
                 COUNT(DISTINCT visitor_id) AS visitors FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 GROUP BY 1 \
                 UNION ALL SELECT NULL, COUNT(*), COUNT(DISTINCT visitor_id) FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0"
            }
            Dialect::Postgres => {
                "SELECT created_at - (created_at - $2) % 3600000 AS bucket, COUNT(*) AS pageviews, \
                 COUNT(DISTINCT visitor_id) AS visitors FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 \
                 GROUP BY GROUPING SETS ((1), ())"
            }
        }
    }

    /// How a rollup transaction starts. SQLite: `IMMEDIATE` takes the write lock up front, so a
    /// transaction that reads first and writes later can't fail halfway with SQLITE_BUSY (a deferred
    /// one can't wait for the lock without risking deadlock, so SQLite refuses at once).
    pub(super) fn begin_write_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Serialises rollups of one site across workers until the transaction ends. PostgreSQL: a
    /// transaction-level advisory lock in our own class (21329 = "SQ") on the site id. SQLite needs
    /// none: `BEGIN IMMEDIATE` already admits one writer at a time.
    pub(super) fn lock_site_sql(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                Some("SELECT CAST(1 AS BIGINT) FROM pg_advisory_xact_lock(21329, CAST($1 AS INTEGER))")
            }
        }
    }

    /// Run at the start of a rollup transaction. PostgreSQL: its commit does not wait for the WAL
    /// flush. Rollup rows are derived from raw rows; a crash can only lose the last commits, and a
    /// window whose rows went with them no longer matches its raw rows' count and largest id, so
    /// the backfill finds it. SQLite's commits (WAL, `synchronous=NORMAL`) never wait for a flush.
    pub(super) fn rollup_commit_sql(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SET LOCAL synchronous_commit = off"),
        }
    }

    /// The raw pageviews of `[$2, $3)` of site `$1` (the hourly pass's chunk) as one JSON array of
    /// `[id, created_at, visitor_id, visitor_id_prev, is_bot, path, referrer, referrer_domain]`
    /// arrays in `(created_at, id)` order (NULL when there are none).
    pub(super) fn pass_scan_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT json_group_array(json_array(id, created_at, visitor_id, visitor_id_prev, is_bot, path, \
                 referrer, referrer_domain) ORDER BY created_at, id) FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3"
            }
            Dialect::Postgres => {
                "SELECT CAST(json_agg(json_build_array(id, created_at, visitor_id, visitor_id_prev, is_bot, path, \
                 referrer, referrer_domain) ORDER BY created_at, id) AS TEXT) FROM pageviews \
                 WHERE site_id = $1 AND created_at >= $2 AND created_at < $3"
            }
        }
    }

    /// Inserts or rewrites sessions from a JSON array of session objects (the pass sends only
    /// sessions that differ from the stored ones).
    pub(super) fn upsert_sessions_sql(self) -> &'static str {
        /// The columns, and what both backends do on a conflict.
        macro_rules! upsert_sessions {
            ($source:literal) => {
                concat!(
                    "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageview_count, ",
                    "is_bounce, duration_ms, entry_page, exit_page, referrer, referrer_domain, later_visitor_ids) ",
                    $source,
                    " ON CONFLICT (id) DO UPDATE SET visitor_id = excluded.visitor_id, ",
                    "started_at = excluded.started_at, last_seen_at = excluded.last_seen_at, ",
                    "pageview_count = excluded.pageview_count, is_bounce = excluded.is_bounce, ",
                    "duration_ms = excluded.duration_ms, entry_page = excluded.entry_page, ",
                    "exit_page = excluded.exit_page, referrer = excluded.referrer, ",
                    "referrer_domain = excluded.referrer_domain, later_visitor_ids = excluded.later_visitor_ids"
                )
            };
        }
        match self {
            // `WHERE true`: SQLite's parser needs it between `INSERT … SELECT` and `ON CONFLICT`.
            Dialect::Sqlite => upsert_sessions!(
                "SELECT value ->> 'id', value ->> 'site_id', value ->> 'visitor_id', value ->> 'started_at', \
                 value ->> 'last_seen_at', value ->> 'pageview_count', value ->> 'is_bounce', value ->> 'duration_ms', \
                 value ->> 'entry_page', value ->> 'exit_page', value ->> 'referrer', value ->> 'referrer_domain', \
                 value ->> 'later_visitor_ids' FROM jsonb_each($1) WHERE true"
            ),
            Dialect::Postgres => upsert_sessions!(
                "SELECT id, site_id, visitor_id, started_at, last_seen_at, pageview_count, is_bounce, duration_ms, \
                 entry_page, exit_page, referrer, referrer_domain, later_visitor_ids \
                 FROM json_to_recordset($1::json) AS r(id BIGINT, site_id BIGINT, visitor_id BIGINT, started_at BIGINT, \
                 last_seen_at BIGINT, pageview_count BIGINT, is_bounce BIGINT, duration_ms BIGINT, entry_page TEXT, \
                 exit_page TEXT, referrer TEXT, referrer_domain TEXT, later_visitor_ids TEXT)"
            ),
        }
    }

    /// Deletes the sessions of site `$1` whose ids are in the JSON array `$2`.
    pub(super) fn delete_sessions_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "DELETE FROM sessions WHERE site_id = $1 AND id IN (SELECT value FROM json_each($2))",
            Dialect::Postgres => {
                "DELETE FROM sessions WHERE site_id = $1 \
                 AND id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text($2::json))"
            }
        }
    }

    /// Inserts or rewrites hourly rows from a JSON array of objects (`site_id`, `bucket`, the four
    /// counts, `now`).
    pub(super) fn upsert_hours_sql(self) -> &'static str {
        macro_rules! upsert_hours {
            ($source:literal) => {
                concat!(
                    "INSERT INTO hourly_stats (site_id, hour_bucket, pageview_count, unique_session_count, raw_count, ",
                    "raw_max_id, created_at, updated_at) ",
                    $source,
                    " ON CONFLICT (site_id, hour_bucket) DO UPDATE SET pageview_count = excluded.pageview_count, ",
                    "unique_session_count = excluded.unique_session_count, raw_count = excluded.raw_count, ",
                    "raw_max_id = excluded.raw_max_id, updated_at = excluded.updated_at"
                )
            };
        }
        match self {
            Dialect::Sqlite => upsert_hours!(
                "SELECT value ->> 'site_id', value ->> 'bucket', value ->> 'pageview_count', \
                 value ->> 'unique_session_count', value ->> 'raw_count', value ->> 'raw_max_id', value ->> 'now', \
                 value ->> 'now' FROM jsonb_each($1) WHERE true"
            ),
            Dialect::Postgres => upsert_hours!(
                "SELECT site_id, bucket, pageview_count, unique_session_count, raw_count, raw_max_id, now, now \
                 FROM json_to_recordset($1::json) AS r(site_id BIGINT, bucket BIGINT, pageview_count BIGINT, \
                 unique_session_count BIGINT, raw_count BIGINT, raw_max_id BIGINT, now BIGINT)"
            ),
        }
    }

    /// The batched pageview INSERT: one statement taking the whole batch as a JSON array of objects
    /// (see `Store::insert_pageviews`). Each backend unpacks JSON its own way.
    pub(super) fn insert_pageviews_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "INSERT INTO pageviews (site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id, visitor_id_prev) \
                 SELECT value ->> 'site_id', value ->> 'created_at', value ->> 'url', value ->> 'path', value ->> 'referrer', value ->> 'referrer_domain', value ->> 'utm_source', value ->> 'utm_medium', value ->> 'utm_campaign', value ->> 'utm_term', value ->> 'utm_content', value ->> 'browser', value ->> 'browser_version', value ->> 'os', value ->> 'device_type', value ->> 'country', value ->> 'is_bot', value ->> 'visitor_id', value ->> 'visitor_id_prev' \
                 FROM jsonb_each($1)"
            }
            Dialect::Postgres => {
                "INSERT INTO pageviews (site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id, visitor_id_prev) \
                 SELECT site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id, visitor_id_prev \
                 FROM json_to_recordset($1::json) AS r(site_id BIGINT, created_at BIGINT, url TEXT, path TEXT, referrer TEXT, referrer_domain TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, utm_term TEXT, utm_content TEXT, browser TEXT, browser_version TEXT, os TEXT, device_type TEXT, country TEXT, is_bot BIGINT, visitor_id BIGINT, visitor_id_prev BIGINT)"
            }
        }
    }
}

/// SQLite's half of [`Dialect::is_unavailable`], for an extended result code.
pub(super) fn sqlite_code_is_unavailable(extended: i32) -> bool {
    matches!(extended & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}
