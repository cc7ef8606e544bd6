//! Where telemetry goes and how: endpoint resolution, the OTLP/HTTP exporters, and the bookkeeping
//! that keeps a dead, slow or refusing backend from hurting the app.
//!
//! Invariants:
//! - A request thread never waits on the network: a finished span is handed to a bounded queue or,
//!   when [`BoundedProcessor`] finds it full, dropped and counted.
//! - Every export failure is remembered exactly ([`ExportFailure`], read by `telemetry-check`) and
//!   logged at most once a minute per signal.
//! - Secrets (the token, any header value) are sent only as HTTP headers, never logged or exported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};

use super::TelemetryConfig;

/// Failures are logged at most this often per signal.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// The SDK's default span queue (`OTEL_BSP_MAX_QUEUE_SIZE`).
const DEFAULT_QUEUE: usize = 2048;
/// The SDK's default export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Links one span may carry unless `OTEL_SPAN_LINK_COUNT_LIMIT` says otherwise: the largest ingest
/// batch (`SQUIRREL_INGEST_BATCH` ≤ 10 000), so the batch INSERT links to every request it stored.
const DEFAULT_LINK_LIMIT: u32 = 10_000;

/// One OpenTelemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    fn env_part(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }
}

/// Where one signal is sent.
#[derive(Debug, Clone)]
pub struct Target {
    pub signal: Signal,
    /// The full URL, e.g. `https://api.axiom.co/v1/traces`.
    pub url: String,
    /// The Axiom dataset, when a token is set.
    pub dataset: Option<String>,
    /// Headers set here (authorization, dataset). `OTEL_EXPORTER_OTLP_*HEADERS` are added by the SDK.
    headers: HashMap<String, String>,
}

impl Target {
    /// Every header an export sends: ours (authorization, dataset), then
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS` or else `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`,
    /// percent-encoded values), as the SDK adds them to its own exports.
    pub(crate) fn all_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(list) = otlp_env(self.signal, "HEADERS") {
            for pair in list.split(',') {
                if let Some((key, value)) = pair.split_once('=') {
                    let value = percent_decode(value.trim());
                    headers.push((key.trim().to_string(), value));
                }
            }
        }
        headers
    }
}

fn percent_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The resolved destinations. `traces: None` means export is off (and so are the others).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub traces: Option<Target>,
    pub metrics: Option<Target>,
    pub logs: Option<Target>,
}

impl Endpoints {
    /// Resolves the destinations from the settings, most specific first:
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` (as given) > `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/<signal>`
    /// > `AXIOM_DOMAIN` + `/v1/<signal>` when `AXIOM_API_TOKEN` is set.
    ///
    /// # Errors
    /// A URL that does not parse, naming the variable it came from.
    pub fn resolve(config: &TelemetryConfig) -> anyhow::Result<Endpoints> {
        let token = config.token();
        let base = match non_empty(&config.otlp_endpoint) {
            Some(url) => Some((url.trim_end_matches('/').to_string(), "OTEL_EXPORTER_OTLP_ENDPOINT")),
            None if token.is_some() => Some((axiom_base(&config.axiom_domain), "AXIOM_DOMAIN")),
            None => None,
        };
        let target = |signal: Signal, explicit: &Option<String>, dataset: Option<&str>, wanted: bool| {
            let (url, source) = match non_empty(explicit) {
                Some(url) => (url.to_string(), signal_endpoint_var(signal)),
                None if wanted => match &base {
                    Some((base, source)) => (format!("{base}/v1/{}", signal.as_str()), (*source).to_string()),
                    None => return Ok(None),
                },
                None => return Ok(None),
            };
            check_url(&url).with_context(|| {
                format!("{source} must be a host like api.axiom.co or a URL like http://127.0.0.1:4318, got '{url}'")
            })?;
            let mut headers = HashMap::new();
            let mut dataset_sent = None;
            if let Some(token) = token {
                headers.insert("Authorization".to_string(), format!("Bearer {token}"));
                if let Some(dataset) = dataset {
                    let header = if signal == Signal::Metrics { "x-axiom-metrics-dataset" } else { "X-Axiom-Dataset" };
                    headers.insert(header.to_string(), dataset.to_string());
                    dataset_sent = Some(dataset.to_string());
                }
            }
            anyhow::Ok(Some(Target { signal, url, dataset: dataset_sent, headers }))
        };
        let traces = target(Signal::Traces, &config.otlp_traces_endpoint, Some(config.axiom_dataset.trim()), true)?;
        let logs_dataset = non_empty(&config.axiom_logs_dataset);
        let metrics_dataset = non_empty(&config.axiom_metrics_dataset);
        let (logs, metrics) = if traces.is_some() {
            (
                target(Signal::Logs, &config.otlp_logs_endpoint, logs_dataset, logs_dataset.is_some())?,
                target(Signal::Metrics, &config.otlp_metrics_endpoint, metrics_dataset, metrics_dataset.is_some())?,
            )
        } else {
            (None, None)
        };
        Ok(Endpoints { traces, metrics, logs })
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn signal_endpoint_var(signal: Signal) -> String {
    format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_part())
}

/// `api.axiom.co` → `https://api.axiom.co`; a value with a scheme is already a base URL.
fn axiom_base(domain: &str) -> String {
    let domain = domain.trim().trim_end_matches('/');
    if domain.contains("://") { domain.to_string() } else { format!("https://{domain}") }
}

fn check_url(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url)?;
    anyhow::ensure!(matches!(parsed.scheme(), "http" | "https"), "the scheme must be http or https");
    anyhow::ensure!(parsed.host_str().is_some_and(|h| !h.is_empty()), "the URL has no host");
    Ok(())
}

