//! The fast lane: the spans of the ingest hot path (a tracking hit's HTTP SERVER span and its
//! `track_pageview`; the writer's `ingest_batch` and its `INSERT pageviews`), built without `tracing`
//! and encoded straight to OTLP protobuf.
//!
//! Why a second path: at tens of thousands of hits per second the general one (the `tracing`
//! registry → `tracing-opentelemetry` → an SDK span → the batch processor → the proto conversion)
//! cost ~40 µs of CPU per hit, most of a hit's own cost (`bench/README.md`). Here a span is a plain
//! struct: ids from a thread-local RNG, each attribute encoded as protobuf the moment it is set
//! (into the span's own buffer, kept for reuse by the thread that ends it), and on end
//! the whole span is encoded by the ending thread straight into a bounded shared buffer, under a
//! mutex. One exporter thread wraps what has gathered into an `ExportTraceServiceRequest`, gzips it
//! as a stream and sends it with the traces exporter's own HTTP client (same URL, headers, timeout,
//! failure reports and drop counts). That thread, like every exporter thread, runs at nice 19
//! (`telemetry::init`).
//!
//! What stays the same for a reader of the traces: names, kinds, attributes, parents, the incoming
//! `traceparent`, the sampler (`OTEL_TRACES_SAMPLER(_ARG)`), the resource and the scope. A log line
//! written inside a tracking request or a writer batch carries no trace id (there is no `tracing`
//! span to take it from); failures are on the spans instead.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_http::{Bytes, Request};
use opentelemetry_sdk::Resource;
use rand::Rng;

use super::export::{ExportStats, ObservedClient, Target};

/// A recorded span's identity: what a child names as its parent and a batch span links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    pub trace_id: u128,
    pub span_id: u64,
}

/// Where a new span hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// A new trace.
    Root,
    /// A caller's span from a W3C `traceparent`.
    Remote { span: SpanRef, sampled: bool },
}

impl Parent {
    /// Reads a `traceparent` header value (`00-<trace id>-<span id>-<flags>`); anything malformed
    /// (or all-zero ids) starts a new trace, as the W3C recommendation says.
    pub fn from_traceparent(value: Option<&[u8]>) -> Parent {
        let Some(value) = value.and_then(|v| std::str::from_utf8(v).ok()) else { return Parent::Root };
        let mut parts = value.trim().split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Parent::Root;
        };
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return Parent::Root;
        }
        if version == "00" && parts.next().is_some() {
            return Parent::Root;
        }
        let (Ok(trace_id), Ok(span_id), Ok(flags)) =
            (u128::from_str_radix(trace, 16), u64::from_str_radix(span, 16), u8::from_str_radix(flags, 16))
        else {
            return Parent::Root;
        };
        if trace_id == 0 || span_id == 0 || !trace.bytes().chain(span.bytes()).all(|b| b.is_ascii_hexdigit()) {
            return Parent::Root;
        }
        Parent::Remote { span: SpanRef { trace_id, span_id }, sampled: flags & 1 == 1 }
    }
}

/// Span kinds of the OTLP enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute value, encoded when set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Ip(IpAddr),
    Int(i64),
    Bool(bool),
}

/// The span's name: static, or an HTTP method and route template joined by a space when encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Static(&'static str),
    MethodRoute(&'static str, &'static str),
}

#[derive(Debug)]
struct Live {
    id: SpanRef,
    parent_span_id: u64,
    name: Name,
    kind: Kind,
    /// The parent came from another process (`traceparent`).
    remote_parent: bool,
    start_ns: u64,
    /// The encoded `attributes` (field 9) and `links` (field 13) of the span, in the order set;
    /// [`FIELDS_CAPACITY`] bytes reserved up front (a tracking hit's spans fit). A plain `Vec`: an
    /// inline buffer (a `SmallVec`, or an array of our own) measured slower, what with zeroing or
    /// per-append bookkeeping and a larger `Live` to move (a whole SERVER span with its 18
    /// attributes: ~0.43 µs, against ~0.49 µs inline and ~0.67 µs for its attributes alone in a
    /// `SmallVec`).
    fields: Vec<u8>,
    /// Status ERROR with this message, plus an `exception` event when a type is given.
    error: Option<(Option<&'static str>, String)>,
}

/// A span of the fast lane. Inert (every call a no-op) when export is off or the sampler said no.
/// Ends when dropped, so every early return still exports it. Boxed, so an inert span is 8 bytes
/// in the tracking futures that hold one.
#[derive(Debug)]
pub struct LaneSpan(Option<Box<Live>>);

impl LaneSpan {
    /// A span that records nothing.
    pub fn inert() -> LaneSpan {
        LaneSpan(None)
    }

