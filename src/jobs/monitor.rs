//! `monitor-queue-health`: queue sizes, workers and a status, reported on the `queue_health_check`
//! span and stdout with the original's attributes, thresholds and messages (SPEC §4.8).
//!
//! Sizes map onto ours: `queue.length` pending jobs, `queue.started_jobs` jobs held by live workers,
//! `queue.deferred_jobs` failed jobs waiting for a retry, `queue.failed_jobs` the dead-letter list.
//! Redis down (or no `REDIS_URL`) is status `error`, never a crash: the check always returns.

use std::io::Write;

use super::queue::{Queue, QueueError, QueueStats};
use crate::telemetry::names;

pub const OVERLOADED_THRESHOLD: i64 = 100;
pub const WARNING_THRESHOLD: i64 = 50;
pub const FAILED_THRESHOLD: i64 = 10;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `healthy`, `warning`, `overloaded`, `degraded`, `no_workers` or `error`.
    pub status: &'static str,
    pub stats: Option<QueueStats>,
}

/// Checks `queue` (`None`: no `REDIS_URL`), writing the original's messages to `out`.
pub async fn check(queue: Option<&Queue>, name: &str, verbose: bool, out: &mut (dyn Write + Send)) -> Health {
    let span = tracing::info_span!(
        names::QUEUE_HEALTH_CHECK,
        { names::QUEUE_NAME } = name,
        { names::MONITOR_TYPE } = "health_check",
        { names::QUEUE_ERROR } = tracing::field::Empty,
        { names::QUEUE_STATUS } = tracing::field::Empty,
        { names::QUEUE_LENGTH } = tracing::field::Empty,
        { names::QUEUE_FAILED_JOBS } = tracing::field::Empty,
        { names::QUEUE_STARTED_JOBS } = tracing::field::Empty,
        { names::QUEUE_DEFERRED_JOBS } = tracing::field::Empty,
        { names::QUEUE_TOTAL_JOBS } = tracing::field::Empty,
        { names::WORKERS_TOTAL } = tracing::field::Empty,
        { names::WORKERS_ACTIVE } = tracing::field::Empty,
        { names::WORKERS_IDLE } = tracing::field::Empty,
        { names::QUEUE_ALERT } = tracing::field::Empty,
        { names::QUEUE_ALERT_THRESHOLD } = tracing::field::Empty,
        { names::QUEUE_WARNING } = tracing::field::Empty,
        { names::QUEUE_WARNING_THRESHOLD } = tracing::field::Empty,
        { names::ALERT_TYPE } = tracing::field::Empty,
        { names::ALERT_SEVERITY } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    let unavailable = |out: &mut (dyn Write + Send)| {
        span.record(names::QUEUE_ERROR, "redis_unavailable");
        span.record(names::QUEUE_STATUS, "error");
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", "Redis connection not available");
        let _ = writeln!(out, "❌ Redis connection not available");
        Health { status: "error", stats: None }
    };
    let Some(queue) = queue else { return unavailable(out) };
    let stats = match tracing::Instrument::instrument(queue.stats(), span.clone()).await {
        Ok(stats) => stats,
        Err(QueueError::Unavailable(_)) => return unavailable(out),
        Err(err) => {
            let message = format!("{:#}", anyhow::Error::from(err));
            span.record(names::QUEUE_ERROR, message.as_str());
            span.record(names::QUEUE_STATUS, "error");
            span.record(names::ALERT_TYPE, "monitoring_error");
            span.record(names::ALERT_SEVERITY, "medium");
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", message.as_str());
            let _ = writeln!(out, "❌ Failed to monitor queue '{name}': {message}");
            return Health { status: "error", stats: None };
        }
    };
    span.record(names::QUEUE_LENGTH, stats.length);
    span.record(names::QUEUE_FAILED_JOBS, stats.failed);
    span.record(names::QUEUE_STARTED_JOBS, stats.started);
    span.record(names::QUEUE_DEFERRED_JOBS, stats.deferred);
    span.record(names::QUEUE_TOTAL_JOBS, stats.length + stats.started + stats.deferred);
    span.record(names::WORKERS_TOTAL, stats.workers_total);
    span.record(names::WORKERS_ACTIVE, stats.workers_busy);
    span.record(names::WORKERS_IDLE, stats.workers_idle);
    let status = if stats.length > OVERLOADED_THRESHOLD {
        span.record(names::ALERT_TYPE, "queue_overloaded");
        span.record(names::ALERT_SEVERITY, "high");
        span.record(names::QUEUE_ALERT, "overloaded");
        span.record(names::QUEUE_ALERT_THRESHOLD, OVERLOADED_THRESHOLD);
        let _ = writeln!(out, "🚨 QUEUE OVERLOADED: {} jobs pending (threshold: {OVERLOADED_THRESHOLD})", stats.length);
        "overloaded"
    } else if stats.length > WARNING_THRESHOLD {
        span.record(names::QUEUE_WARNING, "high_queue_length");
        span.record(names::QUEUE_WARNING_THRESHOLD, WARNING_THRESHOLD);
        let _ = writeln!(out, "⚠️  Queue getting full: {} jobs pending (threshold: {WARNING_THRESHOLD})", stats.length);
        "warning"
    } else if stats.failed > FAILED_THRESHOLD {
        span.record(names::QUEUE_WARNING, "high_failure_rate");
        let _ = writeln!(out, "⚠️  High failure rate: {} failed jobs", stats.failed);
        "degraded"
    } else if stats.workers_total == 0 {
        span.record(names::ALERT_TYPE, "no_workers");
        span.record(names::ALERT_SEVERITY, "critical");
        let _ = writeln!(out, "🚨 NO WORKERS AVAILABLE: {} jobs waiting", stats.length);
        "no_workers"
    } else {
        if verbose {
            let _ = writeln!(
                out,
                "✅ Queue healthy: {} pending, {}/{} workers active",
                stats.length, stats.workers_busy, stats.workers_total
            );
        }
        "healthy"
    };
    span.record(names::QUEUE_STATUS, status);
    if verbose {
        let _ = writeln!(out, "📊 Queue Metrics for '{name}':");
        let _ = writeln!(out, "   Pending: {}", stats.length);
        let _ = writeln!(out, "   Started: {}", stats.started);
        let _ = writeln!(out, "   Failed: {}", stats.failed);
        let _ = writeln!(out, "   Deferred: {}", stats.deferred);
        let _ = writeln!(out, "   Total workers: {}", stats.workers_total);
        let _ = writeln!(out, "   Active workers: {}", stats.workers_busy);
        let _ = writeln!(out, "   Status: {status}");
    }
    Health { status, stats: Some(stats) }
}
