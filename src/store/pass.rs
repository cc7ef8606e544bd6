//! The recompute of rollup windows. The hourly pass: one scan of a site's raw pageviews in time
//! order gives each window `[A, B)` its hourly rows, the sessions that touch it (`sessions`), and for
//! every whole UTC day in it the day's totals, staged in `daily_stats_staged`. Each raw row is read
//! once: a run over many windows (a backfill, a day at a time) carries the open sessions from one
//! window to the next instead of reading context again. The daily recompute adopts a day's staged
//! totals while the day's raw rows still have the count and largest id they record (read from the
//! index alone), and otherwise counts the window from its raw rows with one `GROUP BY`.
//!
//! Each window is one transaction under the site's rollup lock (SQLite: the write lock) and writes
//! only what differs from what is stored: a rerun over unchanged data writes nothing. Rows are read
//! in chunks of a window; a chunk read in an earlier transaction (or ahead of the lock, on SQLite)
//! is used only while the database still holds it (nothing committed since, or the same count and
//! largest id), else the window starts over from the stored sessions, as a lone window would.
//!
//! The backends differ only in how rows travel ([`PassIo`]): SQLite through its C API (`sqlite`),
//! PostgreSQL through sqlx with JSON batches (`any`). Both read the next windows' chunks on a second
//! connection while the first writes, so reading and writing share the two cores.

mod any;
mod sqlite;

use std::collections::VecDeque;

pub(super) use any::AnyIo;
pub(super) use sqlite::SqliteIo;

use super::rollups::{DAY_MS, Grain, RollupCounts};
pub(super) use super::rollups::{DELETE_STAGED, UPSERT_DAY, UPSERT_HOUR, UPSERT_STAGED};
use super::sessions::{Hit, IdMap, LONGEST_LOOKBACK_MS, SESSION_TIMEOUT_MS, Session, SessionBuilder};
use super::{StoreError, now_ms};

/// Raw pageviews of `[$2, $3)` of site `$1` in `(created_at, id)` order.
pub(super) const SCAN: &str = "SELECT id, created_at, visitor_id, visitor_id_prev, is_bot, path, referrer, \
     referrer_domain FROM pageviews WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id";

/// How many raw rows `[$2, $3)` holds and the largest id, from the `(site_id, created_at)` index.
pub(super) const SIGNATURE: &str = "SELECT COUNT(*), CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM pageviews \
     WHERE site_id = $1 AND created_at >= $2 AND created_at < $3";

/// Inserts or rewrites sessions: this, then `VALUES` groups of the 13 columns, then
/// [`SESSION_CONFLICT`].
pub(super) const SESSION_INSERT: &str = "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, \
     pageview_count, is_bounce, duration_ms, entry_page, exit_page, referrer, referrer_domain, later_visitor_ids) VALUES ";
pub(super) const SESSION_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET \
     visitor_id = excluded.visitor_id, started_at = excluded.started_at, last_seen_at = excluded.last_seen_at, \
     pageview_count = excluded.pageview_count, is_bounce = excluded.is_bounce, duration_ms = excluded.duration_ms, \
     entry_page = excluded.entry_page, exit_page = excluded.exit_page, referrer = excluded.referrer, \
     referrer_domain = excluded.referrer_domain, later_visitor_ids = excluded.later_visitor_ids";

pub(super) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE site_id = $1 AND id = $2";

/// The stored rows a window compares with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RowTable {
    Hourly,
    Daily,
    Staged,
}

impl RowTable {
    pub(super) fn name(self) -> &'static str {
        match self {
            RowTable::Hourly => "hourly_stats",
            RowTable::Daily => "daily_stats",
            RowTable::Staged => "daily_stats_staged",
        }
    }

    pub(super) fn select(self) -> &'static str {
        match self {
            RowTable::Hourly => {
                "SELECT hour_bucket, pageview_count, unique_session_count, raw_count, raw_max_id FROM hourly_stats \
                 WHERE site_id = $1 AND hour_bucket >= $2 AND hour_bucket < $3"
            }
            RowTable::Daily => {
                "SELECT day_bucket, pageview_count, unique_session_count, raw_count, raw_max_id FROM daily_stats \
                 WHERE site_id = $1 AND day_bucket >= $2 AND day_bucket < $3"
            }
            RowTable::Staged => {
                "SELECT day_bucket, pageview_count, unique_session_count, raw_count, raw_max_id FROM daily_stats_staged \
                 WHERE site_id = $1 AND day_bucket >= $2 AND day_bucket < $3"
            }
        }
    }
}

