//! Log lines: stderr in text or JSON, each line inside a span carrying its `trace_id` and `span_id`,
//! and (optionally) the same events as OTLP log records.
//!
//! The stderr layer is filtered to events only, so it never formats span fields: spans are paid
//! for by the OpenTelemetry layer alone, and not at all when nothing is exported. The ids are read
//! from the current span when a line is written.

use std::fmt;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::{LogFormat, TelemetryConfig};

/// Crates whose own events must not be logged at `info` (the exporter's per-attempt warnings would
/// defeat "at most once a minute") nor exported as logs (a failing export would log about itself).
/// `SQUIRREL_LOG=…,opentelemetry=debug` shows them again on stderr.
const INTERNAL_TARGETS: [&str; 6] = ["opentelemetry", "reqwest", "hyper", "h2", "rustls", "tower"];

fn is_internal(target: &str) -> bool {
    INTERNAL_TARGETS.iter().any(|t| target.starts_with(t))
}

fn log_filter(config: &TelemetryConfig) -> anyhow::Result<Targets> {
    config
        .log
        .parse::<Targets>()
        .map_err(|err| anyhow::anyhow!("SQUIRREL_LOG must be a log filter like `info` or `info,squirrel=debug`: {err}"))
}

/// The stderr layer: events only, `SQUIRREL_LOG` levels, `SQUIRREL_LOG_FORMAT` shape.
pub(super) fn fmt_layer<S>(config: &TelemetryConfig) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let show_internal = config.log.contains("opentelemetry");
    let filter = log_filter(config)?
        .and(filter_fn(move |meta| meta.is_event() && (show_internal || !meta.target().starts_with("opentelemetry"))));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    Ok(match config.log_format {
        // Colours only for a person at a terminal; log files and pipes get plain text.
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .event_format(TextLine)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => layer
            .event_format(JsonLine(
                tracing_subscriber::fmt::format().json().with_current_span(false).with_span_list(false),
            ))
            .with_filter(filter)
            .boxed(),
    })
}

/// The process-wide filter, outermost so it is asked first: what no layer wants is rejected before
/// any per-layer filter runs. Without it, a `tracing::enabled!` probe that every per-layer filter
/// refuses (sqlx asks one for each statement) leaves per-layer state behind, and the next event on
/// that thread is silently lost (seen: `squirrel serving` missing on PostgreSQL).
pub(super) fn global_filter(config: &TelemetryConfig, exporting: bool) -> anyhow::Result<Targets> {
    let logs = log_filter(config)?;
    Ok(if exporting && !logs.would_enable("squirrel", &Level::INFO) {
        logs.with_target("squirrel", LevelFilter::INFO)
    } else {
        logs
    })
}

/// Which spans (and span events) the OpenTelemetry layer sees: ours, at `info` and above. Other
/// crates' events (sqlx statement logs, hyper) would only add noise and cost to every span.
pub(super) fn exported_spans() -> Targets {
    Targets::new().with_target("squirrel", LevelFilter::INFO)
}

/// The trace and span id of the current span, if it is part of an exported trace.
fn current_ids() -> Option<(TraceId, SpanId)> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| (span_context.trace_id(), span_context.span_id()))
}

/// `2026-11-29T19:21:26.123456Z  INFO squirrel::cli: message key=value trace_id=… span_id=…`
struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "{}  ", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))?;
        let level = *meta.level();
        if writer.has_ansi_escapes() {
            let colour = match level {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                Level::DEBUG => "34",
                Level::TRACE => "35",
            };
            write!(writer, "\x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(writer, "{level:>5} ")?;
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        if let Some((trace_id, span_id)) = current_ids() {
            write!(writer, " trace_id={trace_id} span_id={span_id}")?;
        }
        writeln!(writer)
    }
}

/// tracing-subscriber's JSON line with `trace_id` and `span_id` added at the top level.
struct JsonLine<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let object = line.trim_end();
        match object.strip_suffix('}') {
            Some(open) => writeln!(writer, "{open},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"),
            None => writeln!(writer, "{object}"),
        }
    }
}

/// Forwards events to the OTLP logs pipeline as log records (body = message, fields = attributes,
/// trace context = the current span's).
pub(super) struct OtlpLogs {
    logger: SdkLogger,
}

pub(super) fn otlp_layer<S>(
    provider: &SdkLoggerProvider,
    config: &TelemetryConfig,
) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter = log_filter(config)?.and(filter_fn(|meta| meta.is_event() && !is_internal(meta.target())));
    Ok(OtlpLogs { logger: provider.logger("server") }.with_filter(filter).boxed())
}

impl<S: Subscriber> Layer<S> for OtlpLogs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut record = self.logger.create_log_record();
        let now = std::time::SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        record.set_target(meta.target());
        let (severity, text) = match *meta.level() {
            Level::ERROR => (Severity::Error, "ERROR"),
            Level::WARN => (Severity::Warn, "WARN"),
            Level::INFO => (Severity::Info, "INFO"),
            Level::DEBUG => (Severity::Debug, "DEBUG"),
            Level::TRACE => (Severity::Trace, "TRACE"),
        };
        record.set_severity_number(severity);
        record.set_severity_text(text);
        let mut fields = RecordFields { record: &mut record, message: None };
        event.record(&mut fields);
        if let Some(message) = fields.message.take() {
            record.set_body(AnyValue::from(message));
        }
        if let Some((trace_id, span_id)) = current_ids() {
            record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
        }
        self.logger.emit(record);
    }
}

struct RecordFields<'a, R> {
    record: &'a mut R,
    message: Option<String>,
}

impl<R: opentelemetry::logs::LogRecord> Visit for RecordFields<'_, R> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.record.add_attribute(field.name(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.record.add_attribute(field.name(), format!("{value:?}"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record.add_attribute(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record.add_attribute(field.name(), i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record.add_attribute(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record.add_attribute(field.name(), value);
    }
}
