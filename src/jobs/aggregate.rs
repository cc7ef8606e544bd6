//! `aggregate-hourly-stats` and `aggregate-daily-stats`: the work every job does.
//!
//! Arguments, output lines and span attributes are the original's (SPEC §4.1–4.2). What differs:
//! rows are recomputed, not incremented (see `store::rollups`), so no late pageview is missed and a
//! rerun changes nothing; naive `--start`/`--end` are read as UTC; the hourly window is half-open
//! (`--start H --end H+1h` is one hour; the original also touched H+1 and pre-created an empty row
//! that then hid the hour from its backfill). The daily `--end` stays an inclusive date, as the
//! schedulers pass it. Work is committed a UTC day at a time, so a long backfill never holds the
//! database's write lock for long and an interrupted one keeps what it finished; the hourly days of
//! one site are one pass over its raw rows (`Store::recompute_rollups`).

use std::io::{IsTerminal, Write};
use std::time::Instant as Clock;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::JobError;
use super::job::{Instant, Job, JobKind, from_ms, iso};
use crate::store::{DAY_MS, Grain, HOUR_MS, RollupCounts, SiteRef, Store};
use crate::telemetry::names;

/// `squirrel aggregate-hourly-stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct HourlyArgs {
    /// Hours back from now (or from/to the one bound given).
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Start, ISO 8601; without an offset it is UTC. Rounded down to the hour.
    #[arg(long, value_parser = Instant::parse)]
    pub start: Option<Instant>,
    /// End (exclusive), ISO 8601; without an offset it is UTC. Rounded up to the hour.
    #[arg(long, value_parser = Instant::parse)]
    pub end: Option<Instant>,
    /// Only this site identifier (default: every site).
    #[arg(long)]
    pub site: Option<String>,
    /// Print a line per site and per bucket.
    #[arg(long)]
    pub verbose: bool,
}

/// `squirrel aggregate-daily-stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct DailyArgs {
    /// Days back from today (or from/to the one bound given).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// First day, ISO 8601 date or date-time (UTC date taken).
    #[arg(long, value_parser = Instant::parse)]
    pub start: Option<Instant>,
    /// Last day, inclusive.
    #[arg(long, value_parser = Instant::parse)]
    pub end: Option<Instant>,
    /// Only this site identifier (default: every site).
    #[arg(long)]
    pub site: Option<String>,
    /// Print a line per site and per bucket.
    #[arg(long)]
    pub verbose: bool,
}

impl HourlyArgs {
    /// The bucket-aligned half-open window `[start, end)` in epoch ms.
    pub fn window(&self, now: DateTime<Utc>) -> (i64, i64) {
        let span = i64::from(self.hours) * HOUR_MS;
        let (start, end) = match (&self.start, &self.end) {
            (Some(s), Some(e)) => (ms(s), ms(e)),
            (Some(s), None) => (ms(s), ms(s) + span),
            (None, Some(e)) => (ms(e) - span, ms(e)),
            (None, None) => (now.timestamp_millis() - span, now.timestamp_millis()),
        };
        let first = Grain::Hour.floor(start);
        let last = if end.rem_euclid(HOUR_MS) == 0 { end } else { Grain::Hour.floor(end) + HOUR_MS };
        (first, last.max(first + HOUR_MS))
    }
}

impl DailyArgs {
    /// `[first day 00:00, day after the last 00:00)` in epoch ms; empty when end < start.
    pub fn window(&self, now: DateTime<Utc>) -> (i64, i64) {
        let span = i64::from(self.days) * DAY_MS;
        let day = |i: &Instant| Grain::Day.floor(ms(i));
        let today = Grain::Day.floor(now.timestamp_millis());
        let (first, last) = match (&self.start, &self.end) {
            (Some(s), Some(e)) => (day(s), day(e)),
            (Some(s), None) => (day(s), day(s) + span),
            (None, Some(e)) => (day(e) - span, day(e)),
            (None, None) => (today - span, today),
        };
        (first, (last + DAY_MS).max(first))
    }
}

fn ms(instant: &Instant) -> i64 {
    instant.at.timestamp_millis()
}