    /// Starts a span under `parent`, if the lane is on and the sampler keeps it.
    pub fn start(name: Name, kind: Kind, parent: Parent) -> LaneSpan {
        let Some(lane) = LANE.get() else { return LaneSpan(None) };
        let (trace_id, parent_span_id, sampled) = match parent {
            Parent::Root => {
                let trace_id = new_trace_id();
                (trace_id, 0, lane.sampler.keeps_root(trace_id))
            }
            Parent::Remote { span, sampled } => (span.trace_id, span.span_id, lane.sampler.keeps_child(sampled, span)),
        };
        let remote_parent = matches!(parent, Parent::Remote { .. });
        if !sampled {
            return LaneSpan(None);
        }
        LaneSpan(Some(Live::new(
            SpanRef { trace_id, span_id: new_span_id() },
            parent_span_id,
            remote_parent,
            name,
            kind,
        )))
    }

    /// Starts a child of the recorded span `parent` (inert when there is none).
    pub fn child_of(parent: Option<SpanRef>, name: Name, kind: Kind) -> LaneSpan {
        match (parent, LANE.get()) {
            (Some(parent), Some(_)) => {
                let id = SpanRef { trace_id: parent.trace_id, span_id: new_span_id() };
                LaneSpan(Some(Live::new(id, parent.span_id, false, name, kind)))
            }
            _ => LaneSpan(None),
        }
    }

    /// Its identity, when recorded.
    pub fn context(&self) -> Option<SpanRef> {
        self.0.as_ref().map(|live| live.id)
    }

    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// Adds attribute `key` (set each key once: a span's attributes are encoded as they come).
    pub fn set(&mut self, key: &'static str, value: Value<'_>) {
        if let Some(live) = &mut self.0 {
            key_value(&mut live.fields, 9, key, value);
        }
    }

    /// Adds a string attribute.
    pub fn set_str(&mut self, key: &'static str, value: &str) {
        self.set(key, Value::Str(value));
    }

    /// Makes room for `links` more links at once (a batch span links to each of its rows), so the
    /// span's buffer grows once rather than doubling its way up.
    pub fn reserve_links(&mut self, links: usize) {
        if let Some(live) = &mut self.0 {
            live.fields.reserve(links * LINK_LEN);
        }
    }

    /// Adds a span link to `to` (a span of another trace of this process).
    pub fn link(&mut self, to: SpanRef) {
        if let Some(live) = &mut self.0 {
            // One append per link: a batch span carries one for each of its rows.
            let mut link = [0u8; LINK_LEN];
            link[0] = 13 << 3 | LEN; // links
            link[1] = (link.len() - 2) as u8;
            link[2] = 1 << 3 | LEN; // trace_id
            link[3] = 16;
            link[4..20].copy_from_slice(&to.trace_id.to_be_bytes());
            link[20] = 2 << 3 | LEN; // span_id
            link[21] = 8;
            link[22..30].copy_from_slice(&to.span_id.to_be_bytes());
            link[30] = 6 << 3 | FIXED32; // flags: sampled, parent not remote
            link[31..35].copy_from_slice(&0x101u32.to_le_bytes());
            live.fields.extend_from_slice(&link);
        }
    }

    /// Status ERROR with `message`, and an `exception` event (`exception.type`, `exception.message`).
    pub fn error(&mut self, error_type: &'static str, message: &str) {
        if let Some(live) = &mut self.0 {
            live.error = Some((Some(error_type), message.to_string()));
        }
    }

    /// Status ERROR without a message or event (an HTTP 5xx, as the conventions want it).
    pub fn fail(&mut self) {
        if let Some(live) = &mut self.0 {
            live.error = Some((None, String::new()));
        }
    }

    /// Ends the span now (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for LaneSpan {
    fn drop(&mut self) {
        if let (Some(live), Some(lane)) = (self.0.take(), LANE.get()) {
            lane.push(&live, now_ns());
            live.recycle();
        }
    }
}

/// One encoded link: its `links` tag and length, trace id, span id and flags.
const LINK_LEN: usize = 2 + 18 + 10 + 5;

thread_local! {
    /// Ended spans' allocations, kept for this thread's next spans: a tracking hit starts and ends
    /// two spans, and a future that moved between runtime threads frees on one what the other
    /// allocated, which sends glibc's `free` to the other thread's arena lock.
    #[allow(clippy::vec_box, reason = "the boxes themselves are what is reused")]
    static SPARE: RefCell<Vec<Box<Live>>> = const { RefCell::new(Vec::new()) };
}

/// Spans kept per thread for reuse: more than a thread has open at once in the common case.
const SPARE_PER_THREAD: usize = 64;
/// A larger buffer (a big batch's links) is freed rather than kept.
const SPARE_MAX_FIELDS: usize = 64 * 1024;

impl Live {
    /// A started span, in a recycled allocation when this thread has one.
    fn new(id: SpanRef, parent_span_id: u64, remote_parent: bool, name: Name, kind: Kind) -> Box<Live> {
        let span =
            Live { id, parent_span_id, remote_parent, name, kind, start_ns: now_ns(), fields: Vec::new(), error: None };
        match SPARE.try_with(|spare| spare.borrow_mut().pop()).ok().flatten() {
            Some(mut recycled) => {
                let fields = std::mem::take(&mut recycled.fields);
                *recycled = Live { fields, ..span };
                recycled
            }
            None => Box::new(Live { fields: Vec::with_capacity(FIELDS_CAPACITY), ..span }),
        }
    }

