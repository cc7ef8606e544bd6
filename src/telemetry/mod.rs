//! Telemetry: log lines, and OpenTelemetry traces, metrics and logs to Axiom or any OTLP/HTTP backend.
//!
//! Owns the global `tracing` subscriber, the OpenTelemetry providers, their exporters and their
//! shutdown. [`init`] is called once by `main` (never by `App::build` or the tests' in-process apps);
//! the returned [`TelemetryGuard`] flushes everything under a deadline. Nothing else installs global
//! state. Span names and attribute keys come from [`names`].
//!
//! Design choices that keep the request path cheap and safe:
//! - Exporting never blocks a request: finished spans go to a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`)
//!   drained by the SDK's own thread; when it is full the span is dropped and counted ([`export`]).
//! - The log layer never sees spans (a per-layer filter), so it never formats span fields; a log
//!   line gets its `trace_id`/`span_id` from the current span only when a line is actually written.
//! - With export off there is no OpenTelemetry layer at all and spans cost almost nothing.

pub mod check;
pub mod export;
pub mod http_client;
pub mod lane;
mod logs;
pub mod metrics;
pub mod names;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use export::{Endpoints, ExportFailure, Signal};

/// Log line format, `SQUIRREL_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging, tracing and metrics settings. Global flags: they work before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryConfig {
    /// `text` for people, `json` for log shippers.
    #[arg(long, env = "SQUIRREL_LOG_FORMAT", default_value = "text", value_enum, global = true)]
    pub log_format: LogFormat,
    /// Log filter: a level, or `target=level` pairs such as `info,squirrel=debug,sqlx=warn`.
    #[arg(long, env = "SQUIRREL_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Axiom API token with ingest rights; sent as `Authorization: Bearer …`. Unset (and no
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT`): nothing is exported.
    #[arg(long, env = "AXIOM_API_TOKEN", hide_env_values = true, global = true)]
    pub axiom_api_token: Option<String>,
    /// Axiom host (`api.axiom.co`, an edge domain), or a base URL with a scheme such as
    /// `http://127.0.0.1:4318` for a local collector. Traces go to `<base>/v1/traces`.
    #[arg(long, env = "AXIOM_DOMAIN", default_value = "api.axiom.co", global = true)]
    pub axiom_domain: String,
    /// Dataset for traces (`X-Axiom-Dataset`).
    #[arg(long, env = "AXIOM_DATASET", default_value = "server", global = true)]
    pub axiom_dataset: String,
    /// Dataset for OTLP logs (`<base>/v1/logs`); unset: log lines are not exported.
    #[arg(long, env = "AXIOM_LOGS_DATASET", global = true)]
    pub axiom_logs_dataset: Option<String>,
    /// Dataset for OTLP metrics (`<base>/v1/metrics`, `x-axiom-metrics-dataset`); unset: no metrics.
    #[arg(long, env = "AXIOM_METRICS_DATASET", global = true)]
    pub axiom_metrics_dataset: Option<String>,
    /// Any OTLP/HTTP backend: base URL, `/v1/traces` etc. appended. Wins over `AXIOM_DOMAIN`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// Full traces URL, used as given. Wins over `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", global = true)]
    pub otlp_traces_endpoint: Option<String>,
    /// Full logs URL, used as given; setting it turns log export on (when traces are exported).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", global = true)]
    pub otlp_logs_endpoint: Option<String>,
    /// Full metrics URL, used as given; setting it turns metric export on (when traces are exported).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", global = true)]
    pub otlp_metrics_endpoint: Option<String>,
    /// `service.name` of every span, metric and log record.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "server", global = true)]
    pub service_name: String,
    /// Seconds the exit waits for buffered telemetry to be sent; a dead backend can't hold it longer.
    #[arg(long, env = "SQUIRREL_TELEMETRY_FLUSH_SECS", default_value_t = 5, global = true)]
    pub flush_secs: u64,
}

impl TelemetryConfig {
    /// Logs to stderr only; exports nothing. For tests and tools that build a config by hand.
    pub fn local_only() -> TelemetryConfig {
        TelemetryConfig {
            log_format: LogFormat::Text,
            log: "info".into(),
            axiom_api_token: None,
            axiom_domain: "api.axiom.co".into(),
            axiom_dataset: "server".into(),
            axiom_logs_dataset: None,
            axiom_metrics_dataset: None,
            otlp_endpoint: None,
            otlp_traces_endpoint: None,
            otlp_logs_endpoint: None,
            otlp_metrics_endpoint: None,
            service_name: "server".into(),
            flush_secs: 5,
        }
    }