/// Runs `aggregate-hourly-stats`, writing the original's lines to `out`.
///
/// # Errors
/// `SiteNotFound` for an unknown `--site` (after printing "Site '<x>' not found"), or the store's
/// error. Windows committed before an error stay committed (and correct).
pub async fn hourly(
    store: &Store,
    args: &HourlyArgs,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<RollupCounts, JobError> {
    let span = tracing::info_span!(
        names::AGGREGATE_HOURLY_STATS_COMMAND,
        { names::COMMAND_HOURS_TO_PROCESS } = i64::from(args.hours),
        { names::COMMAND_START_STR } = args.start.as_ref().map(|s| s.raw.as_str()),
        { names::COMMAND_END_STR } = args.end.as_ref().map(|s| s.raw.as_str()),
        { names::COMMAND_SITE_IDENTIFIER } = args.site.as_deref(),
        { names::COMMAND_TOTAL_CREATED } = tracing::field::Empty,
        { names::COMMAND_TOTAL_UPDATED } = tracing::field::Empty,
        { names::COMMAND_TOTAL_PROCESSED } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let header = format!("Starting hourly aggregation for last {} hours...", args.hours);
    let run = Run { grain: Grain::Hour, window: args.window(now), site: args.site.as_deref(), verbose: args.verbose };
    run.execute(store, &header, out)
        .instrument(span.clone())
        .await
        .inspect(|t| record_totals(&span, t))
        .inspect_err(|e| record_error(&span, e))
}

/// Runs `aggregate-daily-stats`, writing the original's lines to `out`. Errors as [`hourly`].
pub async fn daily(
    store: &Store,
    args: &DailyArgs,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<RollupCounts, JobError> {
    let span = tracing::info_span!(
        names::AGGREGATE_DAILY_STATS_COMMAND,
        { names::COMMAND_DAYS_TO_PROCESS } = i64::from(args.days),
        { names::COMMAND_START_STR } = args.start.as_ref().map(|s| s.raw.as_str()),
        { names::COMMAND_END_STR } = args.end.as_ref().map(|s| s.raw.as_str()),
        { names::COMMAND_SITE_IDENTIFIER } = args.site.as_deref(),
        { names::COMMAND_TOTAL_CREATED } = tracing::field::Empty,
        { names::COMMAND_TOTAL_UPDATED } = tracing::field::Empty,
        { names::COMMAND_TOTAL_PROCESSED } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let header = format!("Starting daily aggregation for last {} days...", args.days);
    let run = Run { grain: Grain::Day, window: args.window(now), site: args.site.as_deref(), verbose: args.verbose };
    run.execute(store, &header, out)
        .instrument(span.clone())
        .await
        .inspect(|t| record_totals(&span, t))
        .inspect_err(|e| record_error(&span, e))
}

/// Runs what a job asks for, as `aggregate-… --site S --start A --end B` would, writing its lines
/// to `out` (a worker passes a sink: its summary goes to the log).
pub async fn run_job(store: &Store, job: &Job, out: &mut (dyn Write + Send)) -> Result<RollupCounts, JobError> {
    let parse = |v: &str| Instant::parse(v).map_err(JobError::BadArgs);
    let (start, end) = (Some(parse(&job.args.start)?), Some(parse(&job.args.end)?));
    let site = Some(job.args.site.clone());
    match job.kind {
        JobKind::AggregateHourlyStats => {
            hourly(store, &HourlyArgs { hours: 24, start, end, site, verbose: false }, Utc::now(), out).await
        }
        JobKind::AggregateDailyStats => {
            daily(store, &DailyArgs { days: 30, start, end, site, verbose: false }, Utc::now(), out).await
        }
    }
}

fn record_totals(span: &tracing::Span, totals: &RollupCounts) {
    span.record(names::COMMAND_TOTAL_CREATED, totals.created);
    span.record(names::COMMAND_TOTAL_UPDATED, totals.updated);
    span.record(names::COMMAND_TOTAL_PROCESSED, totals.processed);
}

/// Marks a span failed, with the error chain as its status message.
pub(crate) fn record_error(span: &tracing::Span, err: &dyn std::error::Error) {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_message", message.as_str());
}

/// One aggregate command's work: which grain, window and sites.
struct Run<'a> {
    grain: Grain,
    window: (i64, i64),
    site: Option<&'a str>,
    verbose: bool,
}

impl Run<'_> {
    async fn execute(
        &self,
        store: &Store,
        header: &str,
        out: &mut (dyn Write + Send),
    ) -> Result<RollupCounts, JobError> {
        let _ = writeln!(out, "{header}");
        let sites = match self.site {
            Some(identifier) => match store.site_by_identifier(identifier).await? {
                Some(site) => vec![SiteRef { id: site.id, identifier: site.identifier }],
                None => {
                    let _ = writeln!(out, "Site '{identifier}' not found");
                    return Err(JobError::SiteNotFound(identifier.to_string()));
                }
            },
            None => store.site_refs().await?,
        };
        let chunks = day_chunks(self.window);
        let mut progress = Progress::new(sites.len() * chunks.len());
        let mut total = RollupCounts::default();
        for site in &sites {
            let counts =
                store.recompute_rollups(self.grain, site.id, &chunks, &mut |done| progress.step(done.raw_rows)).await?;
            total += counts;
            if self.verbose {
                let _ = writeln!(
                    out,
                    "Site {}: {} created, {} updated, {} pageviews processed",
                    site.identifier, counts.created, counts.updated, counts.processed
                );
                for row in store.rollup_rows(self.grain, site.id, self.window.0, self.window.1).await? {
                    let _ = writeln!(
                        out,
                        "  {}: {} pageviews, {} sessions",
                        iso(from_ms(row.bucket)),
                        row.pageview_count,
                        row.unique_session_count
                    );
                }
            }
        }
        progress.finish();
        let _ = writeln!(
            out,
            "Completed: {} records created, {} updated, {} pageviews processed",
            total.created, total.updated, total.processed
        );
        tracing::info!(
            grain = ?self.grain,
            sites = sites.len(),
            window_start = %iso(from_ms(self.window.0)),
            window_end = %iso(from_ms(self.window.1)),
            created = total.created,
            updated = total.updated,
            processed = total.processed,
            raw_rows = total.raw_rows,
            elapsed_ms = u64::try_from(progress.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "aggregation completed"
        );
        Ok(total)
    }
}

/// `[start, end)` cut at UTC midnights: one transaction per piece.
fn day_chunks((start, end): (i64, i64)) -> Vec<(i64, i64)> {
    let mut chunks = Vec::new();
    let mut at = start;
    while at < end {
        let next = (Grain::Day.floor(at) + DAY_MS).min(end);
        chunks.push((at, next));
        at = next;
    }
    chunks
}

/// Progress of a long run on a terminal (`done/total windows, rate`), redrawn in place on stderr.
/// Off when stderr is not a terminal: logs get the one summary line instead.
struct Progress {
    total: usize,
    done: usize,
    rows: i64,
    started: Clock,
    last_draw: Clock,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let now = Clock::now();
        Progress {
            total,
            done: 0,
            rows: 0,
            started: now,
            last_draw: now,
            on: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    fn step(&mut self, rows: i64) {
        self.done += 1;
        self.rows += rows;
        if self.on && (self.last_draw.elapsed().as_millis() >= 200 || self.done == self.total) {
            self.last_draw = Clock::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r  {}/{} windows, {} pageviews, {:.0} pageviews/s   ",
                self.done,
                self.total,
                self.rows,
                self.rows as f64 / secs
            );
        }
    }

    fn finish(&self) {
        if self.on && self.done > 0 {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<Instant> {
        Some(Instant::parse(s).unwrap())
    }

    #[test]
    fn hourly_windows_are_half_open_and_hour_aligned() {
        let now = Instant::parse("2025-09-01T10:20:00Z").unwrap().at;
        let h = |s: &str| Instant::parse(s).unwrap().at.timestamp_millis();
        let args = |start, end| HourlyArgs { hours: 24, start, end, site: None, verbose: false };
        assert_eq!(args(None, None).window(now), (h("2025-08-31T10:00:00Z"), h("2025-09-01T11:00:00Z")));
        let one = args(at("2025-09-01T10:00:00+00:00"), at("2025-09-01T11:00:00+00:00")).window(now);
        assert_eq!(one, (h("2025-09-01T10:00:00Z"), h("2025-09-01T11:00:00Z")), "one hour, not two");
        assert_eq!(args(at("2025-09-01T10:00"), None).window(now).1, h("2025-09-02T10:00:00Z"));
        let same = args(at("2025-09-01T10:30"), at("2025-09-01T10:30")).window(now);
        assert_eq!(same, (h("2025-09-01T10:00:00Z"), h("2025-09-01T11:00:00Z")), "never empty");
    }

    #[test]
    fn daily_windows_include_the_end_date() {
        let now = Instant::parse("2025-09-10T10:20:00Z").unwrap().at;
        let d = |s: &str| Instant::parse(s).unwrap().at.timestamp_millis();
        let args = |start, end| DailyArgs { days: 30, start, end, site: None, verbose: false };
        assert_eq!(args(at("2025-09-01"), at("2025-09-01")).window(now), (d("2025-09-01"), d("2025-09-02")));
        assert_eq!(args(None, None).window(now), (d("2025-08-11"), d("2025-09-11")), "N+1 days, as the original");
        assert_eq!(args(at("2025-09-03"), at("2025-09-01")).window(now).1, d("2025-09-03"), "empty when reversed");
    }

    #[test]
    fn chunks_cut_at_midnight() {
        let chunks = day_chunks((DAY_MS - HOUR_MS, 2 * DAY_MS + HOUR_MS));
        assert_eq!(chunks, vec![(DAY_MS - HOUR_MS, DAY_MS), (DAY_MS, 2 * DAY_MS), (2 * DAY_MS, 2 * DAY_MS + HOUR_MS)]);
    }
}
