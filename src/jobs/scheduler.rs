//! The four `queue-*` commands and the schedules that run them inside `squirrel workers`.
//!
//! Each command lists the sites and, per site, submits one job per window inside an `enqueue_*` span
//! (SPEC §4.3–4.6: same names, attributes and printed lines). Fixes of SPEC §4.9:
//! - the current hour (day) job also covers the previous hour (day) during the first minutes after
//!   it closed, so pageviews of its last minute are counted within minutes;
//! - the backfills look for windows whose raw rows changed since their row was computed (late
//!   pageviews, a job lost with a Redis that forgot it), not only for missing rows; windows with no
//!   pageviews get no job (the original queued 168 jobs for every new site), and consecutive
//!   windows go into one job.
//!
//! In `workers`, each schedule is an interval that skips missed ticks and fires only if it takes
//! the schedule's Redis lock for the period, so N processes fire it once per period between them.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::job::{Job, JobArgs, JobKind, from_ms, iso, iso_date};
use super::{Dispatch, JobError, Queue, Submitted};
use crate::store::{DAY_MS, Grain, HOUR_MS, Store};
use crate::telemetry::names;

/// How long after an hour ends the current-hour job still covers it.
const SETTLE_HOUR_MS: i64 = 5 * 60 * 1000;
/// How long after a day ends the current-day job still covers it.
const SETTLE_DAY_MS: i64 = 15 * 60 * 1000;
/// Hours the missing-hours backfill looks back.
pub const BACKFILL_HOURS_DAYS: i64 = 7;

/// One of the four schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    CurrentHour,
    MissingHours,
    CurrentDay,
    /// `queue-backfill-missing-days --days 7`.
    MissingDays,
}

/// The schedules of `squirrel workers` and their periods (the original's `start_workers.sh` loops).
pub const SCHEDULES: [(Schedule, Duration); 4] = [
    (Schedule::CurrentHour, Duration::from_secs(60)),
    (Schedule::MissingHours, Duration::from_secs(3600)),
    (Schedule::CurrentDay, Duration::from_secs(300)),
    (Schedule::MissingDays, Duration::from_secs(21_600)),
];

impl Schedule {
    pub fn name(self) -> &'static str {
        match self {
            Schedule::CurrentHour => "queue-current-hour",
            Schedule::MissingHours => "queue-backfill-missing-hours",
            Schedule::CurrentDay => "queue-current-day",
            Schedule::MissingDays => "queue-backfill-missing-days",
        }
    }

    /// Runs the schedule's command once.
    pub async fn run(
        self,
        store: &Store,
        dispatch: &Dispatch,
        now: DateTime<Utc>,
        out: &mut (dyn Write + Send),
    ) -> Result<(), JobError> {
        match self {
            Schedule::CurrentHour => queue_current_hour(store, dispatch, now, out).await,
            Schedule::MissingHours => queue_backfill_missing_hours(store, dispatch, now, out).await,
            Schedule::CurrentDay => queue_current_day(store, dispatch, now, out).await,
            Schedule::MissingDays => queue_backfill_missing_days(store, dispatch, 7, now, out).await,
        }
    }
}

