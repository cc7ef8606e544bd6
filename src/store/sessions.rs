//! Sessions: runs of one visitor's non-bot pageviews with no gap longer than 30 minutes.
//!
//! Built in Rust by the hourly pass (`store::pass`) from a site's pageviews in time order, as the
//! `(site_id, created_at)` index returns them: a hash map holds each visitor's open session, so
//! nothing is sorted. Raw pageviews are never written: a session's pageviews are the non-bot ones
//! with `created_at` from `started_at` to `last_seen_at` whose visitor id is the session's
//! `visitor_id` or one of its `later_visitor_ids`. A session's id is its entry pageview's id, so a
//! recompute recreates the same ids whatever order windows are processed in.
//!
//! Context a window `[A, B)` needs, and why it is enough (the pass reads it):
//! - Back to the start of every stored session still open 30 minutes before `A`
//!   ([`SESSION_BOUNDS`], at most [`LONGEST_LOOKBACK_MS`] back), or to `A` − 30 min: a run that
//!   starts there is a whole session.
//! - Forward to the end of every stored session begun before `B` + 30 min, so a late pageview that
//!   now bridges two sessions merges them whole.
//! - Midnight: visitor ids change with the daily salt, so during the first 30 minutes of a UTC day
//!   ingest also stores the id under yesterday's salt (`visitor_id_prev`). A visitor seen with such a
//!   link is keyed by yesterday's id (followed back over every midnight the context spans), so the
//!   run continues across midnight; the session lists the later ids in `later_visitor_ids`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rollups::DAY_MS;
use super::{Store, StoreError, traced};

/// Inactivity that ends a session; the same value as `ingest::visitor::SESSION_TIMEOUT_MS`, which
/// decides how long after midnight `visitor_id_prev` is recorded.
pub const SESSION_TIMEOUT_MS: i64 = 1_800_000;

/// How far before a window a session that is still open at its start can have begun: longer
/// sessions are not continued (a week of activity with no half-hour pause is no visitor).
pub(super) const LONGEST_LOOKBACK_MS: i64 = 7 * DAY_MS;

/// The earliest start of a site's stored sessions begun in `[$2, $3)` and still open at `$4`, read
/// from `sessions_site_time_totals` alone (`last_seen_at` is `started_at + duration_ms`).
pub(super) const SESSION_BOUNDS: &str = "SELECT MIN(started_at) FROM sessions \
     WHERE site_id = $1 AND started_at >= $2 AND started_at < $3 AND started_at + duration_ms >= $4";

/// A site's stored sessions begun in `[$2, $3)`, in the column order of [`Session`].
pub(super) const STORED_SESSIONS: &str = "SELECT id, site_id, visitor_id, started_at, last_seen_at, \
     pageview_count, is_bounce, duration_ms, entry_page, exit_page, referrer, referrer_domain, later_visitor_ids \
     FROM sessions WHERE site_id = $1 AND started_at >= $2 AND started_at < $3";

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// The visitor's ids on the later UTC days the session runs into, ascending, as `,id,id,`
    /// (empty for a session within one day).
    pub later_visitor_ids: String,
}

impl Session {
    pub(super) fn from_row(row: &AnyRow) -> Result<Session, sqlx::Error> {
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
            later_visitor_ids: row.try_get("later_visitor_ids")?,
        })
    }

    /// Whether the session holds a pageview of `visitor_id` (the session's own or a later day's).
    pub fn has_visitor(&self, visitor_id: i64) -> bool {
        visitor_id == self.visitor_id || self.later_visitor_ids.contains(&format!(",{visitor_id},"))
    }
}

/// One non-bot pageview as the builder reads it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit<'a> {
    pub id: i64,
    pub created_at: i64,
    pub visitor_id: i64,
    pub visitor_id_prev: Option<i64>,
    pub path: &'a str,
    pub referrer: &'a str,
    pub referrer_domain: &'a str,
}

/// Hashes an id that is already well mixed (visitor ids are hashes; pageview ids are sequential,
/// which a multiplication spreads) in one multiplication instead of SipHash's rounds.
#[derive(Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n.cast_unsigned() ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