    /// The token, if one is set and not blank.
    pub fn token(&self) -> Option<&str> {
        self.axiom_api_token.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    /// The token as it may be printed: its first 4 characters, then `…`.
    pub fn masked_token(&self) -> String {
        match self.token() {
            Some(token) => {
                format!("{}… ({} characters)", token.chars().take(4).collect::<String>(), token.chars().count())
            }
            None => "(not set)".into(),
        }
    }
}

/// Keeps the exporters alive; [`TelemetryGuard::shutdown`] flushes them. Dropping it without
/// calling `shutdown` loses whatever is still buffered (the last seconds of spans).
#[must_use = "call shutdown() before the process exits, or the last spans are lost"]
pub struct TelemetryGuard {
    providers: Option<Providers>,
    flush: Duration,
}

struct Providers {
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
    logger: Option<SdkLoggerProvider>,
    stats: std::sync::Arc<export::ExportStats>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.providers.is_some()
    }

    /// Exports everything still buffered and stops the exporters, waiting at most the flush deadline
    /// (`SQUIRREL_TELEMETRY_FLUSH_SECS`). Blocking: call it outside the async runtime (as `main`
    /// does, after `block_on` returns) or through `spawn_blocking`. Never fails: what could not be
    /// sent is reported in one log line.
    pub fn shutdown(mut self) {
        let Some(providers) = self.providers.take() else { return };
        let deadline = self.flush;
        let stats = providers.stats.clone();
        let (done, finished) = std::sync::mpsc::channel();
        // A plain thread, so a backend that never answers cannot hold the exit past the deadline.
        let spawned = std::thread::Builder::new().name("telemetry-shutdown".into()).spawn(move || {
            let Providers { tracer, meter, logger, .. } = providers;
            // The lane first: its spans are the requests' that the SDK's batch spans link to.
            let lane_flushed = lane::shutdown(deadline);
            let traces = tracer.shutdown_with_timeout(deadline);
            let traces = match traces {
                Ok(()) if !lane_flushed => Err(opentelemetry_sdk::error::OTelSdkError::Timeout(deadline)),
                other => other,
            };
            if let Some(meter) = meter {
                let _ = meter.shutdown_with_timeout(deadline);
            }
            if let Some(logger) = logger {
                let _ = logger.shutdown_with_timeout(deadline);
            }
            let _ = done.send(traces);
        });
        let outcome = match spawned {
            Ok(_) => finished.recv_timeout(deadline + Duration::from_millis(250)).ok(),
            Err(_) => None,
        };
        let dropped = stats.dropped_total();
        match outcome {
            Some(Ok(())) if dropped == 0 => tracing::debug!("telemetry flushed"),
            Some(Ok(())) => tracing::warn!(spans_dropped = dropped, "telemetry flushed; some spans were dropped"),
            Some(Err(err)) => {
                tracing::warn!(error = %err, spans_dropped = dropped, "telemetry flush incomplete; buffered spans may be lost")
            }
            None => tracing::warn!(
                deadline_secs = deadline.as_secs(),
                spans_dropped = dropped,
                "telemetry flush did not finish within the deadline (SQUIRREL_TELEMETRY_FLUSH_SECS); buffered spans are lost"
            ),
        }
    }
}