    /// Keeps this span's allocation for the thread's next span (or frees it).
    fn recycle(mut self: Box<Live>) {
        if self.fields.capacity() > SPARE_MAX_FIELDS {
            return;
        }
        self.fields.clear();
        self.error = None;
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_PER_THREAD {
                spare.push(self);
            }
        });
    }
}

/// Room reserved for a span's attributes: a tracking hit's SERVER span needs ~450 bytes.
const FIELDS_CAPACITY: usize = 512;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

thread_local! {
    /// Span and trace ids: a fast generator per thread, seeded from the OS-seeded thread RNG. Ids
    /// need to be unique and unpredictable enough to not collide, not secret.
    static IDS: RefCell<rand::rngs::SmallRng> =
        RefCell::new(rand::SeedableRng::from_rng(&mut rand::rng()));
}

fn new_trace_id() -> u128 {
    IDS.with_borrow_mut(|rng| {
        loop {
            let id: u128 = rng.random();
            if id != 0 {
                return id;
            }
        }
    })
}

fn new_span_id() -> u64 {
    IDS.with_borrow_mut(|rng| {
        loop {
            let id: u64 = rng.random();
            if id != 0 {
                return id;
            }
        }
    })
}

/// `OTEL_TRACES_SAMPLER(_ARG)` as the SDK reads them: `always_on`, `always_off`, `traceidratio`, and
/// their `parentbased_*` forms (the default is `parentbased_always_on`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sampler {
    parent_based: bool,
    /// Share of new traces kept: 1.0 always on, 0.0 always off.
    ratio: f64,
}

impl Sampler {
    pub(crate) fn from_env() -> Sampler {
        let name = std::env::var("OTEL_TRACES_SAMPLER").unwrap_or_default();
        let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().and_then(|v| v.trim().parse::<f64>().ok());
        Sampler::parse(&name, arg)
    }

    fn parse(name: &str, arg: Option<f64>) -> Sampler {
        let ratio = arg.unwrap_or(1.0).clamp(0.0, 1.0);
        match name.trim() {
            "always_on" => Sampler { parent_based: false, ratio: 1.0 },
            "always_off" => Sampler { parent_based: false, ratio: 0.0 },
            "traceidratio" => Sampler { parent_based: false, ratio },
            "parentbased_always_off" => Sampler { parent_based: true, ratio: 0.0 },
            "parentbased_traceidratio" => Sampler { parent_based: true, ratio },
            _ => Sampler { parent_based: true, ratio: 1.0 },
        }
    }

    fn keeps_root(self, trace_id: u128) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        if self.ratio <= 0.0 {
            return false;
        }
        // The SDK's rule: the trace id's low 8 bytes, shifted to 63 bits, under ratio × 2^63.
        let bound = (self.ratio * (1u64 << 63) as f64) as u64;
        ((trace_id as u64) >> 1) < bound
    }

    fn keeps_child(self, parent_sampled: bool, parent: SpanRef) -> bool {
        if self.parent_based { parent_sampled } else { self.keeps_root(parent.trace_id) }
    }
}

/// The running lane: the queue and its exporter thread.
struct Lane {
    queue: Mutex<Queued>,
    ready: Condvar,
    sampler: Sampler,
    limit: usize,
    batch: usize,
    stats: Arc<ExportStats>,
    /// Set by [`shutdown`]: export what is queued, then stop.
    stopping: AtomicBool,
    /// Signalled when the exporter has stopped.
    flushed: Condvar,
}

static LANE: OnceLock<Lane> = OnceLock::new();

/// Ended spans, each already encoded as a `spans` field (2) of `ScopeSpans`.
struct Queued {
    bytes: Vec<u8>,
    spans: usize,
    /// Whether the exporter is sending spans it took from here.
    sending: bool,
}