pub(super) type IdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher>>;
pub(super) type IdSet = HashSet<i64, BuildHasherDefault<IdHasher>>;

/// A session being built: `session` is kept as it would be stored after every pageview.
#[derive(Debug)]
struct Run {
    /// The visitor id its pageviews' links lead back to.
    key: i64,
    session: Session,
    /// Still in `open` (a next pageview of its key may extend it).
    open: bool,
}

impl Run {
    /// Adds a visitor id of a later day to `later_visitor_ids` (kept ascending).
    fn add_later(&mut self, visitor_id: i64) {
        let listed = &self.session.later_visitor_ids;
        let mut later: Vec<i64> = listed.split(',').filter_map(|v| v.parse().ok()).collect();
        if later.contains(&visitor_id) {
            return;
        }
        later.push(visitor_id);
        later.sort_unstable();
        self.session.later_visitor_ids = later.iter().fold(",".to_string(), |s, v| s + &format!("{v},"));
    }
}

/// Builds sessions from pageviews pushed in `(created_at, id)` order, window after window.
#[derive(Debug)]
pub(super) struct SessionBuilder {
    site_id: i64,
    /// visitor id → (its id under the previous day's salt, when that was seen).
    links: IdMap<(i64, i64)>,
    /// key (the visitor id the chain of links leads back to) → index in `runs`.
    open: IdMap<usize>,
    /// Runs that are open, or closed but not yet retired.
    runs: Vec<Run>,
    /// Every pageview before this time has been pushed.
    fed_until: i64,
}

impl SessionBuilder {
    pub(super) fn new(site_id: i64, from: i64) -> SessionBuilder {
        SessionBuilder { site_id, links: IdMap::default(), open: IdMap::default(), runs: Vec::new(), fed_until: from }
    }

    fn key_of(&self, mut visitor: i64) -> i64 {
        // A chain is one link per midnight in the context; the bound only guards against a cycle,
        // which only a hash collision could make.
        for _ in 0..16 {
            match self.links.get(&visitor) {
                Some(&(prev, _)) if prev != visitor => visitor = prev,
                _ => break,
            }
        }
        visitor
    }

    /// Adds the next pageview (none may be earlier than one pushed before).
    pub(super) fn push(&mut self, hit: &Hit<'_>) {
        if let Some(prev) = hit.visitor_id_prev {
            self.links
                .entry(hit.visitor_id)
                .and_modify(|link| link.0 = link.0.min(prev))
                .or_insert((prev, hit.created_at));
        }
        let key = self.key_of(hit.visitor_id);
        if let Some(&at) = self.open.get(&key) {
            let run = &mut self.runs[at];
            if hit.created_at - run.session.last_seen_at <= SESSION_TIMEOUT_MS {
                let session = &mut run.session;
                session.pageview_count += 1;
                session.is_bounce = false;
                session.last_seen_at = hit.created_at;
                session.duration_ms = session.last_seen_at - session.started_at;
                session.exit_page.clear();
                session.exit_page.push_str(hit.path);
                if hit.visitor_id != session.visitor_id {
                    run.add_later(hit.visitor_id);
                }
                return;
            }
            run.open = false;
        }
        self.open.insert(key, self.runs.len());
        self.runs.push(Run {
            key,
            session: Session {
                id: hit.id,
                site_id: self.site_id,
                visitor_id: hit.visitor_id,
                started_at: hit.created_at,
                last_seen_at: hit.created_at,
                pageview_count: 1,
                is_bounce: true,
                entry_page: hit.path.to_string(),
                exit_page: hit.path.to_string(),
                referrer: hit.referrer.to_string(),
                referrer_domain: hit.referrer_domain.to_string(),
                ..Session::default()
            },
            open: true,
        });
    }

    /// Records that every pageview before `until` has been pushed.
    pub(super) fn fed(&mut self, until: i64) {
        self.fed_until = self.fed_until.max(until);
    }

    pub(super) fn fed_until(&self) -> i64 {
        self.fed_until
    }