/// An hourly or daily row's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct BucketRow {
    pub bucket: i64,
    pub pageview_count: i64,
    pub unique_session_count: i64,
    pub raw_count: i64,
    pub raw_max_id: i64,
}

impl BucketRow {
    fn signature(&self) -> Signature {
        Signature { count: self.raw_count, max_id: self.raw_max_id }
    }
}

/// How many raw rows a range held and the largest id: what rollup rows remember of their source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Signature {
    pub count: i64,
    pub max_id: i64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Text {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug)]
struct Raw {
    id: i64,
    created_at: i64,
    visitor_id: i64,
    visitor_id_prev: Option<i64>,
    is_bot: bool,
    path: Text,
    referrer: Text,
    referrer_domain: Text,
}

/// The raw pageviews of `[from, to)` of one site in `(created_at, id)` order; texts (kept for
/// non-bots only) share one buffer.
#[derive(Debug)]
pub(super) struct Chunk {
    pub from: i64,
    pub to: i64,
    rows: Vec<Raw>,
    text: String,
}

impl Chunk {
    pub(super) fn new(from: i64, to: i64) -> Chunk {
        Chunk { from, to, rows: Vec::new(), text: String::new() }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
        &mut self,
        id: i64,
        created_at: i64,
        visitor_id: i64,
        visitor_id_prev: Option<i64>,
        is_bot: bool,
        path: &str,
        referrer: &str,
        referrer_domain: &str,
    ) {
        let mut keep = |s: &str| {
            if is_bot {
                return Text::default();
            }
            let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
            self.text.push_str(s);
            Text { start, len: u32::try_from(s.len()).unwrap_or(0) }
        };
        let (path, referrer, referrer_domain) = (keep(path), keep(referrer), keep(referrer_domain));
        self.rows.push(Raw { id, created_at, visitor_id, visitor_id_prev, is_bot, path, referrer, referrer_domain });
    }

    pub(super) fn signature(&self) -> Signature {
        Signature {
            count: i64::try_from(self.rows.len()).unwrap_or(i64::MAX),
            max_id: self.rows.iter().map(|r| r.id).max().unwrap_or(0),
        }
    }

    fn str(&self, text: Text) -> &str {
        let start = text.start as usize;
        self.text.get(start..start + text.len as usize).unwrap_or("")
    }

    fn hit(&self, raw: &Raw) -> Hit<'_> {
        Hit {
            id: raw.id,
            created_at: raw.created_at,
            visitor_id: raw.visitor_id,
            visitor_id_prev: raw.visitor_id_prev,
            path: self.str(raw.path),
            referrer: self.str(raw.referrer),
            referrer_domain: self.str(raw.referrer_domain),
        }
    }
}

/// What read-ahead does with the next chunk it holds when the pass asks for `[from, to)`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ahead {
    /// It is the one asked for.
    Take,
    /// It is for a range the pass has read itself: dropped.
    Drop,
    /// It is for a later range (or another context start): kept for the window that asks for it.
    Keep,
}

impl Ahead {
    pub(super) fn of(chunk: &Chunk, from: i64, to: i64) -> Ahead {
        if chunk.to <= from {
            Ahead::Drop
        } else if (chunk.from, chunk.to) == (from, to) {
            Ahead::Take
        } else {
            Ahead::Keep
        }
    }
}

/// Where the context of a window starting at `a` starts: 30 minutes before it, or earlier at the
/// start of the stored sessions still open then (`open`, from [`PassIo::session_bounds`]).
fn context_start(a: i64, open: Option<i64>) -> i64 {
    open.map_or(a - SESSION_TIMEOUT_MS, |lo| lo.min(a - SESSION_TIMEOUT_MS))
}

/// The ranges a read-ahead reads for `windows` (hourly, more than one): the first window's
/// context, as `Pass::window` will find it (`open` from before the lock), then each window.
pub(super) fn ahead_ranges(open: Option<i64>, windows: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let Some(&(first, _)) = windows.first() else { return Vec::new() };
    std::iter::once((context_start(first, open), first)).chain(windows.iter().copied()).collect()
}

/// What one window writes: only rows that differ from the stored ones.
#[derive(Debug, Default)]
pub(super) struct Writes<'a> {
    pub site_id: i64,
    pub sessions: Vec<&'a Session>,
    pub deleted_sessions: Vec<i64>,
    pub hours: Vec<BucketRow>,
    /// Staged day totals.
    pub days: Vec<BucketRow>,
    pub deleted_days: Vec<i64>,
    /// Daily rows.
    pub daily: Vec<BucketRow>,
}