impl Lane {
    /// Encodes `span` straight into the queue (one copy of its attributes, under the lock).
    fn push(&self, span: &Live, end_ns: u64) {
        let error = span.error.as_ref().map(|(error_type, message)| encode_error(*error_type, message, end_ns));
        let len = span_len(span, error.as_deref());
        let Ok(mut queue) = self.queue.lock() else { return };
        if queue.spans >= self.limit {
            drop(queue);
            self.stats.queue_full(self.limit);
            return;
        }
        tag(&mut queue.bytes, 2, LEN);
        varint(&mut queue.bytes, len as u64);
        let start = queue.bytes.len();
        encode_span(span, end_ns, error.as_deref(), &mut queue.bytes);
        debug_assert_eq!(queue.bytes.len() - start, len);
        queue.spans += 1;
        if queue.spans == self.batch {
            self.ready.notify_one();
        }
    }
}

/// Whether the lane records (trace export is on).
pub fn enabled() -> bool {
    LANE.get().is_some()
}

/// Settings of the lane's queue and exports, read like the SDK's batch processor reads them.
pub(crate) struct LaneSettings {
    pub(crate) sampler: Sampler,
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) delay: Duration,
}

impl LaneSettings {
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (default 512) and `OTEL_BSP_SCHEDULE_DELAY` (default 5 s), as
    /// the SDK's batch processor reads them, and `OTEL_BSP_MAX_QUEUE_SIZE` when set.
    /// Unset, the lane's queue holds [`LANE_QUEUE`] spans rather than the SDK's 2048: at the ~70,000
    /// spans/s of a saturated 2-core ingest, 2048 is 30 ms of traffic, less than a scheduling
    /// hiccup of the exporter (exports of 2048 spans were measured too: no faster, worse p99).
    pub(crate) fn from_env() -> LaneSettings {
        let env_num = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
        let batch = env_num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").filter(|&n| n > 0).map_or(512, |n| n as usize);
        let queue = if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_some() {
            super::export::span_queue_size()
        } else {
            LANE_QUEUE
        };
        LaneSettings {
            sampler: Sampler::from_env(),
            queue,
            batch: batch.min(queue),
            delay: Duration::from_millis(env_num("OTEL_BSP_SCHEDULE_DELAY").unwrap_or(5000)),
        }
    }
}

/// The lane's span queue unless `OTEL_BSP_MAX_QUEUE_SIZE` is set: ~4 MB of encoded spans at most.
const LANE_QUEUE: usize = 8192;

/// Starts the lane's exporter thread; from now on [`LaneSpan::start`] records. Once per process.
pub(crate) fn start(
    target: &Target,
    resource: &Resource,
    stats: Arc<ExportStats>,
    settings: LaneSettings,
) -> anyhow::Result<()> {
    let client = ObservedClient::new(target, stats.clone())?;
    let encoder = Encoder::new(resource);
    let lane = Lane {
        queue: Mutex::new(Queued { bytes: Vec::with_capacity(settings.batch * 512), spans: 0, sending: false }),
        ready: Condvar::new(),
        sampler: settings.sampler,
        limit: settings.queue,
        batch: settings.batch,
        stats,
        stopping: AtomicBool::new(false),
        flushed: Condvar::new(),
    };
    if LANE.set(lane).is_err() {
        anyhow::bail!("the telemetry fast lane was started twice");
    }
    let url = target.url.clone();
    let headers = target.all_headers();
    let delay = settings.delay;
    std::thread::Builder::new()
        .name("telemetry-lane".into())
        .spawn(move || export_loop(&client, &encoder, &url, &headers, delay))?;
    Ok(())
}

fn export_loop(client: &ObservedClient, encoder: &Encoder, url: &str, headers: &[(String, String)], delay: Duration) {
    let Some(lane) = LANE.get() else { return };
    let mut spans = Vec::with_capacity(lane.batch * 512);
    let gzip = super::export::lane_gzip();
    loop {
        let count = {
            let Ok(mut queue) = lane.queue.lock() else { return };
            let deadline = std::time::Instant::now() + delay;
            while queue.spans < lane.batch && !lane.stopping.load(Ordering::Relaxed) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                queue = match lane.ready.wait_timeout(queue, left) {
                    Ok((queue, _)) => queue,
                    Err(_) => return,
                };
            }
            // Everything queued goes: at least a batch when the batch size woke us, at most the queue.
            std::mem::swap(&mut queue.bytes, &mut spans);
            queue.sending = queue.spans > 0;
            std::mem::take(&mut queue.spans)
        };
        if count > 0 {
            let body = encoder.request(&spans, gzip);
            spans.clear();
            let mut request =
                Request::builder().method("POST").uri(url).header("content-type", "application/x-protobuf");
            if gzip {
                request = request.header("content-encoding", "gzip");
            }
            for (name, value) in headers {
                request = request.header(name.as_str(), value.as_str());
            }
            match request.body(Bytes::from(body)) {
                Ok(request) => match client.send(request) {
                    Ok(response) if response.status().is_success() => lane.stats.lane_exported(count),
                    _ => lane.stats.lane_failed(count),
                },
                Err(_) => lane.stats.lane_failed(count),
            }
        }
        let Ok(mut queue) = lane.queue.lock() else { return };
        queue.sending = false;
        if queue.spans == 0 && lane.stopping.load(Ordering::Relaxed) {
            lane.flushed.notify_all();
            return;
        }
    }
}

