//! Sessions: runs of one visitor's non-bot pageviews with no gap longer than 30 minutes.
//!
//! Computed by the hourly recompute of a window `[A, B)` (see `rollups`) in one pass over the
//! window's pageviews in time order, as the `(site_id, created_at)` index already returns them: a
//! hash map holds each visitor's open session, so nothing is sorted. Every pageview of a run gets
//! the id of the run's first pageview as `session_id`. A session's id *is* its entry pageview's id,
//! so recomputing a window recreates the same ids and the pageviews of other windows that point at
//! them stay valid. Only changed `session_id`s and changed sessions are written, each set as one
//! JSON batch in one statement, so a rerun over unchanged data writes nothing.
//!
//! Context the window needs, and why it is enough:
//! - 30 minutes before `A` (further back for sessions still open then): those pageviews keep the
//!   `session_id` an earlier window gave them, and a run that starts there continues under that id.
//! - Forward to the end of every session that was open at `B` or began within 30 minutes after it,
//!   so a late pageview that now bridges two sessions merges them whole.
//! - Midnight: visitor ids change with the daily salt, so during the first 30 minutes of a UTC day
//!   ingest also stores the id under yesterday's salt (`visitor_id_prev`). A visitor seen with such a
//!   link is keyed by yesterday's id (followed back over every midnight the context spans), so the
//!   run continues across midnight.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rollups::DAY_MS;
use super::{Store, StoreError, json_batch, traced};

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

/// Entry pageviews that lie before the context (a context pageview's stored `session_id`).
/// `$1` site, `$2` the id.
const ENTRY: &str = "SELECT visitor_id, path, referrer, referrer_domain FROM pageviews WHERE site_id = $1 AND id = $2";

/// Sessions begun in `[A, hi)` whose entry pageview no longer starts a session (merged away).
const DELETE_MERGED: &str = "DELETE FROM sessions WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 \
     AND id NOT IN (SELECT id FROM pageviews WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 \
     AND session_id = id)";

/// One pageview as the session pass reads it: a JSON array in the order of
/// `Dialect::session_members_sql`.
#[derive(serde::Deserialize)]
struct Member {
    id: i64,
    created_at: i64,
    visitor_id: i64,
    visitor_id_prev: Option<i64>,
    session_id: Option<i64>,
    path: String,
    referrer: String,
    referrer_domain: String,
}

/// A changed `pageviews.session_id`: `[pageview id, session id]` in JSON.
#[derive(Serialize)]
struct SessionIdChange(i64, i64);

/// A session as written (the JSON object `Dialect::upsert_sessions_sql` reads).
#[derive(Serialize, Default)]
struct SessionRow {
    id: i64,
    site_id: i64,
    visitor_id: i64,
    started_at: i64,
    last_seen_at: i64,
    pageview_count: i64,
    is_bounce: i64,
    duration_ms: i64,
    entry_page: String,
    exit_page: String,
    referrer: String,
    referrer_domain: String,
    /// Whether the entry pageview was among the members (otherwise it is read by id).
    #[serde(skip)]
    has_entry: bool,
    /// Whether a pageview joined or left it in this pass (a session none of whose pageviews
    /// changed is what the window's last recompute stored).
    #[serde(skip)]
    dirty: bool,
}

/// What the pass over one window's context decided.
#[derive(Default)]
struct SessionPass {
    changes: Vec<SessionIdChange>,
    /// By session id, in order of first appearance.
    sessions: Vec<SessionRow>,
}

