//! Log lines: stderr in text or JSON, each line inside a span carrying its `trace_id` and `span_id`,
//! and (optionally) the same events as OTLP log records.
//!
//! The stderr layer is filtered to events only, so it never formats span fields: spans are paid
//! for by the OpenTelemetry layer alone, and not at all when nothing is exported. The ids are read
//! from the current span when a line is written.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
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
    // Colours only for a person at a terminal; log files and pipes get plain text.
    fmt_layer_to(config, std::io::stderr, std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

fn fmt_layer_to<S, W>(
    config: &TelemetryConfig,
    writer: W,
    ansi: bool,
) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let show_internal = config.log.contains("opentelemetry");
    let filter = log_filter(config)?
        .and(filter_fn(move |meta| meta.is_event() && (show_internal || !meta.target().starts_with("opentelemetry"))));
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    let slot = DispatchSlot::default();
    // Filtered to nothing: a layer without a filter counts as interested in every span, and then
    // every span is built in the registry even when nothing exports or prints it.
    let capture = CaptureDispatch(slot.clone()).with_filter(filter_fn(|_| false));
    Ok(match config.log_format {
        LogFormat::Text => {
            capture.and_then(layer.with_ansi(ansi).event_format(TextLine(slot)).with_filter(filter)).boxed()
        }
        LogFormat::Json => capture
            .and_then(
                layer
                    .event_format(JsonLine(
                        tracing_subscriber::fmt::format().json().with_current_span(false).with_span_list(false),
                        slot,
                    ))
                    .with_filter(filter),
            )
            .boxed(),
    })
}

/// The process-wide filter, outermost so it is asked first: what no layer wants is rejected before
/// any per-layer filter runs. Without it, a `tracing::enabled!` probe that every per-layer filter
/// refuses (sqlx asks one for each statement) leaves per-layer state behind, and the next event on
/// that thread is silently lost (seen: `squirrel serving` missing on PostgreSQL).
///
/// Exporting, it lets `squirrel` spans through for the OpenTelemetry layer. Not exporting, it lets
/// events only: a global filter that accepts a span makes the registry build it even though no
/// layer reads it, which cost every request two spans for nothing. Decided once per callsite.
pub(super) fn global_filter<S: Subscriber>(
    config: &TelemetryConfig,
    exporting: bool,
) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>> {
    let logs = log_filter(config)?;
    Ok(if exporting {
        let targets = if logs.would_enable("squirrel", &Level::INFO) {
            logs
        } else {
            logs.with_target("squirrel", LevelFilter::INFO)
        };
        Layer::<S>::boxed(targets)
    } else {
        let hint = Layer::<S>::max_level_hint(&logs);
        let events = tracing_subscriber::filter::FilterFn::new(move |meta: &tracing::Metadata<'_>| {
            meta.is_event() && logs.would_enable(meta.target(), meta.level())
        });
        match hint {
            Some(hint) => Layer::<S>::boxed(events.with_max_level_hint(hint)),
            None => Layer::<S>::boxed(events),
        }
    })
}

/// Which spans (and span events) the OpenTelemetry layer sees: ours, at `info` and above. Other
/// crates' events (sqlx statement logs, hyper) would only add noise and cost to every span.
pub(super) fn exported_spans() -> Targets {
    Targets::new().with_target("squirrel", LevelFilter::INFO)
}

/// Where the formatters find the subscriber, to ask the OpenTelemetry layer for a span's ids.
/// `Span::current()` can't be used there: inside a subscriber callback the default dispatcher is
/// `none` (tracing's re-entrancy guard), so it always returned no span.
#[derive(Clone, Default)]
struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// Fills a [`DispatchSlot`] when the subscriber is registered.
struct CaptureDispatch(DispatchSlot);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.0.set(subscriber.downgrade());
    }
}

/// The trace and span id of `current` (the subscriber's current span, whatever each layer's
/// filter), if it is part of an exported trace.
fn current_ids(slot: &DispatchSlot, current: Option<&tracing::Id>) -> Option<(TraceId, SpanId)> {
    let id = current?;
    let dispatch = slot.0.get()?.upgrade()?;
    let context = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| (span_context.trace_id(), span_context.span_id()))
}

