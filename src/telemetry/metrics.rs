//! The application's metrics, exported as OTLP metrics when `AXIOM_METRICS_DATASET` (or
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set, and free no-ops otherwise.
//!
//! Call sites use these functions, never the OpenTelemetry API, so names, units and attribute keys
//! live here once. Instruments are created on first use from the global meter provider, which
//! `telemetry::init` installs before anything records.
//!
//! | metric | type | unit | attributes |
//! |---|---|---|---|
//! | `squirrel.pageviews.accepted` | counter | `{pageview}` | |
//! | `squirrel.pageviews.rejected` | counter | `{pageview}` | `reason` (the `pageview.error` value, or `payload_too_large` / `invalid_body`) |
//! | `squirrel.ingest.duration` | histogram | `s` | `outcome` = `accepted` / `rejected` |
//! | `squirrel.writer.batch_size` | histogram | `{pageview}` | |
//! | `squirrel.writer.queue_length` | gauge | `{pageview}` | |
//! | `squirrel.job.duration` | histogram | `s` | `job`, `outcome` = `ok` / `failed` |
//! | `squirrel.job.failures` | counter | `{job}` | `job` |
//! | `squirrel.telemetry.spans_dropped` | counter | `{span}` | `reason` = `queue_full` / `export_failed` |

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, ObservableCounter};

use super::export::ExportStats;

const SECONDS: [f64; 14] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const JOB_SECONDS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
const BATCH: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];

struct Instruments {
    accepted: Counter<u64>,
    rejected: Counter<u64>,
    ingest_duration: Histogram<f64>,
    batch_size: Histogram<u64>,
    queue_length: Gauge<u64>,
    job_duration: Histogram<f64>,
    job_failures: Counter<u64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = opentelemetry::global::meter("server");
    Instruments {
        accepted: meter
            .u64_counter("squirrel.pageviews.accepted")
            .with_unit("{pageview}")
            .with_description("Pageviews committed (answered 200)")
            .build(),
        rejected: meter
            .u64_counter("squirrel.pageviews.rejected")
            .with_unit("{pageview}")
            .with_description("Tracking hits not stored, by reason")
            .build(),
        ingest_duration: meter
            .f64_histogram("squirrel.ingest.duration")
            .with_unit("s")
            .with_description("Time from a tracking hit's arrival to its answer (commit included)")
            .with_boundaries(SECONDS.to_vec())
            .build(),
        batch_size: meter
            .u64_histogram("squirrel.writer.batch_size")
            .with_unit("{pageview}")
            .with_description("Pageviews committed per group-commit transaction")
            .with_boundaries(BATCH.to_vec())
            .build(),
        queue_length: meter
            .u64_gauge("squirrel.writer.queue_length")
            .with_unit("{pageview}")
            .with_description("Pageviews waiting for the writer when a batch starts")
            .build(),
        job_duration: meter
            .f64_histogram("squirrel.job.duration")
            .with_unit("s")
            .with_description("Background job run time")
            .with_boundaries(JOB_SECONDS.to_vec())
            .build(),
        job_failures: meter
            .u64_counter("squirrel.job.failures")
            .with_unit("{job}")
            .with_description("Background job runs that failed")
            .build(),
    }
});

static SPANS_DROPPED: OnceLock<ObservableCounter<u64>> = OnceLock::new();

/// A tracking hit was stored; `elapsed` since it arrived.
pub fn pageview_accepted(elapsed: Duration) {
    let m = &*INSTRUMENTS;
    m.accepted.add(1, &[]);
    m.ingest_duration.record(elapsed.as_secs_f64(), &[KeyValue::new("outcome", "accepted")]);
}

/// A tracking hit was not stored, for `reason` (e.g. `invalid_site_identifier`).
pub fn pageview_rejected(reason: &'static str, elapsed: Duration) {
    let m = &*INSTRUMENTS;
    m.rejected.add(1, &[KeyValue::new("reason", reason)]);
    m.ingest_duration.record(elapsed.as_secs_f64(), &[KeyValue::new("outcome", "rejected")]);
}

/// The ingest writer starts committing `size` rows with `queued` more waiting.
pub fn writer_batch(size: usize, queued: usize) {
    let m = &*INSTRUMENTS;
    m.batch_size.record(size as u64, &[]);
    m.queue_length.record(queued as u64, &[]);
}

/// A background job `job` (a `telemetry::names` constant) finished after `elapsed`.
pub fn job_finished(job: &'static str, elapsed: Duration, ok: bool) {
    let m = &*INSTRUMENTS;
    let outcome = if ok { "ok" } else { "failed" };
    m.job_duration.record(elapsed.as_secs_f64(), &[KeyValue::new("job", job), KeyValue::new("outcome", outcome)]);
    if !ok {
        m.job_failures.add(1, &[KeyValue::new("job", job)]);
    }
}

/// Reports the exporter's drop counters as `squirrel.telemetry.spans_dropped` (once per process).
pub(super) fn register_spans_dropped(stats: Arc<ExportStats>) {
    SPANS_DROPPED.get_or_init(|| {
        opentelemetry::global::meter("server")
            .u64_observable_counter("squirrel.telemetry.spans_dropped")
            .with_unit("{span}")
            .with_description("Spans not exported: queue full, or their export failed")
            .with_callback(move |observer| {
                observer.observe(stats.dropped_queue_full(), &[KeyValue::new("reason", "queue_full")]);
                observer.observe(stats.dropped_export_failed(), &[KeyValue::new("reason", "export_failed")]);
            })
            .build()
    });
}