    /// The earliest start of the runs with a pageview at or after `since`.
    pub(super) fn earliest_start(&self, since: i64) -> Option<i64> {
        self.runs.iter().filter(|run| run.session.last_seen_at >= since).map(|run| run.session.started_at).min()
    }

    /// The sessions of window `[a, b)`: the runs begun before `b` with a pageview at or after `a`.
    pub(super) fn sessions(&self, a: i64, b: i64) -> impl Iterator<Item = &Session> {
        self.runs.iter().map(|run| &run.session).filter(move |s| s.started_at < b && s.last_seen_at >= a)
    }

    /// Ids of the runs begun in `[from, to)`: the pageviews that start a session there.
    pub(super) fn starts(&self, from: i64, to: i64) -> IdSet {
        self.runs.iter().filter(|run| (from..to).contains(&run.session.started_at)).map(|run| run.session.id).collect()
    }

    /// Forgets what window `[_, b)` was the last to need: runs that can no longer grow (closed, or
    /// quiet for longer than the timeout before `fed_until`) and began before `b`, and links older
    /// than any session continued.
    pub(super) fn retire(&mut self, b: i64) {
        let quiet_before = self.fed_until - SESSION_TIMEOUT_MS;
        for run in &mut self.runs {
            if run.session.last_seen_at < quiet_before {
                run.open = false;
            }
        }
        self.runs.retain(|run| run.open || run.session.started_at >= b);
        self.open.clear();
        for (at, run) in self.runs.iter().enumerate() {
            if run.open {
                self.open.insert(run.key, at);
            }
        }
        let oldest = self.fed_until - LONGEST_LOOKBACK_MS;
        self.links.retain(|_, link| link.1 >= oldest);
    }
}

