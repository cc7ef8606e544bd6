//! `squirrel telemetry-check`: prints the effective export configuration, sends one test span (and
//! one log record and one metric when those are on) through the same exporter the server uses,
//! flushes, and says exactly what happened.
//!
//! It builds its own providers (not the global ones), so what it reports is the outcome of its own
//! test data: the HTTP status the backend answered, or the network error, read from the exporter's
//! HTTP client ([`super::export::ExportStats`]).

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _};

use super::export::{self, Endpoints, ExportStats, Signal, Target};
use super::{TelemetryConfig, names};

/// Runs the check, printing to stdout. `Ok` only if every configured signal was accepted.
///
/// # Errors
/// Export is off, or a signal's test data was refused or never arrived; the message says why.
pub async fn run(config: &TelemetryConfig) -> anyhow::Result<()> {
    let endpoints = Endpoints::resolve(config)?;
    print_config(config, &endpoints);
    let Some(traces) = endpoints.traces.clone() else {
        anyhow::bail!(
            "telemetry export is off: set AXIOM_API_TOKEN (and AXIOM_DATASET) for Axiom, or OTEL_EXPORTER_OTLP_ENDPOINT for another OTLP backend"
        );
    };
    let stats = ExportStats::new();
    let config = config.clone();
    let (endpoints_for_run, stats_for_run) = (endpoints.clone(), stats.clone());
    // The SDK's flush and shutdown block: keep them off the async executor.
    let trace_id = tokio::task::spawn_blocking(move || send_test_data(&config, &endpoints_for_run, &stats_for_run))
        .await
        .context("the test export thread panicked")??;

    let mut failures = Vec::new();
    report(&traces, &stats, &mut failures, Some(&trace_id));
    for target in [&endpoints.logs, &endpoints.metrics].into_iter().flatten() {
        report(target, &stats, &mut failures, None);
    }
    if failures.is_empty() {
        println!("OK: telemetry reaches the backend");
        Ok(())
    } else {
        anyhow::bail!("telemetry check failed: {}", failures.join("; "))
    }
}

fn print_config(config: &TelemetryConfig, endpoints: &Endpoints) {
    println!("Telemetry configuration");
    let line = |name: &str, target: &Option<Target>, hint: &str| match target {
        Some(t) => println!(
            "  {name:<8} {}  (dataset: {})",
            t.url,
            t.dataset.as_deref().unwrap_or("none: no AXIOM_API_TOKEN, no Axiom headers")
        ),
        None => println!("  {name:<8} off{hint}"),
    };
    line("traces", &endpoints.traces, " (set AXIOM_API_TOKEN or OTEL_EXPORTER_OTLP_ENDPOINT)");
    line("logs", &endpoints.logs, " (set AXIOM_LOGS_DATASET to export log lines)");
    line("metrics", &endpoints.metrics, " (set AXIOM_METRICS_DATASET to export metrics)");
    println!("  token    {}", config.masked_token());
    println!("  service  {}", config.service_name);
    let extra_headers = std::env::var("OTEL_EXPORTER_OTLP_HEADERS").ok().filter(|h| !h.trim().is_empty());
    if let Some(headers) = extra_headers {
        // Header values are often secrets: names only.
        let names: Vec<&str> = headers.split(',').filter_map(|kv| kv.split('=').next()).map(str::trim).collect();
        println!("  headers  {} (from OTEL_EXPORTER_OTLP_HEADERS; values not shown)", names.join(", "));
    }
    println!(
        "  export   OTLP/HTTP protobuf, gzip, timeout {} ms per attempt",
        export::export_timeout(Signal::Traces).as_millis()
    );
}

/// Sends the test data and flushes. Blocking. Returns the test span's trace id.
fn send_test_data(
    config: &TelemetryConfig,
    endpoints: &Endpoints,
    stats: &std::sync::Arc<ExportStats>,
) -> anyhow::Result<String> {
    let resource = export::resource(config);
    let traces = endpoints.traces.as_ref().context("traces are configured")?;
    let deadline = Duration::from_secs(config.flush_secs.max(1)) + export::export_timeout(Signal::Traces);

    let provider = export::tracer_provider(traces, resource.clone(), stats.clone(), true)?;
    let tracer = provider.tracer("server");
    let span = tracer
        .span_builder(names::TELEMETRY_CHECK)
        .with_kind(SpanKind::Internal)
        .with_attributes([KeyValue::new("check.source", "squirrel telemetry-check")])
        .start(&tracer);
    let trace_id = span.span_context().trace_id().to_string();
    let context = opentelemetry::Context::current_with_span(span);
    context.span().end();
    let _ = provider.force_flush();
    let _ = provider.shutdown_with_timeout(deadline);

    if let Some(target) = &endpoints.logs {
        let logger_provider = export::logger_provider(target, resource.clone(), stats.clone())?;
        let logger = logger_provider.logger("server");
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_body("squirrel telemetry-check test log record".into());
        logger.emit(record);
        let _ = logger_provider.shutdown_with_timeout(deadline);
    }
    if let Some(target) = &endpoints.metrics {
        let meter_provider = export::meter_provider(target, resource, stats.clone())?;
        meter_provider.meter("server").u64_counter("squirrel.telemetry_check").build().add(1, &[]);
        let _ = meter_provider.shutdown_with_timeout(deadline);
    }
    Ok(trace_id)
}

fn report(target: &Target, stats: &ExportStats, failures: &mut Vec<String>, trace_id: Option<&str>) {
    let signal = target.signal.as_str();
    if let Some(failure) = stats.last_failure(target.signal) {
        println!("FAILED   {signal}: {failure}");
        println!("         → {}", failure.advice());
        failures.push(format!("{signal}: {failure} ({})", failure.advice()));
    } else if stats.delivered(target.signal) {
        match trace_id {
            Some(id) => {
                println!("ok       {signal}: test span accepted (span `{}`, trace_id {id})", names::TELEMETRY_CHECK)
            }
            None => println!("ok       {signal}: test data accepted"),
        }
    } else {
        println!("FAILED   {signal}: no answer before the deadline (SQUIRREL_TELEMETRY_FLUSH_SECS + export timeout)");
        failures.push(format!("{signal}: no answer before the deadline"));
    }
}