/// How the pass reads and writes one backend. Methods other than `read_ahead` and `unchanged` run
/// inside the window's transaction.
pub(super) trait PassIo {
    /// Starts a window's transaction and takes the site's rollup lock.
    async fn begin(&mut self) -> Result<(), StoreError>;
    async fn commit(&mut self) -> Result<(), StoreError>;
    async fn rollback(&mut self);
    async fn pruned_before(&mut self) -> Result<Option<i64>, StoreError>;
    /// [`super::sessions::SESSION_BOUNDS`].
    async fn session_bounds(&mut self, from: i64, to: i64, open_at: i64) -> Result<Option<i64>, StoreError>;
    async fn scan(&mut self, from: i64, to: i64) -> Result<Chunk, StoreError>;
    /// The chunk `[from, to)` if it was read ahead (not necessarily under the lock).
    async fn read_ahead(&mut self, from: i64, to: i64) -> Result<Option<Chunk>, StoreError>;
    /// True when no other connection can have committed since the pass began, so every chunk read
    /// since still holds.
    async fn unchanged(&mut self) -> Result<bool, StoreError>;
    async fn signature(&mut self, from: i64, to: i64) -> Result<Signature, StoreError>;
    async fn stored_sessions(&mut self, from: i64, to: i64) -> Result<Vec<Session>, StoreError>;
    async fn stored_rows(&mut self, table: RowTable, from: i64, to: i64) -> Result<Vec<BucketRow>, StoreError>;
    async fn apply(&mut self, writes: &Writes<'_>, now: i64) -> Result<(), StoreError>;
    /// Recomputes the daily rows of `[from, to)` from the raw rows (`GROUP BY`) and says what changed.
    async fn count_days_from_raw(&mut self, from: i64, to: i64) -> Result<RollupCounts, StoreError>;
}

/// Runs a pass whose `PassIo` never waits (SQLite's: every call does its work before returning) to
/// its end on the calling thread.
pub(super) fn run_blocking<T>(work: impl std::future::Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(done) = work.as_mut().poll(&mut context) {
            return done;
        }
        std::thread::yield_now();
    }
}

/// Recomputes the `grain` rows of each of `windows` (ascending, adjacent, bucket-aligned), one
/// transaction each (hourly: with the sessions and staged day totals); `report` hears each
/// window's counts.
pub(super) async fn run(
    io: &mut impl PassIo,
    grain: Grain,
    site_id: i64,
    windows: &[(i64, i64)],
    report: &mut (dyn FnMut(RollupCounts) + Send),
) -> Result<RollupCounts, StoreError> {
    let mut pass = Pass::new(site_id, windows);
    let mut total = RollupCounts::default();
    for &(start, end) in windows {
        io.begin().await?;
        let counts = match grain {
            Grain::Hour => pass.window(io, start, end).await,
            Grain::Day => day_window(io, site_id, start, end).await,
        };
        let counts = match counts {
            Ok(counts) => counts,
            Err(err) => {
                io.rollback().await;
                return Err(err);
            }
        };
        io.commit().await?;
        pass.retire(end);
        total += counts;
        report(counts);
    }
    Ok(total)
}

/// The daily rows of `[start, end)`: days whose row has the raw rows' count and largest id are left
/// alone, days whose staged totals have them are adopted, and if any other day changed, the window
/// is counted from the raw rows.
async fn day_window(io: &mut impl PassIo, site_id: i64, start: i64, end: i64) -> Result<RollupCounts, StoreError> {
    // Buckets whose raw rows were pruned are frozen: a recompute would see no rows and zero them.
    let a = start.max(io.pruned_before().await?.unwrap_or(i64::MIN));
    if a >= end {
        return Ok(RollupCounts::default());
    }
    let first = Grain::Day.floor(a);
    let stored = io.stored_rows(RowTable::Daily, first, end).await?;
    let staged = io.stored_rows(RowTable::Staged, first, end).await?;
    let mut counts = RollupCounts::default();
    let mut writes = Writes { site_id, ..Writes::default() };
    let (mut before, mut after) = (0, 0);
    let mut from_raw = false;
    let mut day = first;
    while day < end && !from_raw {
        let (from, to) = (day.max(a), (day + DAY_MS).min(end));
        let raw = io.signature(from, to).await?;
        let stored = stored.iter().find(|r| r.bucket == day);
        let whole = (from, to) == (day, day + DAY_MS);
        if raw.count == 0 {
            from_raw = stored.is_some_and(|r| r.raw_count > 0);
        } else if stored.is_some_and(|r| r.signature() == raw) {
            counts.raw_rows += raw.count;
        } else if let Some(staged) = staged.iter().find(|r| r.bucket == day && r.signature() == raw && whole) {
            counts.raw_rows += raw.count;
            match stored {
                Some(stored) => {
                    counts.updated += 1;
                    before += stored.pageview_count;
                }
                None => counts.created += 1,
            }
            after += staged.pageview_count;
            writes.daily.push(*staged);
        } else {
            from_raw = true;
        }
        day += DAY_MS;
    }
    if from_raw {
        return io.count_days_from_raw(a, end).await;
    }
    counts.processed = (after - before).max(0);
    io.apply(&writes, now_ms()).await?;
    Ok(counts)
}