impl Store {
    /// Every session of a site, oldest first (tests and small exports).
    pub async fn sessions_of_site(&self, site_id: i64) -> Result<Vec<Session>, StoreError> {
        let sql = "SELECT id, site_id, visitor_id, started_at, last_seen_at, pageview_count, is_bounce, \
                   duration_ms, entry_page, exit_page, referrer, referrer_domain, later_visitor_ids \
                   FROM sessions WHERE site_id = $1 ORDER BY started_at, id";
        let rows =
            traced(self.span("SELECT", "sessions", sql), sqlx::query(sql).bind(site_id).fetch_all(&self.pool)).await?;
        rows.iter().map(Session::from_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// `(pageview id, session id)` of every pageview of a site, by id: the stored session whose
    /// visitor and time range hold it (tests).
    pub async fn pageview_sessions(&self, site_id: i64) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
        let sessions = self.sessions_of_site(site_id).await?;
        let sql = "SELECT id, created_at, visitor_id, is_bot FROM pageviews WHERE site_id = $1 ORDER BY id";
        let rows =
            traced(self.span("SELECT", "pageviews", sql), sqlx::query(sql).bind(site_id).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| {
                let (id, at, visitor): (i64, i64, i64) =
                    (row.try_get("id")?, row.try_get("created_at")?, row.try_get("visitor_id")?);
                let session = (row.try_get::<i64, _>("is_bot")? == 0)
                    .then(|| {
                        sessions
                            .iter()
                            .find(|s| (s.started_at..=s.last_seen_at).contains(&at) && s.has_visitor(visitor))
                            .map(|s| s.id)
                    })
                    .flatten();
                Ok((id, session))
            })
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

    struct Pv {
        id: i64,
        at: i64,
        visitor: i64,
        prev: Option<i64>,
        path: String,
        referrer: String,
    }

    fn pv(id: i64, at: i64, visitor: i64, path: &str) -> Pv {
        Pv { id, at, visitor, prev: None, path: path.into(), referrer: format!("ref{id}") }
    }

    fn build(from: i64, pvs: &[Pv]) -> SessionBuilder {
        let mut builder = SessionBuilder::new(1, from);
        for p in pvs {
            push(&mut builder, p);
        }
        builder
    }

    fn push(builder: &mut SessionBuilder, p: &Pv) {
        builder.push(&Hit {
            id: p.id,
            created_at: p.at,
            visitor_id: p.visitor,
            visitor_id_prev: p.prev,
            path: &p.path,
            referrer: &p.referrer,
            referrer_domain: "",
        });
        builder.fed(p.at + 1);
    }

    #[test]
    fn a_gap_longer_than_the_timeout_starts_a_new_session() {
        let builder = build(
            0,
            &[pv(1, 0, 7, "/a"), pv(2, 10 * MIN, 8, "/x"), pv(3, 30 * MIN, 7, "/b"), pv(4, 61 * MIN, 7, "/c")],
        );
        let sessions: Vec<Session> = builder.sessions(0, i64::MAX).cloned().collect();
        let first = &sessions[0];
        assert_eq!((first.id, first.pageview_count, first.duration_ms), (1, 2, 30 * MIN));
        assert_eq!(
            (first.entry_page.as_str(), first.exit_page.as_str(), first.referrer.as_str()),
            ("/a", "/b", "ref1")
        );
        assert!(!first.is_bounce);
        assert_eq!(
            sessions.iter().map(|s| (s.id, s.is_bounce)).collect::<Vec<_>>(),
            vec![(1, false), (2, true), (4, true)]
        );
    }

    #[test]
    fn a_window_holds_the_runs_that_touch_it_and_began_before_its_end() {
        let start = 100 * MIN;
        let builder = build(
            start - 30 * MIN,
            &[
                pv(5, start - 20 * MIN, 7, "/a"), // context: the run continues into the window
                pv(6, start - 15 * MIN, 8, "/x"), // context only: over before the window
                pv(9, start + 5 * MIN, 7, "/b"),
                pv(10, start + 65 * MIN, 9, "/later"), // begins after the window
            ],
        );
        let sessions: Vec<&Session> = builder.sessions(start, start + 60 * MIN).collect();
        assert_eq!(sessions.iter().map(|s| (s.id, s.pageview_count)).collect::<Vec<_>>(), vec![(5, 2)]);
        assert_eq!(sessions[0].entry_page, "/a", "the entry pageview was read as context");
        assert_eq!(builder.starts(start, start + 70 * MIN), IdSet::from_iter([10]));
        assert_eq!(builder.earliest_start(start), Some(start - 20 * MIN));
    }

    #[test]
    fn windows_pushed_one_after_another_give_the_sessions_of_one_pass() {
        let pvs: Vec<Pv> = (0..200).map(|i| pv(i, i * 7 * MIN, i % 9, &format!("/{}", i % 4))).collect();
        let whole: Vec<Session> = build(0, &pvs).sessions(0, i64::MAX).cloned().collect();
        let mut builder = SessionBuilder::new(1, 0);
        let mut seen: Vec<Session> = Vec::new();
        let mut rest = pvs.iter().peekable();
        for w in 0..24 {
            let (a, b) = (w * 60 * MIN, (w + 1) * 60 * MIN);
            while let Some(p) = rest.next_if(|p| p.at < b) {
                push(&mut builder, p);
            }
            builder.fed(b);
            for session in builder.sessions(a, b) {
                seen.retain(|s| s.id != session.id);
                seen.push(session.clone());
            }
            builder.retire(b);
        }
        seen.sort_by_key(|s| s.started_at);
        assert_eq!(seen, whole);
        assert!(builder.runs.len() < 10, "retired runs are forgotten");
    }

    #[test]
    fn the_link_under_yesterdays_salt_carries_a_session_over_midnight() {
        let midnight = DAY_MS;
        let mut after = pv(2, midnight + 5 * MIN, 70, "/b");
        after.prev = Some(7);
        // Later the same day the link is no longer stored, but the visitor is still keyed by it.
        let later = pv(3, midnight + 34 * MIN, 70, "/c");
        let builder = build(0, &[pv(1, midnight - 10 * MIN, 7, "/a"), after, later]);
        let sessions: Vec<&Session> = builder.sessions(0, i64::MAX).collect();
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].visitor_id, sessions[0].pageview_count), (7, 3));
        assert_eq!(sessions[0].later_visitor_ids, ",70,");
        assert!(sessions[0].has_visitor(70) && sessions[0].has_visitor(7) && !sessions[0].has_visitor(0));
    }
}