/// Builds the sessions of `members` (non-bot pageviews of `[lo, hi)` in `(created_at, id)` order)
/// for the window starting at `start`. Pageviews before `start` keep their stored `session_id`;
/// a run whose first pageview is before `start` continues under that pageview's session.
fn build_sessions(site_id: i64, start: i64, members: Vec<Member>) -> SessionPass {
    // visitor id → the id under the previous day's salt (from the first 30 minutes of a day).
    let mut links: HashMap<i64, i64> = HashMap::new();
    for member in &members {
        if let Some(prev) = member.visitor_id_prev {
            links.entry(member.visitor_id).and_modify(|p| *p = (*p).min(prev)).or_insert(prev);
        }
    }
    let key_of = |mut visitor: i64| {
        // A chain is one link per midnight in the context (two or three); the bound only guards
        // against a cycle, which only a hash collision could make.
        for _ in 0..8 {
            match links.get(&visitor) {
                Some(&prev) if prev != visitor => visitor = prev,
                _ => break,
            }
        }
        visitor
    };
    // key → (session id of its open run, last pageview time)
    let mut open: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut pass = SessionPass::default();
    for member in members {
        let key = key_of(member.visitor_id);
        let run = match open.get_mut(&key) {
            Some((sid, last)) if member.created_at - *last <= SESSION_TIMEOUT_MS => {
                *last = member.created_at;
                *sid
            }
            _ => {
                let sid = if member.created_at < start { member.session_id.unwrap_or(member.id) } else { member.id };
                open.insert(key, (sid, member.created_at));
                sid
            }
        };
        // The session this pageview counts in: its stored one before the window, the run's inside.
        let mut changed = false;
        let counted = if member.created_at < start {
            match member.session_id {
                Some(stored) => stored,
                None => continue,
            }
        } else {
            if member.session_id != Some(run) {
                pass.changes.push(SessionIdChange(member.id, run));
                changed = true;
            }
            run
        };
        let at = *index.entry(counted).or_insert_with(|| {
            pass.sessions.push(SessionRow {
                id: counted,
                site_id,
                started_at: member.created_at,
                ..SessionRow::default()
            });
            pass.sessions.len() - 1
        });
        let session = &mut pass.sessions[at];
        session.dirty |= changed;
        session.pageview_count += 1;
        session.last_seen_at = member.created_at;
        if member.id == counted {
            session.has_entry = true;
            session.visitor_id = member.visitor_id;
            session.entry_page.clone_from(&member.path);
            session.referrer = member.referrer;
            session.referrer_domain = member.referrer_domain;
        }
        session.exit_page = member.path;
    }
    for session in &mut pass.sessions {
        session.is_bounce = i64::from(session.pageview_count == 1);
        session.duration_ms = session.last_seen_at - session.started_at;
    }
    pass
}

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
        // The whole context travels as one JSON array in one value: per-row transfer through the
        // driver costs several times what SQLite spends reading the row.
        let sql = self.dialect.session_members_sql();
        let members: Option<String> = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query_scalar(sql).bind(site_id).bind(lo).bind(hi).fetch_one(&mut **tx),
        )
        .await?;
        let members: Vec<Member> = match members {
            Some(json) => {
                serde_json::from_str(&json).map_err(|err| StoreError::Database(sqlx::Error::Decode(err.into())))?
            }
            None => Vec::new(),
        };
        let mut pass = build_sessions(site_id, start, members);
        // A session none of whose pageviews changed session is as stored: skip it.
        pass.sessions.retain(|session| session.dirty && session.last_seen_at >= start);
        for session in pass.sessions.iter_mut().filter(|session| !session.has_entry) {
            let entry = traced(
                self.span("SELECT", "pageviews", ENTRY),
                sqlx::query(ENTRY).bind(site_id).bind(session.id).fetch_optional(&mut **tx),
            )
            .await?;
            if let Some(entry) = entry {
                session.has_entry = true;
                session.visitor_id = entry.try_get("visitor_id")?;
                session.entry_page = entry.try_get("path")?;
                session.referrer = entry.try_get("referrer")?;
                session.referrer_domain = entry.try_get("referrer_domain")?;
            }
        }
        // A session whose entry pageview is gone (pruned) keeps the row it has.
        pass.sessions.retain(|session| session.has_entry);
        if !pass.changes.is_empty() {
            let sql = self.dialect.set_session_ids_sql();
            let batch = json_batch(&pass.changes)?;
            traced(self.span("UPDATE", "pageviews", sql), sqlx::query(sql).bind(batch).execute(&mut **tx)).await?;
        }
        traced(
            self.span("DELETE", "sessions", DELETE_MERGED),
            sqlx::query(DELETE_MERGED).bind(site_id).bind(start).bind(hi).execute(&mut **tx),
        )
        .await?;
        if !pass.sessions.is_empty() {
            let sql = self.dialect.upsert_sessions_sql();
            let batch = json_batch(&pass.sessions)?;
            traced(self.span("INSERT", "sessions", sql), sqlx::query(sql).bind(batch).execute(&mut **tx)).await?;
        }
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
    fn the_timeout_is_the_ingest_timeout() {
        assert_eq!(SESSION_TIMEOUT_MS, crate::ingest::visitor::SESSION_TIMEOUT_MS);
    }

    const MIN: i64 = 60_000;

    fn member(id: i64, at: i64, visitor: i64, path: &str) -> Member {
        Member {
            id,
            created_at: at,
            visitor_id: visitor,
            visitor_id_prev: None,
            session_id: None,
            path: path.into(),
            referrer: format!("ref{id}"),
            referrer_domain: String::new(),
        }
    }

    #[test]
    fn a_gap_longer_than_the_timeout_starts_a_new_session() {
        let members = vec![
            member(1, 0, 7, "/a"),
            member(2, 10 * MIN, 8, "/x"),
            member(3, 30 * MIN, 7, "/b"),
            member(4, 61 * MIN, 7, "/c"),
        ];
        let pass = build_sessions(1, 0, members);
        let sids: Vec<(i64, i64)> = pass.changes.iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(sids, vec![(1, 1), (2, 2), (3, 1), (4, 4)]);
        let first = &pass.sessions[0];
        assert_eq!((first.id, first.pageview_count, first.duration_ms), (1, 2, 30 * MIN));
        assert_eq!(
            (first.entry_page.as_str(), first.exit_page.as_str(), first.referrer.as_str()),
            ("/a", "/b", "ref1")
        );
        assert_eq!(first.is_bounce, 0);
        assert_eq!(pass.sessions.iter().map(|s| (s.id, s.is_bounce)).collect::<Vec<_>>(), vec![(1, 0), (2, 1), (4, 1)]);
    }

    #[test]
    fn a_run_begun_before_the_window_continues_under_its_stored_session() {
        let start = 100 * MIN;
        let mut before = member(5, start - 10 * MIN, 7, "/a");
        before.session_id = Some(3);
        let members = vec![before, member(9, start + 5 * MIN, 7, "/b")];
        let pass = build_sessions(1, start, members);
        assert_eq!(pass.changes.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), vec![(9, 3)]);
        assert_eq!(pass.sessions.len(), 1);
        // Session 3's entry pageview lies before the context: read by id later.
        assert!(!pass.sessions[0].has_entry);
        assert_eq!((pass.sessions[0].pageview_count, pass.sessions[0].exit_page.as_str()), (2, "/b"));
    }

    #[test]
    fn unchanged_pageviews_are_not_rewritten() {
        let mut a = member(1, 0, 7, "/a");
        a.session_id = Some(1);
        let mut b = member(2, MIN, 7, "/b");
        b.session_id = Some(1);
        assert!(build_sessions(1, 0, vec![a, b]).changes.is_empty());
    }

    #[test]
    fn the_link_under_yesterdays_salt_carries_a_session_over_midnight() {
        let midnight = DAY_MS;
        let mut after = member(2, midnight + 5 * MIN, 70, "/b");
        after.visitor_id_prev = Some(7);
        // Later the same day the link is no longer stored, but the visitor is still keyed by it.
        let later = member(3, midnight + 34 * MIN, 70, "/c");
        let pass = build_sessions(1, 0, vec![member(1, midnight - 10 * MIN, 7, "/a"), after, later]);
        assert_eq!(pass.changes.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), vec![(1, 1), (2, 1), (3, 1)]);
        assert_eq!(pass.sessions.len(), 1);
        assert_eq!(pass.sessions[0].visitor_id, 7);
    }
}