/// The state carried from window to window.
struct Pass {
    site_id: i64,
    /// Where chunks are cut: every window's start and end.
    boundaries: Vec<i64>,
    /// `None` until the first window (or after a restart) reads its context.
    builder: Option<SessionBuilder>,
    /// Adjacent chunks, oldest first, covering `[.., covered)`.
    chunks: VecDeque<Chunk>,
    covered: i64,
    /// The next row to push into the builder: (chunk, row).
    cursor: (usize, usize),
}

impl Pass {
    fn new(site_id: i64, windows: &[(i64, i64)]) -> Pass {
        let mut boundaries: Vec<i64> = windows.iter().flat_map(|&(a, b)| [a, b]).collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        Pass { site_id, boundaries, builder: None, chunks: VecDeque::new(), covered: i64::MIN, cursor: (0, 0) }
    }

    fn reset(&mut self) {
        self.builder = None;
        self.chunks.clear();
        self.covered = i64::MIN;
        self.cursor = (0, 0);
    }

    /// One hourly window, inside its transaction: the context the carried state lacks (all of it
    /// for the first window or after a restart), the window's rows and, forward, the end of every
    /// stored session begun before `end` + 30 min; then what differs is written.
    async fn window(&mut self, io: &mut impl PassIo, start: i64, end: i64) -> Result<RollupCounts, StoreError> {
        // Buckets whose raw rows were pruned are frozen: a recompute would see no rows and zero them.
        let a = start.max(io.pruned_before().await?.unwrap_or(i64::MIN));
        if a >= end {
            self.reset();
            return Ok(RollupCounts::default());
        }
        if self.builder.is_some() && !io.unchanged().await? {
            for at in 0..self.chunks.len() {
                let (from, to, held) = (self.chunks[at].from, self.chunks[at].to, self.chunks[at].signature());
                if io.signature(from, to).await? != held {
                    self.reset();
                    break;
                }
            }
        }
        if self.builder.is_none() {
            let open = io.session_bounds(a - LONGEST_LOOKBACK_MS, a, a - SESSION_TIMEOUT_MS).await?;
            let lo = context_start(a, open);
            self.builder = Some(SessionBuilder::new(self.site_id, lo));
            self.covered = lo;
        }
        self.cover(io, end).await?;
        let builder = self.builder.as_ref().expect("started above");
        let scope = builder.earliest_start(a).map_or(a, |first| first.min(a));
        let mut stored = io.stored_sessions(scope, end + SESSION_TIMEOUT_MS).await?;
        let hi = stored
            .iter()
            .filter(|s| s.started_at < end + SESSION_TIMEOUT_MS)
            .map(|s| s.last_seen_at + 1)
            .fold(end, i64::max);
        self.cover(io, hi).await?;
        if hi > end + SESSION_TIMEOUT_MS {
            stored.extend(io.stored_sessions(end + SESSION_TIMEOUT_MS, hi).await?);
        }
        let hours = io.stored_rows(RowTable::Hourly, a, end).await?;
        let (first_day, last_day) = whole_days(a, end);
        let days = if first_day < last_day {
            io.stored_rows(RowTable::Staged, first_day, last_day).await?
        } else {
            Vec::new()
        };
        let (writes, counts) = self.outcome(a, end, hi, &stored, &hours, &days);
        io.apply(&writes, now_ms()).await?;
        Ok(counts)
    }