/// `OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>`, else `OTEL_EXPORTER_OTLP_<NAME>`.
fn otlp_env(signal: Signal, name: &str) -> Option<String> {
    std::env::var(format!("OTEL_EXPORTER_OTLP_{}_{name}", signal.env_part()))
        .ok()
        .or_else(|| std::env::var(format!("OTEL_EXPORTER_OTLP_{name}")).ok())
        .filter(|v| !v.trim().is_empty())
}

/// The per-export timeout, as the SDK reads it (milliseconds), default 10 s.
pub fn export_timeout(signal: Signal) -> Duration {
    otlp_env(signal, "TIMEOUT")
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The resource every signal carries: `service.name` (`OTEL_SERVICE_NAME`, default `server`; a
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES` is kept when `OTEL_SERVICE_NAME` is not set),
/// `service.version`, `host.name`, the SDK's `telemetry.sdk.*`, and `OTEL_RESOURCE_ATTRIBUTES`.
pub(crate) fn resource(config: &TelemetryConfig) -> Resource {
    use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector, TelemetryResourceDetector};
    let from_env = EnvResourceDetector::new().detect();
    let service_key = opentelemetry::Key::from_static_str(opentelemetry_semantic_conventions::resource::SERVICE_NAME);
    let explicit_name = std::env::var_os("OTEL_SERVICE_NAME").is_some() || config.service_name != "server";
    let service_name = match from_env.get(&service_key) {
        Some(name) if !explicit_name => name.to_string(),
        _ => config.service_name.clone(),
    };
    let mut own =
        vec![KeyValue::new(opentelemetry_semantic_conventions::resource::SERVICE_VERSION, env!("CARGO_PKG_VERSION"))];
    if let Some(host) = host_name() {
        own.push(KeyValue::new(opentelemetry_semantic_conventions::resource::HOST_NAME, host));
    }
    Resource::builder_empty()
        .with_attributes(own)
        .with_detectors(&[Box::new(TelemetryResourceDetector), Box::new(EnvResourceDetector::new())])
        .with_service_name(service_name)
        .with_schema_url([], opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Why an export did not arrive: what `telemetry-check` prints and the rate-limited log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportFailure {
    /// The backend answered with a non-2xx status.
    Status { code: u16, body: String },
    /// No HTTP answer at all.
    Network { kind: NetworkKind, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKind {
    Refused,
    Dns,
    Tls,
    Timeout,
    Other,
}

impl ExportFailure {
    fn from_error(err: &(dyn std::error::Error + 'static)) -> ExportFailure {
        let mut detail = err.to_string();
        let mut kind = NetworkKind::Other;
        let mut source = err.source();
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::ConnectionRefused
            {
                kind = NetworkKind::Refused;
            }
            source = cause.source();
        }
        if let Some(reqwest) = err.downcast_ref::<reqwest::Error>()
            && reqwest.is_timeout()
        {
            kind = NetworkKind::Timeout;
        }
        let lower = detail.to_ascii_lowercase();
        if kind == NetworkKind::Other {
            kind = if lower.contains("dns error") || lower.contains("failed to lookup address") {
                NetworkKind::Dns
            } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
                NetworkKind::Tls
            } else if lower.contains("connection refused") {
                NetworkKind::Refused
            } else if lower.contains("timed out") {
                NetworkKind::Timeout
            } else {
                NetworkKind::Other
            };
        }
        ExportFailure::Network { kind, detail }
    }

    /// What the failure most likely means, and what to do.
    pub fn advice(&self) -> &'static str {
        match self {
            ExportFailure::Status { code: 401 | 403, .. } => {
                "the token is wrong or lacks ingest rights: check AXIOM_API_TOKEN (an API token with ingest permission for the dataset)"
            }
            ExportFailure::Status { code: 404, .. } => {
                "the dataset (or endpoint path) does not exist: check AXIOM_DATASET / AXIOM_LOGS_DATASET / AXIOM_METRICS_DATASET, or the endpoint URL"
            }
            ExportFailure::Status { code: 400 | 413 | 415, .. } => "the backend refused the payload",
            ExportFailure::Status { code: 429, .. } => "the backend is rate limiting: too much data or a plan limit",
            ExportFailure::Status { .. } => "the backend failed; try again later",
            ExportFailure::Network { kind: NetworkKind::Refused, .. } => {
                "network: connection refused — nothing listens at that address (check AXIOM_DOMAIN / OTEL_EXPORTER_OTLP_ENDPOINT)"
            }
            ExportFailure::Network { kind: NetworkKind::Dns, .. } => {
                "network: the host name does not resolve (check AXIOM_DOMAIN, DNS)"
            }
            ExportFailure::Network { kind: NetworkKind::Tls, .. } => {
                "network: TLS failed (system CA certificates missing — install ca-certificates — or a proxy intercepting HTTPS)"
            }
            ExportFailure::Network { kind: NetworkKind::Timeout, .. } => {
                "network: the backend did not answer within the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT)"
            }
            ExportFailure::Network { .. } => "network: the request could not be sent",
        }
    }
}

impl std::fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportFailure::Status { code, body } if body.is_empty() => write!(f, "HTTP {code}"),
            ExportFailure::Status { code, body } => write!(f, "HTTP {code}: {body}"),
            ExportFailure::Network { detail, .. } => f.write_str(detail),
        }
    }
}

/// Counters shared by the exporters, the span queue guard, the metrics and the shutdown report.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Spans handed to the batch processor and not yet through an export attempt. Always ≤ the
    /// queue size plus one batch.
    queued: AtomicUsize,
    dropped_queue_full: AtomicU64,
    dropped_export_failed: AtomicU64,
    exported: AtomicU64,
    /// The last failure per signal; `None` after a success.
    last_failure: [Mutex<Option<ExportFailure>>; 3],
    /// When a failure of that signal was last logged.
    last_report: [Mutex<Option<Instant>>; 3],
    /// Whether a failure was logged since the last success (so recovery is logged once).
    reported: [AtomicBool; 3],
    /// Whether the backend ever accepted data of that signal.
    delivered: [AtomicBool; 3],
    queue_full_report: Mutex<Option<Instant>>,
}

impl ExportStats {
    pub fn new() -> Arc<ExportStats> {
        Arc::new(ExportStats::default())
    }

    /// Spans dropped because the queue was full.
    pub fn dropped_queue_full(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed)
    }

    /// Spans lost in failed exports.
    pub fn dropped_export_failed(&self) -> u64 {
        self.dropped_export_failed.load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_queue_full() + self.dropped_export_failed()
    }

    /// Spans the backend accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// The last failure of `signal`, cleared by the next success.
    pub fn last_failure(&self, signal: Signal) -> Option<ExportFailure> {
        self.last_failure[signal.index()].lock().ok()?.clone()
    }

    /// Whether the backend accepted at least one export of `signal`.
    pub fn delivered(&self, signal: Signal) -> bool {
        self.delivered[signal.index()].load(Ordering::Relaxed)
    }

    fn succeeded(&self, signal: Signal, url: &str) {
        self.delivered[signal.index()].store(true, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure[signal.index()].lock() {
            *last = None;
        }
        if self.reported[signal.index()].swap(false, Ordering::Relaxed) {
            tracing::info!(signal = signal.as_str(), endpoint = url, "telemetry export works again");
        }
    }

    fn failed(&self, signal: Signal, url: &str, failure: ExportFailure) {
        let advice = failure.advice();
        let message = failure.to_string();
        if let Ok(mut last) = self.last_failure[signal.index()].lock() {
            *last = Some(failure);
        }
        if self.due(&self.last_report[signal.index()]) {
            self.reported[signal.index()].store(true, Ordering::Relaxed);
            tracing::warn!(
                signal = signal.as_str(),
                endpoint = url,
                error = %message,
                spans_dropped = self.dropped_total(),
                "telemetry export failed: {advice}; the app keeps running, data is dropped (next report in a minute at most)"
            );
        }
    }

    pub(crate) fn lane_exported(&self, spans: usize) {
        self.exported.fetch_add(spans as u64, Ordering::Relaxed);
    }

    pub(crate) fn lane_failed(&self, spans: usize) {
        self.dropped_export_failed.fetch_add(spans as u64, Ordering::Relaxed);
    }

    /// A span queue (the SDK's or the fast lane's) was full: one span dropped.
    pub(crate) fn queue_full(&self, limit: usize) {
        let total = self.dropped_queue_full.fetch_add(1, Ordering::Relaxed) + 1;
        if self.due(&self.queue_full_report) {
            tracing::warn!(
                queue = limit,
                spans_dropped = total,
                "telemetry span queue full (OTEL_BSP_MAX_QUEUE_SIZE): the backend is slower than the traffic, spans are dropped"
            );
        }
    }

    /// True at most once per [`REPORT_EVERY`] for this slot.
    fn due(&self, slot: &Mutex<Option<Instant>>) -> bool {
        let Ok(mut last) = slot.lock() else { return false };
        match *last {
            Some(at) if at.elapsed() < REPORT_EVERY => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

/// The exporters' HTTP client, recording each outcome. The SDK and the lane export from threads of
/// their own, outside any Tokio runtime, so the client is reqwest's async one on a current-thread
/// runtime that the exporting thread drives itself: a send costs no hand-over to another thread and
/// back. reqwest's blocking client does just that with a runtime thread of its own, two thread
/// wake-ups per export; on loopback it measured ~70–100 µs of CPU per 45 KB export against ~40 µs
/// this way (`bench/README.md`).
#[derive(Debug, Clone)]
pub(crate) struct ObservedClient {
    inner: reqwest::Client,
    runtime: Arc<SendRuntime>,
    signal: Signal,
    url: String,
    stats: Arc<ExportStats>,
    /// Gzip bodies here, at the fast level: the exporter's own gzip (default level) cost ~35 µs of
    /// CPU per tracked hit in the ingest benchmark, the fast level a fraction of it.
    gzip: bool,
}

/// The current-thread runtime an [`ObservedClient`] sends on. Dropped without waiting, so dropping
/// a client inside an async context (a provider shut down from `main`) cannot panic.
#[derive(Debug)]
struct SendRuntime(Option<tokio::runtime::Runtime>);

impl SendRuntime {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        // `None` only inside `drop`, when no client is left to send.
        self.0.as_ref().expect("the runtime is taken only on drop").block_on(future)
    }
}

impl Drop for SendRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl ObservedClient {
    /// # Errors
    /// The TLS backend could not load (no system CA store at all).
    pub(crate) fn new(target: &Target, stats: Arc<ExportStats>) -> anyhow::Result<ObservedClient> {
        let timeout = export_timeout(target.signal);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the OTLP HTTP client's runtime")?;
        let inner =
            reqwest::Client::builder().timeout(timeout).build().context("building the OTLP HTTP client (TLS)")?;
        let gzip = compression(target.signal).is_none();
        Ok(ObservedClient {
            inner,
            runtime: Arc::new(SendRuntime(Some(runtime))),
            signal: target.signal,
            url: target.url.clone(),
            stats,
            gzip,
        })
    }

    pub(crate) fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // The fast lane gzips its own bodies as a stream and says so.
        let request = if self.gzip && !request.headers().contains_key("content-encoding") {
            gzip_fast(request)?
        } else {
            request
        };
        let request: reqwest::Request = request.try_into()?;
        let sent = self.runtime.block_on(async {
            // Nothing drives the runtime between sends, so a kept-alive connection that the
            // receiver closed meanwhile looks open until its task runs: yield once first, which
            // polls the I/O driver and lets that task see the close and leave the pool.
            tokio::task::yield_now().await;
            let response = self.inner.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        match sent {
            Ok((status, headers, body)) => {
                if status.is_success() {
                    self.stats.succeeded(self.signal, &self.url);
                } else {
                    let text = String::from_utf8_lossy(&body);
                    let text: String = text.trim().chars().take(300).collect();
                    self.stats.failed(
                        self.signal,
                        &self.url,
                        ExportFailure::Status { code: status.as_u16(), body: text },
                    );
                }
                let mut answer = Response::new(body);
                *answer.status_mut() = status;
                *answer.headers_mut() = headers;
                Ok(answer)
            }
            Err(err) => {
                self.stats.failed(self.signal, &self.url, ExportFailure::from_error(&err));
                Err(Box::new(err))
            }
        }
    }
}

fn gzip_fast(request: Request<Bytes>) -> Result<Request<Bytes>, HttpError> {
    use std::io::Write;
    let (mut parts, body) = request.into_parts();
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(&body)?;
    let compressed = encoder.finish()?;
    parts.headers.insert("content-encoding", reqwest::header::HeaderValue::from_static("gzip"));
    Ok(Request::from_parts(parts, Bytes::from(compressed)))
}

// `HttpClient` is an `async_trait`; this is its expansion, so we need no macro crate for one impl.
impl HttpClient for ObservedClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move { self.send(request) })
    }
}

/// Counts what each export did with its batch, and lets [`BoundedProcessor`] know room was made.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.stats.queued.fetch_sub(count.min(self.stats.queued.load(Ordering::Relaxed)), Ordering::Relaxed);
        match &result {
            Ok(()) => self.stats.exported.fetch_add(count as u64, Ordering::Relaxed),
            Err(_) => self.stats.dropped_export_failed.fetch_add(count as u64, Ordering::Relaxed),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The batch processor behind a counter of its own: the SDK drops silently when its queue is full,
/// this drops first, counts, and reports (rate-limited). `on_end` never blocks.
#[derive(Debug)]
struct BoundedProcessor {
    inner: BatchSpanProcessor,
    limit: usize,
    stats: Arc<ExportStats>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.stats.queued.fetch_add(1, Ordering::Relaxed) >= self.limit {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.queue_full(self.limit);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Whether the fast lane gzips its exports: yes unless `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` is
/// set to something else than `gzip` (`none`: sent as is).
pub(crate) fn lane_gzip() -> bool {
    compression(Signal::Traces).is_none_or(|c| c.trim().eq_ignore_ascii_case("gzip"))
}

/// `None` unless `OTEL_EXPORTER_OTLP_[<SIGNAL>_]COMPRESSION` is set, in which case the SDK applies it
/// itself; otherwise [`ObservedClient`] gzips.
fn compression(signal: Signal) -> Option<String> {
    otlp_env(signal, "COMPRESSION")
}

/// The tracer provider: OTLP/HTTP protobuf exporter → counting → batch processor → bounded queue.
/// The sampler is the SDK's, so `OTEL_TRACES_SAMPLER(_ARG)` apply (default: parent-based always-on),
/// unless `sample_all` (the check's test span must be sent whatever the sampling).
pub(crate) fn tracer_provider(
    target: &Target,
    resource: Resource,
    stats: Arc<ExportStats>,
    sample_all: bool,
) -> anyhow::Result<SdkTracerProvider> {
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(target.url.clone())
        .with_timeout(export_timeout(Signal::Traces))
        .with_headers(target.headers.clone())
        .with_http_client(ObservedClient::new(target, stats.clone())?);
    let exporter = builder.build().context("building the OTLP trace exporter")?;
    let queue = span_queue_size();
    // `BatchConfigBuilder::default()` reads OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
    let batch = BatchConfigBuilder::default().with_max_queue_size(queue).build();
    let processor = BatchSpanProcessor::builder(CountingExporter { inner: exporter, stats: stats.clone() })
        .with_batch_config(batch)
        .build();
    let mut provider = SdkTracerProvider::builder()
        .with_span_processor(BoundedProcessor { inner: processor, limit: queue, stats })
        .with_resource(resource);
    if std::env::var_os("OTEL_SPAN_LINK_COUNT_LIMIT").is_none() {
        provider = provider.with_max_links_per_span(DEFAULT_LINK_LIMIT);
    }
    if sample_all {
        provider = provider.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn);
    }
    Ok(provider.build())
}

/// `OTEL_BSP_MAX_QUEUE_SIZE`, default 2048: the bound of each span queue (the SDK's, the lane's).
pub(crate) fn span_queue_size() -> usize {
    std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_QUEUE)
}

/// The meter provider: a periodic reader (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s) exporting
/// OTLP/HTTP protobuf. Cumulative temporality unless
/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`.
pub(crate) fn meter_provider(
    target: &Target,
    resource: Resource,
    stats: Arc<ExportStats>,
) -> anyhow::Result<SdkMeterProvider> {
    let temporality = match std::env::var("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
        Ok(v) if v.trim().eq_ignore_ascii_case("delta") => Temporality::Delta,
        _ => Temporality::Cumulative,
    };
    let builder = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(target.url.clone())
        .with_timeout(export_timeout(Signal::Metrics))
        .with_headers(target.headers.clone())
        .with_http_client(ObservedClient::new(target, stats)?)
        .with_temporality(temporality);
    let exporter = builder.build().context("building the OTLP metric exporter")?;
    Ok(SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).build())
        .with_resource(resource)
        .build())
}