/// Exports everything queued and stops the exporter, waiting at most `deadline`. Blocking.
pub(crate) fn shutdown(deadline: Duration) -> bool {
    let Some(lane) = LANE.get() else { return true };
    // Under the queue's lock, so the exporter can't miss the wake-up between its check and its wait.
    let Ok(queue) = lane.queue.lock() else { return false };
    lane.stopping.store(true, Ordering::Relaxed);
    lane.ready.notify_all();
    match lane.flushed.wait_timeout_while(queue, deadline, |q| q.spans > 0 || q.sending) {
        Ok((_, timeout)) => !timeout.timed_out(),
        Err(_) => false,
    }
}

/// Encodes lane spans as an OTLP `ExportTraceServiceRequest` (protobuf), by hand: the resource and
/// scope are encoded once, each span straight from its struct.
struct Encoder {
    /// `Resource` message bytes.
    resource: Vec<u8>,
    /// `InstrumentationScope` message bytes.
    scope: Vec<u8>,
    schema_url: Option<String>,
}

// Field numbers of opentelemetry-proto's trace.proto / common.proto / resource.proto.
const LEN: u8 = 2;
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const FIXED32: u8 = 5;

impl Encoder {
    fn new(resource: &Resource) -> Encoder {
        let mut attrs = Vec::new();
        for (key, value) in resource.iter() {
            match value {
                opentelemetry::Value::Bool(b) => key_value(&mut attrs, 1, key.as_str(), Value::Bool(*b)),
                opentelemetry::Value::I64(i) => key_value(&mut attrs, 1, key.as_str(), Value::Int(*i)),
                other => key_value(&mut attrs, 1, key.as_str(), Value::Str(&other.to_string())),
            }
        }
        let mut scope = Vec::new();
        string_field(&mut scope, 1, "server");
        string_field(&mut scope, 2, env!("CARGO_PKG_VERSION"));
        Encoder { resource: attrs, scope, schema_url: resource.schema_url().map(str::to_string) }
    }

    /// The request body around `spans` (encoded `ScopeSpans.spans` fields), gzipped as a stream
    /// when `gzip`: the spans are never copied into an enclosing message first.
    fn request(&self, spans: &[u8], gzip: bool) -> Vec<u8> {
        let scope_spans_len = field_len(self.scope.len()) + spans.len();
        let schema = self.schema_url.as_deref().map_or(0, |url| field_len(url.len()));
        let resource_spans_len = field_len(self.resource.len()) + field_len(scope_spans_len) + schema;
        let mut head = Vec::with_capacity(32 + self.resource.len() + self.scope.len());
        tag(&mut head, 1, LEN);
        varint(&mut head, resource_spans_len as u64);
        bytes_field(&mut head, 1, &self.resource);
        tag(&mut head, 2, LEN);
        varint(&mut head, scope_spans_len as u64);
        bytes_field(&mut head, 1, &self.scope);
        let mut tail = Vec::new();
        if let Some(url) = &self.schema_url {
            string_field(&mut tail, 3, url);
        }
        if gzip {
            use std::io::Write;
            let mut gz =
                flate2::write::GzEncoder::new(Vec::with_capacity(spans.len() / 3), flate2::Compression::fast());
            let written = gz.write_all(&head).and_then(|()| gz.write_all(spans)).and_then(|()| gz.write_all(&tail));
            if written.is_ok()
                && let Ok(body) = gz.finish()
            {
                return body;
            }
        }
        let mut body = Vec::with_capacity(head.len() + spans.len() + tail.len());
        body.extend_from_slice(&head);
        body.extend_from_slice(spans);
        body.extend_from_slice(&tail);
        body
    }
}