    /// Reads chunks until `[.., until)` is covered (cut at window boundaries), then pushes the
    /// pageviews before `until` into the builder.
    async fn cover(&mut self, io: &mut impl PassIo, until: i64) -> Result<(), StoreError> {
        while self.covered < until {
            let from = self.covered;
            let to = self.boundaries.iter().copied().find(|&b| b > from).unwrap_or(until);
            let chunk = match io.read_ahead(from, to).await? {
                Some(chunk) if io.unchanged().await? || io.signature(from, to).await? == chunk.signature() => chunk,
                _ => io.scan(from, to).await?,
            };
            self.chunks.push_back(chunk);
            self.covered = to;
        }
        let builder = self.builder.as_mut().expect("the pass has started");
        if builder.fed_until() >= until {
            return Ok(());
        }
        while let Some(chunk) = self.chunks.get(self.cursor.0) {
            while let Some(raw) = chunk.rows.get(self.cursor.1) {
                if raw.created_at >= until {
                    builder.fed(until);
                    return Ok(());
                }
                if !raw.is_bot {
                    builder.push(&chunk.hit(raw));
                }
                self.cursor.1 += 1;
            }
            self.cursor = (self.cursor.0 + 1, 0);
        }
        builder.fed(until);
        Ok(())
    }

    /// Forgets what only windows up to `end` needed.
    fn retire(&mut self, end: i64) {
        if let Some(builder) = &mut self.builder {
            builder.retire(end);
        }
        while self.cursor.0 > 0 && self.chunks.front().is_some_and(|c| c.to <= end) {
            self.chunks.pop_front();
            self.cursor.0 -= 1;
        }
    }

    /// What window `[a, end)` writes, given the context up to `hi` and the stored rows.
    fn outcome(
        &self,
        a: i64,
        end: i64,
        hi: i64,
        stored_sessions: &[Session],
        stored_hours: &[BucketRow],
        stored_days: &[BucketRow],
    ) -> (Writes<'_>, RollupCounts) {
        let builder = self.builder.as_ref().expect("the pass has started");
        let mut writes = Writes { site_id: self.site_id, ..Writes::default() };
        let by_id: IdMap<&Session> = stored_sessions.iter().map(|s| (s.id, s)).collect();
        let mut starts = builder.starts(a, hi);
        starts.extend(builder.sessions(a, end).map(|s| s.id));
        writes.deleted_sessions = stored_sessions
            .iter()
            .filter(|s| (a..hi).contains(&s.started_at) && !starts.contains(&s.id))
            .map(|s| s.id)
            .collect();
        writes.sessions =
            builder.sessions(a, end).filter(|s| by_id.get(&s.id).is_none_or(|stored| *stored != *s)).collect();

        let rows = self.chunks.iter().flat_map(|c| c.rows.iter()).filter(|r| (a..end).contains(&r.created_at));
        let hours = buckets(Grain::Hour, rows.clone());
        let mut counts = RollupCounts::default();
        let (mut before, mut after) = (0, 0);
        for row in &hours {
            counts.raw_rows += row.raw_count;
            after += row.pageview_count;
            match stored_hours.iter().find(|s| s.bucket == row.bucket) {
                Some(stored) if stored == row => continue,
                Some(_) => counts.updated += 1,
                None => counts.created += 1,
            }
            writes.hours.push(*row);
        }
        for stored in stored_hours {
            before += stored.pageview_count;
            if !hours.iter().any(|row| row.bucket == stored.bucket) {
                if stored.raw_count > 0 {
                    // Its raw rows are gone: a row of zeros, as an empty window has none to count.
                    counts.updated += 1;
                    writes.hours.push(BucketRow { bucket: stored.bucket, ..BucketRow::default() });
                } else {
                    after += stored.pageview_count;
                }
            }
        }
        counts.processed = (after - before).max(0);

        let (first_day, last_day) = whole_days(a, end);
        let days = buckets(Grain::Day, rows.filter(|r| (first_day..last_day).contains(&r.created_at)));
        for day in &days {
            if !stored_days.contains(day) {
                writes.days.push(*day);
            }
        }
        writes.deleted_days =
            stored_days.iter().filter(|s| !days.iter().any(|d| d.bucket == s.bucket)).map(|s| s.bucket).collect();
        (writes, counts)
    }
}

/// The whole UTC days inside `[a, end)`, as `[first, last)`.
fn whole_days(a: i64, end: i64) -> (i64, i64) {
    let first = Grain::Day.floor(a + DAY_MS - 1);
    (first, Grain::Day.floor(end).max(first))
}

