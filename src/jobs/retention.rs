//! Retention (`RETENTION_DAYS`): `squirrel prune [--dry-run]` and its hourly run inside `squirrel workers`.
//!
//! Raw pageviews created before the cutoff, UTC midnight N days before today (so only whole hours and
//! days go), are deleted site by site in batches of [`BATCH`] rows, each its own short transaction.
//! Nothing is deleted before every window it belongs to is up to date: hourly rows and sessions,
//! then daily rows, then the daily breakdowns and visit totals the statistics read. Then the cutoff
//! is recorded (`store::retention`), which freezes those windows for every later recompute and
//! backfill, and only then do rows go. A run stopped halfway leaves consistent data: the next one
//! carries on.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::JobError;
use super::job::{from_ms, iso};
use super::queue::Queue;
use crate::store::{DAY_MS, Grain, PrunableSite, Store};
use crate::telemetry::names;

/// Raw rows deleted per transaction: short enough that ingest (SQLite's one writer) barely waits.
pub const BATCH: i64 = 5_000;
/// How often `squirrel workers` prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The schedule lock's name: one worker process prunes per period.
const SCHEDULE: &str = "prune";

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Raw pageviews created before this (epoch ms, a UTC midnight) go.
    pub cutoff: i64,
    /// Per site identifier: pageviews deleted (dry: that would be).
    pub sites: Vec<(String, i64)>,
    pub total: i64,
    /// `stop` came before every row was deleted.
    pub interrupted: bool,
}

/// Prunes raw pageviews older than `days` full UTC days before `now`'s, writing one line per site
/// with the count to `out`. `dry_run`: counts only, nothing is changed.
pub async fn prune(
    store: &Store,
    days: u32,
    dry_run: bool,
    now: DateTime<Utc>,
    stop: &CancellationToken,
    out: &mut (dyn Write + Send),
) -> Result<PruneReport, JobError> {
    let cutoff = Grain::Day.floor(now.timestamp_millis()) - i64::from(days) * DAY_MS;
    let span = tracing::info_span!(
        names::PRUNE_COMMAND,
        { names::PRUNE_RETENTION_DAYS } = i64::from(days),
        { names::PRUNE_CUTOFF } = iso(from_ms(cutoff)).as_str(),
        { names::PRUNE_DRY_RUN } = dry_run,
        { names::PRUNE_SITES_COUNT } = tracing::field::Empty,
        { names::PRUNE_PAGEVIEWS } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let work = async {
        let prunable = store.prunable_pageviews(cutoff).await?;
        let verb = if dry_run { "would be deleted" } else { "are deleted" };
        let _ = writeln!(
            out,
            "Retention {days} days: raw pageviews created before {} {verb} (rollups and sessions are kept)",
            iso(from_ms(cutoff))
        );
        let mut report = PruneReport { cutoff, ..PruneReport::default() };
        if !dry_run {
            for site in &prunable {
                settle(store, site, cutoff).await?;
            }
            store.set_pruned_before(cutoff).await?;
        }
        for site in &prunable {
            let deleted = if dry_run { site.pageviews } else { delete(store, site.site.id, cutoff, stop).await? };
            let verb = if dry_run { "would delete" } else { "deleted" };
            let _ = writeln!(out, "Site {}: {verb} {deleted} pageviews", site.site.identifier);
            report.sites.push((site.site.identifier.clone(), deleted));
            report.total += deleted;
            if stop.is_cancelled() && !dry_run {
                report.interrupted = true;
                break;
            }
        }
        let verb = if dry_run { "would be deleted" } else { "deleted" };
        let _ = writeln!(out, "Total: {} pageviews {verb} from {} sites", report.total, report.sites.len());
        if report.interrupted {
            let _ = writeln!(out, "Stopped before the end; the next run carries on");
        }
        let current = tracing::Span::current();
        current.record(names::PRUNE_SITES_COUNT, report.sites.len() as i64);
        current.record(names::PRUNE_PAGEVIEWS, report.total);
        Ok(report)
    };
    work.instrument(span.clone()).await.inspect_err(|err| super::aggregate::record_error(&span, err))
}

/// Brings every rollup of a site's windows before `cutoff` up to date with its raw rows.
async fn settle(store: &Store, site: &PrunableSite, cutoff: i64) -> Result<(), JobError> {
    let from = Grain::Day.floor(site.oldest);
    // Hourly first: it also recomputes the sessions that the daily breakdowns count.
    for grain in [Grain::Hour, Grain::Day] {
        let mut days: Vec<i64> = store
            .changed_windows(grain, site.site.id, from, cutoff)
            .await?
            .into_iter()
            .map(|bucket| Grain::Day.floor(bucket))
            .collect();
        days.dedup();
        for day in days {
            store.recompute_rollup(grain, site.site.id, day, day + DAY_MS).await?;
        }
    }
    store.refresh_daily_breakdowns(site.site.id, from, cutoff, usize::MAX).await?;
    Ok(())
}

async fn delete(store: &Store, site_id: i64, cutoff: i64, stop: &CancellationToken) -> Result<i64, JobError> {
    let mut deleted = 0i64;
    loop {
        let batch = store.delete_pageviews_before(site_id, cutoff, BATCH).await?;
        deleted += i64::try_from(batch).unwrap_or(i64::MAX);
        if batch < BATCH as u64 || stop.is_cancelled() {
            return Ok(deleted);
        }
    }
}

/// The hourly prune of `squirrel workers`, until `stop`: each period, the process that wins the
/// schedule's lock prunes. Errors are logged and the next period tries again.
pub async fn run_every_period(store: Store, queue: Queue, days: u32, stop: CancellationToken) {
    let holder = format!("prune-{}", uuid::Uuid::new_v4().simple());
    let mut interval = tokio::time::interval(PRUNE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let lock_for = PRUNE_EVERY.saturating_sub(Duration::from_secs(1));
        match queue.try_lock_schedule(SCHEDULE, &holder, lock_for).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(schedule = SCHEDULE, error = %err, "prune skipped: Redis unavailable");
                continue;
            }
        }
        let mut lines = Vec::new();
        match prune(&store, days, false, Utc::now(), &stop, &mut lines).await {
            Ok(_) => {
                for line in String::from_utf8_lossy(&lines).lines() {
                    tracing::info!(schedule = SCHEDULE, "{line}");
                }
            }
            Err(err) => {
                tracing::warn!(schedule = SCHEDULE, error = %anyhow::Error::from(err), "prune failed; next period retries");
            }
        }
    }
}