/// The logger provider: a batch processor (`OTEL_BLRP_*`) exporting OTLP/HTTP protobuf.
pub(crate) fn logger_provider(
    target: &Target,
    resource: Resource,
    stats: Arc<ExportStats>,
) -> anyhow::Result<SdkLoggerProvider> {
    let builder = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(target.url.clone())
        .with_timeout(export_timeout(Signal::Logs))
        .with_headers(target.headers.clone())
        .with_http_client(ObservedClient::new(target, stats)?);
    let exporter = builder.build().context("building the OTLP log exporter")?;
    Ok(SdkLoggerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TelemetryConfig {
        TelemetryConfig::local_only()
    }

    #[test]
    fn no_token_and_no_endpoint_means_export_off() {
        let endpoints = Endpoints::resolve(&config()).unwrap();
        assert!(endpoints.traces.is_none() && endpoints.logs.is_none() && endpoints.metrics.is_none());
        let blank = TelemetryConfig { axiom_api_token: Some("  ".into()), ..config() };
        assert!(Endpoints::resolve(&blank).unwrap().traces.is_none());
    }

    #[test]
    fn token_sends_to_axiom_with_its_headers() {
        let c = TelemetryConfig {
            axiom_api_token: Some("xaat-secret".into()),
            axiom_metrics_dataset: Some("m".into()),
            ..config()
        };
        let e = Endpoints::resolve(&c).unwrap();
        let traces = e.traces.unwrap();
        assert_eq!(traces.url, "https://api.axiom.co/v1/traces");
        assert_eq!(traces.headers["Authorization"], "Bearer xaat-secret");
        assert_eq!(traces.headers["X-Axiom-Dataset"], "server");
        let metrics = e.metrics.unwrap();
        assert_eq!(metrics.url, "https://api.axiom.co/v1/metrics");
        assert_eq!(metrics.headers["x-axiom-metrics-dataset"], "m");
        assert!(e.logs.is_none(), "logs stay off without AXIOM_LOGS_DATASET");
    }

    #[test]
    fn a_domain_with_a_scheme_is_the_base_url_and_otel_endpoints_win() {
        let c = TelemetryConfig {
            axiom_api_token: Some("t".into()),
            axiom_domain: "http://127.0.0.1:4318/".into(),
            ..config()
        };
        assert_eq!(Endpoints::resolve(&c).unwrap().traces.unwrap().url, "http://127.0.0.1:4318/v1/traces");
        let c = TelemetryConfig { otlp_endpoint: Some("http://collector:4318".into()), ..config() };
        let traces = Endpoints::resolve(&c).unwrap().traces.unwrap();
        assert_eq!(traces.url, "http://collector:4318/v1/traces");
        assert!(traces.headers.is_empty(), "no Axiom headers without a token");
        let c = TelemetryConfig { otlp_traces_endpoint: Some("http://c:1/custom".into()), ..c };
        assert_eq!(Endpoints::resolve(&c).unwrap().traces.unwrap().url, "http://c:1/custom");
    }

    #[test]
    fn a_bad_url_names_its_variable() {
        let c = TelemetryConfig { axiom_api_token: Some("t".into()), axiom_domain: "ftp://x".into(), ..config() };
        let err = format!("{:#}", Endpoints::resolve(&c).unwrap_err());
        assert!(err.starts_with("AXIOM_DOMAIN must be"), "{err}");
    }

    #[test]
    fn the_token_is_masked_to_four_characters() {
        let c = TelemetryConfig { axiom_api_token: Some("xaat-0123456789".into()), ..config() };
        assert_eq!(c.masked_token(), "xaat… (15 characters)");
        assert_eq!(config().masked_token(), "(not set)");
    }
}

#[cfg(test)]
mod client_tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A receiver that answers one request per connection with 200 (keep-alive) and then closes the
    /// connection after `idle`, as servers do with idle keep-alive connections.
    fn closing_receiver(idle: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
                std::thread::sleep(idle);
                drop(stream);
            }
        });
        (url, connections)
    }

    #[test]
    fn a_connection_the_receiver_closed_while_idle_is_not_reused() {
        let (url, connections) = closing_receiver(Duration::from_millis(50));
        let target = Target { signal: Signal::Traces, url: url.clone(), dataset: None, headers: HashMap::new() };
        let client = ObservedClient::new(&target, ExportStats::new()).unwrap();
        for export in 0..3 {
            let request = Request::builder().method("POST").uri(&url).body(Bytes::from_static(b"spans")).unwrap();
            let response = client.send(request);
            assert!(
                response.as_ref().is_ok_and(|r| r.status().is_success()),
                "export {export} after the receiver closed the idle connection: {response:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3, "one connection per export");
    }
}