/// The rows of `grain` buckets that `rows` (ascending) fill.
fn buckets<'a>(grain: Grain, rows: impl Iterator<Item = &'a Raw>) -> Vec<BucketRow> {
    let mut out: Vec<BucketRow> = Vec::new();
    let mut visitors: Vec<i64> = Vec::new();
    let close = |row: &mut BucketRow, visitors: &mut Vec<i64>| {
        visitors.sort_unstable();
        visitors.dedup();
        row.unique_session_count = i64::try_from(visitors.len()).unwrap_or(i64::MAX);
        visitors.clear();
    };
    for raw in rows {
        let bucket = grain.floor(raw.created_at);
        if out.last().is_none_or(|row| row.bucket != bucket) {
            if let Some(last) = out.last_mut() {
                close(last, &mut visitors);
            }
            out.push(BucketRow { bucket, ..BucketRow::default() });
        }
        let row = out.last_mut().expect("pushed above");
        row.raw_count += 1;
        row.raw_max_id = row.raw_max_id.max(raw.id);
        if !raw.is_bot {
            row.pageview_count += 1;
            visitors.push(raw.visitor_id);
        }
    }
    if let Some(last) = out.last_mut() {
        close(last, &mut visitors);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rollups::HOUR_MS;

    const MIN: i64 = 60_000;

    fn chunk(from: i64, to: i64, rows: &[(i64, i64, i64, bool)]) -> Chunk {
        let mut chunk = Chunk::new(from, to);
        for &(id, at, visitor, bot) in rows {
            chunk.push(id, at, visitor, None, bot, "/p", "", "");
        }
        chunk
    }

    fn started(chunks: Vec<Chunk>) -> Pass {
        let from = chunks[0].from;
        let mut pass = Pass::new(1, &[(0, DAY_MS)]);
        pass.builder = Some(SessionBuilder::new(1, from));
        pass.covered = chunks.last().unwrap().to;
        pass.chunks = chunks.into();
        pass
    }

    #[test]
    fn buckets_count_every_row_but_pageviews_and_visitors_of_humans_only() {
        let c = chunk(0, DAY_MS, &[(1, 0, 7, false), (2, 5, 7, false), (3, 9, 8, true), (4, HOUR_MS, 9, false)]);
        assert_eq!(
            buckets(Grain::Hour, c.rows.iter()),
            vec![
                BucketRow { bucket: 0, pageview_count: 2, unique_session_count: 1, raw_count: 3, raw_max_id: 3 },
                BucketRow { bucket: HOUR_MS, pageview_count: 1, unique_session_count: 1, raw_count: 1, raw_max_id: 4 },
            ]
        );
        assert_eq!(whole_days(0, DAY_MS), (0, DAY_MS));
        assert_eq!(whole_days(HOUR_MS, DAY_MS * 2 + HOUR_MS), (DAY_MS, DAY_MS * 2));
        assert_eq!(whole_days(HOUR_MS, 2 * HOUR_MS), (DAY_MS, DAY_MS), "no whole day");
    }

    #[test]
    fn a_window_writes_only_what_differs_and_counts_as_the_upsert_did() {
        let c = chunk(0, DAY_MS, &[(1, 0, 7, false), (2, 10 * MIN, 7, false), (3, 2 * HOUR_MS, 8, true)]);
        let mut pass = started(vec![c]);
        let fresh = |pass: &mut Pass| {
            let builder = pass.builder.as_mut().unwrap();
            for raw in &pass.chunks[0].rows {
                if !raw.is_bot {
                    builder.push(&pass.chunks[0].hit(raw));
                }
            }
            builder.fed(DAY_MS);
        };
        fresh(&mut pass);
        let (writes, counts) = pass.outcome(0, DAY_MS, DAY_MS, &[], &[], &[]);
        assert_eq!(
            counts,
            RollupCounts { created: 2, updated: 0, processed: 2, raw_rows: 3 },
            "the bot's hour has a row of zeros"
        );
        assert_eq!(writes.sessions.len(), 1);
        assert_eq!(
            writes.days,
            vec![BucketRow { bucket: 0, pageview_count: 2, unique_session_count: 1, raw_count: 3, raw_max_id: 3 }]
        );

        // Stored as written: nothing to write again. A stored row whose raw rows vanished is zeroed;
        // a stored session no run starts with anymore is deleted.
        let mut gone = writes.sessions[0].clone();
        gone.id = 99;
        gone.started_at = 5 * HOUR_MS;
        let sessions: Vec<Session> = writes.sessions.iter().map(|s| (*s).clone()).chain([gone]).collect();
        let vanished =
            BucketRow { bucket: 9 * HOUR_MS, pageview_count: 4, unique_session_count: 1, raw_count: 4, raw_max_id: 9 };
        let mut hours = writes.hours.clone();
        hours.push(vanished);
        let (again, counts) = pass.outcome(0, DAY_MS, DAY_MS, &sessions, &hours, &writes.days);
        assert_eq!(counts, RollupCounts { created: 0, updated: 1, processed: 0, raw_rows: 3 });
        assert!(again.sessions.is_empty() && again.days.is_empty() && again.deleted_days.is_empty());
        assert_eq!(again.deleted_sessions, vec![99]);
        assert_eq!(again.hours, vec![BucketRow { bucket: 9 * HOUR_MS, ..BucketRow::default() }]);
    }

    /// A site on a fresh SQLite file with three days of pageviews: visitors whose gaps straddle the
    /// timeout, bots, a salt change at each midnight (with the links ingest stores), and a store.
    async fn three_days() -> (tempfile::TempDir, crate::store::Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::Store::connect(&crate::config::Config::for_tests(&url).store).await.unwrap();
        sqlx::query("INSERT INTO users (email, password_hash, created_at) VALUES ('p@e.com', 'x', 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        let site = store.create_site(1, "pass").await.unwrap().id;
        let id_on = |visitor: i64, day: i64| visitor * 1_000 + day;
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            i64::try_from((seed >> 33) % n).unwrap()
        };
        let mut rows = Vec::new();
        for visitor in 0..30 {
            let mut at = next(3 * DAY_MS as u64 / 2);
            while at < 3 * DAY_MS {
                let day = at / DAY_MS;
                let prev = (day > 0 && at % DAY_MS < SESSION_TIMEOUT_MS).then(|| id_on(visitor, day - 1));
                rows.push(crate::store::NewPageview {
                    site_id: site,
                    created_at: at,
                    url: String::new(),
                    path: format!("/{}", next(5)),
                    referrer: format!("r{}", next(3)),
                    referrer_domain: String::new(),
                    utm_source: String::new(),
                    utm_medium: String::new(),
                    utm_campaign: String::new(),
                    utm_term: String::new(),
                    utm_content: String::new(),
                    browser: String::new(),
                    browser_version: String::new(),
                    os: String::new(),
                    device_type: "desktop",
                    country: String::new(),
                    is_bot: next(20) == 0,
                    visitor_id: id_on(visitor, day),
                    visitor_id_prev: prev,
                });
                let long = next(4) == 0;
                at += 1 + next(if long { 90 * MIN as u64 } else { 25 * MIN as u64 });
            }
        }
        rows.sort_by_key(|r| (r.created_at % 7, r.created_at)); // ids not in time order
        store.insert_pageviews(&rows).await.unwrap();
        (dir, store, site)
    }

    async fn snapshot(store: &crate::store::Store, site: i64) -> (Vec<Session>, Vec<BucketRow>, Vec<BucketRow>) {
        let mut io = AnyIo::new(store, site);
        io.begin().await.unwrap();
        let hours = io.stored_rows(RowTable::Hourly, 0, 4 * DAY_MS).await.unwrap();
        let staged = io.stored_rows(RowTable::Staged, 0, 4 * DAY_MS).await.unwrap();
        io.rollback().await;
        (store.sessions_of_site(site).await.unwrap(), hours, staged)
    }

    fn days() -> Vec<(i64, i64)> {
        (0..4).map(|d| (d * DAY_MS, (d + 1) * DAY_MS)).collect()
    }

    #[tokio::test]
    async fn both_backends_passes_and_any_window_order_give_the_same_rows_and_sessions() {
        // The SQLite C API pass over the days, reading ahead.
        let (_a, a, site_a) = three_days().await;
        let counts = a.recompute_rollups(Grain::Hour, site_a, &days(), &mut |_| {}).await.unwrap();
        assert!(counts.created > 24 && counts.processed > 100, "{counts:?}");
        let expected = snapshot(&a, site_a).await;
        assert_eq!(expected.2.len(), 3, "three whole days staged");
        let rerun = a.recompute_rollups(Grain::Hour, site_a, &days(), &mut |_| {}).await.unwrap();
        assert_eq!((rerun.created, rerun.updated, rerun.processed), (0, 0, 0));
        assert_eq!(snapshot(&a, site_a).await, expected);
        let pageviews = a.pageview_sessions(site_a).await.unwrap();
        let in_sessions: i64 = expected.0.iter().map(|s| s.pageview_count).sum();
        assert_eq!(pageviews.iter().filter(|(_, s)| s.is_some()).count() as i64, in_sessions);
        assert!(expected.0.iter().any(|s| !s.later_visitor_ids.is_empty()), "a session runs over midnight");

        // The JSON (sqlx) pass over the same windows, reading ahead as on PostgreSQL.
        let (_b, b, site_b) = three_days().await;
        let mut io = AnyIo::reading_ahead(&b, site_b, &days()).await.unwrap();
        run(&mut io, Grain::Hour, site_b, &days(), &mut |_| {}).await.unwrap();
        assert_eq!(snapshot(&b, site_b).await, expected);

        // Hour by hour in a scrambled order: the same sessions.
        let (_c, c, site_c) = three_days().await;
        let hours: Vec<i64> = (0..96).map(|h| (h * 37) % 96).collect();
        for h in &hours {
            c.recompute_rollup(Grain::Hour, site_c, h * HOUR_MS, (h + 1) * HOUR_MS).await.unwrap();
        }
        let (sessions, hourly, _) = snapshot(&c, site_c).await;
        assert_eq!((sessions, hourly), (expected.0, expected.1));
    }

    #[tokio::test]
    async fn the_daily_recompute_adopts_staged_totals_and_counts_raw_rows_otherwise() {
        let (_a, a, site) = three_days().await;
        let staged_days = a.recompute_rollups(Grain::Day, site, &days(), &mut |_| {}).await.unwrap();
        let from_raw = snapshot(&a, site).await;
        a.recompute_rollups(Grain::Hour, site, &days(), &mut |_| {}).await.unwrap();
        let (_b, b, site_b) = three_days().await;
        b.recompute_rollups(Grain::Hour, site_b, &days(), &mut |_| {}).await.unwrap();
        let adopted = b.recompute_rollups(Grain::Day, site_b, &days(), &mut |_| {}).await.unwrap();
        assert_eq!(adopted, staged_days, "same counts either way");
        let rows = |s: &crate::store::Store, site| {
            let s = s.clone();
            async move { s.rollup_rows(Grain::Day, site, 0, 4 * DAY_MS).await.unwrap() }
        };
        assert_eq!(rows(&a, site).await, rows(&b, site_b).await);
        assert!(from_raw.2.is_empty());
        let again = b.recompute_rollups(Grain::Day, site_b, &days(), &mut |_| {}).await.unwrap();
        assert_eq!((again.created, again.updated, again.processed), (0, 0, 0));
    }

    #[tokio::test]
    async fn statistics_find_a_sessions_pageviews_by_visitor_and_time_across_midnight() {
        let (_a, store, site) = three_days().await;
        store.recompute_rollups(Grain::Hour, site, &days(), &mut |_| {}).await.unwrap();
        let sessions = store.sessions_of_site(site).await.unwrap();
        let pageviews = store.pageviews_of_site(site).await.unwrap();
        let crossing = sessions.iter().find(|s| !s.later_visitor_ids.is_empty()).expect("a session runs over midnight");
        let later = pageviews
            .iter()
            .find(|p| {
                p.row.visitor_id != crossing.visitor_id
                    && (crossing.started_at..=crossing.last_seen_at).contains(&p.row.created_at)
                    && crossing.has_visitor(p.row.visitor_id)
            })
            .expect("the session holds a pageview under the next day's id");
        for (start, end) in [(0, DAY_MS), (DAY_MS, 3 * DAY_MS), (0, 4 * DAY_MS)] {
            for path in ["/0", "/3", later.row.path.as_str()] {
                let viewed: Vec<&Session> = sessions
                    .iter()
                    .filter(|s| (start..end).contains(&s.started_at))
                    .filter(|s| {
                        pageviews.iter().any(|p| {
                            let at = p.row.created_at;
                            !p.row.is_bot
                                && p.row.path == path
                                && (start..end + DAY_MS).contains(&at)
                                && (s.started_at..=s.last_seen_at).contains(&at)
                                && s.has_visitor(p.row.visitor_id)
                        })
                    })
                    .collect();
                let totals = store.visit_totals(site, start, end, Some(path)).await.unwrap();
                let bounces = viewed.iter().filter(|s| s.is_bounce).count() as i64;
                let duration: i64 = viewed.iter().map(|s| s.duration_ms).sum();
                assert_eq!(
                    (totals.visits, totals.bounces, totals.duration_ms),
                    (viewed.len() as i64, bounces, duration)
                );
            }
        }
    }
}