/// `queue-current-hour`: every site's current hour (and the previous one just after it closed).
pub async fn queue_current_hour(
    store: &Store,
    dispatch: &Dispatch,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<(), JobError> {
    let hour = Grain::Hour.floor(now.timestamp_millis());
    let span = tracing::info_span!(
        names::QUEUE_CURRENT_HOUR_COMMAND,
        { names::COMMAND_HOUR_START } = iso(from_ms(hour)).as_str(),
        { names::COMMAND_HOUR_END } = iso(from_ms(hour + HOUR_MS)).as_str(),
        { names::COMMAND_SITES_COUNT } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let start = if now.timestamp_millis() - hour < SETTLE_HOUR_MS { hour - HOUR_MS } else { hour };
    let work = async {
        let sites = store.site_refs().await?;
        tracing::Span::current().record(names::COMMAND_SITES_COUNT, sites.len() as i64);
        for site in &sites {
            let args = JobArgs {
                site: site.identifier.clone(),
                start: iso(from_ms(start)),
                end: iso(from_ms(hour + HOUR_MS)),
            };
            submit(dispatch, names::ENQUEUE_HOURLY_AGGREGATION, JobKind::AggregateHourlyStats, args, None, out).await?;
        }
        let _ = writeln!(out, "Queued/processed current-hour aggregation for all sites");
        Ok(())
    };
    finish(&span, work.instrument(span.clone()).await)
}

/// `queue-current-day`: every site's current day (and yesterday just after midnight).
pub async fn queue_current_day(
    store: &Store,
    dispatch: &Dispatch,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<(), JobError> {
    let today = Grain::Day.floor(now.timestamp_millis());
    let span = tracing::info_span!(
        names::QUEUE_CURRENT_DAY_COMMAND,
        { names::COMMAND_DAY_START } = iso(from_ms(today)).as_str(),
        { names::COMMAND_DAY_END } = iso(from_ms(today + DAY_MS)).as_str(),
        { names::COMMAND_SITES_COUNT } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let first = if now.timestamp_millis() - today < SETTLE_DAY_MS { today - DAY_MS } else { today };
    let work = async {
        let sites = store.site_refs().await?;
        tracing::Span::current().record(names::COMMAND_SITES_COUNT, sites.len() as i64);
        for site in &sites {
            let args = JobArgs { site: site.identifier.clone(), start: iso_date(first), end: iso_date(today) };
            submit(dispatch, names::ENQUEUE_DAILY_AGGREGATION, JobKind::AggregateDailyStats, args, None, out).await?;
        }
        let _ = writeln!(out, "Queued/processed current-day aggregation for all sites");
        Ok(())
    };
    finish(&span, work.instrument(span.clone()).await)
}

/// `queue-backfill-missing-hours`: the last 7 days up to the current hour (excluded), every hour
/// whose row is missing or stale, in runs of consecutive hours.
pub async fn queue_backfill_missing_hours(
    store: &Store,
    dispatch: &Dispatch,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<(), JobError> {
    let end = Grain::Hour.floor(now.timestamp_millis());
    let start = Grain::Hour.floor(now.timestamp_millis() - BACKFILL_HOURS_DAYS * DAY_MS);
    let span = tracing::info_span!(
        names::QUEUE_BACKFILL_MISSING_HOURS_COMMAND,
        { names::COMMAND_START_WINDOW } = iso(from_ms(start)).as_str(),
        { names::COMMAND_END_WINDOW } = iso(from_ms(end)).as_str(),
        { names::COMMAND_DAYS_BACK } = BACKFILL_HOURS_DAYS,
        { names::COMMAND_SITES_COUNT } = tracing::field::Empty,
        { names::COMMAND_TOTAL_MISSING_HOURS } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let work = async {
        let sites = store.site_refs().await?;
        let current = tracing::Span::current();
        current.record(names::COMMAND_SITES_COUNT, sites.len() as i64);
        let mut total = 0i64;
        for site in &sites {
            let hours = store.changed_windows(Grain::Hour, site.id, start, end).await?;
            if hours.is_empty() {
                continue;
            }
            total += hours.len() as i64;
            current.set_attribute(names::site_missing_hours(&site.identifier), hours.len() as i64);
            for (first, last) in runs(&hours, HOUR_MS) {
                let args = JobArgs {
                    site: site.identifier.clone(),
                    start: iso(from_ms(first)),
                    end: iso(from_ms(last + HOUR_MS)),
                };
                submit(
                    dispatch,
                    names::ENQUEUE_BACKFILL_HOURLY_AGGREGATION,
                    JobKind::AggregateHourlyStats,
                    args,
                    None,
                    out,
                )
                .await?;
            }
        }
        current.record(names::COMMAND_TOTAL_MISSING_HOURS, total);
        let _ = writeln!(out, "Queued/processed backfill for missing hours (last 7 days)");
        Ok(())
    };
    finish(&span, work.instrument(span.clone()).await)
}

/// `queue-backfill-missing-days --days N`: today − N … today, every day whose row is missing or
/// stale, in runs of consecutive days.
pub async fn queue_backfill_missing_days(
    store: &Store,
    dispatch: &Dispatch,
    days: u32,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
) -> Result<(), JobError> {
    let today = Grain::Day.floor(now.timestamp_millis());
    let start = today - i64::from(days) * DAY_MS;
    let span = tracing::info_span!(
        names::QUEUE_BACKFILL_MISSING_DAYS_COMMAND,
        { names::COMMAND_DAYS_TO_CHECK } = i64::from(days),
        { names::COMMAND_START_DATE } = iso_date(start).as_str(),
        { names::COMMAND_END_DATE } = iso_date(today).as_str(),
        { names::COMMAND_SITES_COUNT } = tracing::field::Empty,
        { names::COMMAND_TOTAL_QUEUED } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let work = async {
        let sites = store.site_refs().await?;
        let current = tracing::Span::current();
        current.record(names::COMMAND_SITES_COUNT, sites.len() as i64);
        let mut total = 0i64;
        for site in &sites {
            let missing = store.changed_windows(Grain::Day, site.id, start, today + DAY_MS).await?;
            if missing.is_empty() {
                continue;
            }
            current.set_attribute(names::site_missing_days(&site.identifier), missing.len() as i64);
            for (first, last) in runs(&missing, DAY_MS) {
                let count = (last - first) / DAY_MS + 1;
                let args = JobArgs { site: site.identifier.clone(), start: iso_date(first), end: iso_date(last) };
                submit(
                    dispatch,
                    names::ENQUEUE_BACKFILL_DAILY_AGGREGATION,
                    JobKind::AggregateDailyStats,
                    args,
                    Some(count),
                    out,
                )
                .await?;
                total += count;
            }
            let _ = writeln!(out, "Site {}: queued {} missing days", site.identifier, missing.len());
        }
        current.record(names::COMMAND_TOTAL_QUEUED, total);
        let _ = writeln!(out, "Queued/processed backfill for {total} missing days");
        Ok(())
    };
    finish(&span, work.instrument(span.clone()).await)
}

/// The `enqueue_*` span with the catalogue's attributes.
macro_rules! enqueue_span {
    ($name:expr, $args:expr, $dispatch:expr) => {
        tracing::info_span!(
            $name,
            otel.kind = "producer",
            { names::SITE_IDENTIFIER } = $args.site.as_str(),
            { names::AGGREGATION_START } = $args.start.as_str(),
            { names::AGGREGATION_END } = $args.end.as_str(),
            { names::AGGREGATION_DAYS_COUNT } = tracing::field::Empty,
            { names::EXECUTION_MODE } = $dispatch.mode(),
            { names::JOB_DEDUPLICATED } = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        )
    };
}

/// Submits one job inside its `enqueue_*` span.
async fn submit(
    dispatch: &Dispatch,
    span_name: &'static str,
    kind: JobKind,
    args: JobArgs,
    days_count: Option<i64>,
    out: &mut (dyn Write + Send),
) -> Result<(), JobError> {
    // One callsite per span name: tracing's span names are static per callsite.
    let span = match span_name {
        names::ENQUEUE_HOURLY_AGGREGATION => enqueue_span!(names::ENQUEUE_HOURLY_AGGREGATION, args, dispatch),
        names::ENQUEUE_DAILY_AGGREGATION => enqueue_span!(names::ENQUEUE_DAILY_AGGREGATION, args, dispatch),
        names::ENQUEUE_BACKFILL_HOURLY_AGGREGATION => {
            enqueue_span!(names::ENQUEUE_BACKFILL_HOURLY_AGGREGATION, args, dispatch)
        }
        _ => enqueue_span!(names::ENQUEUE_BACKFILL_DAILY_AGGREGATION, args, dispatch),
    };
    if let Some(count) = days_count {
        span.record(names::AGGREGATION_DAYS_COUNT, count);
    }
    let job = Job::new(kind, args);
    let result = dispatch.submit(job, out).instrument(span.clone()).await;
    match &result {
        Ok(Submitted::Duplicate) => {
            span.record(names::JOB_DEDUPLICATED, true);
        }
        Ok(_) => {
            span.record(names::JOB_DEDUPLICATED, false);
        }
        Err(err) => super::aggregate::record_error(&span, err),
    }
    result.map(|_| ())
}

/// Records a command's failure on its span and passes the result on.
fn finish(span: &tracing::Span, result: Result<(), JobError>) -> Result<(), JobError> {
    if let Err(err) = &result {
        super::aggregate::record_error(span, err);
    }
    result
}

/// Sorted bucket starts → runs of consecutive buckets `(first, last)`.
fn runs(buckets: &[i64], step: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &bucket in buckets {
        match out.last_mut() {
            Some((_, last)) if *last + step == bucket => *last = bucket,
            _ => out.push((bucket, bucket)),
        }
    }
    out
}

/// Runs every schedule of [`SCHEDULES`] until `stop`: one task per schedule, each firing when it
/// wins the schedule's lock for the period. Errors (Redis or database down) are logged and the next
/// tick tries again.
pub async fn run_schedules(store: Store, queue: Queue, holder: String, stop: CancellationToken) {
    let dispatch = Dispatch::Queue(queue.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (schedule, period) in SCHEDULES {
        let (store, queue, dispatch, holder, stop) =
            (store.clone(), queue.clone(), dispatch.clone(), holder.clone(), stop.clone());
        tasks.spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = interval.tick() => {}
                }
                // The lock lives a little less than the period, so the next tick can take it again.
                let lock_for = period.saturating_sub(Duration::from_millis(500)).max(Duration::from_millis(500));
                match queue.try_lock_schedule(schedule.name(), &holder, lock_for).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(err) => {
                        tracing::warn!(schedule = schedule.name(), error = %err, "schedule skipped: Redis unavailable");
                        continue;
                    }
                }
                let mut lines = Vec::new();
                match schedule.run(&store, &dispatch, Utc::now(), &mut lines).await {
                    Ok(()) => {
                        let text = String::from_utf8_lossy(&lines);
                        for line in text.lines() {
                            tracing::info!(schedule = schedule.name(), "{line}");
                        }
                    }
                    Err(err) => tracing::warn!(schedule = schedule.name(), error = %anyhow::Error::from(err), "schedule failed; next period retries"),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_buckets_form_one_run() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8], 1), vec![(0, 2), (5, 5), (7, 8)]);
        assert!(runs(&[], 1).is_empty());
    }

    #[test]
    fn the_schedule_table_is_the_originals() {
        let periods: Vec<u64> = SCHEDULES.iter().map(|(_, p)| p.as_secs()).collect();
        assert_eq!(periods, [60, 3600, 300, 21_600]);
    }
}