/// A span's `events` (the exception, when typed) and `status` fields, encoded.
fn encode_error(error_type: Option<&'static str>, message: &str, end_ns: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + 2 * message.len());
    if let Some(error_type) = error_type {
        let mut event = Vec::with_capacity(64 + message.len());
        tag(&mut event, 1, FIXED64);
        event.extend_from_slice(&end_ns.to_le_bytes());
        string_field(&mut event, 2, "exception");
        key_value(&mut event, 3, super::names::EXCEPTION_TYPE, Value::Str(error_type));
        key_value(&mut event, 3, super::names::EXCEPTION_MESSAGE, Value::Str(message));
        bytes_field(&mut out, 11, &event);
    }
    let mut status = Vec::with_capacity(8 + message.len());
    if !message.is_empty() {
        string_field(&mut status, 2, message);
    }
    tag(&mut status, 3, VARINT);
    varint(&mut status, 2); // STATUS_CODE_ERROR
    bytes_field(&mut out, 15, &status);
    out
}

fn name_len(name: Name) -> usize {
    match name {
        Name::Static(name) => name.len(),
        Name::MethodRoute(method, route) => method.len() + 1 + route.len(),
    }
}

/// The encoded length of what [`encode_span`] writes.
fn span_len(span: &Live, error: Option<&[u8]>) -> usize {
    field_len(16)
        + field_len(8)
        + if span.parent_span_id != 0 { field_len(8) } else { 0 }
        + field_len(name_len(span.name))
        + 1
        + varint_len(span.kind as u64)
        + 2 * (1 + 8)
        + span.fields.len()
        + error.map_or(0, <[u8]>::len)
        + 2
        + 4
}

fn encode_span(span: &Live, end_ns: u64, error: Option<&[u8]>, out: &mut Vec<u8>) {
    bytes_field(out, 1, &span.id.trace_id.to_be_bytes());
    bytes_field(out, 2, &span.id.span_id.to_be_bytes());
    if span.parent_span_id != 0 {
        bytes_field(out, 4, &span.parent_span_id.to_be_bytes());
    }
    tag(out, 5, LEN);
    varint(out, name_len(span.name) as u64);
    match span.name {
        Name::Static(name) => out.extend_from_slice(name.as_bytes()),
        Name::MethodRoute(method, route) => {
            out.extend_from_slice(method.as_bytes());
            out.push(b' ');
            out.extend_from_slice(route.as_bytes());
        }
    }
    tag(out, 6, VARINT);
    varint(out, span.kind as u64);
    tag(out, 7, FIXED64);
    out.extend_from_slice(&span.start_ns.to_le_bytes());
    tag(out, 8, FIXED64);
    out.extend_from_slice(&end_ns.max(span.start_ns).to_le_bytes());
    out.extend_from_slice(&span.fields);
    if let Some(error) = error {
        out.extend_from_slice(error);
    }
    // flags (field 16: a two-byte tag): sampled (bit 0), and whether the parent is remote known
    // (bit 8), with its value (bit 9).
    let flags: u32 = if span.remote_parent { 0x301 } else { 0x101 };
    tag(out, 16, FIXED32);
    out.extend_from_slice(&flags.to_le_bytes());
}

/// Bytes of a length-delimited field of `len` bytes whose field number is below 16.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: Value<'_>) {
    let mut ip_text = IpText::default();
    let text = match value {
        Value::Str(s) => s.as_bytes(),
        Value::Ip(ip) => ip_text.format(ip),
        Value::Bool(_) | Value::Int(_) => &[][..],
    };
    let any_len = match value {
        Value::Str(_) | Value::Ip(_) => field_len(text.len()),
        Value::Bool(b) => 1 + varint_len(u64::from(b)),
        Value::Int(i) => 1 + varint_len(i as u64),
    };
    tag(out, field, LEN);
    varint(out, (field_len(key.len()) + field_len(any_len)) as u64);
    string_field(out, 1, key);
    tag(out, 2, LEN);
    varint(out, any_len as u64);
    match value {
        Value::Str(_) | Value::Ip(_) => bytes_field(out, 1, text),
        Value::Bool(b) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(b));
        }
        Value::Int(i) => {
            tag(out, 3, VARINT);
            varint(out, i as u64);
        }
    }
}

/// An address as text, without `fmt` for the common IPv4 case.
struct IpText {
    /// Room for the longest IPv6 text (45 bytes).
    bytes: [u8; 48],
}

impl Default for IpText {
    fn default() -> IpText {
        IpText { bytes: [0; 48] }
    }
}