/// `2026-11-29T19:21:26.123456Z  INFO squirrel::cli: message key=value trace_id=… span_id=…`
struct TextLine(DispatchSlot);

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
        if let Some((trace_id, span_id)) = current_ids(&self.0, ctx.current_span().id()) {
            write!(writer, " trace_id={trace_id} span_id={span_id}")?;
        }
        writeln!(writer)
    }
}

/// tracing-subscriber's JSON line with `trace_id` and `span_id` added at the top level.
struct JsonLine<F>(F, DispatchSlot);

impl<S, N, F> FormatEvent<S, N> for JsonLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids(&self.1, ctx.current_span().id()) else {
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
    dispatch: DispatchSlot,
}

pub(super) fn otlp_layer<S>(
    provider: &SdkLoggerProvider,
    config: &TelemetryConfig,
) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter = log_filter(config)?.and(filter_fn(|meta| meta.is_event() && !is_internal(meta.target())));
    Ok(OtlpLogs { logger: provider.logger("server"), dispatch: DispatchSlot::default() }.with_filter(filter).boxed())
}

impl<S: Subscriber> Layer<S> for OtlpLogs {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.0.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
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
        if let Some((trace_id, span_id)) = current_ids(&self.dispatch, ctx.current_span().id()) {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs `inside` within a span and `outside` after it; returns the output and the span's ids.
    fn log_in_a_span(format: LogFormat) -> (String, String, String) {
        let config = TelemetryConfig { log_format: format, ..TelemetryConfig::local_only() };
        let lines = Lines::default();
        let sink = lines.clone();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(fmt_layer_to(&config, move || sink.clone(), false).unwrap())
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("test"))
                    .with_context_activation(false)
                    .with_filter(exported_spans()),
            )
            .with(global_filter(&config, true).unwrap());
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let span = tracing::info_span!("work");
            span.in_scope(|| tracing::info!(answer = 42, "inside"));
            tracing::info!("outside");
            let context = span.context();
            let ids = context.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (out, trace_id, span_id)
    }

    #[test]
    fn a_text_line_inside_a_span_ends_with_its_trace_and_span_ids() {
        let (out, trace_id, span_id) = log_in_a_span(LogFormat::Text);
        let inside = out.lines().find(|l| l.contains("inside")).expect("inside line");
        assert!(inside.ends_with(&format!("answer=42 trace_id={trace_id} span_id={span_id}")), "{inside}");
        assert!(inside.contains(" INFO squirrel::telemetry::logs::tests: inside"), "{inside}");
        let outside = out.lines().find(|l| l.contains("outside")).expect("outside line");
        assert!(!outside.contains("trace_id"), "{outside}");
        assert_eq!(trace_id.len(), 32);
    }

    #[test]
    fn a_json_line_inside_a_span_has_trace_and_span_id_keys() {
        let (out, trace_id, span_id) = log_in_a_span(LogFormat::Json);
        let inside: serde_json::Value =
            serde_json::from_str(out.lines().find(|l| l.contains("inside")).unwrap()).expect("valid JSON");
        assert_eq!(inside["trace_id"], trace_id.as_str());
        assert_eq!(inside["span_id"], span_id.as_str());
        assert_eq!(inside["fields"]["answer"], 42);
        let outside: serde_json::Value =
            serde_json::from_str(out.lines().find(|l| l.contains("outside")).unwrap()).expect("valid JSON");
        assert!(outside.get("trace_id").is_none());
    }

    #[test]
    fn with_export_off_no_span_is_built_but_events_are_logged() {
        let config = TelemetryConfig::local_only();
        let lines = Lines::default();
        let sink = lines.clone();
        // As `telemetry::init` builds it without an endpoint.
        let subscriber = tracing_subscriber::registry()
            .with(fmt_layer_to(&config, move || sink.clone(), false).unwrap())
            .with(global_filter(&config, false).unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("track_pageview", pageview.path = "/");
            assert!(span.is_disabled(), "a span nobody exports must cost nothing");
            span.in_scope(|| tracing::info!("inside"));
        });
        let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("inside"), "{out}");
    }

    #[test]
    fn log_filter_errors_name_the_variable() {
        let config = TelemetryConfig { log: "info,=bogus=".into(), ..TelemetryConfig::local_only() };
        let err = log_filter(&config).unwrap_err().to_string();
        assert!(err.starts_with("SQUIRREL_LOG must be"), "{err}");
    }
}