/// Installs the global subscriber (log lines to stderr) and, when an endpoint is configured, the
/// OpenTelemetry providers. Call once per process, before the async runtime starts.
///
/// # Errors
/// A malformed `SQUIRREL_LOG` filter or endpoint URL, or a second call in the same process.
/// An unreachable backend is *not* an error: it is found (and logged) at the first export.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    let log_layer = logs::fmt_layer(config)?;
    let endpoints = Endpoints::resolve(config)?;
    let flush = Duration::from_secs(config.flush_secs.max(1));

    let Some(traces) = endpoints.traces.clone() else {
        tracing_subscriber::registry().with(log_layer).with(logs::global_filter(config, false)?).try_init()?;
        tracing::info!(
            "telemetry export off: set AXIOM_API_TOKEN (Axiom) or OTEL_EXPORTER_OTLP_ENDPOINT (any OTLP backend) to send traces"
        );
        return Ok(TelemetryGuard { providers: None, flush });
    };

    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let resource = export::resource(config);
    let stats = export::ExportStats::new();
    let (tracer_provider, meter, logger) = at_background_priority(|| {
        let tracer_provider = export::tracer_provider(&traces, resource.clone(), stats.clone(), false)?;
        lane::start(&traces, &resource, stats.clone(), lane::LaneSettings::from_env())?;
        let meter = match &endpoints.metrics {
            Some(target) => Some(export::meter_provider(target, resource.clone(), stats.clone())?),
            None => None,
        };
        let logger = match &endpoints.logs {
            Some(target) => Some(export::logger_provider(target, resource.clone(), stats.clone())?),
            None => None,
        };
        anyhow::Ok((tracer_provider, meter, logger))
    })?;
    if let Some(meter) = &meter {
        opentelemetry::global::set_meter_provider(meter.clone());
    }
    let tracer = tracer_provider.tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("server").with_version(env!("CARGO_PKG_VERSION")).build(),
    );
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Nothing reads the OpenTelemetry context implicitly: log lines, links and outgoing calls
        // ask the span for it. Activation would cost a context push and pop on every poll.
        .with_context_activation(false)
        .with_filter(logs::exported_spans());
    let otel_logs = match &logger {
        Some(provider) => Some(logs::otlp_layer(provider, config)?),
        None => None,
    };
    tracing_subscriber::registry()
        .with(log_layer)
        .with(otel_layer)
        .with(otel_logs)
        .with(logs::global_filter(config, true)?)
        .try_init()?;
    metrics::register_spans_dropped(stats.clone());

    tracing::info!(
        traces = %traces.url,
        dataset = %traces.dataset.as_deref().unwrap_or("-"),
        logs = %endpoints.logs.as_ref().map_or("off", |t| t.url.as_str()),
        metrics = %endpoints.metrics.as_ref().map_or("off", |t| t.url.as_str()),
        "telemetry export on"
    );
    Ok(TelemetryGuard { providers: Some(Providers { tracer: tracer_provider, meter, logger, stats }), flush })
}

/// Runs `build`, then gives every thread it started (the lane's, the SDK's batch processors' and
/// periodic reader's, which also send the exports) the lowest CPU priority, nice 19; threads those
/// start later inherit it. Exporting then runs on CPU the requests leave idle instead of taking turns
/// with them: on a busy 2-core machine, exporters at normal priority cost tracking ~7 % more of
/// its throughput (`bench/README.md`). A backlog they can't clear fills the bounded queues, whose
/// overflow is dropped and counted. The building itself keeps normal priority, so a loaded
/// machine does not delay the process's start. Called before the async runtime starts, when no
/// other thread is being started.
fn at_background_priority<T>(build: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let before = own_threads();
    let built = build();
    for thread in own_threads().difference(&before) {
        lower_priority(*thread);
    }
    built
}

/// The process's thread ids (Linux: `/proc/self/task`; empty elsewhere).
fn own_threads() -> std::collections::BTreeSet<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Default::default() };
    tasks.filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Nice 19 for thread `thread` (Linux keeps a nice value per thread). Best effort: where it can't
/// be set, the exporters run at normal priority.
fn lower_priority(thread: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call on one of this process's thread ids; no memory is passed.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 19);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

/// Marks `span` failed the OpenTelemetry way: status ERROR with `message`, and an `exception` event
/// carrying `exception.type` and `exception.message`. No-op when nothing is exported.
pub fn record_error(span: &tracing::Span, error_type: &'static str, message: &str) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.set_status(opentelemetry::trace::Status::error(message.to_string()));
    span.add_event(
        "exception",
        vec![
            opentelemetry::KeyValue::new(names::EXCEPTION_TYPE, error_type),
            opentelemetry::KeyValue::new(names::EXCEPTION_MESSAGE, message.to_string()),
        ],
    );
}

/// Test helpers: a span exporter that keeps what it gets.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SpanData, SpanExporter};

    #[derive(Debug, Clone, Default)]
    pub(crate) struct Collected(pub(crate) Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collected {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("not poisoned").extend(batch);
            Ok(())
        }
    }

    /// A subscriber exporting every span synchronously to the returned collector.
    pub(crate) fn subscriber() -> (impl tracing::Subscriber + Send + Sync, Collected) {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;
        let collected = Collected::default();
        let provider =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test")).with_context_activation(false);
        (tracing_subscriber::registry().with(layer), collected)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::Status;

    use super::*;

    #[test]
    fn record_error_sets_status_error_and_records_an_exception() {
        let (subscriber, collected) = testing::subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("work");
            record_error(&span, "database", "constraint failed");
        });
        let spans = collected.0.lock().unwrap();
        let span = spans.iter().find(|s| s.name == "work").expect("exported");
        assert_eq!(span.status, Status::error("constraint failed"));
        let event = span.events.iter().find(|e| e.name == "exception").expect("exception event");
        let attr = |key: &str| event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
        assert_eq!(attr("exception.message").as_deref(), Some("constraint failed"));
        assert_eq!(attr("exception.type").as_deref(), Some("database"));
    }
}