impl IpText {
    fn format(&mut self, ip: IpAddr) -> &[u8] {
        let mut len = 0;
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.bytes[len] = b'.';
                        len += 1;
                    }
                    if octet >= 100 {
                        self.bytes[len] = b'0' + octet / 100;
                        len += 1;
                    }
                    if octet >= 10 {
                        self.bytes[len] = b'0' + octet / 10 % 10;
                        len += 1;
                    }
                    self.bytes[len] = b'0' + octet % 10;
                    len += 1;
                }
            }
            IpAddr::V6(_) => {
                let mut cursor = std::io::Cursor::new(&mut self.bytes[..]);
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{ip}"));
                len = cursor.position() as usize;
            }
        }
        &self.bytes[..len]
    }
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes_field(out, field, s.as_bytes());
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use prost::Message;

    use super::*;

    fn live(name: Name, parent_span_id: u64, kind: Kind) -> LaneSpan {
        LaneSpan(Some(Box::new(Live {
            id: SpanRef { trace_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677, span_id: 0x1122_3344_5566_7788 },
            parent_span_id,
            remote_parent: false,
            name,
            kind,
            start_ns: 1_700_000_000_000_000_000,
            fields: Vec::with_capacity(FIELDS_CAPACITY),
            error: None,
        })))
    }

    /// What the lane would queue for `span`, ended at `end_ns`.
    fn queued(mut span: LaneSpan, end_ns: u64, into: &mut Vec<u8>) {
        let live = span.0.take().unwrap();
        let error = live.error.as_ref().map(|(t, m)| encode_error(*t, m, end_ns));
        let mut encoded = Vec::new();
        encode_span(&live, end_ns, error.as_deref(), &mut encoded);
        assert_eq!(encoded.len(), span_len(&live, error.as_deref()));
        bytes_field(into, 2, &encoded);
    }

    fn decode(body: &[u8], gzip: bool) -> ExportTraceServiceRequest {
        let plain = if gzip {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
            out
        } else {
            body.to_vec()
        };
        ExportTraceServiceRequest::decode(plain.as_slice()).expect("valid protobuf")
    }

    #[test]
    fn an_ended_spans_allocation_serves_the_threads_next_span_empty() {
        let id = SpanRef { trace_id: 1, span_id: 2 };
        let mut first = Live::new(id, 0, false, Name::Static("first"), Kind::Internal);
        first.fields.extend_from_slice(b"an attribute");
        first.error = Some((Some("boom"), "it failed".into()));
        let reused = &*first as *const Live;
        first.recycle();

        let second = Live::new(SpanRef { trace_id: 3, span_id: 4 }, 5, true, Name::Static("second"), Kind::Server);
        assert_eq!(&*second as *const Live, reused, "the box is reused");
        assert!(second.fields.is_empty() && second.fields.capacity() >= FIELDS_CAPACITY);
        assert_eq!(second.error, None);
        assert_eq!(
            (second.id, second.parent_span_id, second.remote_parent),
            (SpanRef { trace_id: 3, span_id: 4 }, 5, true)
        );
        assert_eq!((second.name, second.kind), (Name::Static("second"), Kind::Server));

        // A batch span's outsized buffer is freed, not kept.
        let mut big = Live::new(id, 0, false, Name::Static("big"), Kind::Client);
        big.fields.reserve(SPARE_MAX_FIELDS + 1);
        big.recycle();
        let next = Live::new(id, 0, false, Name::Static("next"), Kind::Internal);
        assert!(next.fields.capacity() <= SPARE_MAX_FIELDS, "got the {} B buffer back", next.fields.capacity());
    }

    #[test]
    fn spans_encode_as_an_otlp_request_that_prost_decodes() {
        let resource = Resource::builder_empty().with_service_name("server").build();
        let encoder = Encoder::new(&resource);
        let mut server = live(Name::MethodRoute("GET", "/api/v1/pv"), 0, Kind::Server);
        server.set_str("http.request.method", "GET");
        server.set("client.address", Value::Ip("192.0.2.7".parse().unwrap()));
        server.set("http.response.status_code", Value::Int(200));
        server.set_str("url.path", &"/api/v1/pv".repeat(20));
        server.link(SpanRef { trace_id: 7, span_id: 8 });
        // Past the inline room: the rest goes to the heap, after what was already encoded.
        server.set_str("user_agent.original", &"Mozilla/5.0 ".repeat(60));
        server.set("server.port", Value::Int(8080));
        let mut track = live(Name::Static("track_pageview"), 0x99, Kind::Internal);
        track.set("pageview.created", Value::Bool(false));
        track.error("internal_error", "database unavailable");
        let mut spans = Vec::new();
        queued(server, 1_700_000_000_000_500_000, &mut spans);
        queued(track, 1_700_000_000_000_600_000, &mut spans);
        for gzip in [false, true] {
            let request = decode(&encoder.request(&spans, gzip), gzip);
            let resource_spans = &request.resource_spans[0];
            let service = &resource_spans.resource.as_ref().unwrap().attributes[0];
            assert_eq!(service.key, "service.name");
            let scope = &resource_spans.scope_spans[0];
            assert_eq!(scope.scope.as_ref().unwrap().name, "server");
            let server = &scope.spans[0];
            assert_eq!(server.name, "GET /api/v1/pv");
            assert_eq!(hex::encode(&server.trace_id), "0123456789abcdef0011223344556677");
            assert_eq!(hex::encode(&server.span_id), "1122334455667788");
            assert!(server.parent_span_id.is_empty());
            assert_eq!(server.kind, 2);
            assert_eq!(server.end_time_unix_nano - server.start_time_unix_nano, 500_000);
            let attr = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
                span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
            };
            assert_eq!(attr(server, "client.address"), Some(any_value::Value::StringValue("192.0.2.7".into())));
            assert_eq!(attr(server, "http.response.status_code"), Some(any_value::Value::IntValue(200)));
            assert_eq!(attr(server, "url.path"), Some(any_value::Value::StringValue("/api/v1/pv".repeat(20))));
            assert_eq!(
                attr(server, "user_agent.original"),
                Some(any_value::Value::StringValue("Mozilla/5.0 ".repeat(60)))
            );
            assert_eq!(attr(server, "server.port"), Some(any_value::Value::IntValue(8080)));
            assert_eq!(server.links.len(), 1);
            assert_eq!(hex::encode(&server.links[0].trace_id), format!("{:032x}", 7));
            assert_eq!(hex::encode(&server.links[0].span_id), format!("{:016x}", 8));
            let track = &scope.spans[1];
            assert_eq!(track.name, "track_pageview");
            assert_eq!(hex::encode(&track.parent_span_id), "0000000000000099");
            assert_eq!(attr(track, "pageview.created"), Some(any_value::Value::BoolValue(false)));
            let status = track.status.as_ref().unwrap();
            assert_eq!((status.code, status.message.as_str()), (2, "database unavailable"));
            assert_eq!(track.events[0].name, "exception");
            assert_eq!(track.events[0].attributes.len(), 2);
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_growing() {
        let stats = ExportStats::new();
        let lane = Lane {
            queue: Mutex::new(Queued { bytes: Vec::new(), spans: 0, sending: false }),
            ready: Condvar::new(),
            sampler: Sampler::parse("", None),
            limit: 3,
            batch: 2,
            stats: stats.clone(),
            stopping: AtomicBool::new(false),
            flushed: Condvar::new(),
        };
        let mut span = live(Name::Static("track_pageview"), 1, Kind::Internal);
        span.set_str("pageview.path", "/");
        let live = span.0.take().unwrap();
        for _ in 0..5 {
            lane.push(&live, live.start_ns + 1);
        }
        let queue = lane.queue.lock().unwrap();
        assert_eq!(queue.spans, 3);
        assert_eq!(stats.dropped_queue_full(), 2);
        // What is queued is three `spans` fields, each one whole span.
        let encoder = Encoder::new(&Resource::builder_empty().build());
        let request = decode(&encoder.request(&queue.bytes, false), false);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 3);
    }

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "192.0.2.7",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::default().format(ip), ip.to_string().as_bytes(), "{ip}");
        }
    }

    #[test]
    fn varint_lengths_match_the_encoding() {
        for value in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }

    #[test]
    fn traceparent_is_honoured_and_garbage_starts_a_new_trace() {
        let parent = Parent::from_traceparent(Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(
            parent,
            Parent::Remote {
                span: SpanRef { trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736, span_id: 0x00f067aa0ba902b7 },
                sampled: true
            }
        );
        let unsampled = Parent::from_traceparent(Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
        assert!(matches!(unsampled, Parent::Remote { sampled: false, .. }));
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"garbage",
        ] {
            assert_eq!(Parent::from_traceparent(Some(bad)), Parent::Root, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Parent::from_traceparent(None), Parent::Root);
    }

    #[test]
    fn sampler_reads_the_sdk_names() {
        let remote = SpanRef { trace_id: 1, span_id: 1 };
        let default = Sampler::parse("", None);
        assert!(default.keeps_root(5) && default.keeps_child(true, remote) && !default.keeps_child(false, remote));
        assert!(Sampler::parse("always_on", None).keeps_child(false, remote));
        assert!(!Sampler::parse("always_off", None).keeps_root(5));
        let half = Sampler::parse("traceidratio", Some(0.5));
        assert!(half.keeps_root(0) && !half.keeps_root(u128::from(u64::MAX)));
        let kept = (0..10_000u128)
            .filter(|i| half.keeps_root(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }
}
